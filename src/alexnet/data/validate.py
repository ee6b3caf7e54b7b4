"""The checks a dataset's content passes when it is opened: one place for what every format relies on.

- **Paths visited once** (``FolderWalk``): the class folders of a split are walked following symlinks, but every
  real folder is entered once.  A symlink back to a folder being walked (a loop) or to a folder already walked (the
  same images twice, perhaps under another class) is not followed; it is listed as a bad entry naming the link.
- **Images readable, decodable and within the size guard** (``check_files``): size, first/last bytes and the header
  of every file (``imageio.sniff``; a header over Pillow's ``MAX_IMAGE_PIXELS`` is a decompression bomb), one decode
  of a suspect file.  Bad files are listed in ``bad_files`` and left out (strict: DataError).
- **Labels in range** (``check_labels``): integers in 0..classes-1, checked by ``ImageDataset`` for every format
  (packed labels files, CIFAR batches, MNIST label files), naming the file they came from.
- **Names**: a class folder name must be valid UTF-8 (``check_class_name``: class names go into checkpoints, JSON and
  web pages); image file names need not be (they are kept as bytes; ``printable`` shows them in messages).
- **Trainable** (``check_trainable``): training needs at least two classes with images (one class gives loss 0 and
  learns nothing); ``data info`` still describes such a dataset.
"""
from __future__ import annotations

import os
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from PIL import Image

from ..errors import DataError
from .imageio import decode_pil, is_image_name, os_reason, sniff


def printable(name: str | os.PathLike) -> str:
    """A file name as one printable line: bytes that are not UTF-8 as \\xNN, control characters escaped."""
    s = os.fspath(name)
    if isinstance(s, bytes):
        s = os.fsdecode(s)
    if s.isprintable():
        return s
    s = s.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in s)


def not_image_reason(name: str) -> str:
    return f"not an image file name (extension {os.path.splitext(name)[1] or 'none'})"


def check_class_name(folder: str | os.PathLike) -> None:
    """DataError unless the class folder's name is valid UTF-8 (it becomes a class name in checkpoints)."""
    name = os.path.basename(os.fspath(folder))
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise DataError(f"{printable(folder)}: class folder name is not valid UTF-8; rename the folder (class "
                        f"names are stored in checkpoints and reports)") from None


class FolderWalk:
    """Walks the class folders of one split, entering every real folder at most once.

    ``seen`` maps (st_dev, st_ino) of every folder entered to the path it was entered by; the split folder itself
    counts as entered.  A folder whose real path contains the folder being walked is a loop."""

    def __init__(self, split_dir: str | os.PathLike):
        self.split_dir = os.fspath(split_dir)
        st = os.stat(self.split_dir)
        self.seen: dict[tuple[int, int], str] = {(st.st_dev, st.st_ino): self.split_dir}

    def _refusal(self, path: str, here_real: str) -> str | None:
        """Why the folder at ``path`` (reached from the folder whose real path is ``here_real``) is not entered, or
        None (then it is marked as entered)."""
        try:
            st = os.stat(path)
        except OSError as e:
            return f"cannot enter folder ({os_reason(e, path)})"
        real = os.path.realpath(path)
        if here_real == real or here_real.startswith(real.rstrip(os.sep) + os.sep):
            return f"symlink loop: leads back to {printable(real)}, which contains it; not followed"
        key = (st.st_dev, st.st_ino)
        if key in self.seen:
            return f"symlink to a folder already included ({printable(self.seen[key])}); not followed"
        self.seen[key] = path
        return None

    def class_folder(self, folder: str | os.PathLike) -> tuple[list[str], list[tuple[str, str]]]:
        """(image paths, [(other entry, reason)]) under one class folder, recursively, in sorted order (files of a
        folder, then its subfolders; hidden names left out).  A refused class folder gives ([], [(folder, why)])."""
        folder = os.fspath(folder)
        images: list[str] = []
        other: list[tuple[str, str]] = []
        why = self._refusal(folder, os.path.realpath(self.split_dir))
        if why is not None:
            return images, [(folder, why)]
        stack = [folder]
        while stack:
            d = stack.pop()
            try:
                entries = sorted(os.scandir(d), key=lambda e: e.name)
            except OSError as e:
                other.append((d, f"cannot read folder ({os_reason(e, d)})"))
                continue
            d_real = os.path.realpath(d)
            subdirs = []
            for e in entries:
                if e.name.startswith("."):
                    continue
                try:
                    is_dir = e.is_dir()   # follows symlinks; a looping file symlink is not a folder
                except OSError:
                    is_dir = False
                if is_dir:
                    why = self._refusal(e.path, d_real)
                    if why is None:
                        subdirs.append(e.path)
                    else:
                        other.append((e.path, why))
                elif is_image_name(e.name):
                    images.append(e.path)
                else:
                    other.append((e.path, not_image_reason(e.name)))
            stack.extend(reversed(subdirs))   # depth first, in sorted order
        return images, other


def check_files(paths: list[str], size: int) -> dict[str, str]:
    """Cheap up-front checks of many files (threads: it is I/O); returns {path: reason} for the bad ones."""
    if not paths:
        return {}
    workers = min(32, (os.cpu_count() or 2) * 4)
    # Pillow warns (rather than raises) for headers between 1x and 2x its pixel limit; sniff judges those itself.
    # The filter is set here, in the calling thread, around all the worker threads (catch_warnings is not safe to
    # nest across threads).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
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
        shown = "; ".join(f"{printable(p)}: {r}" for p, r in bad[:5])
        more = f" (and {len(bad) - 5} more)" if len(bad) > 5 else ""
        raise DataError(f"{len(bad)} bad file(s) in {printable(what)} (strict mode): {shown}{more}")


def check_labels(labels, num_classes: int, source: str | os.PathLike) -> np.ndarray:
    """``labels`` as int64, checked: whole numbers in 0..num_classes-1; DataError naming ``source`` otherwise."""
    a = np.asarray(labels)
    if a.ndim != 1:
        raise DataError(f"{printable(source)}: labels must be one number per image; got an array of shape {a.shape}")
    if a.size and a.dtype.kind not in "iub":
        if a.dtype.kind != "f" or not np.all(np.isfinite(a)) or not np.all(a == np.round(a)):
            raise DataError(f"{printable(source)}: labels must be whole numbers (class indices); got {a.dtype}")
    if num_classes < 1:
        raise DataError(f"{printable(source)}: no classes (the dataset names none)")
    a = a.astype(np.int64)
    if a.size:
        lo, hi = int(a.min()), int(a.max())
        if lo < 0 or hi >= num_classes:
            first = int(np.flatnonzero((a < 0) | (a >= num_classes))[0])
            raise DataError(f"{printable(source)}: label {int(a[first])} at index {first} is outside "
                            f"0..{num_classes - 1} ({num_classes} class{'' if num_classes == 1 else 'es'})")
    return a


def check_trainable(ds, where: str | os.PathLike | None = None) -> None:
    """DataError unless ``ds`` (a training split) has images of at least two classes."""
    targets = np.asarray(ds.targets, dtype=np.int64)
    present = np.unique(targets)
    if len(present) >= 2:
        return
    place = printable(where if where is not None else (getattr(ds, "base", None) or ds.root))
    names = [ds.classes[int(k)] for k in present]
    has = f"only class {names[0]!r} has images" if names else "no class has images"
    raise DataError(f"{place}: training needs at least 2 classes with images; {has} "
                    f"({len(ds.classes)} class(es) named); add a class or use another dataset")


__all__ = ["FolderWalk", "check_class_name", "check_files", "check_labels", "check_trainable", "drop_bad_files",
           "not_image_reason", "printable", "raise_strict"]
