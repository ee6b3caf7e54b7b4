"""Weights in and out: torchvision and Caffe weights in; ONNX, TorchScript and safetensors out; safe loading.

In:
    ``load_torchvision_state_dict(path_or_dict)``  a torchvision ``alexnet-owt-*.pth`` state_dict -> ``owt`` network
    ``convert_torchvision(src, out)``              ... written as our checkpoint (.pt) or .safetensors
    ``convert_caffe(caffemodel, out, mean=...)``   Caffe's ``bvlc_alexnet.caffemodel`` -> the ``paper`` network
                                                   (Caffe's LRN convention, k=1, 227 crops, BGR input)
    ``load_weights(path)``                         (model, meta) from any of: our .pt checkpoint or run folder,
                                                   our .safetensors, a torchvision state_dict file
Out:
    ``export_model(checkpoint, "onnx" | "torchscript" | "safetensors", out)``

Every file we write is atomic (``alexnet.utils.atomic_output``); every pickle we read goes through
``torch.load(weights_only=True)`` (a pickle that would run code is refused, and the code does not run).

Converted networks carry their preprocessing in the checkpoint's ``"data"`` entry (mean/std per channel in 0-255
pixel units, in the network's channel order; ``resize`` = shorter side; ``crop``; ``channel_order``), so
``alexnet eval``/``predict``/``features``/``export`` use them like networks trained here.

The Caffe reader is a small protobuf wire-format parser of our own (no ``caffe`` or ``protobuf`` needed); the field
numbers are those of Caffe's ``caffe.proto`` (NetParameter ``layer`` = 100 / legacy V1 ``layers`` = 2, BlobProto, ...).
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import numpy as np
import torch

from .checkpoint import (FORMAT, VERSION, _first_line, load_checkpoint, model_from_checkpoint, safe_torch_load,
                         save_checkpoint)
from .errors import CheckpointError, ConfigError
from .model import ModelConfig, make_config
from .utils import atomic_output

# torchvision's ImageNet preprocessing (transforms.Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])
# on [0, 1] pixels), in our 0-255 units; Resize(256) of the shorter side, CenterCrop(224).
IMAGENET_MEAN_RGB = tuple(round(m * 255, 6) for m in (0.485, 0.456, 0.406))
IMAGENET_STD_RGB = tuple(round(s * 255, 6) for s in (0.229, 0.224, 0.225))
# Caffe's ILSVRC-2012 mean (ilsvrc_2012_mean.npy averaged over the image: 104.0, 116.7, 122.7), BGR order, 0-255.
CAFFE_MEAN_BGR = (104.0, 117.0, 123.0)
CAFFE_CROP = 227     # bvlc_alexnet's crop_size: conv1 unpadded, 55x55 maps
CAFFE_RESIZE = 256   # Caffe warps to 256x256; we resize the shorter side to 256 (see convert_caffe)

EXPORT_FORMATS = ("onnx", "torchscript", "safetensors")
_TORCHVISION_PREFIXES = ("features.", "classifier.")
_TORCHVISION_HASH = re.compile(r"-([a-f0-9]{6,})\.[^.]+$")   # torchvision's file names end in -<sha256 prefix>.pth


# --------------------------------------------------------------------------------------------------------------
# class names and preprocessing
# --------------------------------------------------------------------------------------------------------------

def imagenet_classes() -> list[str] | None:
    """The 1000 ILSVRC-2012 classes, "nXXXXXXXX name", in the order of the 1000 outputs (sorted synset ids; the
    order of torchvision's and Caffe's ImageNet models).  None if the resource is missing."""
    from importlib import resources

    f = resources.files("alexnet") / "resources" / "imagenet_classes.txt"
    if not f.is_file():
        return None
    lines = [ln.strip() for ln in f.read_text().splitlines() if ln.strip()]
    return lines if len(lines) == 1000 else None


def torchvision_preprocessing() -> dict:
    """The ``data`` entry matching torchvision's ImageNet weights (RGB, 0-255 units)."""
    return {"mean": list(IMAGENET_MEAN_RGB), "std": list(IMAGENET_STD_RGB), "resize": 256, "crop": 224,
            "channels": 3, "channel_order": "RGB", "normalize": "standard"}


def caffe_preprocessing(mean_bgr: Sequence[float] = CAFFE_MEAN_BGR, crop: int = CAFFE_CROP) -> dict:
    """The ``data`` entry for Caffe-converted weights: BGR input, raw 0-255 pixels minus the BGR mean, no scaling."""
    return {"mean": [float(m) for m in mean_bgr], "std": [1.0] * len(mean_bgr), "resize": CAFFE_RESIZE, "crop": crop,
            "channels": len(mean_bgr), "channel_order": "BGR", "normalize": "paper"}


def _classes_for(num_classes: int, classes: Sequence[str] | None, origin: str) -> list[str] | None:
    if classes is not None:
        classes = [str(c) for c in classes]
        if len(classes) != num_classes:
            raise ConfigError(f"{origin}: {len(classes)} class names given for a network with {num_classes} outputs")
        return classes
    return imagenet_classes() if num_classes == 1000 else None


def read_class_names(path: str | os.PathLike) -> list[str]:
    """One class name per line (e.g. Caffe's synset_words.txt); blank lines are skipped."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{p}: no such class-names file")
    return [ln.strip() for ln in p.read_text().splitlines() if ln.strip()]


# --------------------------------------------------------------------------------------------------------------
# safe reading
# --------------------------------------------------------------------------------------------------------------

def _is_torchvision_state_dict(obj: Any) -> bool:
    return (isinstance(obj, Mapping) and len(obj) > 0 and all(isinstance(k, str) for k in obj)
            and all(k.startswith(_TORCHVISION_PREFIXES) for k in obj)
            and all(isinstance(v, torch.Tensor) for v in obj.values()))


def _strip_module_prefix(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Checkpoints saved from DistributedDataParallel / DataParallel prefix every key with ``module.``."""
    if state and all(k.startswith("module.") for k in state):
        return {k[len("module."):]: v for k, v in state.items()}
    return dict(state)


def _describe(obj: Any) -> str:
    """What a loaded object looks like, for error messages."""
    if isinstance(obj, Mapping):
        if obj.get("format") == FORMAT:
            arch = (obj.get("model_config") or {}).get("arch", "?")
            return f"an alexnet checkpoint of architecture {arch!r}"
        keys = [k for k in obj if isinstance(k, str)]
        if any(k.startswith(("conv1.", "fc6.")) for k in keys):
            return f"a state_dict of our 'paper'/'cifar' layout (keys {keys[:3]})"
        return f"a dict with keys {keys[:4]}"
    return f"a {type(obj).__name__}"


# --------------------------------------------------------------------------------------------------------------
# torchvision
# --------------------------------------------------------------------------------------------------------------

def _torchvision_checkpoint(state: Mapping[str, torch.Tensor], origin: str, source: dict | None = None,
                            classes: Sequence[str] | None = None) -> dict:
    """Our checkpoint dict (not yet written) for a torchvision AlexNet state_dict."""
    state = _strip_module_prefix(state)
    if not _is_torchvision_state_dict(state):
        raise CheckpointError(f"{origin}: not a torchvision AlexNet state_dict (keys features.*, classifier.*); "
                              f"it is {_describe(state)}")
    head = state.get("classifier.6.weight")
    if head is None or head.dim() != 2:
        raise CheckpointError(f"{origin}: torchvision AlexNet state_dict without a 2-D 'classifier.6.weight' "
                              f"(the last layer); keys: {sorted(state)[:4]}...")
    num_classes = int(head.shape[0])
    cfg = make_config("owt", num_classes=num_classes)
    return {"format": FORMAT, "version": VERSION, "model_config": cfg.to_dict(), "model": state,
            "classes": _classes_for(num_classes, classes, origin), "data": torchvision_preprocessing(),
            "source": source or {"kind": "torchvision"}}


def load_torchvision_state_dict(path_or_dict: str | os.PathLike | Mapping[str, torch.Tensor]) -> torch.nn.Module:
    """A torchvision AlexNet state_dict (file or dict) as our ``owt`` network (strict load, eval mode).

    Gives the same logits as ``torchvision.models.alexnet()`` with those weights; feed it inputs prepared as
    ``torchvision_preprocessing()`` says (RGB, resize 256, centre crop 224, ImageNet mean/std).
    """
    if isinstance(path_or_dict, Mapping):
        ckpt = _torchvision_checkpoint(path_or_dict, "state_dict")
        origin = "state_dict"
    else:
        origin = str(path_or_dict)
        ckpt = _torchvision_checkpoint(_unwrap_torchvision(safe_torch_load(path_or_dict), origin), origin)
    model = model_from_checkpoint(ckpt, origin, expect_arch="owt")
    return model.eval()


def _unwrap_torchvision(obj: Any, origin: str) -> Mapping[str, torch.Tensor]:
    """torchvision files are bare state_dicts; reference-script checkpoints wrap it as {"model": state_dict, ...}."""
    if isinstance(obj, Mapping) and obj.get("format") == FORMAT:
        raise CheckpointError(f"{origin}: this is already {_describe(obj)}, not a torchvision 'owt' state_dict; "
                              "use it directly (no conversion needed)")
    if isinstance(obj, Mapping) and "model" in obj and isinstance(obj["model"], Mapping) and \
            _is_torchvision_state_dict(_strip_module_prefix(obj["model"])):
        return obj["model"]
    if isinstance(obj, Mapping) and "state_dict" in obj and isinstance(obj["state_dict"], Mapping):
        return obj["state_dict"]
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"{origin}: expected a torchvision AlexNet state_dict, found {_describe(obj)}")
    return obj


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


def convert_torchvision(src: str | os.PathLike, out: str | os.PathLike, *, classes: Sequence[str] | None = None,
                        check_hash: bool = True) -> Path:
    """torchvision ``alexnet-owt-*.pth`` -> our checkpoint (``.pt``) or ``.safetensors`` at ``out``.

    ``check_hash``: torchvision file names end in the first hex digits of the file's sha256 (``-7be5be79.pth``);
    a mismatch means a corrupt or modified download and is refused.
    """
    src = Path(src)
    obj = safe_torch_load(src)
    digest = _sha256(src)
    m = _TORCHVISION_HASH.search(src.name)
    if check_hash and m and not digest.startswith(m.group(1)):
        raise CheckpointError(f"{src}: sha256 {digest[:12]}... does not start with {m.group(1)!r} as the file name "
                              "says: a corrupt or modified download (check_hash=False / --no-check-hash to convert "
                              "it anyway)")
    source = {"kind": "torchvision", "file": src.name, "sha256": digest}
    ckpt = _torchvision_checkpoint(_unwrap_torchvision(obj, str(src)), str(src), source, classes)
    model_from_checkpoint(ckpt, src, expect_arch="owt")   # validates names and shapes before writing
    return _write_weights(out, ckpt)


# --------------------------------------------------------------------------------------------------------------
# writing our weights: .pt checkpoint or .safetensors
# --------------------------------------------------------------------------------------------------------------

_META_KEYS = ("model_config", "classes", "data", "source", "metrics")


def _jsonable(x: Any) -> Any:
    if isinstance(x, Mapping):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, torch.Tensor):
        return x.tolist()
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, (str, int, float, bool)) or x is None:
        return x
    return str(x)


def _write_weights(out: str | os.PathLike, ckpt: dict) -> Path:
    out = Path(out)
    suffix = out.suffix.lower()
    if suffix == ".safetensors":
        return write_safetensors(out, ckpt)
    if suffix in (".pt", ".pth"):
        payload = {k: v for k, v in ckpt.items() if k not in ("format", "version")}
        return save_checkpoint(out, payload)
    raise ConfigError(f"{out}: output must end in .pt (alexnet checkpoint) or .safetensors; got {out.suffix!r}")


def write_safetensors(out: str | os.PathLike, ckpt: Mapping[str, Any]) -> Path:
    """Weights of checkpoint dict ``ckpt`` as .safetensors; model_config, classes, data (and source) as JSON strings
    in the metadata header, so ``load_weights`` rebuilds the network with nothing else."""
    from safetensors.torch import save_file

    out = Path(out)
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in ckpt["model"].items()}
    meta = {"format": FORMAT, "version": str(VERSION)}
    for key in _META_KEYS:
        if ckpt.get(key) is not None:
            meta[key] = json.dumps(_jsonable(ckpt[key]))
    with atomic_output(out) as tmp:
        save_file(tensors, str(tmp), metadata=meta)
    return out


def read_safetensors(path: str | os.PathLike) -> dict:
    """A .safetensors file as our checkpoint dict (format, version, model_config, model, classes, data, ...).

    Files we wrote carry the config in their metadata; a bare torchvision-layout file becomes ``owt``.
    Names and shapes are checked when the network is built (``load_weights``, ``model_from_checkpoint``).
    """
    from safetensors import SafetensorError, safe_open

    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"{p}: no such file")
    try:
        tensors = {}
        with safe_open(str(p), framework="pt", device="cpu") as f:
            meta = f.metadata() or {}
            for k in f.keys():
                tensors[k] = f.get_tensor(k)
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise CheckpointError(f"{p}: not a readable .safetensors file (truncated or corrupt?): "
                              f"{_first_line(e)}") from None
    if meta.get("format") != FORMAT:
        if _is_torchvision_state_dict(tensors):
            return _torchvision_checkpoint(tensors, str(p), {"kind": "torchvision", "file": p.name})
        raise CheckpointError(f"{p}: .safetensors file without alexnet metadata (no 'format': '{FORMAT}' in its "
                              f"header) and not torchvision's AlexNet layout; tensors: {sorted(tensors)[:4]}")
    try:
        version = int(meta.get("version", "0"))
        ckpt: dict[str, Any] = {"format": FORMAT, "version": version, "model": tensors}
        for key in _META_KEYS:
            if key in meta:
                ckpt[key] = json.loads(meta[key])
    except (ValueError, TypeError) as e:
        raise CheckpointError(f"{p}: bad alexnet metadata in the .safetensors header: {_first_line(e)}") from None
    if version > VERSION:
        raise CheckpointError(f"{p}: checkpoint version {version} is newer than this alexnet ({VERSION}); "
                              "upgrade the package")
    if not isinstance(ckpt.get("model_config"), dict):
        raise CheckpointError(f"{p}: .safetensors metadata lacks 'model_config'")
    return ckpt


def read_weights(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict:
    """Our checkpoint dict from any weight file we know: an alexnet .pt checkpoint or run folder, an alexnet
    .safetensors file, or a torchvision AlexNet state_dict (.pth or .safetensors).  All loads are safe."""
    p = Path(path)
    if p.is_dir():
        return load_checkpoint(p, map_location)
    if p.suffix.lower() == ".safetensors":
        return read_safetensors(p)
    obj = safe_torch_load(p, map_location)
    if isinstance(obj, Mapping) and obj.get("format") == FORMAT:
        if obj.get("version", 0) > VERSION:
            raise CheckpointError(f"{p}: checkpoint version {obj['version']} is newer than this alexnet ({VERSION}); "
                                  "upgrade the package")
        return dict(obj)
    inner = obj.get("model") if isinstance(obj, Mapping) else None
    if isinstance(obj, Mapping) and (_is_torchvision_state_dict(_strip_module_prefix(obj)) or (
            isinstance(inner, Mapping) and _is_torchvision_state_dict(_strip_module_prefix(inner)))):
        return _torchvision_checkpoint(_unwrap_torchvision(obj, str(p)), str(p), {"kind": "torchvision",
                                                                                  "file": p.name})
    raise CheckpointError(f"{p}: neither an alexnet checkpoint nor a torchvision AlexNet state_dict; it is "
                          f"{_describe(obj)}")


def load_weights(path: str | os.PathLike, expect_arch: str | None = None,
                 map_location: str | torch.device = "cpu") -> tuple[torch.nn.Module, dict]:
    """(model in eval mode, meta) from a .pt checkpoint / run folder, a .safetensors file or a torchvision file.

    ``meta`` is the checkpoint dict without the weights: format, version, model_config, classes, data, source, ...
    Names and shapes are checked against the architecture; a wrong one is a one-line CheckpointError naming it.
    """
    ckpt = read_weights(path, map_location)
    model = model_from_checkpoint(ckpt, path, expect_arch)
    model.eval()
    return model, {k: v for k, v in ckpt.items() if k != "model"}


# --------------------------------------------------------------------------------------------------------------
# Caffe: a protobuf wire-format reader
# --------------------------------------------------------------------------------------------------------------

class _WireError(ValueError):
    pass


def _read_varint(buf: memoryview, pos: int, end: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= end:
            raise _WireError("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise _WireError("varint longer than 10 bytes")


def _fields(buf: memoryview, start: int = 0, end: int | None = None) -> Iterator[tuple[int, int, Any]]:
    """(field number, wire type, value) of one message: value is an int (varint), or a memoryview (fixed64,
    length-delimited, fixed32)."""
    end = len(buf) if end is None else end
    pos = start
    while pos < end:
        key, pos = _read_varint(buf, pos, end)
        num, wt = key >> 3, key & 7
        if num == 0:
            raise _WireError("field number 0")
        if wt == 0:
            val, pos = _read_varint(buf, pos, end)
        elif wt == 1:
            if pos + 8 > end:
                raise _WireError("truncated fixed64")
            val, pos = buf[pos:pos + 8], pos + 8
        elif wt == 2:
            n, pos = _read_varint(buf, pos, end)
            if pos + n > end:
                raise _WireError(f"field {num}: length {n} runs past the end of its message (truncated file?)")
            val, pos = buf[pos:pos + n], pos + n
        elif wt == 5:
            if pos + 4 > end:
                raise _WireError("truncated fixed32")
            val, pos = buf[pos:pos + 4], pos + 4
        else:
            raise _WireError(f"field {num}: unsupported wire type {wt}")
        yield num, wt, val


def _message(buf: memoryview) -> dict[int, list[tuple[int, Any]]]:
    out: dict[int, list[tuple[int, Any]]] = {}
    for num, wt, val in _fields(buf):
        out.setdefault(num, []).append((wt, val))
    return out


def _floats(entries: list[tuple[int, Any]], double: bool = False) -> np.ndarray:
    """A repeated float/double field, packed (one length-delimited run) or not (one fixed32/64 per value)."""
    dtype = "<f8" if double else "<f4"
    parts = []
    for wt, val in entries:
        if wt == 2:
            if len(val) % (8 if double else 4):
                raise _WireError("packed float run of odd length")
            parts.append(np.frombuffer(val, dtype=dtype))
        elif wt == (1 if double else 5):
            parts.append(np.frombuffer(val, dtype=dtype))
        else:
            raise _WireError(f"float field with wire type {wt}")
    if not parts:
        return np.zeros(0, dtype=np.float32)
    return np.concatenate(parts) if len(parts) > 1 else parts[0]


def _ints(entries: list[tuple[int, Any]]) -> list[int]:
    """A repeated integer field, packed or not; int64 negatives come back as negative."""
    vals = []
    for wt, val in entries:
        if wt == 0:
            vals.append(val)
        elif wt == 2:
            pos = 0
            while pos < len(val):
                v, pos = _read_varint(val, pos, len(val))
                vals.append(v)
        else:
            raise _WireError(f"integer field with wire type {wt}")
    return [v - (1 << 64) if v >= 1 << 63 else v for v in vals]


def _int(msg: dict, num: int, default: int | None = None) -> int | None:
    vals = _ints(msg[num]) if num in msg else []
    return vals[-1] if vals else default


def _float(msg: dict, num: int, default: float | None = None) -> float | None:
    vals = _floats(msg[num]) if num in msg else []
    return float(vals[-1]) if len(vals) else default


def _string(msg: dict, num: int, default: str = "") -> str:
    if num not in msg:
        return default
    wt, val = msg[num][-1]
    if wt != 2:
        raise _WireError(f"string field {num} with wire type {wt}")
    return bytes(val).decode("utf-8", errors="replace")


def _blob(buf: memoryview) -> np.ndarray:
    """BlobProto: shape=7 (BlobShape dim=1), data=5 (float), double_data=8; legacy num/channels/height/width=1..4."""
    msg = _message(buf)
    if 7 in msg:
        shape = tuple(_ints(_message(msg[7][-1][1]).get(1, [])))
    else:
        shape = tuple(_int(msg, i, 0) for i in (1, 2, 3, 4))
    data = _floats(msg[8], double=True).astype(np.float32) if 8 in msg else _floats(msg.get(5, []))
    if math.prod(shape) != data.size:
        raise _WireError(f"blob of shape {shape} holds {data.size} values (truncated file?)")
    return data.reshape(shape)


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


def _conv_params(msg: dict) -> dict:
    def first(num, alt=None):
        vals = _ints(msg[num]) if num in msg else []
        if vals:
            return vals[0]
        return _int(msg, alt) if alt is not None else None
    return {"num_output": _int(msg, 1), "pad": first(3, 9) or 0, "kernel": first(4, 11), "stride": first(6, 13) or 1,
            "group": _int(msg, 5, 1)}


def _lrn_params(msg: dict) -> dict:
    return {"local_size": _int(msg, 1, 5), "alpha": _float(msg, 2, 1.0), "beta": _float(msg, 3, 0.75),
            "norm_region": _int(msg, 4, 0), "k": _float(msg, 5, 1.0)}


def _pool_params(msg: dict) -> dict:
    k = _ints(msg[2]) if 2 in msg else []
    s = _ints(msg[3]) if 3 in msg else []
    return {"pool": _int(msg, 1, 0), "kernel": k[0] if k else _int(msg, 5), "stride": s[0] if s else _int(msg, 7, 1)}


def _layer_new(buf: memoryview) -> CaffeLayer:
    """LayerParameter: name=1, type=2, blobs=7; convolution_param=106, inner_product_param=117, lrn_param=118,
    pooling_param=121."""
    msg = _message(buf)
    layer = CaffeLayer(_string(msg, 1), _string(msg, 2).lower(), [_blob(v) for _, v in msg.get(7, [])])
    if 106 in msg:
        layer.params["conv"] = _conv_params(_message(msg[106][-1][1]))
    if 118 in msg:
        layer.params["lrn"] = _lrn_params(_message(msg[118][-1][1]))
    if 121 in msg:
        layer.params["pool"] = _pool_params(_message(msg[121][-1][1]))
    if 117 in msg:
        layer.params["ip"] = {"transpose": bool(_int(_message(msg[117][-1][1]), 6, 0))}
    return layer


def _layer_v1(buf: memoryview) -> CaffeLayer:
    """V1LayerParameter: name=4, type=5 (enum), blobs=6; convolution_param=10, inner_product_param=17,
    lrn_param=18, pooling_param=19; a V0LayerParameter in field 1 for the oldest files."""
    msg = _message(buf)
    if 1 in msg and 4 not in msg:
        return _layer_v0(msg[1][-1][1])
    type_id = _int(msg, 5, 0)
    layer = CaffeLayer(_string(msg, 4), _V1_TYPES.get(type_id, f"v1type{type_id}"),
                       [_blob(v) for _, v in msg.get(6, [])])
    if 10 in msg:
        layer.params["conv"] = _conv_params(_message(msg[10][-1][1]))
    if 18 in msg:
        layer.params["lrn"] = _lrn_params(_message(msg[18][-1][1]))
    if 19 in msg:
        layer.params["pool"] = _pool_params(_message(msg[19][-1][1]))
    if 17 in msg:
        layer.params["ip"] = {"transpose": bool(_int(_message(msg[17][-1][1]), 6, 0))}
    return layer


def _layer_v0(buf: memoryview) -> CaffeLayer:
    """V0LayerParameter: name=1, type=2 (string), num_output=3, pad=7, kernelsize=8, group=9, stride=10, pool=11,
    local_size=13, alpha=14, beta=15, k=22, blobs=50."""
    msg = _message(buf)
    kind = _string(msg, 2).lower()
    layer = CaffeLayer(_string(msg, 1), _V0_TYPES.get(kind, kind), [_blob(v) for _, v in msg.get(50, [])])
    if layer.type == "convolution":
        layer.params["conv"] = {"num_output": _int(msg, 3), "pad": _int(msg, 7, 0), "kernel": _int(msg, 8),
                                "stride": _int(msg, 10, 1), "group": _int(msg, 9, 1)}
    elif layer.type == "lrn":
        layer.params["lrn"] = {"local_size": _int(msg, 13, 5), "alpha": _float(msg, 14, 1.0),
                               "beta": _float(msg, 15, 0.75), "norm_region": 0, "k": _float(msg, 22, 1.0)}
    elif layer.type == "pooling":
        layer.params["pool"] = {"pool": _int(msg, 11, 0), "kernel": _int(msg, 8), "stride": _int(msg, 10, 1)}
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
        for num, wt, val in _fields(buf):
            if num == 100 and wt == 2:
                layers.append(_layer_new(val))
            elif num == 2 and wt == 2:
                layers.append(_layer_v1(val))
    except _WireError as e:
        hint = ""
        if bytes(buf[:4]) == b"PK\x03\x04" or bytes(buf[:1]) == b"\x80":
            hint = " (it is a PyTorch file: use `alexnet convert torchvision` or load it directly)"
        raise CheckpointError(f"{p}: not a readable caffemodel (protobuf NetParameter): {e}{hint}") from None
    if not layers:
        raise CheckpointError(f"{p}: no layers found: not a caffemodel (binary NetParameter)? A .prototxt holds "
                              "only the architecture; the weights are in the .caffemodel")
    return layers


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
    p = Path(text)
    if not p.is_file():
        raise ConfigError(f"--mean {p}: no such file (expected a .npy or .binaryproto mean, or B,G,R numbers)")
    if p.suffix.lower() == ".npy":
        try:
            arr = np.load(p, allow_pickle=False)
        except (ValueError, OSError) as e:
            raise ConfigError(f"{p}: not a readable .npy mean file: {_first_line(e)}") from None
    else:
        try:
            arr = _blob(memoryview(p.read_bytes()))
        except _WireError as e:
            raise ConfigError(f"{p}: not a readable .binaryproto mean (BlobProto): {e}") from None
    arr = np.asarray(arr, dtype=np.float64)
    while arr.ndim > 3 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim == 1:
        return [float(v) for v in arr]
    if arr.ndim == 3 and arr.shape[0] in (1, 3):
        return [float(v) for v in arr.reshape(arr.shape[0], -1).mean(axis=1)]
    raise ConfigError(f"{p}: mean of shape {arr.shape}; expected C x H x W (C = 1 or 3) or C values")


# --------------------------------------------------------------------------------------------------------------
# Caffe -> our paper network
# --------------------------------------------------------------------------------------------------------------

_CONVS = ("conv1", "conv2", "conv3", "conv4", "conv5")
_FCS = ("fc6", "fc7", "fc8")
_KERNELS = {"conv1": 11, "conv2": 5, "conv3": 3, "conv4": 3, "conv5": 3}
_PADS = {"conv1": 0, "conv2": 2, "conv3": 1, "conv4": 1, "conv5": 1}
_STRIDES = {"conv1": 4, "conv2": 1, "conv3": 1, "conv4": 1, "conv5": 1}


def _tensor(a: np.ndarray) -> torch.Tensor:
    """A float32 tensor owning its memory (blobs are read-only views of the file's bytes)."""
    return torch.from_numpy(np.array(a, dtype=np.float32, order="C", copy=True))


def _squeeze_leading(a: np.ndarray, ndim: int) -> np.ndarray:
    """V1 blobs are always 4-D (num, channels, height, width): an fc weight is 1x1xOUTxIN, a bias 1x1x1xOUT."""
    while a.ndim > ndim and a.shape[0] == 1:
        a = a[0]
    return a


def caffe_checkpoint(layers: Sequence[CaffeLayer], origin: str = "caffemodel", *,
                     mean: str | os.PathLike | Sequence[float] | None = None, rgb: bool = False,
                     classes: Sequence[str] | None = None) -> dict:
    """Our checkpoint dict (``paper`` network, Caffe LRN convention) for the layers of a bvlc_alexnet-style net.

    The five weighted convolutions and three inner-product layers are taken in file order (conv1..conv5,
    fc6..fc8; a fine-tuned net may rename fc8).  Channel counts, fc sizes, the number of classes and the towers
    (from conv2's 48-channel kernels for 96 inputs: groups=2) come from the blob shapes, so scaled-down nets
    convert too.  The layout must be bvlc_alexnet's: 227 crops, conv1 11x11/4 unpadded, conv2 5x5 pad 2,
    conv3-5 3x3 pad 1, LRN (size 5, alpha 1e-4, beta 0.75) after the ReLU and *before* the pooling of conv1/conv2.
    """
    def fail(msg: str):
        raise CheckpointError(f"{origin}: {msg}")

    weighted = [l for l in layers if l.blobs]
    convs = [l for l in weighted if l.type == "convolution"]
    fcs = [l for l in weighted if l.type == "innerproduct"]
    if len(convs) != 5 or len(fcs) != 3 or len(weighted) != 8:
        fail(f"expected AlexNet's 5 convolution and 3 inner-product layers with weights; found "
             f"{[f'{l.name} ({l.type})' for l in weighted]}")
    if [id(l) for l in weighted[:5]] != [id(l) for l in convs]:
        fail(f"the inner-product layers must follow the five convolutions; order: {[l.name for l in weighted]}")

    # Layer order around conv1: bvlc_alexnet normalises then pools; CaffeNet (bvlc_reference_caffenet) pools first.
    idx = {id(l): i for i, l in enumerate(layers)}
    def between(a: CaffeLayer, b: CaffeLayer, kind: str) -> list[CaffeLayer]:
        return [l for l in layers[idx[id(a)] + 1:idx[id(b)]] if l.type == kind]
    lrns = [l for l in layers if l.type == "lrn"]
    has_lrn = bool(lrns)
    for a, b in ((convs[0], convs[1]), (convs[1], convs[2])):
        pools, norms = between(a, b, "pooling"), between(a, b, "lrn")
        if pools and norms and idx[id(pools[0])] < idx[id(norms[0])]:
            fail(f"{pools[0].name} comes before {norms[0].name}: this is CaffeNet's order (bvlc_reference_caffenet "
                 "pools, then normalises); our paper network normalises then pools, as the paper and bvlc_alexnet")
        if has_lrn and len(norms) != 1:
            fail(f"expected one LRN layer between {a.name} and {b.name} (as bvlc_alexnet); found {len(norms)}")
    if has_lrn and len(lrns) != 2:
        fail(f"expected LRN after conv1 and conv2 only; found LRN layers {[l.name for l in lrns]}")
    lrn_k = 1.0
    for l in lrns:
        p = l.params.get("lrn") or {"local_size": 5, "alpha": 1e-4, "beta": 0.75, "norm_region": 0, "k": 1.0}
        if (p["local_size"] != 5 or not math.isclose(p["alpha"], 1e-4, rel_tol=1e-5)
                or not math.isclose(p["beta"], 0.75, rel_tol=1e-6) or p["norm_region"] != 0):
            fail(f"LRN layer {l.name} has local_size={p['local_size']} alpha={p['alpha']:g} beta={p['beta']:g} "
                 f"norm_region={p['norm_region']}; our network has AlexNet's 5, 1e-4, 0.75 across channels")
        lrn_k = float(p["k"])
    if len({float((l.params.get('lrn') or {}).get('k', 1.0)) for l in lrns}) > 1:
        fail("the two LRN layers have different k")
    for l in layers:
        p = l.params.get("pool")
        if l.type == "pooling" and p and (p["pool"] != 0 or p["kernel"] != 3 or p["stride"] != 2):
            fail(f"pooling layer {l.name} is pool={p['pool']} kernel={p['kernel']} stride={p['stride']}; "
                 "AlexNet uses overlapping max-pooling 3x3, stride 2")

    state: dict[str, torch.Tensor] = {}
    out_ch, groups = [], []
    for ours, l in zip(_CONVS, convs):
        if len(l.blobs) != 2:
            fail(f"convolution {l.name} has {len(l.blobs)} blobs; expected weights and biases")
        w = _squeeze_leading(l.blobs[0], 4)
        b = l.blobs[1].reshape(-1)
        if w.ndim != 4 or w.shape[2:] != (_KERNELS[ours],) * 2:
            fail(f"{l.name} weights have shape {tuple(w.shape)}; AlexNet's {ours} has {_KERNELS[ours]}x"
                 f"{_KERNELS[ours]} kernels")
        if b.size != w.shape[0]:
            fail(f"{l.name} has {w.shape[0]} kernels but {b.size} biases")
        in_ch = out_ch[-1] if out_ch else None
        g = 1 if in_ch is None else in_ch // w.shape[1]
        if in_ch is not None and g * w.shape[1] != in_ch:
            fail(f"{l.name} kernels see {w.shape[1]} channels, which does not divide the {in_ch} maps of the layer "
                 "below")
        p = l.params.get("conv")
        if p:
            for key, want in (("pad", _PADS[ours]), ("stride", _STRIDES[ours])):
                if p[key] != want:
                    fail(f"{l.name} has {key} {p[key]}; bvlc_alexnet's {ours} has {key} {want} (227x227 layout)")
            if in_ch is not None and p["group"] != g:
                fail(f"{l.name} declares group {p['group']} but its {tuple(w.shape)} weights imply {g}")
        out_ch.append(int(w.shape[0]))
        groups.append(g)
        state[f"{ours}.weight"] = _tensor(w)
        state[f"{ours}.bias"] = _tensor(b)
    # groups[0] is conv1 (always 1); conv3 sees both towers.
    towers = groups[1]
    if groups[2] != 1 or groups[3] != towers or groups[4] != towers or towers not in (1, 2):
        fail(f"groups per conv layer {groups}: expected conv2/conv4/conv5 grouped alike (1 or 2 towers) and "
             "conv3 ungrouped, as bvlc_alexnet")
    in_channels = int(convs[0].blobs[0].shape[-3])

    fc_shapes = []
    for ours, l in zip(_FCS, fcs):
        if len(l.blobs) != 2:
            fail(f"inner-product layer {l.name} has {len(l.blobs)} blobs; expected weights and biases")
        w = _squeeze_leading(l.blobs[0], 2)
        if w.ndim != 2:
            fail(f"{l.name} weights have shape {l.blobs[0].shape}; expected OUT x IN")
        if (l.params.get("ip") or {}).get("transpose"):
            w = w.T
        b = l.blobs[1].reshape(-1)
        if b.size != w.shape[0]:
            fail(f"{l.name} has {w.shape[0]} outputs but {b.size} biases")
        fc_shapes.append(tuple(w.shape))
        state[f"{ours}.weight"] = _tensor(w)
        state[f"{ours}.bias"] = _tensor(b)
    (f6, i6), (f7, i7), (n8, i8) = fc_shapes
    pooled = 6   # 227 -> conv1 55 -> pool 27 -> pool 13 -> pool5 6
    if i6 != out_ch[4] * pooled * pooled:
        fail(f"{fcs[0].name} takes {i6} inputs; conv5's {out_ch[4]} maps of {pooled}x{pooled} (227x227 input, "
             f"bvlc_alexnet's layout) give {out_ch[4] * pooled * pooled}")
    if (f7, i7) != (f6, f6) or i8 != f7:
        fail(f"fc shapes {fc_shapes}: expected fc6 and fc7 of the same width (fc7 square) and fc8 on fc7")

    mean_vals = read_caffe_mean(mean)
    if len(mean_vals) not in (1, in_channels):
        raise ConfigError(f"mean has {len(mean_vals)} values for a network with {in_channels} input channels")
    if len(mean_vals) == 1:
        mean_vals = mean_vals * in_channels
    data = caffe_preprocessing(mean_vals)
    if rgb:
        if in_channels != 3:
            raise ConfigError("rgb=True (--rgb) needs a 3-channel network")
        # Reverse conv1's input channels (and the mean) once, so the network takes RGB like everything else here.
        state["conv1.weight"] = state["conv1.weight"].flip(1).contiguous()
        data["mean"] = data["mean"][::-1]
        data["channel_order"] = "RGB"
    cfg = make_config("paper" if towers == 2 else "paper-1tower", num_classes=n8, input_size=CAFFE_CROP,
                      in_channels=in_channels, lrn=has_lrn, lrn_convention="caffe", lrn_k=lrn_k,
                      channels=tuple(out_ch), fc_size=f6, towers=towers, init="caffe")
    return {"format": FORMAT, "version": VERSION, "model_config": cfg.to_dict(), "model": state,
            "classes": _classes_for(n8, classes, origin), "data": data,
            "source": {"kind": "caffe", "layers": [l.name for l in weighted]}}


def convert_caffe(caffemodel_path: str | os.PathLike, out_path: str | os.PathLike, *,
                  mean: str | os.PathLike | Sequence[float] | None = None, rgb: bool = False,
                  classes: Sequence[str] | None = None) -> Path:
    """Caffe ``bvlc_alexnet.caffemodel`` -> our ``paper`` network (two towers, Caffe's LRN: alpha/n, k=1; 227 crops)
    as a .pt checkpoint or .safetensors at ``out_path``.

    The network keeps Caffe's BGR input: the checkpoint records ``channel_order: "BGR"`` and the BGR ``mean``
    (``mean``: a .npy/.binaryproto mean image, averaged per channel, or B,G,R values; default 104, 117, 123), so
    eval/predict/features flip RGB images before normalising.  ``rgb=True`` instead reverses conv1's input
    channels and records an RGB network (useful for exported ONNX/TorchScript models).  Caffe warps images to
    256x256 before the 227 crop; our pipeline resizes the shorter side to 256 (same crop).
    """
    src = Path(caffemodel_path)
    ckpt = caffe_checkpoint(read_caffemodel(src), str(src), mean=mean, rgb=rgb, classes=classes)
    ckpt["source"].update({"file": src.name, "sha256": _sha256(src)})
    model_from_checkpoint(ckpt, src)   # validates names and shapes before writing
    return _write_weights(out_path, ckpt)


# --------------------------------------------------------------------------------------------------------------
# export
# --------------------------------------------------------------------------------------------------------------

def _export_meta(meta: Mapping[str, Any]) -> str:
    return json.dumps(_jsonable({"format": FORMAT, "version": VERSION,
                                 **{k: meta.get(k) for k in _META_KEYS if meta.get(k) is not None}}))


def _example_input(model: torch.nn.Module, batch: int = 2) -> torch.Tensor:
    cfg: ModelConfig = model.config
    g = torch.Generator().manual_seed(0)
    return torch.randn(batch, cfg.in_channels, cfg.input_size, cfg.input_size, generator=g) * 50


def export_model(checkpoint: str | os.PathLike, fmt: str, out: str | os.PathLike, *,
                 opset: int | None = None) -> Path:
    """Export a network (our .pt checkpoint or run folder, .safetensors, or a torchvision file) for other runtimes.

    ``onnx``: one input ``input`` (N x C x S x S float, preprocessed as the checkpoint's ``data`` says) and one
    output ``logits``, with a dynamic batch dimension; the checkpoint's config, classes and preprocessing are in
    the model's metadata (``metadata_props["alexnet"]``, JSON).  Uses the torch.export-based exporter
    (``dynamo=True``), falling back to the legacy TorchScript exporter if that fails.  LRN exports as plain
    Conv/Pow/Mul ops.
    ``torchscript``: a traced module (``torch.jit.load``); metadata in the extra file ``alexnet.json``.
    ``safetensors``: weights plus metadata (see ``write_safetensors``).
    """
    fmt = fmt.lower()
    if fmt not in EXPORT_FORMATS:
        raise ConfigError(f"export format must be one of {', '.join(EXPORT_FORMATS)}; got {fmt!r}")
    model, meta = load_weights(checkpoint)
    model = model.float().eval()
    out = Path(out)
    if fmt == "safetensors":
        if out.suffix.lower() != ".safetensors":
            raise ConfigError(f"{out}: a safetensors export must end in .safetensors")
        return write_safetensors(out, {**meta, "model": model.state_dict()})
    if fmt == "torchscript":
        return _export_torchscript(model, meta, out)
    return _export_onnx(model, meta, out, opset)


def _export_torchscript(model: torch.nn.Module, meta: Mapping[str, Any], out: Path) -> Path:
    x = _example_input(model)
    with warnings.catch_warnings():
        # torch.jit is deprecated in favour of torch.export but still the format most C++/mobile users load.
        warnings.simplefilter("ignore", category=FutureWarning)
        warnings.simplefilter("ignore", category=DeprecationWarning)
        warnings.simplefilter("ignore", category=torch.jit.TracerWarning)
        with torch.no_grad():
            traced = torch.jit.trace(model, x, check_trace=False)
        with atomic_output(out) as tmp:
            torch.jit.save(traced, str(tmp), _extra_files={"alexnet.json": _export_meta(meta)})
    return out


def _export_onnx(model: torch.nn.Module, meta: Mapping[str, Any], out: Path, opset: int | None) -> Path:
    try:
        import onnx
    except ImportError:
        raise ConfigError("ONNX export needs the onnx and onnxscript packages: pip install onnx onnxscript") from None
    x = _example_input(model)
    with atomic_output(out, suffix=".tmp.onnx") as tmp:
        exporter = "dynamo"
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                batch = torch.export.Dim("batch", min=1)
                torch.onnx.export(model, (x,), str(tmp), input_names=["input"], output_names=["logits"],
                                  opset_version=opset, dynamo=True, external_data=False, verbose=False,
                                  dynamic_shapes={"x": {0: batch}})
        except Exception as e:  # noqa: BLE001 - any failure of the new exporter: try the legacy one
            exporter = "torchscript"
            warnings.warn(f"torch.onnx dynamo exporter failed ({_first_line(e)}); using the legacy exporter")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                torch.onnx.export(model, (x,), str(tmp), input_names=["input"], output_names=["logits"],
                                  opset_version=opset or 17, dynamo=False,
                                  dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
        proto = onnx.load(str(tmp))
        for key, value in (("alexnet", _export_meta(meta)), ("alexnet_exporter", exporter)):
            entry = proto.metadata_props.add()
            entry.key, entry.value = key, value
        onnx.save(proto, str(tmp))
    return out


def check_export(exported: str | os.PathLike, checkpoint: str | os.PathLike, fmt: str | None = None,
                 batch: int = 3) -> float:
    """Largest absolute logit difference between an exported file and the checkpoint's network (random input)."""
    exported = Path(exported)
    fmt = (fmt or _format_from_suffix(exported) or "").lower()
    model, _ = load_weights(checkpoint)
    x = _example_input(model, batch)
    with torch.no_grad():
        ref = model.float().eval()(x)
    if fmt == "onnx":
        try:
            import onnxruntime as ort
        except ImportError:
            raise ConfigError("checking an ONNX export needs onnxruntime: pip install onnxruntime") from None
        sess = ort.InferenceSession(str(exported), providers=["CPUExecutionProvider"])
        got = torch.from_numpy(sess.run(None, {sess.get_inputs()[0].name: x.numpy()})[0])
    elif fmt == "torchscript":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ts = torch.jit.load(str(exported), map_location="cpu")
        with torch.no_grad():
            got = ts(x)
    elif fmt == "safetensors":
        m2, _ = load_weights(exported)
        with torch.no_grad():
            got = m2(x)
    else:
        raise ConfigError(f"{exported}: cannot tell the export format; pass one of {', '.join(EXPORT_FORMATS)}")
    return float((got.float() - ref.float()).abs().max())


def _format_from_suffix(path: Path) -> str | None:
    return {".onnx": "onnx", ".safetensors": "safetensors", ".ts": "torchscript", ".torchscript": "torchscript",
            ".jit": "torchscript"}.get(path.suffix.lower())


def describe_weights(meta: Mapping[str, Any]) -> dict:
    """A short JSON-able summary of converted weights (for the CLI)."""
    cfg = meta.get("model_config") or {}
    data = meta.get("data") or {}
    return {"arch": cfg.get("arch"), "num_classes": cfg.get("num_classes"), "input_size": cfg.get("input_size"),
            "towers": cfg.get("towers"), "lrn": cfg.get("lrn"), "lrn_convention": cfg.get("lrn_convention"),
            "lrn_k": cfg.get("lrn_k"), "channels": cfg.get("channels"), "fc_size": cfg.get("fc_size"),
            "classes": len(meta.get("classes") or []) or None,
            "preprocessing": {k: data.get(k) for k in ("channel_order", "mean", "std", "resize", "crop")}}


__all__ = ["IMAGENET_MEAN_RGB", "IMAGENET_STD_RGB", "CAFFE_MEAN_BGR", "EXPORT_FORMATS", "CaffeLayer",
           "imagenet_classes", "torchvision_preprocessing", "caffe_preprocessing", "read_class_names",
           "safe_torch_load", "load_torchvision_state_dict", "convert_torchvision", "write_safetensors",
           "read_safetensors", "read_weights", "load_weights", "read_caffemodel", "read_caffe_mean",
           "caffe_checkpoint", "convert_caffe", "export_model", "check_export", "describe_weights"]
