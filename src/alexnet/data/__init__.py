"""The data path (paper sections 2 and 4.1): datasets, the embedded synthetic set, augmentation, fast loading.

::

    from alexnet.data import open_dataset, dataset_stats, make_loader, TrainTransform, EvalTransform
    train = open_dataset("data/synth", "train", image_size=144)        # uint8 [3, 144, 144], int label
    stats = dataset_stats(train)                                        # mean/std/PCA, cached beside the data
    aug = TrainTransform(128, mean=stats.mean, std=stats.std, lighting=stats)
    for images, labels in make_loader(train, 64, shuffle=True, seed=0, epoch=0):
        x = aug(images.to(device), generator=gen)                       # float32 [64, 3, 128, 128]

Modules: ``datasets`` (open_dataset, detection), ``formats`` (one module per dataset format, and their registry:
its docstring says how to add one), ``base`` (the dataset classes), ``imageio`` (decoding), ``transforms``,
``loader``, ``stats``, ``synthetic`` (``alexnet data synth``), ``pack`` (``alexnet data pack``), ``bench`` (data
throughput).
"""
from . import bench, pack, synthetic
from .datasets import ImageDataset, available_splits, open_dataset
from .imageio import IMAGE_EXTENSIONS, read_image
from .loader import EpochSampler, default_workers, make_loader
from .stats import DataStats, dataset_mean_image, dataset_stats
from .transforms import EvalTransform, TrainTransform

__all__ = ["DataStats", "EpochSampler", "EvalTransform", "IMAGE_EXTENSIONS", "ImageDataset", "TrainTransform",
           "available_splits", "bench", "dataset_mean_image", "dataset_stats", "default_workers", "make_loader",
           "open_dataset", "pack", "read_image", "synthetic"]
