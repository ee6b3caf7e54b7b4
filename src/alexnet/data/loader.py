"""Batches of uint8 images in an order that is a pure function of (seed, epoch): exact resume, data-parallel shards.

``make_loader`` yields ``(uint8 [B, C, S, S], int64 labels [B])``; augmentation happens afterwards on the training
device (``TrainTransform``).  Array-backed datasets (packed, CIFAR, MNIST) hand over whole batches with one gather
(``__getitems__``); image folders decode per sample in worker processes.
"""
from __future__ import annotations

import math
import os

import numpy as np
import torch
from torch.utils.data import BatchSampler, DataLoader, Sampler, default_collate

from ..errors import ConfigError


def epoch_permutation(n: int, seed: int, epoch: int) -> torch.Tensor:
    """The shuffled order of ``n`` samples for (seed, epoch): the same on every machine and process."""
    state = np.random.SeedSequence([int(seed) & 0xFFFFFFFF, int(epoch) & 0xFFFFFFFF, 0xA1E8]).generate_state(2)
    g = torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))
    return torch.randperm(n, generator=g)


class EpochSampler(Sampler[int]):
    """This rank's indices for one epoch.

    The order (a seeded permutation when ``shuffle``, else 0..n-1) depends only on (seed, epoch).  Ranks take
    interleaved shards (``order[rank::world_size]``), like ``DistributedSampler``:

    - drop_last=True: the tail that does not divide evenly is dropped, every rank gets n // world_size samples;
    - drop_last=False, shuffle=True (training): the order is padded with its first samples so every rank gets the
      same count (ceil(n / world_size)), which data-parallel training needs (equal numbers of steps); every sample
      is seen at least once per epoch, at most world_size - 1 of them twice;
    - drop_last=False, shuffle=False (evaluation): no padding, every sample is seen exactly once over all ranks
      (shard sizes differ by at most one).

    ``skip`` drops the first ``skip`` indices of this rank's shard (resuming mid-epoch); ``pad`` overrides the padding.
    """

    def __init__(self, n: int, *, shuffle: bool, seed: int = 0, epoch: int = 0, rank: int = 0, world_size: int = 1,
                 drop_last: bool = False, skip: int = 0, pad: bool | None = None):
        if world_size < 1 or not 0 <= rank < world_size:
            raise ConfigError(f"rank {rank} is not in 0..{world_size - 1} (world size {world_size})")
        if skip < 0:
            raise ConfigError(f"skip must be >= 0; got {skip}")
        self.n, self.shuffle, self.seed, self.epoch = int(n), bool(shuffle), int(seed), int(epoch)
        self.rank, self.world_size, self.drop_last, self.skip = int(rank), int(world_size), bool(drop_last), int(skip)
        self.pad = (self.shuffle and self.world_size > 1) if pad is None else bool(pad)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def indices(self) -> list[int]:
        order = epoch_permutation(self.n, self.seed, self.epoch) if self.shuffle else torch.arange(self.n)
        ws = self.world_size
        if self.drop_last:
            order = order[: (self.n // ws) * ws]
        elif self.pad and self.n % ws and self.n:
            total = math.ceil(self.n / ws) * ws
            reps = math.ceil(total / self.n)
            order = order.repeat(reps)[:total]
        return order[self.rank::ws][self.skip:].tolist()

    def __iter__(self):
        return iter(self.indices())

    def __len__(self) -> int:
        ws = self.world_size
        if self.drop_last:
            per = self.n // ws
        elif self.pad and self.n:
            per = math.ceil(self.n / ws)
        else:
            per = len(range(self.rank, self.n, ws))
        return max(0, per - self.skip)


def available_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def default_workers(dataset=None) -> int:
    """Worker processes for ``dataset`` on this machine: image decoding gets all cores but one (the training
    process needs one), at least one and at most 12; array-backed datasets (packed, CIFAR, MNIST) gather whole
    batches cheaply and use one worker only on machines with more than two cores (none here: 2 cores)."""
    cpus = available_cpus()
    base = getattr(dataset, "dataset", dataset)   # torch Subset
    if getattr(base, "native_size", None) is not None and not _needs_resize(dataset):
        return 1 if cpus > 2 else 0
    return max(1, min(cpus - 1, 12))


def _needs_resize(dataset) -> bool:
    base = getattr(dataset, "dataset", dataset)   # torch Subset
    native = getattr(base, "native_size", None)
    return native is not None and native != getattr(base, "image_size", native)


def collate(batch):
    """Stack samples into (uint8 [B, C, S, S], int64 [B]); batches gathered by the dataset pass straight through."""
    images = getattr(batch, "images", None)
    if images is not None:
        return images, batch.labels
    images, labels = default_collate(batch)
    return images, labels.to(torch.int64)


def make_loader(dataset, batch_size: int, *, shuffle: bool, seed: int = 0, epoch: int = 0, drop_last: bool = False,
                num_workers: int | None = None, rank: int = 0, world_size: int = 1,
                skip_batches: int = 0) -> DataLoader:
    """A DataLoader over ``dataset`` for one epoch: ``(uint8 [B, C, S, S], int64 [B])`` batches.

    The order is a pure function of (seed, epoch) (``EpochSampler``); ``rank``/``world_size`` give this process's
    shard; ``skip_batches`` resumes mid-epoch (``len(loader)`` counts the remaining batches).  num_workers None: a
    default for this machine (``default_workers``).  Memory is pinned when CUDA is available.
    """
    if batch_size < 1:
        raise ConfigError(f"batch_size must be >= 1; got {batch_size}")
    if skip_batches < 0:
        raise ConfigError(f"skip_batches must be >= 0; got {skip_batches}")
    sampler = EpochSampler(len(dataset), shuffle=shuffle, seed=seed, epoch=epoch, rank=rank, world_size=world_size,
                           drop_last=drop_last, skip=skip_batches * batch_size)
    workers = default_workers(dataset) if num_workers is None else int(num_workers)
    if workers < 0:
        raise ConfigError(f"num_workers must be >= 0; got {workers}")
    kwargs = {}
    if workers > 0:
        kwargs["prefetch_factor"] = 4
    return DataLoader(dataset, batch_sampler=BatchSampler(sampler, batch_size, drop_last), num_workers=workers,
                      collate_fn=collate, pin_memory=torch.cuda.is_available(), **kwargs)


__all__ = ["EpochSampler", "available_cpus", "collate", "default_workers", "epoch_permutation", "make_loader"]
