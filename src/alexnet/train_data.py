"""The data side of a training run: datasets, sizes, mean/std and the training transform (sections 2 and 4.1)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .config import TrainConfig
from .errors import ConfigError


def default_sizes(resize: int | None, crop: int | None, native: int, min_input: int = 1) -> tuple[int, int]:
    """(S, crop): the paper's 256/224 for image folders; native size, no crop, for CIFAR/MNIST-sized images; the
    paper's 256/224 again when no size is given and the native size is below what the network takes
    (``min_input``: 63 px for the ImageNet networks, so 32-px CIFAR images are upscaled as the tutorials do)."""
    if resize is None and crop is None and native < min_input:
        from .data.formats.imagefolder import DEFAULT_FOLDER_SIZE

        resize = DEFAULT_FOLDER_SIZE              # as image folders: 256, so the crop below is 224
    s = resize or native
    if crop is None:
        crop = s if s < 64 else round(s * 224 / 256)
    if crop > s:
        raise ConfigError(f"crop {crop} is larger than the resized image ({s}); expected crop <= resize")
    return s, crop


def resolve_normalize(cfg: TrainConfig) -> str:
    """"auto": the paper's N(0, 0.01) init was designed for mean-subtracted 0-255 pixels; He init for unit variance."""
    if cfg.normalize not in (None, "auto"):
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
    """(train set, val set or None, resize, crop): uint8 S x S images of both splits, classes checked equal; the
    train split must have images of two classes at least (``data.validate.check_trainable``)."""
    from .data import open_dataset
    from .data.validate import check_trainable
    from .model import get_arch

    probe = open_dataset(cfg.data, "train", image_size=cfg.resize, strict=cfg.strict_data, kind=cfg.dataset_kind)
    check_trainable(probe)
    resize, crop = default_sizes(cfg.resize, cfg.crop, probe.image_size, get_arch(cfg.arch).min_input)
    train_set = probe if probe.image_size == resize else open_dataset(
        cfg.data, "train", image_size=resize, strict=cfg.strict_data, kind=cfg.dataset_kind)
    val_set = None
    if cfg.val_every:
        val_set = open_dataset(cfg.data, "val", image_size=resize, strict=cfg.strict_data, kind=cfg.dataset_kind)
        if list(val_set.classes) != list(train_set.classes):
            raise ConfigError(f"{cfg.data}: train and val have different classes "
                              f"({len(train_set.classes)} vs {len(val_set.classes)})")
    return train_set, val_set, resize, crop


class ToBGR:
    """The training transform for networks that take BGR input (Caffe's weights): augment and normalise in RGB
    (PCA lighting's eigenvectors are RGB), then reverse the channels."""

    def __init__(self, inner):
        self.inner = inner

    def __call__(self, images, **kw):
        return self.inner(images, **kw).flip(1)


def prepare_data(cfg: TrainConfig, weights_prep: dict | None = None, splits: tuple | None = None) -> TrainData:
    """Open the splits (or take those ``open_splits`` returned) and build the training transform: crops, flips and
    lighting as batched tensor ops.  ``cfg``'s recipe is already applied (the input scaling is the recipe's).

    ``cfg.mean == "image"``: the paper's mean image of the whole training split at S x S (section 2), recorded in
    ``prep["mean_image"]`` (and so in every checkpoint); ``prep["mean"]`` is then its per-channel average.
    ``"channel"``: one mean per channel from the statistics' 2,000-image sample.
    weights_prep: the preprocessing of the pretrained weights the run starts from (``--weights``): with
    ``--normalize auto`` their mean (or mean image), std and channel order are used, as the weights expect.
    """
    import torch

    from .data import TrainTransform, dataset_mean_image, dataset_stats

    train_set, val_set, resize, crop = splits if splits is not None else open_splits(cfg)
    stats = dataset_stats(train_set, seed=cfg.seed)
    mean = list(stats.mean)
    mean_image = None
    if cfg.mean == "image":
        mean_image = torch.from_numpy(dataset_mean_image(train_set, seed=cfg.seed, progress=cfg.progress))
        mean = mean_image.double().mean(dim=(1, 2)).tolist()
    normalize = resolve_normalize(cfg)
    std = list(stats.std) if normalize == "standard" else [1.0] * len(mean)
    order = "RGB"
    if weights_prep and "mean" in weights_prep and "std" in weights_prep and cfg.normalize in (None, "auto"):
        if len(weights_prep["mean"]) != train_set.channels:
            raise ConfigError(f"--weights take {len(weights_prep['mean'])}-channel images; {cfg.data} has "
                              f"{train_set.channels}-channel images")
        mean, std = [float(m) for m in weights_prep["mean"]], [float(s) for s in weights_prep["std"]]
        order, normalize = weights_prep.get("channel_order", "RGB"), weights_prep.get("normalize", normalize)
        mean_image = _weights_mean_image(weights_prep, resize)
    lighting = stats if (cfg.lighting and train_set.channels == 3) else None
    bgr = order == "BGR"   # the recorded mean/std are in the network's (BGR) order; the transform works in RGB
    if mean_image is not None and bgr:
        mean_image = mean_image.flip(0)
    transform = TrainTransform(crop, mean=mean[::-1] if bgr else mean, std=std[::-1] if bgr else std, flip=cfg.flip,
                               random_crop=cfg.random_crop, lighting=lighting, lighting_std=cfg.lighting_std,
                               mean_image=mean_image)
    prep = {"mean": mean, "std": std, "resize": resize, "crop": crop, "channels": train_set.channels,
            "channel_order": order, "normalize": normalize, "stats": stats.to_dict()}
    if mean_image is not None:
        prep["mean_image"] = mean_image.flip(0) if bgr else mean_image     # recorded in the network's order
    return TrainData(train_set, val_set, list(train_set.classes), resize, crop, train_set.channels,
                     ToBGR(transform) if bgr else transform, prep)


def _weights_mean_image(weights_prep: dict, resize: int):
    """The mean image the pretrained weights were trained with (Caffe's ``mean_file``), or None; it must be
    ``resize`` x ``resize`` to be cropped like the input."""
    mean_image = weights_prep.get("mean_image")
    if mean_image is not None and tuple(mean_image.shape[-2:]) != (resize, resize):
        raise ConfigError(f"--weights carry a {mean_image.shape[-1]}x{mean_image.shape[-2]} mean image; "
                          f"--resize {resize} would crop it elsewhere than the input (use --resize "
                          f"{mean_image.shape[-1]})")
    return mean_image


__all__ = ["TrainData", "prepare_data", "open_splits", "default_sizes", "resolve_normalize"]
