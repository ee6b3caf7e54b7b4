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
        info = meta["splits"][split]
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
        super().__init__(root=root, split=split, classes=meta["classes"], array=None, labels=labels,
                         image_size=image_size, strict=strict, kind="packed", source=str(self._file),
                         shape=self._shape)
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
    if meta.get("format") != PACK_FORMAT:
        raise DataError(f"{f}: not an alexnet pack index (format {meta.get('format')!r})")
    return meta


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

__all__ = ["FORMAT", "PACK_FORMAT", "PACK_META", "PackedDataset", "open_packed", "read_pack_meta"]
