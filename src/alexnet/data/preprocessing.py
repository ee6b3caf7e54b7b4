"""The preprocessing record a checkpoint carries (its ``data`` entry), and the mean image inside it.

The record is a dict of plain values: ``mean``/``std`` per channel (0-255 units, the network's channel order),
``resize`` (S), ``crop``, ``channels``, ``channel_order`` ("RGB", or "BGR" for Caffe's weights), ``normalize``, and,
when the network was trained (or imported) with the paper's mean image, ``mean_image``: a float32 tensor
[C, S, S] in 0-255 units and the network's channel order (section 2: "subtracting the mean activity over the
training set from each pixel"; Caffe's ``mean_file``).  ``mean`` is then the per-channel average of that image
(for display); the transforms subtract the image, cropped at the input crop's place and flipped with it.

In a ``.pt`` checkpoint the tensor is stored as it is; where the record travels as JSON (a ``.safetensors``
header, the ``alexnet`` metadata of an ONNX or TorchScript export) it is ``encode_mean_image``'s lossless form::

    {"shape": [C, S, S], "dtype": "float32", "encoding": "base64", "data": "<little-endian float32 bytes>"}

which any language reads back (Python: ``np.frombuffer(base64.b64decode(d["data"]), "<f4").reshape(d["shape"])``,
or ``decode_mean_image``).  Human-facing copies (``config.json``, the server's model card) get ``describe``'s short
form instead (the shape and where the values are).
"""
from __future__ import annotations

import base64
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from ..errors import CheckpointError

MEAN_IMAGE = "mean_image"


def mean_image_of(prep: Mapping | None) -> torch.Tensor | None:
    """The record's mean image as a float32 tensor [C, S, S] (decoded if it is in its JSON form), or None."""
    if not prep or prep.get(MEAN_IMAGE) is None:
        return None
    return as_mean_image(prep[MEAN_IMAGE])


def as_mean_image(value: Any, origin: str = "preprocessing") -> torch.Tensor:
    """A tensor, array or encoded dict -> float32 tensor [C, H, W]; a one-line CheckpointError if it is none."""
    if isinstance(value, Mapping):
        return decode_mean_image(value, origin)
    try:
        t = torch.as_tensor(np.asarray(value) if not isinstance(value, torch.Tensor) else value)
    except (TypeError, ValueError, RuntimeError) as e:
        raise CheckpointError(f"{origin}: mean_image is not an array ({e})") from None
    t = t.detach().to("cpu", torch.float32)
    if t.dim() != 3 or t.shape[0] not in (1, 3) or min(t.shape) < 1:
        raise CheckpointError(f"{origin}: mean_image has shape {tuple(t.shape)}; expected C x S x S (C = 1 or 3)")
    if not torch.isfinite(t).all():
        raise CheckpointError(f"{origin}: mean_image holds non-finite values")
    return t.contiguous()


def encode_mean_image(t: torch.Tensor) -> dict:
    """The lossless JSON form of a mean image (see the module doc)."""
    a = np.ascontiguousarray(as_mean_image(t).numpy(), dtype="<f4")
    return {"shape": list(a.shape), "dtype": "float32", "encoding": "base64",
            "data": base64.b64encode(a.tobytes()).decode("ascii")}


def decode_mean_image(d: Mapping, origin: str = "preprocessing") -> torch.Tensor:
    """``encode_mean_image``'s dict -> float32 tensor [C, H, W]."""
    try:
        shape = [int(v) for v in d["shape"]]
        if d.get("dtype", "float32") != "float32" or d.get("encoding", "base64") != "base64":
            raise ValueError(f"dtype {d.get('dtype')!r} / encoding {d.get('encoding')!r}; expected float32 / base64")
        raw = base64.b64decode(d["data"], validate=True)
        if len(raw) != 4 * math.prod(shape):
            raise ValueError(f"{len(raw)} bytes for shape {shape}")
        a = np.frombuffer(raw, dtype="<f4").reshape(shape).astype(np.float32)
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{origin}: malformed mean_image entry ({e})") from None
    return as_mean_image(torch.from_numpy(a), origin)


def for_json(prep: Mapping | None, *, full: bool = True) -> dict | None:
    """The record with its mean image in JSON form: lossless (``full``, for files a program reads back) or
    described by its shape (for people: config.json, the model card)."""
    if prep is None:
        return None
    out = dict(prep)
    if out.get(MEAN_IMAGE) is not None:
        img = out[MEAN_IMAGE]
        if isinstance(img, Mapping) and not full:
            out[MEAN_IMAGE] = {"shape": list(img.get("shape", [])), "values": "in the checkpoint"}
        elif not isinstance(img, Mapping):
            t = as_mean_image(img)
            out[MEAN_IMAGE] = encode_mean_image(t) if full else {"shape": list(t.shape),
                                                                   "values": "in the checkpoint"}
    return out


def from_json(prep: Mapping | None, origin: str = "preprocessing") -> dict | None:
    """The record as read from JSON, with its mean image back as a tensor."""
    if prep is None:
        return None
    out = dict(prep)
    if isinstance(out.get(MEAN_IMAGE), Mapping):
        out[MEAN_IMAGE] = decode_mean_image(out[MEAN_IMAGE], origin)
    return out


__all__ = ["MEAN_IMAGE", "as_mean_image", "decode_mean_image", "encode_mean_image", "for_json", "from_json",
           "mean_image_of"]
