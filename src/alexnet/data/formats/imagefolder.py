"""Image folders: ``root/train/<class>/<images>``, ``root/val/<class>/<images>`` (torchvision's ImageFolder layout).

Split folders may also be called training / validation / valid.  Class names come from the folder names, shown
through a synset_words-style file beside the data when there is one (ILSVRC wnids -> words).  Files are checked
when opened (``check_files``: size, first/last bytes, one decode of a suspect file); bad ones and empty class
folders go to ``bad_files`` and are left out (strict: DataError); class folders are walked by
``validate.FolderWalk`` (each real folder once).  The helpers here are shared with ``ilsvrc``.
"""
from __future__ import annotations

import os
from pathlib import Path

from ...choices import SPLITS
from ...errors import DataError
from ..base import FolderDataset
from ..imageio import is_image_name
from ..validate import (
    FolderWalk,
    check_class_name,
    check_files,
    drop_bad_files,
    not_image_reason,
    printable,
    raise_strict,
)
from .registry import Format, register_format

DEFAULT_FOLDER_SIZE = 256
# folder names tried for each split of an image folder, in order
SPLIT_DIRS = {"train": ("train", "training"), "val": ("val", "validation", "valid")}
# class-name files ("n01440764 tench, Tinca tinca"), looked for in the root and its parent
NAME_FILES = ("synset_words.txt", "LOC_synset_mapping.txt", "words.txt")


def split_dir(root: Path, split: str) -> Path | None:
    """The folder of ``split`` under ``root`` (first of its SPLIT_DIRS names that exists), or None."""
    for name in SPLIT_DIRS[split]:
        if (root / name).is_dir():
            return root / name
    return None


def class_dirs(folder: Path) -> list[str]:
    """The class folder names in a split folder, sorted (hidden ones left out)."""
    return sorted(e.name for e in os.scandir(folder) if e.is_dir() and not e.name.startswith("."))


def has_flat_images(folder: Path) -> bool:
    """Whether ``folder`` holds image files directly (ILSVRC's flat validation folder), not only class folders."""
    for e in os.scandir(folder):
        if e.is_file() and is_image_name(e.name) and not e.name.startswith("."):
            return True
    return False


def list_class_folder(folder: str) -> tuple[list[str], list[tuple[str, str]]]:
    """(image paths, [(other entry, reason)]) under one class folder, recursively, in sorted order; every real
    folder is entered once (``validate.FolderWalk``: symlink loops are listed, not followed)."""
    return FolderWalk(os.path.dirname(os.path.abspath(folder))).class_folder(folder)


def read_class_names(root: Path) -> dict[str, str]:
    """{wnid: name} from a synset_words-style file ("n01440764 tench, Tinca tinca") beside the data, if any."""
    for folder in (root, root.parent):
        for name in NAME_FILES:
            f = folder / name
            if f.is_file():
                out = {}
                for line in f.read_text(errors="replace").splitlines():
                    parts = line.strip().split(None, 1)
                    if len(parts) == 2:
                        out[parts[0]] = parts[1].strip()
                if out:
                    return out
    return {}


def display_names(ids: list[str], names: dict[str, str]) -> list[str]:
    """Class names for folder ids: the name file's words, the id added where two classes share words."""
    if not names:
        return list(ids)
    out = [names.get(i, i) for i in ids]
    seen: dict[str, int] = {}
    for n in out:
        seen[n] = seen.get(n, 0) + 1
    return [f"{n} ({i})" if seen[n] > 1 else n for n, i in zip(out, ids)]   # ILSVRC has two "crane"s


def _class_ids(root: Path, split: str, sdir: Path) -> tuple[list[str], list[str]]:
    """(class ids of the label space, class folders present in ``sdir``)."""
    present = class_dirs(sdir)
    if not present:
        raise DataError(f"{sdir}: no class folders (expected {sdir}/<class>/<image files>)")
    ids = present
    tdir = split_dir(root, "train") if split != "train" else None
    if tdir is not None:
        # labels must mean the same classes as in training: take the train split's class list; a class with no
        # folder here simply has no samples, a class unknown to the train split is an error
        ids = class_dirs(tdir) or present
        extra = sorted(set(present) - set(ids))
        if extra:
            raise DataError(f"{sdir}: class folder(s) {extra[:5]} are not in the train split {tdir}")
    return ids, present


def open_imagefolder(root: Path, split: str, size: int, strict: bool, check: bool = True) -> FolderDataset:
    """One split of an image folder at S = ``size``."""
    sdir = split_dir(root, split)
    if sdir is None:
        raise DataError(f"{root}: no '{split}' split (expected {root / SPLIT_DIRS[split][0]}/<class>/<images>)")
    ids, present = _class_ids(root, split, sdir)
    files, labels, bad = [], [], []
    walk = FolderWalk(sdir)
    for label, cid in enumerate(ids):
        if cid not in present:
            continue
        folder = str(sdir / cid)
        check_class_name(folder)
        imgs, other = walk.class_folder(folder)
        bad.extend(other)
        if not imgs and not any(p == folder for p, _ in other):
            bad.append((folder, "empty class folder: no image files"))
        files.extend(imgs)
        labels.extend([label] * len(imgs))
    files, labels = drop_bad_files(files, labels, bad, size, check)
    if strict:
        raise_strict(bad, f"{sdir}")
    if not files:
        first = f"; first bad: {printable(bad[0][0])}: {bad[0][1]}" if bad else ""
        raise DataError(f"{printable(sdir)}: no readable images (expected {printable(sdir)}/<class>/<image files>)"
                        f"{first}")
    names = display_names(ids, read_class_names(root))
    rel = [os.path.relpath(f, sdir) for f in files]
    ds = FolderDataset(root=root, split=split, classes=names, files=rel, labels=labels, image_size=size,
                       strict=strict, base=sdir, bad_files=bad)
    ds.class_ids = ids
    return ds


def detect(root: Path) -> bool:
    return split_dir(root, "train") is not None or split_dir(root, "val") is not None


def open_split(root: Path, split: str, *, image_size: int | None, strict: bool, check: bool = True) -> FolderDataset:
    return open_imagefolder(root, split, int(image_size or DEFAULT_FOLDER_SIZE), strict, check)


def splits(root: Path) -> list[str]:
    return [s for s in SPLITS if split_dir(root, s) is not None]


FORMAT = register_format(Format(name="imagefolder", priority=50, detect=detect, open=open_split, splits=splits))

__all__ = ["DEFAULT_FOLDER_SIZE", "FORMAT", "NAME_FILES", "SPLIT_DIRS", "check_files", "class_dirs", "display_names",
           "drop_bad_files", "has_flat_images", "list_class_folder", "not_image_reason", "open_imagefolder",
           "raise_strict", "read_class_names", "split_dir"]
