"""Weights in and out: torchvision and Caffe weights in; ONNX, TorchScript and safetensors out; one loader.

In:
    ``load_model(path)``                           (model, Checkpoint) from any of: our .pt checkpoint or run
                                                   folder, our .safetensors, a torchvision state_dict file
    ``load_torchvision_state_dict(path_or_dict)``  a torchvision ``alexnet-owt-*.pth`` state_dict -> ``owt`` network
    ``convert_torchvision(src, out)``              ... written as our checkpoint (.pt) or .safetensors
    ``convert_caffe(caffemodel, out, mean=...)``   Caffe's ``bvlc_alexnet.caffemodel`` -> the ``paper`` network
                                                   (Caffe's LRN convention, k=1, 227 crops, BGR input)
Out:
    ``export_model(checkpoint, "onnx" | "torchscript" | "safetensors", out)``, ``check_export``

Every file we write is atomic (``alexnet.utils.atomic_output``); every pickle we read goes through
``torch.load(weights_only=True)`` (a pickle that would run code is refused, and the code does not run).

Converted networks carry their preprocessing in the record (mean/std per channel in 0-255 pixel units, in the
network's channel order; ``resize`` = shorter side; ``crop``; ``channel_order``), so ``alexnet eval``/``predict``/
``features``/``export`` use them like networks trained here.

Modules: ``load`` (the loader), ``torchvision``, ``caffemodel`` (reading Caffe's files, on ``protobuf``, our own
wire-format reader: no ``caffe`` or ``protobuf`` package needed), ``caffe`` (Caffe layers -> record), ``convert``
(writing converted weights), ``safetensors``, ``export``, ``classes``.
"""
from __future__ import annotations

from ..checkpoint import safe_torch_load
from ..choices import EXPORT_FORMATS
from .caffe import CAFFE_CROP, CAFFE_RESIZE, caffe_checkpoint, caffe_preprocessing
from .caffemodel import CAFFE_MEAN_BGR, CaffeLayer, read_caffe_mean, read_caffemodel
from .classes import imagenet_classes, read_class_names
from .convert import convert_caffe, convert_torchvision, write_weights
from .export import check_export, describe_weights, export_model, format_from_suffix
from .load import LoadedModel, load_model
from .safetensors import read_safetensors, safetensors_metadata, write_safetensors
from .torchvision import (
                          IMAGENET_MEAN_RGB,
                          IMAGENET_STD_RGB,
                          load_torchvision_state_dict,
                          torchvision_checkpoint,
                          torchvision_preprocessing,
)

__all__ = ["IMAGENET_MEAN_RGB", "IMAGENET_STD_RGB", "CAFFE_MEAN_BGR", "CAFFE_CROP", "CAFFE_RESIZE", "EXPORT_FORMATS",
           "CaffeLayer", "LoadedModel", "imagenet_classes", "torchvision_preprocessing", "caffe_preprocessing",
           "read_class_names", "safe_torch_load", "load_model", "load_torchvision_state_dict",
           "torchvision_checkpoint", "convert_torchvision", "write_weights", "write_safetensors", "read_safetensors",
           "safetensors_metadata", "read_caffemodel", "read_caffe_mean", "caffe_checkpoint", "convert_caffe",
           "export_model", "check_export", "format_from_suffix", "describe_weights"]
