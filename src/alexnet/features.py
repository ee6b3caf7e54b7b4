"""Layer activations for a folder of images: what neuroscience and interpretability users come for.

Layer names follow the literature.  ``conv1``..``conv5``, ``fc6`` and ``fc7`` give the activations *after* the
ReLU, as Caffe's in-place ReLU blobs of the same names do (the usual meaning of "fc7 features"); ``fc8`` gives the
logits; any other module name of the network (``pool5``, ``norm1``, ``relu3``, ...) gives that module's output.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from .choices import FEATURE_POOLS
from .errors import ConfigError, DataError
from .progress import progress_bar
from .runtime import resolve_device
from .utils import atomic_output, check_output

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif", ".ppm")


def list_images(inputs: list[str | os.PathLike]) -> list[Path]:
    """Files as given, folders walked recursively (sorted); a missing path is a DataError."""
    out: list[Path] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            found = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS)
            if not found:
                raise DataError(f"{p}: no images found (expected files ending in {', '.join(IMAGE_EXTENSIONS)})")
            out.extend(found)
        elif p.is_file():
            out.append(p)
        else:
            raise DataError(f"{p}: no such file or folder")
    if not out:
        raise DataError("no input images given")
    return out


def hooked_module_name(model: torch.nn.Module, layer: str) -> str:
    """The module whose output is reported as ``layer`` (post-ReLU for conv1..5, fc6, fc7)."""
    modules = dict(model.named_modules())
    names = getattr(model, "layer_names", ())
    if layer in names:
        digits = "".join(ch for ch in layer if ch.isdigit())
        relu = f"relu{digits}"
        if layer != names[-1] and relu in modules:
            return relu
        return layer
    if layer in modules and layer:
        return layer
    available = list(names) + sorted(n for n in modules if n and "." not in n and n not in names)
    raise ConfigError(f"--layer {layer!r}: no such layer in {model.config.arch}; choose from {', '.join(available)}")


def load_images(paths: list[Path], prep: dict, *, strict: bool = True) -> tuple[torch.Tensor, list[Path], list]:
    """Decode ``paths`` to a uint8 batch [N, C, S, S] with the checkpoint's preprocessing (the one decoding path
    of ``alexnet.data``).  Unreadable files raise DataError (strict) or are returned in the third element."""
    from .data import read_image

    good, ok_paths, bad = [], [], []
    for p in paths:
        try:
            good.append(read_image(p, prep["resize"], channels=prep.get("channels", 3)))
            ok_paths.append(p)
        except DataError as e:
            if strict:
                raise
            bad.append((str(p), str(e)))
    if not good:
        return torch.empty(0, prep.get("channels", 3), prep["resize"], prep["resize"], dtype=torch.uint8), [], bad
    return torch.stack(good), ok_paths, bad


def apply_channel_order(x: torch.Tensor, prep: dict) -> torch.Tensor:
    """RGB uint8 batch -> the network's channel order (Caffe-converted networks expect BGR, with a BGR mean)."""
    return x.flip(1) if prep.get("channel_order", "RGB") == "BGR" and x.shape[1] == 3 else x


class LayerTap:
    """Forward hooks that capture the named layers' activations (see ``hooked_module_name``)."""

    def __init__(self, model: torch.nn.Module, layers: list[str]):
        modules = dict(model.named_modules())
        self.captured: dict[str, torch.Tensor] = {}
        self.handles = []
        for layer in layers:
            def hook(mod, inp, out, layer=layer):
                self.captured[layer] = out.detach().float().clone()
            self.handles.append(modules[hooked_module_name(model, layer)].register_forward_hook(hook))

    def close(self) -> None:
        for h in self.handles:
            h.remove()


@torch.no_grad()
def batch_features(model: torch.nn.Module, images_uint8: torch.Tensor, prep: dict, layers: list[str],
                   pool: str = "none") -> dict[str, torch.Tensor]:
    """Activations of ``layers`` for a uint8 batch [N, C, S, S] (on the model's device)."""
    from .data import EvalTransform

    tap = LayerTap(model, layers)
    try:
        transform = EvalTransform.from_prep(prep)
        model(transform(apply_channel_order(images_uint8, prep)))
        out = {}
        for layer in layers:
            a = tap.captured[layer]
            out[layer] = a.mean(dim=(2, 3)) if (pool == "avg" and a.dim() == 4) else a
        return out
    finally:
        tap.close()


def check_feature_args(pool: str, batch_size: int, layers: list[str]) -> None:
    """The flags of ``alexnet features`` that need no network, checked before anything is loaded."""
    if pool not in FEATURE_POOLS:
        raise ConfigError(f"--pool must be {' or '.join(repr(p) for p in FEATURE_POOLS)}; got {pool!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError(f"--batch-size must be a whole number >= 1; got {batch_size}")
    if not layers:
        raise ConfigError("--layer: give at least one layer")


@torch.no_grad()
def extract_features(model: torch.nn.Module, images: list[Path], prep: dict, layers: list[str], *,
                     pool: str = "none", batch_size: int = 32, device: str | torch.device = "auto",
                     progress: bool = True, strict: bool = True) -> tuple[dict[str, np.ndarray], list[str], list]:
    """Activations of ``layers`` for ``images`` in one pass per batch: ({layer: array N x ...}, paths, bad files).

    pool="avg" averages conv maps over space (N x C); fully connected outputs are unchanged.
    """
    check_feature_args(pool, batch_size, layers)
    dev = device if isinstance(device, torch.device) else resolve_device(device)
    model = model.to(dev).eval()
    for layer in layers:
        hooked_module_name(model, layer)   # a wrong layer name fails before any image is decoded
    results: dict[str, list[np.ndarray]] = {layer: [] for layer in layers}
    kept: list[str] = []
    bad_all: list = []
    for start in progress_bar(range(0, len(images), batch_size), desc="features", unit="batch", disable=not progress):
        x, ok, bad = load_images(images[start:start + batch_size], prep, strict=strict)
        bad_all.extend(bad)
        if not ok:
            continue
        for layer, a in batch_features(model, x.to(dev), prep, layers, pool).items():
            results[layer].append(a.cpu().numpy())
        kept.extend(str(p) for p in ok)
    if not kept:
        raise DataError(f"none of the {len(images)} input images could be read (first: {bad_all[0][1]})")
    return {layer: np.concatenate(v) for layer, v in results.items()}, kept, bad_all


def save_features(checkpoint: str, inputs: list[str], layers: list[str], out: str | os.PathLike, *,
                  pool: str = "none", batch_size: int = 32, device: str = "auto", progress: bool = True,
                  strict: bool = True, overwrite: bool = True) -> dict:
    """The library call behind ``alexnet features``: writes ``out`` (.npz, atomically) and returns a summary.

    The .npz holds one array per layer (named as the layer), ``paths`` (the image files, in row order) and
    ``layers``.  Flags and ``out`` are checked before the network is loaded; ``overwrite=False`` refuses an
    existing ``out``.
    """
    from .interop import load_model

    out = Path(out)
    if out.suffix != ".npz":
        raise ConfigError(f"-o {out}: expected a .npz file name")
    check_feature_args(pool, batch_size, layers)
    check_output(out, overwrite)
    layers = list(dict.fromkeys(layers))   # --layer fc7 --layer fc7: one array, listed once
    model, ckpt = load_model(checkpoint)
    prep = ckpt.inference_preprocessing(checkpoint)
    images = list_images(inputs)
    feats, paths, bad = extract_features(model, images, prep, layers, pool=pool, batch_size=batch_size,
                                         device=device, progress=progress, strict=strict)
    with atomic_output(out, overwrite=overwrite) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, paths=np.array(paths), layers=np.array(layers), **feats)
    return {"output": str(out), "n": len(paths), "layers": {k: list(v.shape) for k, v in feats.items()},
            "pool": pool, "skipped": [{"path": p, "reason": r} for p, r in bad]}
