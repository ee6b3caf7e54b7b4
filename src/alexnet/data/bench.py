"""Data-loading throughput: our direct and packed paths against a plain torchvision pipeline, on the same images."""
from __future__ import annotations

import json
import math
import os
import tempfile
import time
from pathlib import Path

import torch

from ..errors import DataError
from .datasets import open_dataset
from .formats.packed import PACK_FORMAT, PACK_META
from .loader import available_cpus, default_workers, make_loader
from .pack import PACK_VERSION, pack_dataset
from .stats import compute_stats
from .transforms import TrainTransform


class _View:
    """The first ``idx`` samples of a dataset, with the attributes ``pack_dataset`` needs."""

    def __init__(self, ds, idx: list[int]):
        self.ds, self.idx = ds, idx
        self.channels, self.image_size, self.root, self.kind = ds.channels, ds.image_size, ds.root, ds.kind
        self.classes = ds.classes
        self.targets = [ds.targets[i] for i in idx]
        self.bad_files: list = []

    def __len__(self):
        return len(self.idx)

    def load(self, i):
        return self.ds.load(self.idx[i])

    def sample_name(self, i):
        return self.ds.sample_name(self.idx[i])


def _time_epochs(loader, transform, repeats: int) -> float:
    """Best images/s over ``repeats`` passes (each from iterator start: worker start-up included)."""
    best = 0.0
    gen = torch.Generator().manual_seed(0)
    for _ in range(repeats):
        t0 = time.perf_counter()
        n = 0
        for images, _labels in loader:
            x = transform(images, gen) if transform is not None else images
            n += x.shape[0]
        best = max(best, n / (time.perf_counter() - t0))
    return best


def _bench_source(data_dir, tmp: Path, images: int, synthetic_size: int, progress: bool) -> tuple[Path, str]:
    """(the dataset folder, its description): ``data_dir``, or a synthetic set generated under ``tmp``."""
    if data_dir is not None:
        root = Path(data_dir)
        return root, str(root)
    from . import synthetic

    classes = 8
    per = math.ceil(images / classes)
    root = synthetic.generate(tmp / "synth", classes=classes, train_per_class=per, val_per_class=1,
                              size=synthetic_size, seed=0, progress=progress)
    return root, f"synthetic ({classes} classes x {per} JPEGs of {synthetic_size} px)"


def _bench_sample(root: Path, images: int, size: int):
    """(the train split of the image folder at ``root``, the sorted indices of the ``images`` benchmarked)."""
    ds = open_dataset(root, "train", image_size=size)
    if ds.kind not in ("imagefolder", "ilsvrc"):
        raise DataError(f"{root}: the data benchmark needs an image folder (ImageFolder/ILSVRC layout); "
                        f"this is {ds.kind}")
    n = min(images, len(ds))
    gen = torch.Generator().manual_seed(0)
    return ds, sorted(torch.randperm(len(ds), generator=gen)[:n].tolist())


def _time_packed(ds, idx: list[int], root: Path, pack_dir: Path, transform, batch_size: int, workers: int | None,
                 nw: int, repeats: int, progress: bool) -> tuple[float, float, int]:
    """The packed path: (images/s, seconds to pack (not timed in images/s), the loader's worker count)."""
    pack_dir.mkdir()
    t0 = time.perf_counter()
    entry = pack_dataset(_View(ds, idx), pack_dir, "train", progress=progress, workers=nw)
    pack_seconds = time.perf_counter() - t0
    (pack_dir / PACK_META).write_text(json.dumps({
        "format": PACK_FORMAT, "version": PACK_VERSION, "size": ds.image_size, "channels": ds.channels,
        "classes": list(ds.classes), "source": str(root), "splits": {"train": entry}}))
    packed_ds = open_dataset(pack_dir, "train")
    packed_loader = make_loader(packed_ds, batch_size, shuffle=True, num_workers=workers)
    return _time_epochs(packed_loader, transform, repeats), pack_seconds, packed_loader.num_workers


def _time_reference(ds, idx: list[int], stats, size: int, crop: int, batch_size: int, nw: int,
                    repeats: int) -> float:
    """torchvision's ImageFolder + Compose pipeline on the same files (images/s)."""
    import torchvision
    from torchvision import transforms as T

    ref_tf = T.Compose([T.Resize(size), T.CenterCrop(size), T.RandomCrop(crop), T.RandomHorizontalFlip(),
                        T.ToTensor(), T.Normalize([m / 255 for m in stats.mean], [s / 255 for s in stats.std])])
    split_dir = Path(ds.base)
    folder = torchvision.datasets.ImageFolder(str(split_dir), transform=ref_tf)
    wanted = {os.path.normpath(ds.sample_name(i)) for i in idx}
    ref_idx = [k for k, (p, _) in enumerate(folder.samples) if os.path.normpath(p) in wanted]
    if len(ref_idx) != len(idx):
        raise DataError(f"{split_dir}: torchvision's ImageFolder found {len(ref_idx)} of the {len(idx)} benchmark "
                        f"images (a different layout?)")
    ref_loader = torch.utils.data.DataLoader(torch.utils.data.Subset(folder, ref_idx), batch_size=batch_size,
                                             shuffle=True, num_workers=nw, pin_memory=torch.cuda.is_available())
    return _time_epochs(ref_loader, None, repeats)


def run_data_bench(data_dir: str | None = None, *, images: int = 512, batch_size: int = 64,
                   workers: int | None = None, repeats: int = 2, synthetic_size: int = 384,
                   progress: bool = False) -> dict:
    """Images/s of three loaders over the same ``images`` training images, each producing normalised float
    batches of 224 x 224 crops from images resized to 256 (the paper's training transforms), in one run:

    - ``direct``: ``open_dataset`` (decode per image with Pillow draft mode, shorter side 256, centre 256) +
      ``make_loader`` + batched ``TrainTransform`` (random crop 224, flip, PCA lighting, normalise);
    - ``packed``: the same images packed first (``pack_dataset``, not timed; ``pack_seconds`` reports it), read from
      the memmap + the same ``TrainTransform``;
    - ``reference``: torchvision ``ImageFolder`` + ``transforms.Compose([Resize(256), CenterCrop(256),
      RandomCrop(224), RandomHorizontalFlip(), ToTensor(), Normalize(mean, std)])`` through a ``DataLoader``
      (no colour augmentation: torchvision has none of the paper's kind).

    All three use the same ``workers`` loader processes (None: ``default_workers`` for image folders), the same
    batch size and shuffled order; each figure is the best of ``repeats`` full passes including worker start-up.
    data_dir: an image folder with a train split (ImageFolder/ILSVRC layout); None generates a synthetic set of
    ``synthetic_size``-px JPEGs in a temporary folder (removed afterwards).

    Returns a dict: ``direct``, ``packed``, ``reference`` (images/s), ``direct_vs_reference``,
    ``packed_vs_reference`` (ratios), ``images``, ``batch_size``, ``workers``, ``cpus``, ``image_size`` (256),
    ``crop`` (224), ``pack_seconds``, ``source``, ``torch_threads``.
    """
    if images < batch_size:
        raise DataError(f"images ({images}) must be at least batch_size ({batch_size})")
    size, crop = 256, 224
    with tempfile.TemporaryDirectory(prefix="alexnet-bench-") as tmp:
        tmp = Path(tmp)
        root, source = _bench_source(data_dir, tmp, images, synthetic_size, progress)
        ds, idx = _bench_sample(root, images, size)
        n = len(idx)
        subset = torch.utils.data.Subset(ds, idx)
        nw = default_workers(ds) if workers is None else int(workers)
        stats = compute_stats(subset, max_images=min(n, 256), num_workers=nw)
        transform = TrainTransform(crop, mean=stats.mean, std=stats.std, lighting=stats)
        direct = _time_epochs(make_loader(subset, batch_size, shuffle=True, num_workers=nw), transform, repeats)
        packed, pack_seconds, packed_workers = _time_packed(ds, idx, root, tmp / "packed", transform, batch_size,
                                                            workers, nw, repeats, progress)
        reference = _time_reference(ds, idx, stats, size, crop, batch_size, nw, repeats)

    return {"direct": direct, "packed": packed, "reference": reference,
            "direct_vs_reference": direct / reference, "packed_vs_reference": packed / reference,
            "images": n, "batch_size": batch_size, "workers": nw,
            "packed_workers": packed_workers, "cpus": available_cpus(),
            "torch_threads": torch.get_num_threads(), "image_size": size, "crop": crop,
            "pack_seconds": pack_seconds, "source": source}


__all__ = ["run_data_bench"]
