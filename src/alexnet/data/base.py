"""The dataset classes every format returns: ``ds[i] -> (uint8 tensor [C, S, S], int label)``.

``ImageDataset`` holds the interface and the bad-sample policy (a sample that fails to decode in ``__getitem__`` is
recorded in ``bad_files``, logged, and replaced by the next good one; strict mode raises); ``FolderDataset`` decodes
image files per sample; ``ArrayDataset`` serves images held as one uint8 array (CIFAR-10, MNIST, packed data).  The
formats that build them live in ``alexnet.data.formats``; see ``alexnet.data.datasets`` for the whole policy.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
from pathlib import Path

import numpy as np
import torch

from ..errors import DataError
from .imageio import read_image, resize_tensor
from .validate import check_labels

log = logging.getLogger("alexnet.data")

#: the label of a sample that could not be decoded, in ``dropping_bad`` mode (never a class index)
DROPPED = -1


@contextlib.contextmanager
def dropping_bad(dataset):
    """Within the block, a sample of ``dataset`` (or of the dataset a torch ``Subset`` wraps) that fails to decode
    comes back as a blank image labelled ``DROPPED`` instead of being replaced by another sample: evaluation counts
    each image once and never a substitute.  Loader workers started inside the block inherit the setting."""
    base = getattr(dataset, "dataset", dataset)
    if not isinstance(base, ImageDataset):
        yield
        return
    before = base.__dict__.get("substitute_bad")
    base.substitute_bad = False
    try:
        yield
    finally:
        if before is None:
            del base.substitute_bad
        else:
            base.substitute_bad = before


class ImageDataset(torch.utils.data.Dataset):
    """Base class: ``ds[i] -> (uint8 [C, S, S], int label)``.

    Attributes: classes (names), targets (one int per sample), image_size (S), channels (3, or 1 for MNIST-type),
    root (the dataset folder), split, kind, strict, bad_files [(path, reason)].
    """

    kind = "?"

    #: a sample that fails to decode in ``__getitem__``: True (training) gives the next good sample instead; False
    #: (evaluation, see ``dropping_bad``) gives a blank image with label ``DROPPED``, which the evaluation leaves out
    substitute_bad = True

    def __init__(self, *, root: Path, split: str, classes: list[str], labels: np.ndarray, image_size: int,
                 channels: int, strict: bool, labels_source: str | os.PathLike | None = None):
        self.root = Path(root)
        self.split = split
        self.classes = list(classes)
        # labels in 0..classes-1, whatever file they came from (validate.py: checked when a dataset is opened)
        self._labels = np.ascontiguousarray(check_labels(labels, len(self.classes), labels_source or root))
        self.image_size = int(image_size)
        self.channels = int(channels)
        self.strict = bool(strict)
        self.bad_files: list[tuple[str, str]] = []
        self._bad_index: set[int] = set()
        self._targets: list[int] | None = None

    # -- the interface -------------------------------------------------------------------------------------
    @property
    def targets(self) -> list[int]:
        if self._targets is None:
            self._targets = self._labels.tolist()
        return self._targets

    def __len__(self) -> int:
        return int(self._labels.shape[0])

    def load(self, i: int) -> torch.Tensor:
        """Image ``i`` as uint8 [C, S, S]; raises DataError naming the file when it cannot be decoded."""
        raise NotImplementedError

    def sample_name(self, i: int) -> str:
        """A name for sample ``i`` (its file, or FILE[index] for array formats)."""
        return f"{self.root}[{i}]"

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        i = int(i)
        try:
            return self.load(i), int(self._labels[i])
        except DataError as e:
            if self.strict:
                raise
            self._note_bad(i, e)
        if not self.substitute_bad:
            return torch.zeros(self.channels, self.image_size, self.image_size, dtype=torch.uint8), DROPPED
        n = len(self)
        for k in range(1, n):
            j = (i + k) % n
            if j in self._bad_index:
                continue
            try:
                return self.load(j), int(self._labels[j])
            except DataError as e:
                self._note_bad(j, e)
        raise DataError(f"{self.root} ({self.split}): no image of this split can be decoded")

    def _note_bad(self, i: int, err: DataError) -> None:
        if i not in self._bad_index:
            self._bad_index.add(i)
            self.bad_files.append((self.sample_name(i), str(err)))
            log.warning("skipped bad image (replaced by the next good one): %s", err)

    # -- extras --------------------------------------------------------------------------------------------
    def fingerprint(self) -> str:
        """A hash of what the dataset contains (kind, split, classes, sample names, labels): stats cache key."""
        h = hashlib.sha1()
        h.update(json.dumps([self.kind, self.split, self.classes, len(self)]).encode())
        h.update(self._labels.tobytes())
        self._fingerprint_extra(h)
        return h.hexdigest()[:16]

    def _fingerprint_extra(self, h) -> None:
        pass

    def describe(self) -> dict:
        counts = np.bincount(self._labels, minlength=len(self.classes)).tolist() if len(self) else []
        return {"kind": self.kind, "root": str(self.root), "split": self.split, "images": len(self),
                "classes": len(self.classes), "class_names": self.classes, "per_class": counts,
                "image_size": self.image_size, "channels": self.channels,
                "bad_files": [list(b) for b in self.bad_files]}

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(kind={self.kind!r}, root={str(self.root)!r}, split={self.split!r}, "
                f"n={len(self)}, classes={len(self.classes)}, image_size={self.image_size}, "
                f"channels={self.channels}, bad_files={len(self.bad_files)})")


class _Batch(list):
    """A list of (image, label) samples that also carries them stacked (``images``, ``labels``): the loader's
    collate function takes the stacked tensors as they are; any other collate function sees a plain list."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor):
        super().__init__(zip(images, labels.tolist()))
        self.images, self.labels = images, labels


class FolderDataset(ImageDataset):
    """Image files on disk, decoded per sample (the direct path).  Paths are kept as one numpy bytes array (no
    per-sample Python objects, so forked loader workers do not copy them page by page)."""

    kind = "imagefolder"

    def __init__(self, *, root: Path, split: str, classes: list[str], files: list[str], labels, image_size: int,
                 strict: bool, base: Path, kind: str = "imagefolder", bad_files=()):
        super().__init__(root=root, split=split, classes=classes, labels=np.asarray(labels, dtype=np.int64),
                         image_size=image_size, channels=3, strict=strict)
        self.kind = kind
        self.base = Path(base)
        self._files = np.array([os.fsencode(f) for f in files], dtype=np.bytes_) if files else np.array([], "S1")
        self.bad_files = list(bad_files)

    def path(self, i: int) -> Path:
        return self.base / os.fsdecode(bytes(self._files[i]))

    def sample_name(self, i: int) -> str:
        return str(self.path(i))

    def load(self, i: int) -> torch.Tensor:
        return read_image(self.path(i), self.image_size, channels=self.channels)

    def _fingerprint_extra(self, h) -> None:
        h.update(self._files.tobytes())
        folders = {os.path.dirname(os.fsdecode(bytes(f))) for f in self._files[:: max(1, len(self._files) // 2000)]}
        for d in sorted(folders):   # files replaced in place change their folder's mtime (new inode on rename)
            try:
                h.update(str(os.stat(self.base / d).st_mtime_ns).encode())
            except OSError:
                pass


class ArrayDataset(ImageDataset):
    """Images held as one uint8 array [N, C, H, W] (CIFAR-10, MNIST) or a memmap of one (packed data).  Batches
    are gathered with one fancy index (``__getitems__``), so no per-sample work is needed."""

    def __init__(self, *, root: Path, split: str, classes: list[str], array, labels, image_size: int | None,
                 strict: bool, kind: str, source: str, shape: tuple | None = None,
                 labels_source: str | os.PathLike | None = None):
        shape = tuple(array.shape) if shape is None else tuple(shape)
        native = int(shape[-1])
        super().__init__(root=root, split=split, classes=classes, labels=labels,
                         image_size=image_size or native, channels=int(shape[1]), strict=strict,
                         labels_source=labels_source or source)
        self.kind = kind
        self.native_size = native
        self.source = source
        self._array = array

    def _get_array(self):
        return self._array

    def sample_name(self, i: int) -> str:
        return f"{self.source}[{i}]"

    def load(self, i: int) -> torch.Tensor:
        x = torch.from_numpy(np.array(self._get_array()[i]))
        return x if self.image_size == self.native_size else resize_tensor(x, self.image_size)

    def __getitems__(self, indices) -> _Batch:
        idx = np.asarray(indices, dtype=np.int64)
        x = torch.from_numpy(np.ascontiguousarray(self._get_array()[idx]))
        if self.image_size != self.native_size:
            x = torch.stack([resize_tensor(im, self.image_size) for im in x]) if len(x) else x
        return _Batch(x, torch.from_numpy(self._labels[idx]))


__all__ = ["DROPPED", "ArrayDataset", "FolderDataset", "ImageDataset", "dropping_bad"]
