"""Image folders: ``root/train/<class>/<images>``, ``root/val/<class>/<images>`` (torchvision's ImageFolder layout).

Split folders may also be called training / validation / valid.  Class names come from the folder names, shown
through a synset_words-style file beside the data when there is one (ILSVRC wnids -> words).  Files are checked
when opened (``check_files``: size, first/last bytes, one decode of a suspect file); bad ones and empty class
folders go to ``bad_files`` and are left out (strict: DataError).  The helpers here are shared with ``ilsvrc``.
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ...choices import SPLITS
from ...errors import DataError
from ..base import FolderDataset
from ..imageio import decode_pil, is_image_name, sniff
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


def not_image_reason(name: str) -> str:
    return f"not an image file name (extension {os.path.splitext(name)[1] or 'none'})"


def list_class_folder(folder: str) -> tuple[list[str], list[tuple[str, str]]]:
    """(image paths, [(other file, reason)]) under one class folder, recursively, in sorted order."""
    images, other = [], []
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if name.startswith("."):
                continue
            full = os.path.join(dirpath, name)
            if is_image_name(name):
                images.append(full)
            else:
                other.append((full, not_image_reason(name)))
    return images, other


def check_files(paths: list[str], size: int) -> dict[str, str]:
    """Cheap up-front checks of many files (threads: it is I/O); returns {path: reason} for the bad ones."""
    if not paths:
        return {}
    workers = min(32, (os.cpu_count() or 2) * 4)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        verdicts = list(pool.map(sniff, paths, chunksize=256))
    bad: dict[str, str] = {}
    for p, v in zip(paths, verdicts):
        if v is None:
            continue
        if v == "suspect":   # no end marker: decode it once to know (small images decode in milliseconds)
            try:
                decode_pil(p, size)
            except DataError as e:
                bad[p] = str(e).split(": ", 1)[-1]
            continue
        bad[p] = v
    return bad


def drop_bad_files(files: list[str], labels: list[int], bad: list, size: int,
                   check: bool) -> tuple[list[str], list[int]]:
    """Run ``check_files`` (when ``check``) and leave the bad files out; their (path, reason) go to ``bad``."""
    checked = check_files(files, size) if check else {}
    if not checked:
        return files, labels
    bad.extend((p, checked[p]) for p in files if p in checked)
    keep = [k for k, p in enumerate(files) if p not in checked]
    return [files[k] for k in keep], [labels[k] for k in keep]


def raise_strict(bad: list[tuple[str, str]], what: str) -> None:
    """Strict mode: DataError listing the first bad files, if any."""
    if bad:
        shown = "; ".join(f"{p}: {r}" for p, r in bad[:5])
        more = f" (and {len(bad) - 5} more)" if len(bad) > 5 else ""
        raise DataError(f"{len(bad)} bad file(s) in {what} (strict mode): {shown}{more}")


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
    for label, cid in enumerate(ids):
        if cid not in present:
            continue
        imgs, other = list_class_folder(str(sdir / cid))
        bad.extend(other)
        if not imgs:
            bad.append((str(sdir / cid), "empty class folder: no image files"))
        files.extend(imgs)
        labels.extend([label] * len(imgs))
    files, labels = drop_bad_files(files, labels, bad, size, check)
    if strict:
        raise_strict(bad, f"{sdir}")
    if not files:
        raise DataError(f"{sdir}: no readable images (expected {sdir}/<class>/<image files>)")
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
