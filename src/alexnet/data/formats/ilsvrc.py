"""ILSVRC-2012 (the paper's data, section 2): ``root/train/<wnid>/*.JPEG`` plus the flat validation folder
``root/val/ILSVRC2012_val_00000001.JPEG ...`` labelled by its ground truth.

Ground truth: the devkit's ``ILSVRC2012_validation_ground_truth.txt`` (class numbers in the devkit's order, mapped
to wnids by ``map_clsloc.txt`` or ``meta.mat``) or Kaggle's ``LOC_val_solution.csv``, looked for in the root, its
parent and the devkit's data folder.  Labels index the train split's sorted wnids, like an image folder's.  The
train split (and a val split already sorted into class folders) is read as an image folder.
"""
from __future__ import annotations

import csv
import os
from pathlib import Path

from ...errors import DataError
from ..base import FolderDataset
from ..imageio import is_image_name
from .imagefolder import (
    DEFAULT_FOLDER_SIZE,
    class_dirs,
    display_names,
    drop_bad_files,
    has_flat_images,
    not_image_reason,
    open_imagefolder,
    raise_strict,
    read_class_names,
    split_dir,
)
from .imagefolder import splits as folder_splits
from .registry import Format, register_format

# ILSVRC-2012 ground truth and class-number maps, looked for in the root, its parent and the devkit's data folder
GT_DEVKIT = "ILSVRC2012_validation_ground_truth.txt"
GT_KAGGLE = "LOC_val_solution.csv"
DEVKIT_MAPS = ("map_clsloc.txt", "ILSVRC2012_mapping.txt")


def _find_file(root: Path, names: tuple[str, ...]) -> Path | None:
    places = [root, root.parent, root / "devkit" / "data", root / "ILSVRC2012_devkit_t12" / "data",
              root.parent / "ILSVRC2012_devkit_t12" / "data", root / "LOC"]
    for folder in places:
        for n in names:
            if (folder / n).is_file():
                return folder / n
    return None


def _kaggle_labels(kaggle: Path) -> dict[str, str]:
    out = {}
    try:
        with open(kaggle, newline="") as f:
            rows = csv.reader(f)
            header = next(rows, None)
            if not header or header[0].strip() != "ImageId":
                raise DataError(f"{kaggle}: expected a header 'ImageId,PredictionString'")
            for row in rows:
                if len(row) >= 2 and row[1].split():
                    out[row[0].strip()] = row[1].split()[0]
    except (OSError, csv.Error, UnicodeDecodeError) as e:
        raise DataError(f"{kaggle}: cannot read ({e})") from None
    return out


def val_labels(root: Path) -> tuple[dict[str, str], Path]:
    """({image stem: wnid}, the ground-truth file) for the flat ILSVRC-2012 validation folder."""
    kaggle = _find_file(root, (GT_KAGGLE,))
    if kaggle is not None:
        return _kaggle_labels(kaggle), kaggle
    gt = _find_file(root, (GT_DEVKIT,))
    if gt is None:
        raise DataError(f"{root / 'val'}: a flat ILSVRC validation folder needs its labels: {GT_DEVKIT} (with the "
                        f"devkit's meta.mat or map_clsloc.txt) or {GT_KAGGLE}, in {root} or its parent")
    id_to_wnid = devkit_id_map(root, gt)
    try:
        ids = [int(x) for x in gt.read_text().split()]
    except ValueError:
        raise DataError(f"{gt}: expected one class number (1-1000) per line") from None
    out = {}
    for k, cid in enumerate(ids):
        if cid not in id_to_wnid:
            raise DataError(f"{gt}: line {k + 1}: class number {cid} is not in the devkit's class list")
        out[f"ILSVRC2012_val_{k + 1:08d}"] = id_to_wnid[cid]
    return out, gt


def devkit_id_map(root: Path, gt: Path) -> dict[int, str]:
    """ILSVRC2012_ID -> wnid, in the devkit's class order: map_clsloc.txt ("n02119789 1 kit_fox") or meta.mat."""
    m = _find_file(root, DEVKIT_MAPS) or _find_file(gt.parent, DEVKIT_MAPS)
    if m is not None:
        out = {}
        for line in m.read_text().splitlines():
            parts = line.split()
            if len(parts) >= 2 and parts[1].isdigit():
                out[int(parts[1])] = parts[0]
        if out:
            return out
        raise DataError(f"{m}: expected lines 'WNID ID NAME' (e.g. 'n02119789 1 kit_fox')")
    meta = _find_file(root, ("meta.mat",)) or _find_file(gt.parent, ("meta.mat",))
    if meta is not None:
        from ..matfile import read_ilsvrc_meta

        return read_ilsvrc_meta(meta)
    raise DataError(f"{gt}: its class numbers use the devkit's order; put the devkit's meta.mat or map_clsloc.txt "
                    f"beside it")


def open_ilsvrc_val(root: Path, size: int, strict: bool, check: bool = True) -> FolderDataset:
    """The flat validation folder at S = ``size``, labelled by its ground truth."""
    vdir = split_dir(root, "val")
    if vdir is None:
        raise DataError(f"{root}: no 'val' split (expected {root / 'val'}/ with images)")
    mapping, gt_file = val_labels(root)
    tdir = split_dir(root, "train")
    wnids = class_dirs(tdir) if tdir is not None else sorted(set(mapping.values()))
    index = {w: k for k, w in enumerate(wnids)}
    files, labels, bad = [], [], []
    for e in sorted(os.scandir(vdir), key=lambda e: e.name):
        if e.name.startswith(".") or not e.is_file():
            continue
        if not is_image_name(e.name):
            bad.append((e.path, not_image_reason(e.name)))
            continue
        stem = os.path.splitext(e.name)[0]
        wnid = mapping.get(stem)
        if wnid is None:
            bad.append((e.path, f"no label in {gt_file.name}"))
        elif wnid not in index:
            bad.append((e.path, f"label {wnid} is not a class of {tdir}"))
        else:
            files.append(e.path)
            labels.append(index[wnid])
    files, labels = drop_bad_files(files, labels, bad, size, check)
    if strict:
        raise_strict(bad, str(vdir))
    if not files:
        raise DataError(f"{vdir}: no labelled images found")
    names = display_names(wnids, read_class_names(root))
    ds = FolderDataset(root=root, split="val", classes=names, files=[os.path.relpath(f, vdir) for f in files],
                       labels=labels, image_size=size, strict=strict, base=vdir, kind="ilsvrc", bad_files=bad)
    ds.class_ids = wnids
    return ds


def detect(root: Path) -> bool:
    vdir = split_dir(root, "val")
    return vdir is not None and has_flat_images(vdir)


def open_split(root: Path, split: str, *, image_size: int | None, strict: bool, check: bool = True) -> FolderDataset:
    size = int(image_size or DEFAULT_FOLDER_SIZE)
    if split == "val" and detect(root):
        return open_ilsvrc_val(root, size, strict, check)
    return open_imagefolder(root, split, size, strict, check)


FORMAT = register_format(Format(name="ilsvrc", priority=40, detect=detect, open=open_split, splits=folder_splits))

__all__ = ["DEVKIT_MAPS", "FORMAT", "GT_DEVKIT", "GT_KAGGLE", "devkit_id_map", "open_ilsvrc_val", "val_labels"]
