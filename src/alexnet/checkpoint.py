"""One checkpoint record: typed, versioned, atomic save, exact resume, safe load.

A checkpoint is a ``Checkpoint`` record.  On disk it is a ``torch.save``d dict of tensors and plain values only
(loadable with ``weights_only=True``; we never unpickle code)::

    {"format": "alexnet-checkpoint", "version": 1,
     "model_config": ModelConfig.to_dict(),  "model": state_dict,
     "classes": [class names],               "data": {"mean", "std", "resize", "crop", "channel_order", ...,
                                                      optional "mean_image": float32 tensor [C, S, S]},
     "source": {...}, "metrics": {...},      (converted weights; the epoch row that wrote the file)
     "train_config": {...}, "optimizer": ..., "schedule": ..., "epoch": int, "batch_in_epoch": int, "step": int,
     "rng": {...}, "aug_rng": tensor, "history": [...], "best_val_top1_error": float}

Only ``format``, ``version``, ``model_config`` and ``model`` are required: a weights-only record (converted or
exported weights) has no training state.  ``Checkpoint.to_payload`` writes this dict and ``Checkpoint.from_payload``
reads it; nothing else knows its keys.  A file of an older version is brought up to ``VERSION`` by the steps in
``UPGRADES`` before it is read, so every file ever written keeps loading (``tests/data/v1``).
"""
from __future__ import annotations

import dataclasses
import os
import pickle
import re
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .errors import CheckpointError, ConfigError
from .model import ModelConfig, model_from_config
from .utils import atomic_output

FORMAT = "alexnet-checkpoint"
VERSION = 1

# version N -> a function turning a version-N payload dict into a version-(N + 1) one.  When the layout changes:
# bump VERSION, add the step here, keep a file of the old version in tests/data/ and its test.
UPGRADES: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {}

# Record fields stored under another name on disk (the names of version 1).
_PAYLOAD_KEYS = {"state_dict": "model", "preprocessing": "data"}
# What a training run adds to the weights; None in a weights-only record.
TRAINING_FIELDS = ("train_config", "optimizer", "schedule", "epoch", "batch_in_epoch", "step", "rng", "aug_rng",
                   "history", "best_val_top1_error")


@dataclass(eq=False)   # fields hold tensors: compare fields, not records
class Checkpoint:
    """A network's weights and everything needed to use it, plus (after training) the state to resume it.

    ``preprocessing``: mean/std per channel in 0-255 pixel units and in the network's channel order, ``resize``
    (shorter side), ``crop``, ``channels``, ``channel_order`` ("RGB", or "BGR" for Caffe's weights), ``normalize``,
    and, for networks trained with ``--mean image`` or imported with Caffe's mean file, ``mean_image`` (float32
    [C, S, S], the same units and order; see ``alexnet.data.preprocessing``).  Files without it (all of version 1
    before it existed) subtract the per-channel ``mean``.
    """

    model_config: ModelConfig
    state_dict: dict[str, torch.Tensor]
    classes: list[str] | None = None
    preprocessing: dict[str, Any] | None = None
    source: dict[str, Any] | None = None              # converted weights: where they came from
    metrics: dict[str, Any] | None = None             # the epoch row (metrics.csv) that wrote this file
    train_config: dict[str, Any] | None = None        # TrainConfig.to_dict()
    optimizer: dict[str, Any] | None = None
    schedule: dict[str, Any] | None = None
    epoch: int | None = None                          # epochs completed
    batch_in_epoch: int | None = None                 # > 0: a mid-epoch checkpoint (save_every)
    step: int | None = None
    rng: dict[str, Any] | None = None                 # torch / python / cuda generator states
    aug_rng: torch.Tensor | None = None               # the augmentation generator, mid-epoch only
    history: list[dict[str, Any]] | None = None       # metrics rows so far
    best_val_top1_error: float | None = None

    @property
    def arch(self) -> str:
        return self.model_config.arch

    @property
    def resumable(self) -> bool:
        """Whether the record holds a training state to continue from."""
        return all(getattr(self, f) is not None for f in ("train_config", "optimizer", "schedule", "epoch", "step",
                                                         "rng"))

    def weights_only(self) -> "Checkpoint":
        """The same network without its training state (what converters and exports write)."""
        return dataclasses.replace(self, **{f: None for f in TRAINING_FIELDS})

    def to_payload(self) -> dict[str, Any]:
        """The dict ``torch.save`` writes (the on-disk layout of ``VERSION``); None fields are left out."""
        payload: dict[str, Any] = {"format": FORMAT, "version": VERSION}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value is not None:
                payload[_PAYLOAD_KEYS.get(f.name, f.name)] = value
        payload["model_config"] = self.model_config.to_dict()
        return payload

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any], origin: str | os.PathLike = "checkpoint") -> "Checkpoint":
        """The record of a loaded payload dict of any known version (upgraded first); one-line CheckpointErrors."""
        if not isinstance(payload, Mapping) or payload.get("format") != FORMAT:
            raise CheckpointError(f"{origin}: not an alexnet checkpoint (no 'format': '{FORMAT}' entry)")
        payload = upgrade_payload(payload, origin)
        by_key = {_PAYLOAD_KEYS.get(f.name, f.name): f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(payload) - set(by_key) - {"format", "version"})
        if unknown:
            raise CheckpointError(f"{origin}: unknown checkpoint entries {unknown} for format version {VERSION}; "
                                  f"expected some of {sorted(by_key)}")
        for key in ("model_config", "model"):
            if key not in payload:
                raise CheckpointError(f"{origin}: checkpoint lacks its {key!r} entry")
        if not isinstance(payload["model"], Mapping):
            raise CheckpointError(f"{origin}: checkpoint entry 'model' is a {type(payload['model']).__name__}, "
                                  "expected a state_dict")
        values = {by_key[k]: v for k, v in payload.items() if k in by_key}
        values["model_config"] = _model_config(payload["model_config"], origin)
        if isinstance(values.get("preprocessing"), Mapping):   # the mean image as a tensor (also from JSON headers)
            from .data.preprocessing import from_json, mean_image_of

            values["preprocessing"] = from_json(values["preprocessing"], str(origin))
            if values["preprocessing"].get("mean_image") is not None:
                values["preprocessing"]["mean_image"] = mean_image_of(values["preprocessing"])
        values["state_dict"] = dict(payload["model"])
        return cls(**values)

    def build_model(self, origin: str | os.PathLike = "checkpoint",
                    expect_arch: str | None = None) -> torch.nn.Module:
        """The record's network with its weights loaded (strict; a wrong tensor is a one-line error)."""
        if expect_arch is not None and self.arch != expect_arch:
            raise CheckpointError(f"{origin}: checkpoint is for architecture {self.arch!r}, not {expect_arch!r}")
        model = model_from_config(self.model_config)
        load_state_dict_checked(model, self.state_dict, origin)
        return model


def _model_config(value: Any, origin: str | os.PathLike) -> ModelConfig:
    if isinstance(value, ModelConfig):
        return value
    try:
        return ModelConfig.from_dict(dict(value))
    except (TypeError, KeyError, ValueError, ConfigError) as e:
        raise CheckpointError(f"{origin}: bad model_config: {first_line(e)}") from None


def upgrade_payload(payload: Mapping[str, Any], origin: str | os.PathLike = "checkpoint") -> dict[str, Any]:
    """A payload of any version we can read, brought up to ``VERSION`` by the steps in ``UPGRADES``."""
    payload = dict(payload)
    version = payload.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise CheckpointError(f"{origin}: checkpoint 'version' is {version!r}; expected a whole number 1..{VERSION}")
    if version > VERSION:
        raise CheckpointError(f"{origin}: checkpoint version {version} is newer than this alexnet ({VERSION}); "
                              "upgrade the package")
    while version < VERSION:
        if version not in UPGRADES:
            raise CheckpointError(f"{origin}: checkpoint version {version} can no longer be read (no upgrade step "
                                  f"to version {version + 1})")
        payload = dict(UPGRADES[version](payload))
        version += 1
        payload["version"] = version
    return payload


def save_checkpoint(path: str | os.PathLike, ckpt: Checkpoint) -> Path:
    """Write the record atomically (a killed writer leaves the previous file); returns the path."""
    if not isinstance(ckpt, Checkpoint):
        raise TypeError(f"save_checkpoint takes a Checkpoint record, not a {type(ckpt).__name__}")
    with atomic_output(path) as tmp:
        torch.save(ckpt.to_payload(), tmp)
    return Path(path)


def _not_torch_file(p: Path, head: bytes) -> CheckpointError:
    hint = {".caffemodel": " (it looks like a Caffe model: use convert_caffe / `alexnet convert caffe`)",
            ".safetensors": " (a .safetensors file: use alexnet.load_model)"}
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
        raise CheckpointError(f"{p}: not a readable PyTorch file (truncated or corrupt?): {first_line(e)}") from None


def _unpickler_detail(e: BaseException) -> str:
    """The informative line of torch's weights_only refusal ("Unsupported global: GLOBAL io.open ...")."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(e))
    for line in text.splitlines():
        if "Unsupported global" in line or "WeightsUnpickler error" in line:
            line = line.strip().removeprefix("WeightsUnpickler error:").strip()
            return line.split(" was not an allowed global")[0][:200]
    return first_line(e)


def first_line(e: BaseException, limit: int = 200) -> str:
    """The first line of an exception's message (or its type's name), for one-line errors."""
    text = str(e).strip()
    return (text.splitlines()[0] if text else type(e).__name__)[:limit]


def checkpoint_file(path: str | os.PathLike) -> Path:
    """``path`` itself, or for a run folder its best.pt (else last.pt)."""
    path = Path(path)
    if not path.is_dir():
        return path
    for name in ("best.pt", "last.pt"):
        if (path / name).is_file():
            return path / name
    raise CheckpointError(f"{path}: a directory without best.pt or last.pt (expected a checkpoint file or a run "
                          "folder)")


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> Checkpoint:
    """The record of an alexnet .pt checkpoint or run folder, loaded safely (``weights_only=True``).

    For any weight file (also .safetensors and torchvision's) as a ready network use ``alexnet.load_model``.
    """
    path = checkpoint_file(path)
    data = safe_torch_load(path, map_location)
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        hint = ""
        if isinstance(data, dict) and any(k.startswith(("features.", "classifier.")) for k in data):
            hint = " It looks like a torchvision state_dict: use `alexnet convert torchvision` / alexnet.load_model."
        raise CheckpointError(f"{path}: not an alexnet checkpoint (no 'format': '{FORMAT}' entry).{hint}")
    return Checkpoint.from_payload(data, path)


def load_state_dict_checked(model: torch.nn.Module, state: Mapping[str, torch.Tensor],
                            path: str | os.PathLike = "checkpoint") -> None:
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
