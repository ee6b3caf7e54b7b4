"""The one weights loader: ``load_model(path)`` for every weight file the project knows.

    alexnet .pt checkpoint or run folder (best.pt, else last.pt)     -> checkpoint.load_checkpoint's record
    alexnet .safetensors (record in the header metadata)              -> safetensors.read_safetensors
    torchvision AlexNet state_dict (.pth / .pt / .safetensors)        -> the ``owt`` network with torchvision's
                                                                         preprocessing and ImageNet's classes
Caffe's .caffemodel goes through ``convert_caffe`` first (it needs a mean and a channel-order choice).

Every pickle is read with ``weights_only=True``; every wrong file is a one-line CheckpointError naming it.
"""
from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path
from typing import NamedTuple

import torch

from ..checkpoint import FORMAT, Checkpoint, load_checkpoint, safe_torch_load
from ..errors import CheckpointError
from .safetensors import read_safetensors
from .torchvision import describe_object, holds_torchvision_weights, torchvision_checkpoint, unwrap_torchvision


class LoadedModel(NamedTuple):
    """What ``load_model`` returns: unpacks as ``model, ckpt = load_model(path)``."""

    model: torch.nn.Module          # in eval mode
    checkpoint: Checkpoint          # its state_dict is the model's own (shared tensors, no second copy)


def _read_record(path: Path, map_location: str | torch.device) -> Checkpoint:
    if path.is_dir():
        return load_checkpoint(path, map_location)
    if path.suffix.lower() == ".safetensors":
        return read_safetensors(path)
    obj = safe_torch_load(path, map_location)
    if isinstance(obj, Mapping) and obj.get("format") == FORMAT:
        return Checkpoint.from_payload(obj, path)
    if holds_torchvision_weights(obj):
        return torchvision_checkpoint(unwrap_torchvision(obj, str(path)), str(path),
                                      {"kind": "torchvision", "file": path.name})
    raise CheckpointError(f"{path}: not an alexnet checkpoint, nor a torchvision AlexNet state_dict: it is "
                          f"{describe_object(obj)}")


def load_model(path: str | os.PathLike, expect_arch: str | None = None,
               map_location: str | torch.device = "cpu") -> LoadedModel:
    """(model in eval mode, its Checkpoint record) from any weight file: an alexnet .pt checkpoint or run folder,
    an alexnet .safetensors file, or torchvision's AlexNet state_dict (.pth, .pt or .safetensors).

    Names and shapes are checked against the architecture (and ``expect_arch``, if given); a wrong one is a
    one-line CheckpointError naming the tensor.  The record's ``classes`` and ``preprocessing`` say how to use it.
    """
    path = Path(path)
    ckpt = _read_record(path, map_location)
    model = ckpt.build_model(path, expect_arch).eval()
    return LoadedModel(model, dataclasses.replace(ckpt, state_dict=model.state_dict()))
