"""CIFAR-10 as its python batches (``data_batch_1..5``, ``test_batch``, ``batches.meta``), in ROOT or
ROOT/cifar-10-batches-py (torchvision's download layout).  Used for the paper-era small-image experiments
(Krizhevsky's four-layer net of Figure 1); "val" is the test batch.

The batches are pickles: they are read with an unpickler that allows only numpy arrays and plain containers, so a
doctored file cannot run code.  A batch of the wrong size or format raises DataError naming the file.
"""
from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from ...errors import DataError
from ..base import ArrayDataset
from ..validate import check_labels
from .registry import Format, register_format

CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


class _SafeUnpickler(pickle.Unpickler):
    """CIFAR batches are pickles: allow only what numpy arrays and plain containers need."""

    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "scalar"),
               ("numpy._core.multiarray", "scalar"), ("_codecs", "encode"), ("copy_reg", "_reconstructor"),
               ("copyreg", "_reconstructor"), ("__builtin__", "object"), ("builtins", "object")}

    def find_class(self, module, name):
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def load_pickle(path: Path) -> dict:
    """A CIFAR batch (a pickled dict) read through the restricted unpickler; its keys as str."""
    try:
        with open(path, "rb") as f:
            d = _SafeUnpickler(f, encoding="bytes").load()
    except (OSError, pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, ImportError) as e:
        raise DataError(f"{path}: not a CIFAR python batch ({type(e).__name__}: {e})") from None
    if not isinstance(d, dict):
        raise DataError(f"{path}: not a CIFAR python batch (a {type(d).__name__}, expected a dict)")
    return {(k.decode() if isinstance(k, bytes) else k): v for k, v in d.items()}


def cifar_dir(source: Path) -> Path | None:
    """The folder holding the batches: ``source`` or ``source/cifar-10-batches-py``; None if neither."""
    for d in (source, source / "cifar-10-batches-py"):
        if (d / "data_batch_1").is_file() or (d / "test_batch").is_file():
            return d
    return None


def read_cifar_batch(path: Path, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 [N, 3, 32, 32], int64 [N]) from one batch file, checked for size and label range."""
    d = load_pickle(path)
    data, labels = d.get("data"), d.get("labels", d.get("fine_labels"))
    if not isinstance(data, np.ndarray) or labels is None:
        raise DataError(f"{path}: not a CIFAR python batch (expected keys 'data' and 'labels')")
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise DataError(f"{path}: wrong size: data is {data.dtype} {tuple(data.shape)}, expected uint8 (N, 3072) "
                        f"(N images of 3 x 32 x 32)")
    try:
        labels = np.asarray(labels)
    except (TypeError, ValueError):
        raise DataError(f"{path}: 'labels' is not a list of class numbers") from None
    if labels.shape != (data.shape[0],):
        raise DataError(f"{path}: wrong size: {labels.size} labels for {data.shape[0]} images")
    return data.reshape(-1, 3, 32, 32), check_labels(labels, num_classes, path)


def open_cifar10(source: Path, split: str, size: int | None, strict: bool) -> ArrayDataset:
    """One split of CIFAR-10 ("val" = test_batch) at S = ``size`` (None: the native 32)."""
    d = cifar_dir(source)
    if d is None:
        raise DataError(f"{source}: no CIFAR-10 python batches (expected data_batch_1..5 and test_batch in "
                        f"{source} or {source / 'cifar-10-batches-py'})")
    classes = CIFAR10_CLASSES
    if (d / "batches.meta").is_file():
        meta = load_pickle(d / "batches.meta")
        names = meta.get("label_names")
        if names is not None and not (isinstance(names, (list, tuple)) and names):
            raise DataError(f"{d / 'batches.meta'}: 'label_names' must be a non-empty list of class names")
        if names:
            classes = [n.decode(errors="replace") if isinstance(n, bytes) else str(n) for n in names]
    if split == "train":
        files = sorted((p for p in d.glob("data_batch_*") if p.name[11:].isdigit()), key=lambda p: int(p.name[11:]))
    else:
        files = [d / "test_batch"] if (d / "test_batch").is_file() else []
    if not files:
        want = "data_batch_1..5" if split == "train" else "test_batch"
        raise DataError(f"{d}: no '{split}' split (expected {want})")
    parts = [read_cifar_batch(f, len(classes)) for f in files]
    x = np.concatenate([p[0] for p in parts]) if len(parts) > 1 else parts[0][0]
    y = np.concatenate([p[1] for p in parts]) if len(parts) > 1 else parts[0][1]
    src = str(files[0]) if len(files) == 1 else f"{d}/{files[0].name}..{files[-1].name}"
    return ArrayDataset(root=d, split=split, classes=classes, array=np.ascontiguousarray(x), labels=y,
                        image_size=size, strict=strict, kind="cifar10", source=src)


def detect(root: Path) -> bool:
    return cifar_dir(root) is not None


def open_split(root: Path, split: str, *, image_size: int | None, strict: bool, check: bool = True) -> ArrayDataset:
    return open_cifar10(root, split, image_size, strict)


def splits(root: Path) -> list[str]:
    d = cifar_dir(root)
    if d is None:
        return []
    return [s for s, ok in (("train", (d / "data_batch_1").is_file()), ("val", (d / "test_batch").is_file())) if ok]


FORMAT = register_format(Format(name="cifar10", priority=20, detect=detect, open=open_split, splits=splits,
                                torchvision_class="CIFAR10", present=detect))

__all__ = ["CIFAR10_CLASSES", "FORMAT", "cifar_dir", "load_pickle", "open_cifar10", "read_cifar_batch"]
