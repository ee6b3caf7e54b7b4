"""Converting pretrained weights into our files: torchvision's and Caffe's AlexNet -> .pt checkpoint or .safetensors.

Converted networks carry their preprocessing and class names in the record, so ``alexnet eval``/``predict``/
``features``/``export`` use them like networks trained here.  Every file is checked (names, shapes) before it is
written, and written atomically.
"""
from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from ..checkpoint import Checkpoint, safe_torch_load, save_checkpoint
from ..errors import CheckpointError, ConfigError
from ..utils import check_output, file_digest
from .caffe import caffe_checkpoint
from .caffemodel import read_caffemodel
from .safetensors import write_safetensors
from .torchvision import torchvision_checkpoint, unwrap_torchvision

_TORCHVISION_HASH = re.compile(r"-([a-f0-9]{6,})\.[^.]+$")   # torchvision's file names end in -<sha256 prefix>.pth


def check_weights_output(out: str | os.PathLike, overwrite: bool = True) -> Path:
    """Before any work: ``out`` names a .pt or .safetensors file that can be written (and, unless ``overwrite``,
    does not exist yet)."""
    out = Path(out)
    if out.suffix.lower() not in (".safetensors", ".pt", ".pth"):
        raise ConfigError(f"{out}: output must end in .pt (alexnet checkpoint) or .safetensors; got {out.suffix!r}")
    return check_output(out, overwrite)


def write_weights(out: str | os.PathLike, ckpt: Checkpoint, overwrite: bool = True) -> Path:
    """The record as an alexnet checkpoint (.pt) or .safetensors, by ``out``'s extension."""
    out = check_weights_output(out, overwrite)
    if out.suffix.lower() == ".safetensors":
        return write_safetensors(out, ckpt, overwrite=overwrite)
    return save_checkpoint(out, ckpt, overwrite=overwrite)


def convert_torchvision(src: str | os.PathLike, out: str | os.PathLike, *, classes: Sequence[str] | None = None,
                        check_hash: bool = True, source: Mapping | None = None, overwrite: bool = True) -> Path:
    """torchvision ``alexnet-owt-*.pth`` -> our checkpoint (``.pt``) or ``.safetensors`` at ``out``.

    ``check_hash``: torchvision file names end in the first hex digits of the file's sha256 (``-7be5be79.pth``);
    a mismatch means a corrupt or modified download and is refused.  ``source``: more to record about where the
    weights came from (``alexnet.weights``: the registry name, URL, checksum, the publisher's accuracy).
    ``overwrite=False`` refuses an existing ``out`` (checked before the weights are read).
    """
    check_weights_output(out, overwrite)
    src = Path(src)
    obj = safe_torch_load(src)
    digest = file_digest(src)
    m = _TORCHVISION_HASH.search(src.name)
    if check_hash and m and not digest.startswith(m.group(1)):
        raise CheckpointError(f"{src}: sha256 {digest[:12]}... does not start with {m.group(1)!r} as the file name "
                              "says: a corrupt or modified download (check_hash=False / --no-check-hash to convert "
                              "it anyway)")
    source = {"kind": "torchvision", "file": src.name, "sha256": digest, **(source or {})}
    ckpt = torchvision_checkpoint(unwrap_torchvision(obj, str(src)), str(src), source, classes)
    ckpt.build_model(src, expect_arch="owt")   # validates names and shapes before writing
    return write_weights(out, ckpt, overwrite)


def convert_caffe(caffemodel_path: str | os.PathLike, out_path: str | os.PathLike, *,
                  mean: str | os.PathLike | Sequence[float] | None = None, rgb: bool = False,
                  classes: Sequence[str] | None = None, source: Mapping | None = None,
                  overwrite: bool = True) -> Path:
    """Caffe ``bvlc_alexnet.caffemodel`` -> our ``paper`` network (two towers, Caffe's LRN: alpha/n, k=1; 227 crops)
    as a .pt checkpoint or .safetensors at ``out_path``.

    The network keeps Caffe's BGR input: the record's preprocessing says ``channel_order: "BGR"`` with the BGR
    mean, so eval/predict/features flip RGB images before normalising.  ``mean``: a mean file (.npy such as
    ilsvrc_2012_mean.npy, or .binaryproto such as imagenet_mean.binaryproto; 256x256) is recorded as the mean
    image it is and subtracted cropped at each input crop's place, as Caffe's ``mean_file``; B,G,R values (default
    104, 117, 123) are a per-channel mean.  ``rgb=True`` instead reverses conv1's input
    channels and records an RGB network (useful for exported ONNX/TorchScript models).  Caffe warps images to
    256x256 before the 227 crop; our pipeline resizes the shorter side to 256 (same crop).  ``source``: more to
    record about where the weights came from (as ``convert_torchvision``).
    """
    check_weights_output(out_path, overwrite)
    src = Path(caffemodel_path)
    ckpt = caffe_checkpoint(read_caffemodel(src), str(src), mean=mean, rgb=rgb, classes=classes)
    ckpt.source.update({"file": src.name, "sha256": file_digest(src), **(source or {})})
    ckpt.build_model(src)   # validates names and shapes before writing
    return write_weights(out_path, ckpt, overwrite)
