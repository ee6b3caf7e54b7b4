"""One checkpoint format: atomic save, exact resume, safe load.

A checkpoint is a ``torch.save``d dict of tensors and plain values only (loadable with
``weights_only=True``; we never unpickle code)::

    {"format": "alexnet-checkpoint", "version": 1,
     "model_config": ModelConfig.to_dict(),  "model": state_dict,
     "classes": [class names] or None,       "data": {"mean", "std", "resize", "crop", ...} or None,
     "optimizer": ..., "scheduler": ..., "epoch": int, "step": int, "rng": {...}, "train_config": {...},
     "metrics": {...}}

Only ``format``, ``version``, ``model_config`` and ``model`` are required; the trainer fills the rest.
"""
from __future__ import annotations

import os
import pickle
import re
import struct
from pathlib import Path
from typing import Any

import torch

from .errors import CheckpointError
from .model import ModelConfig, model_from_config
from .utils import atomic_output

FORMAT = "alexnet-checkpoint"
VERSION = 1


def save_checkpoint(path: str | os.PathLike, payload: dict[str, Any]) -> Path:
    """Write ``payload`` (must contain model_config and model) atomically; returns the path."""
    for key in ("model_config", "model"):
        if key not in payload:
            raise ValueError(f"checkpoint payload lacks {key!r}")
    data = {"format": FORMAT, "version": VERSION, **payload}
    with atomic_output(path) as tmp:
        torch.save(data, tmp)
    return Path(path)


def _not_torch_file(p: Path, head: bytes) -> CheckpointError:
    hint = {".caffemodel": " (it looks like a Caffe model: use convert_caffe / `alexnet convert caffe`)",
            ".safetensors": " (a .safetensors file: use alexnet.interop.read_weights / load_weights)"}
    return CheckpointError(f"{p}: not a readable PyTorch file (corrupt, or no torch.save zip/pickle at all; starts "
                           f"with {head!r}){hint.get(p.suffix.lower(), '')}")


def safe_torch_load(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> Any:
    """``torch.load(weights_only=True)`` with one-line CheckpointErrors: a pickle that would import or call anything
    but tensors and plain values is refused before any of its code runs."""
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"{p}: no such file")
    if p.stat().st_size == 0:
        raise CheckpointError(f"{p}: empty file (0 bytes), not a weight file")
    with open(p, "rb") as f:
        head = f.read(4)
    if not (head.startswith(b"PK\x03\x04") or head[:1] == b"\x80"):   # torch.save: a zip archive; legacy: a pickle
        raise _not_torch_file(p, head)
    try:
        return torch.load(p, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        if "Unsupported operand" in str(e):   # a pickle header over bytes that are no pickle: nothing to refuse
            raise _not_torch_file(p, head) from None
        raise CheckpointError(f"{p}: refused to load: the file contains Python objects other than tensors and plain "
                              f"values (weights_only=True), i.e. code that would run on loading; nothing was run. "
                              f"Only load pickles you trust. Detail: {_unpickler_detail(e)}") from None
    except (RuntimeError, EOFError, OSError, ValueError, KeyError, IndexError, struct.error) as e:
        raise CheckpointError(f"{p}: not a readable PyTorch file (truncated or corrupt?): {_first_line(e)}") from None


def _unpickler_detail(e: BaseException) -> str:
    """The informative line of torch's weights_only refusal ("Unsupported global: GLOBAL io.open ...")."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(e))
    for line in text.splitlines():
        if "Unsupported global" in line or "WeightsUnpickler error" in line:
            line = line.strip().removeprefix("WeightsUnpickler error:").strip()
            return line.split(" was not an allowed global")[0][:200]
    return _first_line(e)


def _first_line(e: BaseException, limit: int = 200) -> str:
    text = str(e).strip()
    return (text.splitlines()[0] if text else type(e).__name__)[:limit]


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint safely (``weights_only=True``); one-line CheckpointError for any bad file."""
    path = Path(path)
    if path.is_dir():
        for name in ("best.pt", "last.pt"):
            if (path / name).is_file():
                path = path / name
                break
        else:
            raise CheckpointError(f"{path}: a directory without best.pt or last.pt (expected a checkpoint file "
                                  "or a run folder)")
    data = safe_torch_load(path, map_location)
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        hint = ""
        if isinstance(data, dict) and any(k.startswith(("features.", "classifier.")) for k in data):
            hint = " It looks like a torchvision state_dict: use `alexnet convert torchvision` / alexnet.interop."
        raise CheckpointError(f"{path}: not an alexnet checkpoint (no 'format': '{FORMAT}' entry).{hint}")
    if data.get("version", 0) > VERSION:
        raise CheckpointError(f"{path}: checkpoint version {data['version']} is newer than this alexnet "
                              f"({VERSION}); upgrade the package")
    return data


def model_from_checkpoint(ckpt: dict[str, Any], path: str | os.PathLike = "checkpoint",
                          expect_arch: str | None = None) -> torch.nn.Module:
    """Build the checkpoint's network and load its weights (strict)."""
    try:
        cfg = ModelConfig.from_dict(ckpt["model_config"])
    except (TypeError, KeyError) as e:
        raise CheckpointError(f"{path}: bad model_config: {e}") from None
    if expect_arch is not None and cfg.arch != expect_arch:
        raise CheckpointError(f"{path}: checkpoint is for architecture {cfg.arch!r}, not {expect_arch!r}")
    model = model_from_config(cfg)
    load_state_dict_checked(model, ckpt["model"], path)
    return model


def load_state_dict_checked(model: torch.nn.Module, state: dict, path: str | os.PathLike = "checkpoint") -> None:
    """``load_state_dict(strict=True)`` with a one-line message naming the first wrong tensor."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    arch = getattr(getattr(model, "config", None), "arch", type(model).__name__)
    if missing or unexpected:
        raise CheckpointError(f"{path}: weights do not fit architecture {arch!r}: missing {missing[:3]}, "
                              f"unexpected {unexpected[:3]}")
    for k, v in own.items():
        if tuple(state[k].shape) != tuple(v.shape):
            raise CheckpointError(f"{path}: tensor {k!r} has shape {tuple(state[k].shape)}, architecture {arch!r} "
                                  f"expects {tuple(v.shape)}")
    model.load_state_dict(state, strict=True)


def load_model(path: str | os.PathLike, expect_arch: str | None = None,
               map_location: str | torch.device = "cpu") -> tuple[torch.nn.Module, dict[str, Any]]:
    """(model in eval mode, checkpoint dict) from a checkpoint file or run folder, an exported .safetensors file or
    torchvision's AlexNet .pth (both through ``alexnet.interop.read_weights``)."""
    if Path(path).suffix.lower() in (".safetensors", ".pth"):
        from .interop import read_weights

        ckpt = read_weights(path, map_location)
    else:
        ckpt = load_checkpoint(path, map_location)
    model = model_from_checkpoint(ckpt, path, expect_arch)
    model.eval()
    return model, ckpt
