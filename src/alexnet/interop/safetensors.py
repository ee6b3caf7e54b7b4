""".safetensors files: the weights as tensors, the rest of the record as JSON strings in the header metadata.

The header holds ``format``, ``version`` and, JSON-encoded, every entry of the record's payload but the weights and
the training state (``model_config``, ``classes``, ``data``, ``source``, ``metrics``), so ``alexnet.load_model``
rebuilds the network with nothing else. A mean image in ``data`` is stored losslessly as base64 float32
(``alexnet.data.preprocessing.encode_mean_image``) and comes back as a tensor. Reading goes through
``Checkpoint.from_payload`` like a .pt file (same version check and upgrade steps). A bare .safetensors file in
torchvision's layout reads as the ``owt`` network.
"""
from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..checkpoint import FORMAT, Checkpoint, first_line
from ..data.preprocessing import for_json
from ..errors import CheckpointError
from ..utils import write_bytes_atomic
from .torchvision import is_torchvision_state_dict, torchvision_checkpoint

_HEADER_KEYS = ("format", "version")   # plain strings; every other metadata entry is JSON


def jsonable(x: Any) -> Any:
    """``x`` with tensors, arrays and numpy scalars as plain lists and numbers (anything else unknown: str)."""
    if isinstance(x, Mapping):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [jsonable(v) for v in x]
    if isinstance(x, (torch.Tensor, np.ndarray)):
        return x.tolist()
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, (str, int, float, bool)) or x is None:
        return x
    return str(x)


def record_metadata(ckpt: Checkpoint) -> dict[str, Any]:
    """The record's payload without weights and training state, JSON-able (also what exports embed)."""
    payload = ckpt.weights_only().to_payload()
    del payload["model"]
    if "data" in payload:   # the mean image losslessly as base64 float32 (alexnet.data.preprocessing)
        payload["data"] = for_json(payload["data"], full=True)
    return jsonable(payload)


def safetensors_metadata(ckpt: Checkpoint) -> dict[str, str]:
    """The .safetensors header metadata of a record (string values, as the format requires)."""
    meta = record_metadata(ckpt)
    return {k: (str(v) if k in _HEADER_KEYS else json.dumps(v)) for k, v in meta.items()}


def write_safetensors(out: str | os.PathLike, ckpt: Checkpoint, overwrite: bool = True) -> Path:
    """The record's weights as .safetensors at ``out`` (atomically), the rest in the header metadata.

    Serialized in memory and written by our own code: a full disk is a one-line OutputError, not a Rust error."""
    from safetensors.torch import save

    tensors = {k: v.detach().to("cpu").contiguous() for k, v in ckpt.state_dict.items()}
    return write_bytes_atomic(out, save(tensors, metadata=safetensors_metadata(ckpt)), overwrite=overwrite)


def _read_tensors(p: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    from safetensors import SafetensorError, safe_open

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
                              f"{first_line(e)}") from None
    return tensors, meta


def read_safetensors(path: str | os.PathLike) -> Checkpoint:
    """A .safetensors file as our record: files we wrote carry the record in their metadata; a bare
    torchvision-layout file becomes ``owt``.  Names and shapes are checked when the network is built."""
    p = Path(path)
    tensors, meta = _read_tensors(p)
    if meta.get("format") != FORMAT:
        if is_torchvision_state_dict(tensors):
            return torchvision_checkpoint(tensors, str(p), {"kind": "torchvision", "file": p.name})
        raise CheckpointError(f"{p}: .safetensors file without alexnet metadata (no 'format': '{FORMAT}' in its "
                              f"header) and not torchvision's AlexNet layout; tensors: {sorted(tensors)[:4]}")
    try:
        payload: dict[str, Any] = {"format": FORMAT, "version": int(meta.get("version", "0")), "model": tensors}
        payload.update({k: json.loads(v) for k, v in meta.items() if k not in _HEADER_KEYS})
    except (ValueError, TypeError) as e:
        raise CheckpointError(f"{p}: bad alexnet metadata in the .safetensors header: {first_line(e)}") from None
    return Checkpoint.from_payload(payload, p)
