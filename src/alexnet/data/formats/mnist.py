"""MNIST and Fashion-MNIST as their IDX files (``train-images-idx3-ubyte[.gz]``, ``train-labels-idx1-ubyte``,
``t10k-...``), in ROOT or torchvision's download layout (ROOT/MNIST/raw, ROOT/FashionMNIST/raw).  "val" is t10k.

The two datasets' files are alike; one module reads both and registers two formats, told apart in detection by
the folder names (``mnist_flavour``).  Images are one channel, 28 x 28.  An IDX file of the wrong header or size
raises DataError naming the file.
"""
from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from ...choices import SPLITS
from ...errors import DataError
from ..base import ArrayDataset
from .registry import Format, register_format

MNIST_CLASSES = [str(i) for i in range(10)]
FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                   "Ankle boot"]

IDX_NAMES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
             "val": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}


def mnist_dir(source: Path) -> Path | None:
    """The first of the usual places that holds IDX files (torchvision's MNIST/raw, FashionMNIST/raw, ...)."""
    for d in (source, source / "raw", source / "MNIST" / "raw", source / "FashionMNIST" / "raw",
              source / "fashion-mnist", source / "mnist"):
        if any((d / (n + ext)).is_file() for n in IDX_NAMES["train"] + IDX_NAMES["val"] for ext in ("", ".gz")):
            return d
    return None


def mnist_flavour(source: Path, found: Path) -> str:
    """The IDX files of MNIST and Fashion-MNIST are alike: tell them apart by the folder names (torchvision's
    FashionMNIST/raw, or a dataset folder named like fashion-mnist)."""
    try:
        names = str(found.resolve().relative_to(source.resolve().parent))
    except ValueError:
        names = found.name
    return "fashion-mnist" if "fashion" in names.lower() else "mnist"


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (optionally gzipped) as a numpy array; DataError naming the file for a wrong header or size."""
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        raise DataError(f"{path}: cannot read ({e})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise DataError(f"{path}: not an IDX file (bad magic number)")
    dtypes = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
    if raw[2] not in dtypes:
        raise DataError(f"{path}: not an IDX file (unknown data type 0x{raw[2]:02x})")
    ndim = raw[3]
    if len(raw) < 4 + 4 * ndim:
        raise DataError(f"{path}: wrong size: truncated IDX header")
    dims = tuple(int(v) for v in np.frombuffer(raw, ">u4", count=ndim, offset=4))
    dt = np.dtype(dtypes[raw[2]])
    expected = int(np.prod(dims)) * dt.itemsize
    got = len(raw) - 4 - 4 * ndim
    if got != expected:
        raise DataError(f"{path}: wrong size: {got} data bytes, expected {expected} for shape {dims}")
    return np.frombuffer(raw, dt, offset=4 + 4 * ndim).reshape(dims)


def open_mnist(source: Path, split: str, size: int | None, strict: bool, kind: str) -> ArrayDataset:
    """One split ("val" = t10k) at S = ``size`` (None: the native 28), with the class names of ``kind``."""
    d = mnist_dir(source)
    if d is None:
        raise DataError(f"{source}: no MNIST-format IDX files (expected train-images-idx3-ubyte.gz, "
                        f"train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz)")
    paths = []
    for n in IDX_NAMES[split]:
        p = next((d / (n + ext) for ext in (".gz", "") if (d / (n + ext)).is_file()), None)
        if p is None:
            raise DataError(f"{d}: no '{split}' split (expected {d / (n + '.gz')})")
        paths.append(p)
    x, y = read_idx(paths[0]), read_idx(paths[1])
    if x.ndim != 3 or x.dtype != np.uint8:
        raise DataError(f"{paths[0]}: expected uint8 images of shape (N, H, W), got {x.dtype} {x.shape}")
    if y.ndim != 1 or y.shape[0] != x.shape[0]:
        raise DataError(f"{paths[1]}: wrong size: {y.shape[0] if y.ndim else 0} labels for {x.shape[0]} images "
                        f"in {paths[0].name}")
    if x.shape[1] != x.shape[2]:
        raise DataError(f"{paths[0]}: images are {x.shape[1]}x{x.shape[2]}, expected square")
    if kind == "auto":
        kind = mnist_flavour(source, d)
    classes = FASHION_CLASSES if kind == "fashion-mnist" else MNIST_CLASSES
    return ArrayDataset(root=d, split=split, classes=classes, array=np.ascontiguousarray(x[:, None]),
                        labels=y, image_size=size, strict=strict, kind=kind, source=str(paths[0]),
                        labels_source=paths[1])   # labels checked in 0..9 there, naming the labels file


def splits(root: Path) -> list[str]:
    d = mnist_dir(root)
    if d is None:
        return []
    return [s for s in SPLITS if all(any((d / (n + e)).is_file() for e in ("", ".gz")) for n in IDX_NAMES[s])]


def present(root: Path) -> bool:
    return mnist_dir(root) is not None


def _register(name: str, torchvision_class: str) -> Format:
    def detect(root: Path) -> bool:
        d = mnist_dir(root)
        return d is not None and mnist_flavour(root, d) == name

    def open_split(root: Path, split: str, *, image_size: int | None, strict: bool,
                   check: bool = True) -> ArrayDataset:
        return open_mnist(root, split, image_size, strict, name)

    return register_format(Format(name=name, priority=30, detect=detect, open=open_split, splits=splits,
                                  torchvision_class=torchvision_class, present=present))


MNIST_FORMAT = _register("mnist", "MNIST")
FASHION_FORMAT = _register("fashion-mnist", "FashionMNIST")

__all__ = ["FASHION_CLASSES", "FASHION_FORMAT", "IDX_NAMES", "MNIST_CLASSES", "MNIST_FORMAT", "mnist_dir",
           "mnist_flavour", "open_mnist", "read_idx"]
