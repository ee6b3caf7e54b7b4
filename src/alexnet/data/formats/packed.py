"""Packed folders written by ``alexnet data pack`` (``alexnet.data.pack``): per split, uint8 [N, C, S, S] images
in one raw file read through a memmap, int64 labels, and an index ``alexnet_pack.json``.  A file of the wrong size
raises DataError naming it and asking for a re-pack.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ...choices import SPLITS
from ...errors import DataError
from ..base import ArrayDataset
from .registry import Format, register_format

PACK_META = "alexnet_pack.json"
PACK_FORMAT = "alexnet-packed"


class PackedDataset(ArrayDataset):
    """A split written by ``alexnet data pack``: uint8 [N, C, S, S] in a raw file read through a memmap.  The memmap
    is opened lazily in each process (pickling the dataset for loader workers never copies the images)."""

    def __init__(self, *, root: Path, split: str, meta: dict, image_size: int | None, strict: bool):
        info = meta["splits"][split]   # fields checked by check_pack_meta
        self._file = Path(root) / info["images"]
        self._shape = (int(info["count"]), int(meta["channels"]), int(meta["size"]), int(meta["size"]))
        expected = int(np.prod(self._shape))
        actual = self._file.stat().st_size if self._file.exists() else -1
        if actual != expected:
            raise DataError(f"{self._file}: {'missing' if actual < 0 else f'{actual} bytes'}; expected {expected} "
                            f"bytes ({self._shape[0]} images of {self._shape[1]}x{self._shape[2]}x{self._shape[3]}); "
                            f"re-run `alexnet data pack`")
        labels_file = Path(root) / info["labels"]
        try:
            labels = np.load(labels_file, allow_pickle=False)
        except (OSError, ValueError) as e:
            raise DataError(f"{labels_file}: cannot read the labels ({e})") from None
        if labels.shape != (self._shape[0],):
            raise DataError(f"{labels_file}: {labels.shape[0] if labels.ndim else 0} labels for "
                            f"{self._shape[0]} images; re-run `alexnet data pack`")
        self._mm = None
        # the labels are checked in 0..classes-1 there (ImageDataset), naming the labels file
        super().__init__(root=root, split=split, classes=meta["classes"], array=None, labels=labels,
                         image_size=image_size, strict=strict, kind="packed", source=str(self._file),
                         shape=self._shape, labels_source=labels_file)
        self.bad_files = [tuple(b) for b in info.get("bad_files", [])]
        self._names_file = Path(root) / info["files"] if info.get("files") else None

    def _get_array(self):
        if self._mm is None:
            self._mm = np.memmap(self._file, dtype=np.uint8, mode="r", shape=self._shape)
        return self._mm

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_mm"] = None
        return state

    def _fingerprint_extra(self, h) -> None:
        h.update(str(self._file.stat().st_mtime_ns).encode())


def read_pack_meta(folder: Path) -> dict | None:
    """The pack index of ``folder`` (None if it has none); DataError if it is unreadable or not ours."""
    f = Path(folder) / PACK_META
    if not f.is_file():
        return None
    try:
        meta = json.loads(f.read_text())
    except (OSError, ValueError) as e:
        raise DataError(f"{f}: unreadable pack index ({e}); re-run `alexnet data pack`") from None
    if not isinstance(meta, dict) or meta.get("format") != PACK_FORMAT:
        got = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
        raise DataError(f"{f}: not an alexnet pack index (format {got!r})")
    check_pack_meta(meta, f)
    return meta


def _positive_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v > 0


def _plain_name(v) -> bool:
    """A file name inside the pack folder (no folders, no way out of it)."""
    return isinstance(v, str) and v not in ("", ".", "..") and "/" not in v and "\\" not in v and "\0" not in v


def check_pack_meta(meta: dict, f: Path) -> None:
    """DataError naming the field unless the index has what opening a split needs: size, channels, classes, and
    per split a count and the names of its files (inside the pack folder)."""
    def bad(field: str, expected: str):
        raise DataError(f"{f}: field {field!r} is {meta_get(field)!r}; expected {expected} "
                        f"(re-run `alexnet data pack`)")

    def meta_get(field: str):
        node = meta
        for part in field.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        return node

    if not _positive_int(meta.get("size")):
        bad("size", "a positive whole number of pixels")
    if meta.get("channels") not in (1, 3):
        bad("channels", "1 or 3")
    classes = meta.get("classes")
    if not (isinstance(classes, list) and classes and all(isinstance(c, str) for c in classes)):
        bad("classes", "a non-empty list of class names")
    splits = meta.get("splits")
    if not (isinstance(splits, dict) and splits and set(splits) <= set(SPLITS)):
        bad("splits", f"an object with the splits {' and/or '.join(SPLITS)}")
    for split, info in splits.items():
        if not isinstance(info, dict):
            bad(f"splits.{split}", "an object (count, images, labels)")
        count = info.get("count")
        if not (isinstance(count, int) and not isinstance(count, bool) and count >= 0):
            bad(f"splits.{split}.count", "a whole number of images")
        for key in ("images", "labels"):
            if not _plain_name(info.get(key)):
                bad(f"splits.{split}.{key}", "a file name inside the pack folder")
        if info.get("files") is not None and not _plain_name(info.get("files")):
            bad(f"splits.{split}.files", "a file name inside the pack folder")


def open_packed(source: Path, split: str, size: int | None, strict: bool) -> PackedDataset:
    """One split of a packed folder (``size`` None: the size it was packed at)."""
    meta = read_pack_meta(source)
    if meta is None:
        raise DataError(f"{source}: not a packed dataset (expected {source / PACK_META}; "
                        f"write one with `alexnet data pack SRC {source}`)")
    if split not in meta.get("splits", {}):
        raise DataError(f"{source}: no '{split}' split in the pack (has {sorted(meta.get('splits', {}))})")
    return PackedDataset(root=source, split=split, meta=meta, image_size=size, strict=strict)


def detect(root: Path) -> bool:
    return (root / PACK_META).is_file()


def open_split(root: Path, split: str, *, image_size: int | None, strict: bool, check: bool = True) -> PackedDataset:
    return open_packed(root, split, image_size, strict)


def splits(root: Path) -> list[str]:
    meta = read_pack_meta(root) or {}
    return [s for s in SPLITS if s in meta.get("splits", {})]


FORMAT = register_format(Format(name="packed", priority=10, detect=detect, open=open_split, splits=splits))

__all__ = ["FORMAT", "PACK_FORMAT", "PACK_META", "PackedDataset", "check_pack_meta", "open_packed",
           "read_pack_meta"]
