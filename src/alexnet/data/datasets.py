"""One ``open_dataset`` for image folders, ILSVRC-2012, CIFAR-10, (Fashion-)MNIST and packed data.

Every dataset yields ``(uint8 tensor [C, S, S], int label)``: the image with its shorter side resized to S and the
centre S x S square cut out (paper, section 2).  Crops, flips, colour augmentation and normalisation happen later,
batched, on the training device (``alexnet.data.transforms``).

Bad input policy (the checks themselves live in ``alexnet.data.validate``).  Image folders are checked when
opened, cheaply: every file's size, first/last bytes and header (``imageio.sniff``: zero-byte files, files that are
not images, symlink loops, images over Pillow's pixel limit (decompression bombs), and JPEG/PNG files without their
end marker, which are then decoded once to confirm), empty class folders, and symlinked folders that loop or repeat a
folder already walked (each real folder is walked once).  Those go to ``dataset.bad_files`` as (path, reason) and
are left out of the dataset; with ``strict=True`` they raise DataError instead.  A file that still fails to decode
later, in ``__getitem__`` (rare: corrupt data inside a well-formed file), is recorded in that process's
``bad_files``, logged as a warning on the ``alexnet.data`` logger, and replaced by the next good sample (index
i+1, i+2, ...; its own label comes with it), so a long run never stops on one bad file; strict mode raises.
Evaluation never scores a substitute: inside ``base.dropping_bad`` such a sample is left out (``evaluate``'s
``dropped``).  Whole-dataset files (CIFAR batches, IDX files, packed arrays and their index) of the wrong size or
format, and labels outside 0..classes-1 in any format, always raise DataError naming the file: nothing sensible can
be skipped there.

Each format is a module of ``alexnet.data.formats`` registered by name (the names of
``alexnet.choices.DATASET_KINDS``); this module dispatches to them and walks their detectors for kind "auto".
The dataset classes live in ``alexnet.data.base``; the names this module had before the formats were split out
(``ArrayDataset``, ``PackedDataset``, ``read_idx``, ``read_pack_meta``, ``PACK_META``, ...) are still importable
from here.
"""
from __future__ import annotations

import os
from pathlib import Path

from ..choices import DATASET_KINDS, SPLITS
from ..errors import DataError
from .base import ArrayDataset, FolderDataset, ImageDataset
from .formats import detection_order, downloadable, get_format
from .formats.cifar10 import CIFAR10_CLASSES
from .formats.ilsvrc import DEVKIT_MAPS, GT_DEVKIT, GT_KAGGLE
from .formats.imagefolder import DEFAULT_FOLDER_SIZE, NAME_FILES, SPLIT_DIRS
from .formats.mnist import FASHION_CLASSES, MNIST_CLASSES, read_idx
from .formats.packed import PACK_FORMAT, PACK_META, PackedDataset, read_pack_meta

KINDS = DATASET_KINDS   # the old name of the choices' list


def _spoken_list(names: list[str], last: str) -> str:
    return ", ".join(names[:-1]) + f" {last} " + names[-1] if len(names) > 1 else "".join(names)


def detect_kind(source: Path) -> str:
    """What ``source`` holds: packed, cifar10, mnist/fashion-mnist, ilsvrc (flat val) or imagefolder (the first
    registered format, in detection order, whose detector recognises it)."""
    for fmt in detection_order():
        if fmt.detect(source):
            return fmt.name
    raise DataError(f"{source}: cannot tell what dataset this is; expected an image folder ({source}/train/<class>/"
                    f"<images>, {source}/val/...), CIFAR-10 python batches (data_batch_1, test_batch), MNIST IDX "
                    f"files (train-images-idx3-ubyte.gz, ...) or a folder written by `alexnet data pack`")


def available_splits(source: str | os.PathLike, kind: str = "auto") -> list[str]:
    """The splits ("train", "val") that ``source`` has, without opening them."""
    root = Path(source).expanduser()
    if not root.is_dir():
        raise DataError(f"{root}: no such folder")
    k = detect_kind(root) if kind == "auto" else kind
    return get_format(k).splits(root)


def download_dataset(source: Path, kind: str) -> None:
    """Fetch dataset ``kind`` into ``source`` with torchvision's downloader (train and test sets)."""
    try:
        import torchvision.datasets as tvd
    except ImportError as e:  # pragma: no cover - torchvision is a dependency
        raise DataError(f"--download needs torchvision ({e})") from None
    fmt = get_format(kind) if kind in DATASET_KINDS and kind != "auto" else None
    if fmt is None or not fmt.torchvision_class:
        raise DataError(f"{source}: --download works for {_spoken_list(downloadable(), 'and')} (kind given: "
                        f"{kind}); name the dataset with --dataset")
    cls = getattr(tvd, fmt.torchvision_class)
    source.mkdir(parents=True, exist_ok=True)
    try:
        for train in (True, False):
            cls(str(source), train=train, download=True)
    except Exception as e:  # network errors come in many types
        raise DataError(f"{source}: download of {kind} failed ({type(e).__name__}: {e})") from None


def _check_arguments(split: str, kind: str, image_size: int | None) -> None:
    if split not in SPLITS:
        raise DataError(f"split must be one of {SPLITS}; got {split!r}")
    if kind not in KINDS:
        raise DataError(f"dataset kind must be one of {KINDS}; got {kind!r}")
    if image_size is not None and int(image_size) < 1:
        raise DataError(f"image_size must be >= 1; got {image_size}")


def _download_if_missing(root: Path, kind: str) -> None:
    if kind in downloadable():
        if not (root.is_dir() and get_format(kind).present(root)):
            download_dataset(root, kind)
    elif kind == "auto" and not root.exists():
        raise DataError(f"{root}: --download needs the dataset named (--dataset "
                        f"{_spoken_list(downloadable(), 'or')})")


def open_dataset(source: str | os.PathLike, split: str = "train", *, image_size: int | None = None,
                 strict: bool = False, download: bool = False, kind: str = "auto",
                 check: bool = True) -> ImageDataset:
    """Open one split of a dataset folder; see the module docstring for formats and the bad-input policy.

    source: a folder.  kind "auto" detects an image folder (root/train/<class>/..., root/val/<class>/...), the
    ILSVRC-2012 flat validation folder with its ground truth, CIFAR-10 python batches, MNIST / Fashion-MNIST IDX
    files, or a folder written by ``alexnet data pack``.  split: "train" | "val" (CIFAR/MNIST: "val" = test set).
    image_size: S (default 256 for image folders, the native size for CIFAR (32) / MNIST (28) / packed data).
    download: fetch CIFAR-10 / (Fashion-)MNIST with torchvision's downloaders when missing (kind must be named).
    check: the up-front file checks of image folders (reads 64 bytes and the header of each file, in threads: about
    46 us a file from a warm cache on 2 shared cores, 20 us without the header; on a cold network disk with millions
    of files this takes minutes: check=False leaves every bad file to the substitute-on-read policy).
    """
    _check_arguments(split, kind, image_size)
    root = Path(source).expanduser()
    if download:
        _download_if_missing(root, kind)
    if not root.exists():
        raise DataError(f"{root}: no such folder (expected a dataset folder: {root}/train/<class>/<images>, "
                        f"CIFAR-10 batches, MNIST IDX files or a packed dataset)")
    if not root.is_dir():
        raise DataError(f"{root}: not a folder (expected a dataset folder)")
    k = detect_kind(root) if kind == "auto" else kind
    return get_format(k).open(root, split, image_size=image_size, strict=strict, check=check)


__all__ = ["ArrayDataset", "CIFAR10_CLASSES", "DEFAULT_FOLDER_SIZE", "DEVKIT_MAPS", "FASHION_CLASSES",
           "FolderDataset", "GT_DEVKIT", "GT_KAGGLE", "ImageDataset", "KINDS", "MNIST_CLASSES", "NAME_FILES",
           "PACK_FORMAT", "PACK_META", "PackedDataset", "SPLITS", "SPLIT_DIRS", "available_splits", "detect_kind",
           "download_dataset", "open_dataset", "read_idx", "read_pack_meta"]
