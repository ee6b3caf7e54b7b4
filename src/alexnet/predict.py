"""Prediction on a user's own images: class names and probabilities."""
from __future__ import annotations

from pathlib import Path

import torch

from .checkpoint import Checkpoint
from .choices import EVAL_CROPS
from .errors import ConfigError
from .interop.classes import IMAGENET_CLASSES, imagenet_classes
from .runtime import resolve_device


def class_names(ckpt: Checkpoint, num_classes: int) -> list[str]:
    """The checkpoint's class names; for unnamed 1000-class models the ILSVRC-2012 names shipped with the package.

    A class list of the wrong length is refused when the network is built (``Checkpoint.build_model``)."""
    names = ckpt.classes
    if names and len(names) == num_classes:
        return list(names)
    if num_classes == IMAGENET_CLASSES:
        lines = imagenet_classes()
        if lines:
            return lines
    return [f"class_{i}" for i in range(num_classes)]


@torch.no_grad()
def predict(checkpoint: str, images: list[str], *, topk: int = 5, crops: int = 1, batch_size: int = 32,
            device: str = "auto", progress: bool = False) -> list[dict]:
    """Top-k classes for each image: [{"image", "predictions": [{"class", "index", "probability"}, ...]}].

    crops=10 averages the softmax over the paper's ten patches.  An unreadable image is a DataError naming it.
    """
    from .data import EvalTransform
    from .features import apply_channel_order, list_images, load_images
    from .interop import load_model

    if topk < 1:
        raise ConfigError(f"--topk must be >= 1; got {topk}")
    if crops not in EVAL_CROPS:
        raise ConfigError(f"--crops must be {' or '.join(map(str, EVAL_CROPS))}; got {crops}")
    dev = resolve_device(device)
    model, ckpt = load_model(checkpoint)
    model.to(dev)
    prep = ckpt.inference_preprocessing(checkpoint)
    num_classes = model.config.num_classes
    names = class_names(ckpt, num_classes)
    k = min(topk, num_classes)
    transform = EvalTransform.from_prep(prep, ten_crop=crops == 10)
    paths = list_images(images)
    out = []
    for start in range(0, len(paths), batch_size):
        x, ok, _ = load_images(paths[start:start + batch_size], prep, strict=True)
        x = transform(apply_channel_order(x.to(dev), prep))
        if crops == 10:
            b = x.shape[0]
            probs = model(x.flatten(0, 1)).float().softmax(-1).view(b, 10, -1).mean(1)
        else:
            probs = model(x).float().softmax(-1)
        p, idx = probs.topk(k, dim=1)
        for path, pi, ii in zip(ok, p.tolist(), idx.tolist()):
            out.append({"image": str(Path(path)), "predictions": [
                {"class": names[i], "index": i, "probability": pr} for pr, i in zip(pi, ii)]})
    return out
