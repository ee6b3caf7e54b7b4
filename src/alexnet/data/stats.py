"""Training-set statistics: per-channel mean/std and the RGB PCA for the paper's colour augmentation (section 4.1).

Computed once from a seeded sample of (at most ``max_images``) training images, exactly as the dataset yields them
(shorter side S, centre S x S), and cached as JSON: ``alexnet_stats.json`` in the dataset folder, or, when that
folder is read-only, in ``cache_dir`` (default ``$XDG_CACHE_HOME/alexnet/stats`` or ``~/.cache/alexnet/stats``).
The cache key covers the split, S, the sample size and seed and a fingerprint of the dataset's contents (file names
and labels), so a changed dataset is measured again.

The paper's mean image (section 2, "the mean activity over the training set", ``--mean image``) is measured over
the *whole* split by default (Caffe's ``compute_image_mean`` does the same): one pass, exact integer sums, cached
beside the statistics as ``alexnet_mean_image-<key hash>.npy`` (float32 [C, S, S], 0-255 units).
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import DataError, OutputError
from ..utils import atomic_output, write_text_atomic

STATS_FILE = "alexnet_stats.json"
STATS_VERSION = 1


@dataclass(frozen=True)
class DataStats:
    """Per-channel mean/std (0-255 units) and the eigen-decomposition of the pixel covariance.

    eigval: eigenvalues of the C x C covariance of pixel values (0-255 units, i.e. grey levels squared), largest
    first (the paper's lambda_i; ``TrainTransform`` scales by their square roots, see ``alexnet.data.transforms``).
    eigvec: the matching unit eigenvectors as columns: ``eigvec[r][i]`` is channel r of component i.
    """

    mean: tuple[float, ...]
    std: tuple[float, ...]
    eigval: tuple[float, ...]
    eigvec: tuple[tuple[float, ...], ...]
    images: int = 0
    image_size: int = 0

    def to_dict(self) -> dict:
        d = asdict(self)
        d["eigvec"] = [list(r) for r in self.eigvec]
        for k in ("mean", "std", "eigval"):
            d[k] = list(d[k])
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "DataStats":
        try:
            return cls(mean=tuple(float(v) for v in d["mean"]), std=tuple(float(v) for v in d["std"]),
                       eigval=tuple(float(v) for v in d["eigval"]),
                       eigvec=tuple(tuple(float(v) for v in r) for r in d["eigvec"]),
                       images=int(d.get("images", 0)), image_size=int(d.get("image_size", 0)))
        except (KeyError, TypeError, ValueError) as e:
            raise DataError(f"data statistics: missing or malformed field ({e})") from None


def stats_from_moments(total: np.ndarray, outer: np.ndarray, count: int, *, images: int = 0,
                       image_size: int = 0) -> DataStats:
    """DataStats from sum(x) [C], sum(x x^T) [C, C] over ``count`` pixels (float64)."""
    if count <= 0:
        raise DataError("data statistics: no pixels to measure")
    mean = total / count
    cov = outer / count - np.outer(mean, mean)
    cov = (cov + cov.T) / 2
    val, vec = np.linalg.eigh(cov)
    order = np.argsort(val)[::-1]
    val, vec = np.clip(val[order], 0, None), vec[:, order]
    for i in range(vec.shape[1]):   # a fixed sign: the largest-magnitude entry of each component is positive
        if vec[np.argmax(np.abs(vec[:, i])), i] < 0:
            vec[:, i] = -vec[:, i]
    std = np.sqrt(np.clip(np.diag(cov), 1e-12, None))
    return DataStats(mean=tuple(mean.tolist()), std=tuple(std.tolist()), eigval=tuple(val.tolist()),
                     eigvec=tuple(tuple(r) for r in vec.tolist()), images=images, image_size=image_size)


def compute_stats(dataset, *, max_images: int = 2000, seed: int = 0, batch_size: int = 64,
                  num_workers: int | None = None) -> DataStats:
    """Measure ``dataset`` (no caching): a seeded sample of min(len, max_images) images."""
    from .loader import epoch_permutation, make_loader

    n = len(dataset)
    if n == 0:
        raise DataError(f"{getattr(dataset, 'root', 'dataset')}: no images to compute statistics from")
    take = min(n, max_images) if max_images and max_images > 0 else n
    idx = sorted(epoch_permutation(n, seed, 0)[:take].tolist())
    subset = torch.utils.data.Subset(dataset, idx)
    loader = make_loader(subset, batch_size, shuffle=False, num_workers=num_workers)
    c = None
    total = outer = None
    count = 0
    for images, _ in loader:
        if c is None:
            c = images.shape[1]
            total, outer = np.zeros(c), np.zeros((c, c))
        x = images.permute(1, 0, 2, 3).reshape(c, -1).to(torch.float64)
        total += x.sum(1).numpy()
        outer += (x @ x.T).numpy()
        count += x.shape[1]
    return stats_from_moments(total, outer, count, images=take, image_size=int(getattr(dataset, "image_size", 0)))


def compute_mean_image(dataset, *, max_images: int = 0, seed: int = 0, batch_size: int = 64,
                       num_workers: int | None = None, progress: bool = False) -> np.ndarray:
    """The mean image float32 [C, S, S] of ``dataset`` (no caching): over every image (``max_images`` 0) or a
    seeded sample.  Pixel sums are exact (int64); the division is in float64."""
    from .loader import epoch_permutation, make_loader

    n = len(dataset)
    if n == 0:
        raise DataError(f"{getattr(dataset, 'root', 'dataset')}: no images to compute the mean image from")
    subset = dataset
    if max_images and 0 < max_images < n:
        subset = torch.utils.data.Subset(dataset, sorted(epoch_permutation(n, seed, 0)[:max_images].tolist()))
    from ..progress import progress_bar

    total, count = None, 0
    loader = make_loader(subset, batch_size, shuffle=False, num_workers=num_workers)
    # one pass over the whole training split (ImageNet: 1.28M decodes), once per dataset and S: show it
    for images, _ in progress_bar(loader, total=len(loader), desc="mean image (once, then cached)", unit="batch",
                                  disable=not progress, leave=False):
        part = images.to(torch.int64).sum(0)
        total = part if total is None else total + part
        count += images.shape[0]
    if not count:
        raise DataError(f"{getattr(dataset, 'root', 'dataset')}: no readable images to compute the mean image from")
    return (total.to(torch.float64) / count).to(torch.float32).numpy()


def _default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "alexnet" / "stats"


def _key(dataset, max_images: int, seed: int) -> str:
    fp = dataset.fingerprint() if hasattr(dataset, "fingerprint") else f"n{len(dataset)}"
    return (f"{getattr(dataset, 'split', 'train')}-{getattr(dataset, 'image_size', 0)}px-"
            f"max{max_images}-seed{seed}-{fp}")


def _read_entries(path: Path) -> dict:
    try:
        d = json.loads(path.read_text())
        return d.get("entries", {}) if d.get("version") == STATS_VERSION else {}
    except (OSError, ValueError, AttributeError):
        return {}


def _writable(folder: Path) -> bool:
    return folder.is_dir() and os.access(folder, os.W_OK)


def dataset_stats(dataset, *, max_images: int = 2000, cache_dir: str | os.PathLike | None = None,
                  seed: int = 0) -> "DataStats":
    """The dataset's DataStats, read from the cache when present, else computed and cached (see module doc)."""
    root = Path(getattr(dataset, "root", "."))
    key = _key(dataset, max_images, seed)
    fallback = Path(cache_dir) if cache_dir is not None else _default_cache_dir()
    side_name = f"{STATS_FILE[:-5]}-{hashlib.sha1(str(root.resolve()).encode()).hexdigest()[:12]}.json"
    candidates = [root / STATS_FILE, fallback / side_name]
    for path in candidates:
        entry = _read_entries(path).get(key) if path.is_file() else None
        if entry:
            try:
                return DataStats.from_dict(entry)
            except DataError:
                pass
    stats = compute_stats(dataset, max_images=max_images, seed=seed)
    target = candidates[0] if _writable(root) else candidates[1]
    try:
        entries = _read_entries(target) if target.is_file() else {}
        entries[key] = stats.to_dict()
        write_text_atomic(target, json.dumps({"version": STATS_VERSION, "entries": entries}, indent=1) + "\n")
    except OSError:
        if target == candidates[0]:
            try:   # e.g. a folder that claims to be writable but is not (network mounts)
                entries = _read_entries(candidates[1]) if candidates[1].is_file() else {}
                entries[key] = stats.to_dict()
                write_text_atomic(candidates[1], json.dumps({"version": STATS_VERSION, "entries": entries}) + "\n")
            except OSError:
                pass
    return stats


def _cache_candidates(root: Path, cache_dir) -> tuple[Path, Path]:
    fallback = Path(cache_dir) if cache_dir is not None else _default_cache_dir()
    return root, fallback / hashlib.sha1(str(root.resolve()).encode()).hexdigest()[:12]


def dataset_mean_image(dataset, *, max_images: int = 0, cache_dir: str | os.PathLike | None = None,
                       seed: int = 0, progress: bool = False) -> np.ndarray:
    """The dataset's mean image float32 [C, S, S], read from the cache when present, else computed and cached
    (beside the data when that folder is writable, else under ``cache_dir``; see the module doc)."""
    root = Path(getattr(dataset, "root", "."))
    key = _key(dataset, max_images, seed)
    name = f"alexnet_mean_image-{hashlib.sha1(key.encode()).hexdigest()[:16]}.npy"
    local, fallback = _cache_candidates(root, cache_dir)
    size = int(getattr(dataset, "image_size", 0))
    for folder in (local, fallback):
        try:
            arr = np.load(folder / name, allow_pickle=False) if (folder / name).is_file() else None
        except (OSError, ValueError):
            arr = None
        if arr is not None and arr.ndim == 3 and arr.dtype == np.float32 and (not size or arr.shape[1:] == (size,
                                                                                                            size)):
            return arr
    arr = compute_mean_image(dataset, max_images=max_images, seed=seed, progress=progress)
    for folder in ((local, fallback) if _writable(local) else (fallback,)):
        try:
            with atomic_output(folder / name) as tmp:
                with open(tmp, "wb") as f:
                    np.save(f, arr, allow_pickle=False)
            break
        except (OSError, OutputError):   # a cache that cannot be written only makes the next run slower
            continue
    return arr


__all__ = ["DataStats", "STATS_FILE", "compute_mean_image", "compute_stats", "dataset_mean_image", "dataset_stats",
           "stats_from_moments"]
