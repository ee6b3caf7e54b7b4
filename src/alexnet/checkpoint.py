"""One checkpoint record: typed, versioned, atomic save, exact resume, safe load.

A checkpoint is a ``Checkpoint`` record.  On disk it is a ``torch.save``d dict of tensors and plain values only
(loadable with ``weights_only=True``; we never unpickle code)::

    {"format": "alexnet-checkpoint", "version": 1,
     "model_config": ModelConfig.to_dict(),  "model": state_dict,
     "classes": [class names],               "data": {"mean", "std", "resize", "crop", "channel_order", ...,
                                                      optional "mean_image": float32 tensor [C, S, S]},
     "source": {...}, "metrics": {...},      (converted weights; the epoch row that wrote the file)
     "started_from": {...},                  (a run started from pretrained weights: spec, file, sha256, source)
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
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .errors import CheckpointError, ConfigError
from .model import ModelConfig, model_from_config
from .utils import ErrorRecordingFile, atomic_output

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
    # A run started from pretrained weights (``train --weights``): the spec, the file and its sha256, the weights'
    # own ``source`` and the replaced last-layer keys.  Kept by weights_only(): it is about the weights.
    started_from: dict[str, Any] | None = None

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
        n = self.model_config.num_classes
        if self.classes is not None and len(self.classes) != n:
            raise CheckpointError(f"{origin}: its class list has {len(self.classes)} names for a network with {n} "
                                  f"outputs (first: {list(self.classes)[:3]}); the file is corrupt or mislabelled")
        model = model_from_config(self.model_config)
        load_state_dict_checked(model, self.state_dict, origin)
        return model

    def inference_preprocessing(self, origin: str | os.PathLike = "checkpoint") -> dict[str, Any]:
        """The record's ``preprocessing``, checked for what eval/predict/features/serve need: mean, std, resize and
        crop present, crop <= resize.  Those verbs have no --crop/--resize: a wrong entry is the file's fault."""
        prep = self.preprocessing or {}
        missing = [k for k in ("mean", "std", "resize", "crop") if k not in prep]
        if missing:
            raise CheckpointError(f"{origin}: the checkpoint's preprocessing ('data' entry) lacks {missing}; "
                                  "it was not written by `alexnet train` or `alexnet convert`")
        crop, resize = prep["crop"], prep["resize"]
        if not (isinstance(crop, int) and isinstance(resize, int) and 1 <= crop <= resize):
            raise CheckpointError(f"{origin}: the checkpoint's preprocessing crops {crop} px from images resized to "
                                  f"{resize} px (expected 1 <= crop <= resize); its 'data' entry is corrupt: "
                                  "convert or train it again")
        return prep


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


def save_checkpoint(path: str | os.PathLike, ckpt: Checkpoint, overwrite: bool = True) -> Path:
    """Write the record atomically (a killed writer leaves the previous file); returns the path.

    ``torch.save`` writes through a Python file object, so a full disk comes back as its OSError (a one-line
    OutputError from ``atomic_output``), not as torch's errno-less RuntimeError; ``overwrite=False`` refuses an
    existing ``path``."""
    if not isinstance(ckpt, Checkpoint):
        raise TypeError(f"save_checkpoint takes a Checkpoint record, not a {type(ckpt).__name__}")
    with atomic_output(path, overwrite=overwrite) as tmp:
        with open(tmp, "wb") as raw:
            f = ErrorRecordingFile(raw)
            try:
                torch.save(ckpt.to_payload(), f)
            except RuntimeError:
                f.raise_recorded()
                raise
    return Path(path)


def _not_torch_file(p: Path, head: bytes) -> CheckpointError:
    hint = {".caffemodel": " (it looks like a Caffe model: use convert_caffe / `alexnet convert caffe`)",
            ".safetensors": " (a .safetensors file: use alexnet.load_model)"}
    return CheckpointError(f"{p}: not a readable PyTorch file (corrupt, or no torch.save zip/pickle at all; starts "
                           f"with {head!r}){hint.get(p.suffix.lower(), '')}")


def pickle_imports(p: Path, limit: int = 1 << 22) -> list[str] | None:
    """The globals (``module.name``) the pickle at the start of ``p`` would import, read with ``pickletools`` (no
    code runs); None when the file does not start with a complete pickle."""
    import io
    import pickletools

    with open(p, "rb") as f:
        data = f.read(limit)
    found: list[str] = []
    strings: list[str] = []
    try:
        for op, arg, _ in pickletools.genops(io.BytesIO(data)):
            if op.name in ("GLOBAL", "INST"):
                found.append(str(arg).replace(" ", "."))
            elif op.name == "STACK_GLOBAL":
                found.append(".".join(strings[-2:]))
            elif isinstance(arg, str):
                strings.append(arg)
    except Exception:  # noqa: BLE001 - any parse failure: not a pickle (pickletools raises ValueError and others)
        return None
    return list(dict.fromkeys(found))


def _unsafe_pickle(p: Path, detail: str) -> CheckpointError:
    return CheckpointError(f"{p}: refused to load: a Python pickle that is not a safe checkpoint ({detail}), i.e. "
                           "code that would run on loading; nothing was run (torch.load weights_only=True). Only load "
                           "pickles you trust")


def safe_torch_load(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> Any:
    """``torch.load(weights_only=True)`` with one-line CheckpointErrors: a pickle that would import or call anything
    but tensors and plain values is refused before any of its code runs (and without torch's warning lines)."""
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"{p}: no such file")
    if p.stat().st_size == 0:
        raise CheckpointError(f"{p}: empty file (0 bytes), not a weight file")
    with open(p, "rb") as f:
        head = f.read(4)
    imports = None
    if not head.startswith(b"PK\x03\x04"):   # torch.save: a zip archive; else a legacy torch file or a raw pickle
        imports = pickle_imports(p)
        if imports is None:
            raise _not_torch_file(p, head)
    try:
        with warnings.catch_warnings():
            # "Detected pickle protocol 4 in the checkpoint ...": a raw pickle, judged below in one line
            warnings.simplefilter("ignore", UserWarning)
            return torch.load(p, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        if imports:   # a raw (not torch.save) pickle: name what it would import
            raise _unsafe_pickle(p, "it would import " + ", ".join(imports[:3])) from None
        if "Unsupported operand" in str(e) and imports is None:   # bytes in a zip that are no pickle
            raise _not_torch_file(p, head) from None
        if "Unsupported operand" in str(e):
            raise CheckpointError(f"{p}: a Python pickle, but not a checkpoint written by torch.save (its opcodes "
                                  "are not ones torch.load(weights_only=True) reads)") from None
        raise _unsafe_pickle(p, _unpickler_detail(e)) from None
    except (RuntimeError, EOFError, OSError, ValueError, KeyError, IndexError, struct.error) as e:
        raise CheckpointError(f"{p}: not a readable PyTorch file (truncated or corrupt?): {first_line(e)}") from None


def _unpickler_detail(e: BaseException) -> str:
    """The informative line of torch's weights_only refusal ("unsupported GLOBAL posix.system ...")."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(e))
    m = re.search(r"unsupported global:? (?:GLOBAL )?([\w.]+)", text, re.IGNORECASE)
    if m:
        return f"it would import {m.group(1)}"
    for line in text.splitlines():
        if "unsupported global" in line.lower() or "WeightsUnpickler error" in line:
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
        got = state[k].dtype
        if got.is_floating_point != v.dtype.is_floating_point or got.is_complex != v.dtype.is_complex:
            # e.g. a .safetensors header that declares float32 bytes as I32: same sizes, garbage numbers
            raise CheckpointError(f"{path}: tensor {k!r} is stored as {str(got).removeprefix('torch.')}, "
                                  f"architecture {arch!r} expects {str(v.dtype).removeprefix('torch.')} (a "
                                  f"floating-point tensor); the file is corrupt or mislabelled")
    model.load_state_dict(state, strict=True)
# --- which file a resumed run continues from ---------------------------------------------------------------
def _training_state(path: Path) -> Checkpoint:
    ckpt = load_checkpoint(path)
    if not ckpt.resumable:
        raise CheckpointError(f"{path}: not a resumable training checkpoint (no train state)")
    return ckpt


def newest_training_state(resume: str | os.PathLike, say: Callable[[str], None]) -> tuple[Path, Checkpoint]:
    """(file, checkpoint) to resume from: a checkpoint file as given, or in a run folder the readable one of
    last.pt / best.pt with the most steps (last.pt normally: it holds every epoch and mid-epoch save since the best
    one). An unreadable newer file is reported and the next one taken; none readable is a one-line error."""
    resume = Path(resume)
    if not resume.is_dir():
        return resume, _training_state(resume)
    found, problems = [], []
    for name in ("last.pt", "best.pt"):
        if (resume / name).exists():
            try:
                found.append((resume / name, _training_state(resume / name)))
            except CheckpointError as e:
                problems.append(str(e))
    if not found:
        detail = "; ".join(problems) or "it holds no last.pt or best.pt"
        raise CheckpointError(f"--resume {resume}: no readable training checkpoint ({detail})")
    path, ckpt = max(found, key=lambda pc: int(pc[1].step))   # max keeps the first (last.pt) on a tie
    for problem in problems:
        say(f"warning: {problem}; resuming from {path.name} instead")
    return path, ckpt


