"""Reading Caffe's files: a binary ``.caffemodel`` (NetParameter) as a list of layers, and mean images.

The field numbers are those of Caffe's ``caffe.proto``: NetParameter ``layer`` = 100 (LayerParameter) or the legacy
``layers`` = 2 (V1LayerParameter, as in the 2014 model-zoo files, with the oldest V0 layers inside), BlobProto for
weights and means.  No ``caffe`` or ``protobuf`` package is needed (``protobuf`` is our own wire reader).
"""
from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..checkpoint import first_line
from ..errors import CheckpointError, ConfigError
from .protobuf import (
    Message,
    WireError,
    first_int,
    floats,
    ints,
    iter_fields,
    last_float,
    last_int,
    last_string,
    parse_message,
    sub_message,
)

# Caffe's ILSVRC-2012 mean (ilsvrc_2012_mean.npy averaged over the image: 104.0, 116.7, 122.7), BGR order, 0-255.
CAFFE_MEAN_BGR = (104.0, 117.0, 123.0)

# V1LayerParameter.LayerType values we care about (caffe.proto), and V0's type strings.
_V1_TYPES = {4: "convolution", 14: "innerproduct", 15: "lrn", 17: "pooling", 18: "relu", 6: "dropout",
             20: "softmax", 21: "softmaxwithloss", 5: "data", 1: "accuracy", 22: "split"}
_V0_TYPES = {"conv": "convolution", "innerproduct": "innerproduct", "lrn": "lrn", "pool": "pooling",
             "relu": "relu", "dropout": "dropout", "softmax": "softmax", "data": "data"}


@dataclass(eq=False)
class CaffeLayer:
    """One layer of a caffemodel: name, normalised type ("convolution", "innerproduct", "lrn", "pooling", ...),
    its weight blobs, and the parameters we check (conv: pad/kernel/stride/group; lrn: local_size/alpha/beta/k/
    norm_region; pooling: pool/kernel/stride; innerproduct: transpose)."""

    name: str
    type: str
    blobs: list[np.ndarray] = field(default_factory=list)
    params: dict = field(default_factory=dict)


def read_blob(buf: memoryview) -> np.ndarray:
    """BlobProto: shape=7 (BlobShape dim=1), data=5 (float), double_data=8; legacy num/channels/height/width=1..4."""
    msg = parse_message(buf)
    if 7 in msg:
        shape = tuple(ints(parse_message(msg[7][-1][1]).get(1, [])))
    else:
        shape = tuple(last_int(msg, i, 0) for i in (1, 2, 3, 4))
    data = floats(msg[8], double=True).astype(np.float32) if 8 in msg else floats(msg.get(5, []))
    if math.prod(shape) != data.size:
        raise WireError(f"blob of shape {shape} holds {data.size} values (truncated file?)")
    return data.reshape(shape)


def _first_or(msg: Message, num: int, alt: int | None = None) -> int | None:
    """A repeated field's first value (kernel_size, pad, stride), else the scalar alternative (kernel_h, ...)."""
    v = first_int(msg, num)
    return v if v is not None else (last_int(msg, alt) if alt is not None else None)


def _conv_params(msg: Message) -> dict:
    return {"num_output": last_int(msg, 1), "pad": _first_or(msg, 3, 9) or 0, "kernel": _first_or(msg, 4, 11),
            "stride": _first_or(msg, 6, 13) or 1, "group": last_int(msg, 5, 1)}


def _lrn_params(msg: Message) -> dict:
    return {"local_size": last_int(msg, 1, 5), "alpha": last_float(msg, 2, 1.0), "beta": last_float(msg, 3, 0.75),
            "norm_region": last_int(msg, 4, 0), "k": last_float(msg, 5, 1.0)}


def _pool_params(msg: Message) -> dict:
    kernel = first_int(msg, 2)
    stride = first_int(msg, 3)
    return {"pool": last_int(msg, 1, 0), "kernel": kernel if kernel is not None else last_int(msg, 5),
            "stride": stride if stride is not None else last_int(msg, 7, 1)}


def _layer_params(layer: CaffeLayer, msg: Message, conv: int, ip: int, lrn: int, pool: int) -> CaffeLayer:
    """Fill ``layer.params`` from the sub-messages at the given field numbers (they differ between versions)."""
    for key, num, parse in (("conv", conv, _conv_params), ("lrn", lrn, _lrn_params), ("pool", pool, _pool_params)):
        sub = sub_message(msg, num)
        if sub is not None:
            layer.params[key] = parse(sub)
    sub = sub_message(msg, ip)
    if sub is not None:
        layer.params["ip"] = {"transpose": bool(last_int(sub, 6, 0))}
    return layer


def _layer_new(buf: memoryview) -> CaffeLayer:
    """LayerParameter: name=1, type=2, blobs=7; convolution_param=106, inner_product_param=117, lrn_param=118,
    pooling_param=121."""
    msg = parse_message(buf)
    layer = CaffeLayer(last_string(msg, 1), last_string(msg, 2).lower(), [read_blob(v) for _, v in msg.get(7, [])])
    return _layer_params(layer, msg, conv=106, ip=117, lrn=118, pool=121)


def _layer_v1(buf: memoryview) -> CaffeLayer:
    """V1LayerParameter: name=4, type=5 (enum), blobs=6; convolution_param=10, inner_product_param=17,
    lrn_param=18, pooling_param=19; a V0LayerParameter in field 1 for the oldest files."""
    msg = parse_message(buf)
    if 1 in msg and 4 not in msg:
        return _layer_v0(msg[1][-1][1])
    type_id = last_int(msg, 5, 0)
    layer = CaffeLayer(last_string(msg, 4), _V1_TYPES.get(type_id, f"v1type{type_id}"),
                       [read_blob(v) for _, v in msg.get(6, [])])
    return _layer_params(layer, msg, conv=10, ip=17, lrn=18, pool=19)


def _layer_v0(buf: memoryview) -> CaffeLayer:
    """V0LayerParameter: name=1, type=2 (string), num_output=3, pad=7, kernelsize=8, group=9, stride=10, pool=11,
    local_size=13, alpha=14, beta=15, k=22, blobs=50."""
    msg = parse_message(buf)
    kind = last_string(msg, 2).lower()
    layer = CaffeLayer(last_string(msg, 1), _V0_TYPES.get(kind, kind), [read_blob(v) for _, v in msg.get(50, [])])
    if layer.type == "convolution":
        layer.params["conv"] = {"num_output": last_int(msg, 3), "pad": last_int(msg, 7, 0),
                                "kernel": last_int(msg, 8), "stride": last_int(msg, 10, 1),
                                "group": last_int(msg, 9, 1)}
    elif layer.type == "lrn":
        layer.params["lrn"] = {"local_size": last_int(msg, 13, 5), "alpha": last_float(msg, 14, 1.0),
                               "beta": last_float(msg, 15, 0.75), "norm_region": 0, "k": last_float(msg, 22, 1.0)}
    elif layer.type == "pooling":
        layer.params["pool"] = {"pool": last_int(msg, 11, 0), "kernel": last_int(msg, 8),
                                "stride": last_int(msg, 10, 1)}
    return layer


def read_caffemodel(path: str | os.PathLike) -> list[CaffeLayer]:
    """The layers of a binary ``.caffemodel`` (NetParameter) in file order: the new ``layer`` field (100) or the
    legacy V1 ``layers`` field (2, as in the 2014 model-zoo files)."""
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"{p}: no such caffemodel file")
    buf = memoryview(p.read_bytes())
    if len(buf) == 0:
        raise CheckpointError(f"{p}: empty file (0 bytes), not a caffemodel")
    layers: list[CaffeLayer] = []
    try:
        for num, wt, val in iter_fields(buf):
            if num == 100 and wt == 2:
                layers.append(_layer_new(val))
            elif num == 2 and wt == 2:
                layers.append(_layer_v1(val))
    except WireError as e:
        hint = ""
        if bytes(buf[:4]) == b"PK\x03\x04" or bytes(buf[:1]) == b"\x80":
            hint = " (it is a PyTorch file: use `alexnet convert torchvision` or load it directly)"
        raise CheckpointError(f"{p}: not a readable caffemodel (protobuf NetParameter): {e}{hint}") from None
    if not layers:
        raise CheckpointError(f"{p}: no layers found: not a caffemodel (binary NetParameter)? A .prototxt holds "
                              "only the architecture; the weights are in the .caffemodel")
    return layers


def _mean_image(p: Path) -> np.ndarray:
    """The array of a .npy or .binaryproto (BlobProto) mean file."""
    if not p.is_file():
        raise ConfigError(f"--mean {p}: no such file (expected a .npy or .binaryproto mean, or B,G,R numbers)")
    if p.suffix.lower() == ".npy":
        try:
            return np.load(p, allow_pickle=False)
        except (ValueError, OSError) as e:
            raise ConfigError(f"{p}: not a readable .npy mean file: {first_line(e)}") from None
    try:
        return read_blob(memoryview(p.read_bytes()))
    except WireError as e:
        raise ConfigError(f"{p}: not a readable .binaryproto mean (BlobProto): {e}") from None


def read_caffe_mean_image(spec: str | os.PathLike | Sequence[float] | None) -> np.ndarray | None:
    """A mean *file* (``.npy`` such as ilsvrc_2012_mean.npy, or ``.binaryproto`` such as imagenet_mean.binaryproto,
    a BlobProto 1 x C x H x W) as its float32 image C x H x W, exactly as stored (Caffe's channel order, BGR);
    None when ``spec`` is not a file (None, or per-channel numbers)."""
    if spec is None or isinstance(spec, (list, tuple)):
        return None
    text = str(spec)
    if "," in text and not Path(text).exists():
        return None
    p = Path(text)
    arr = np.asarray(_mean_image(p))
    while arr.ndim > 3 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim == 1:
        return None   # a .npy of per-channel values
    if arr.ndim == 3 and arr.shape[0] in (1, 3):
        return np.array(arr, dtype=np.float32, order="C", copy=True)
    raise ConfigError(f"{p}: mean of shape {arr.shape}; expected C x H x W (C = 1 or 3) or C values")


def read_caffe_mean(spec: str | os.PathLike | Sequence[float] | None) -> list[float]:
    """A per-channel mean (in the file's channel order, BGR for Caffe) from: None (Caffe's ILSVRC-2012 mean
    104, 117, 123), three numbers or "B,G,R", a ``.npy`` (e.g. ilsvrc_2012_mean.npy, 3x256x256) or a
    ``.binaryproto`` (BlobProto) mean image, averaged over its pixels."""
    if spec is None:
        return list(CAFFE_MEAN_BGR)
    if isinstance(spec, (list, tuple)):
        return [float(v) for v in spec]
    text = str(spec)
    if "," in text and not Path(text).exists():
        try:
            return [float(v) for v in text.split(",")]
        except ValueError:
            raise ConfigError(f"--mean {text!r}: expected three numbers B,G,R or a .npy/.binaryproto file") from None
    image = read_caffe_mean_image(text)
    if image is not None:
        return [float(v) for v in image.astype(np.float64).reshape(image.shape[0], -1).mean(axis=1)]
    return [float(v) for v in np.asarray(_mean_image(Path(text)), dtype=np.float64).reshape(-1)]
