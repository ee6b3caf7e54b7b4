"""The data side of a training run: datasets, sizes, mean/std and the training transform (sections 2 and 4.1)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .config import TrainConfig
from .errors import ConfigError


def default_sizes(resize: int | None, crop: int | None, native: int) -> tuple[int, int]:
    """(S, crop): the paper's 256/224 for image folders; native size, no crop, for CIFAR/MNIST-sized images."""
    s = resize or native
    if crop is None:
        crop = s if s < 64 else round(s * 224 / 256)
    if crop > s:
        raise ConfigError(f"crop {crop} is larger than the resized image ({s}); expected crop <= resize")
    return s, crop


def resolve_normalize(cfg: TrainConfig) -> str:
    """"auto": the paper's N(0, 0.01) init was designed for mean-subtracted 0-255 pixels; He init for unit variance."""
    if cfg.normalize != "auto":
        return cfg.normalize
    init = cfg.model.get("init") or ("default" if cfg.arch == "owt" else "paper")
    return "paper" if init in ("paper", "caffe") else "standard"


@dataclass
class TrainData:
    """What the trainer needs of the data: the splits, their sizes, and the preprocessing a checkpoint records."""

    train_set: Any
    val_set: Any
    classes: list
    resize: int
    crop: int
    channels: int
    transform: Any                    # uint8 batch -> augmented float batch (crops, flips, lighting, mean/std)
    prep: dict                        # recorded in checkpoints: mean, std, resize, crop, channels, mean_image, ...


def open_splits(cfg: TrainConfig):
    """(train set, val set or None, resize, crop): uint8 S x S images of both splits, classes checked equal."""
    from .data import open_dataset

    probe = open_dataset(cfg.data, "train", image_size=cfg.resize, strict=cfg.strict_data, kind=cfg.dataset_kind)
    resize, crop = default_sizes(cfg.resize, cfg.crop, probe.image_size)
    train_set = probe if probe.image_size == resize else open_dataset(
        cfg.data, "train", image_size=resize, strict=cfg.strict_data, kind=cfg.dataset_kind)
    val_set = None
    if cfg.val_every:
        val_set = open_dataset(cfg.data, "val", image_size=resize, strict=cfg.strict_data, kind=cfg.dataset_kind)
        if list(val_set.classes) != list(train_set.classes):
            raise ConfigError(f"{cfg.data}: train and val have different classes "
                              f"({len(train_set.classes)} vs {len(val_set.classes)})")
    return train_set, val_set, resize, crop


def prepare_data(cfg: TrainConfig) -> TrainData:
    """Open the splits and build the training transform: crops/flips/lighting as batched tensor ops.

    ``cfg.mean == "image"``: the paper's mean image of the whole training split at S x S (section 2), recorded in
    ``prep["mean_image"]`` (and so in every checkpoint); ``prep["mean"]`` is then its per-channel average.
    ``"channel"``: one mean per channel from the statistics' 2,000-image sample.
    """
    import torch

    from .data import TrainTransform, dataset_mean_image, dataset_stats

    train_set, val_set, resize, crop = open_splits(cfg)
    stats = dataset_stats(train_set, seed=cfg.seed)
    mean = list(stats.mean)
    mean_image = None
    if cfg.mean == "image":
        mean_image = torch.from_numpy(dataset_mean_image(train_set, seed=cfg.seed, progress=cfg.progress))
        mean = mean_image.double().mean(dim=(1, 2)).tolist()
    normalize = resolve_normalize(cfg)
    std = list(stats.std) if normalize == "standard" else [1.0] * len(mean)
    lighting = stats if (cfg.lighting and train_set.channels == 3) else None
    transform = TrainTransform(crop, mean=mean, std=std, flip=cfg.flip, random_crop=cfg.random_crop,
                               lighting=lighting, lighting_std=cfg.lighting_std, mean_image=mean_image)
    prep = {"mean": mean, "std": std, "resize": resize, "crop": crop, "channels": train_set.channels,
            "channel_order": "RGB", "normalize": normalize, "stats": stats.to_dict()}
    if mean_image is not None:
        prep["mean_image"] = mean_image
    return TrainData(train_set, val_set, list(train_set.classes), resize, crop, train_set.channels, transform, prep)


__all__ = ["TrainData", "prepare_data", "open_splits", "default_sizes", "resolve_normalize"]
