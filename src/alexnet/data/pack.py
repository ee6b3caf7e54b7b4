"""``alexnet data pack``: decode a dataset once into pre-resized uint8 arrays that load at memory speed.

Layout of a packed folder (all written under a temporary name beside OUT, renamed into place when complete)::

    OUT/alexnet_pack.json      index: format, version, size S, channels, classes, source, per split: count, files,
                               skipped bad files
    OUT/train_images.u8        raw uint8 [N, C, S, S] (C-order; read through numpy.memmap)
    OUT/train_labels.npy       int64 [N]
    OUT/train_files.txt        the source of each image, one per line (to trace a sample back)
    OUT/val_...                the same for the validation split

Images are stored exactly as the dataset yields them (shorter side S, centre S x S), so training reads a batch
with one gather and does crop/flip/lighting as tensor ops.  Size: N * C * S * S bytes (ILSVRC-2012 train at
S=256: ~252 GB; at S=144: ~80 GB); free space is checked before writing.
"""
from __future__ import annotations

import errno
import json
import os
import shutil
import time
from pathlib import Path

import numpy as np
import torch

from ..errors import DataError, OutputError
from ..utils import check_writable, output_error, prepare_output_dir, publish_dir
from .datasets import available_splits, open_dataset
from .formats.packed import PACK_FORMAT, PACK_META, read_pack_meta

PACK_VERSION = 1


class _Decode(torch.utils.data.Dataset):
    """Sample i -> (i, image or None, error or None): decoding failures come back as values, not exceptions."""

    def __init__(self, ds):
        self.ds = ds

    def __len__(self):
        return len(self.ds)

    def __getitem__(self, i):
        try:
            return i, self.ds.load(i), None
        except DataError as e:
            return i, None, str(e)


def _as_lists(batch):
    return batch


def _sample_names(ds) -> list[str]:
    return [ds.sample_name(i) for i in range(len(ds))]


def pack_dataset(ds, out_dir: Path, split: str, *, strict: bool = False, progress: bool = True,
                 workers: int | None = None) -> dict:
    """Write one split of ``ds`` into ``out_dir`` (see module doc); returns its index entry."""
    from ..progress import progress_bar
    from .loader import default_workers

    n, c, s = len(ds), ds.channels, ds.image_size
    images_name, labels_name, files_name = f"{split}_images.u8", f"{split}_labels.npy", f"{split}_files.txt"
    path = out_dir / images_name
    item = c * s * s
    mm = _allocate(path, (n, c, s, s)) if n else None
    labels = np.asarray(ds.targets, dtype=np.int64)
    names = _sample_names(ds)
    keep_labels, keep_names, bad = [], [], list(getattr(ds, "bad_files", []))
    nw = default_workers(ds) if workers is None else workers
    loader = torch.utils.data.DataLoader(_Decode(ds), batch_size=32, shuffle=False, num_workers=nw,
                                         collate_fn=_as_lists, prefetch_factor=4 if nw else None)
    k = 0
    with progress_bar(total=n, desc=f"pack {split}", unit="img", disable=not progress, leave=False) as bar:
        for batch in loader:
            for i, img, err in batch:
                if err is not None:
                    if strict:
                        raise DataError(err)
                    bad.append((names[i], err.split(": ", 1)[-1] if err.startswith(names[i]) else err))
                    continue
                mm[k] = img.numpy()
                keep_labels.append(int(labels[i]))
                keep_names.append(names[i])
                k += 1
            bar.update(len(batch))
    if mm is not None:
        mm.flush()
        del mm
    if k == 0:
        raise DataError(f"{ds.root} ({split}): no image could be decoded; nothing to pack")
    with open(path, "r+b") as f:   # drop the slots of images that failed to decode
        f.truncate(k * item)
    np.save(out_dir / labels_name, np.asarray(keep_labels, dtype=np.int64))
    # file names that are not valid UTF-8 are written back as the bytes they are (one per line, as found)
    (out_dir / files_name).write_text("\n".join(keep_names) + "\n", encoding="utf-8", errors="surrogateescape")
    return {"count": k, "images": images_name, "labels": labels_name, "files": files_name,
            "bad_files": [list(b) for b in bad]}


def _allocate(path: Path, shape: tuple) -> np.memmap:
    """A memmap of ``shape`` on a file whose blocks are reserved first: a full disk is an OSError here, never a
    SIGBUS while writing through the map."""
    nbytes = int(np.prod(shape))
    with open(path, "wb") as f:
        try:
            os.posix_fallocate(f.fileno(), 0, nbytes)
        except OSError as e:
            if e.errno not in (errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
                raise
            f.truncate(nbytes)   # a file system without fallocate: sparse file, as before
        except AttributeError:   # pragma: no cover - not POSIX
            f.truncate(nbytes)
    return np.memmap(path, dtype=np.uint8, mode="r+", shape=shape)


def _human(nbytes: float) -> str:
    """Bytes in the unit that shows them: 512 bytes, 3.4 MB, 12.0 GB."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if nbytes >= scale:
            return f"{nbytes / scale:.1f} {unit}"
    return f"{int(nbytes)} bytes"


def _check_places(src: Path, out: Path) -> None:
    """Before anything is opened or written: OUT is neither SRC nor inside it, and it can be written."""
    src_real, out_real = src.resolve(), out.resolve()
    if src_real == out_real:
        raise DataError(f"{out}: the pack must go to another folder than its source")
    if out_real.is_relative_to(src_real):
        raise DataError(f"{out}: the pack would be written inside its source {src} (it would become part of the "
                        f"dataset); choose a folder outside {src}")
    check_writable(out, folder=True)


def _check_space(out: Path, need: int) -> None:
    """DataError when the file system that will hold ``out`` has less than ``need`` bytes free."""
    place = out if out.exists() else out.parent
    while not place.exists():
        place = place.parent
    try:
        free = shutil.disk_usage(place).free
    except OSError as e:
        raise output_error(out, e) from None
    if need > free * 0.98:
        raise OutputError(f"cannot write {out}: the pack needs {_human(need)}, only {_human(free)} free on {place} "
                        f"(pack at a smaller --size, or to another disk)")


def _is_pack_or_empty(out: Path) -> bool:
    if not out.exists():
        return True
    if not out.is_dir():
        return False
    if (out / PACK_META).is_file():
        try:
            return read_pack_meta(out) is not None
        except DataError:
            return False
    return not any(out.iterdir())


def pack_folder(src: str | os.PathLike, out: str | os.PathLike, *, size: int | None = 256, strict: bool = False,
                progress: bool = True, kind: str = "auto", workers: int | None = None) -> Path:
    """Pack every split of the dataset at ``src`` (any ``open_dataset`` format) into ``out`` at S = ``size``
    (None: the dataset's default size).  Bad images are skipped and listed in the index (strict: DataError).
    Replaces an earlier pack at ``out``; refuses to replace a non-empty folder that is not a pack."""
    src_path, out_path = Path(src).expanduser(), Path(out).expanduser()
    _check_places(src_path, out_path)
    splits = available_splits(src_path, kind)
    if "train" not in splits and "val" not in splits:
        raise DataError(f"{src_path}: no 'train' or 'val' split to pack")
    if not _is_pack_or_empty(out_path):
        raise DataError(f"{out_path}: exists and is not a packed dataset; choose another folder or remove it")
    datasets = {s: open_dataset(src_path, s, image_size=size, strict=strict, kind=kind) for s in splits}
    first = datasets[splits[0]]
    for s, ds in datasets.items():
        if list(ds.classes) != list(first.classes):
            raise DataError(f"{src_path}: the {s} split has other classes than the {splits[0]} split")
    need = sum(len(ds) * ds.channels * ds.image_size ** 2 for ds in datasets.values())
    _check_space(out_path, need)
    prepare_output_dir(out_path.parent)
    for stale in out_path.parent.glob(f".{out_path.name}.partial-*"):
        shutil.rmtree(stale, ignore_errors=True)
    tmp = out_path.parent / f".{out_path.name}.partial-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tmp.mkdir(parents=True)
    except OSError as e:
        raise output_error(out_path, e) from None
    t0 = time.perf_counter()
    try:
        entries = {s: pack_dataset(ds, tmp, s, strict=strict, progress=progress, workers=workers)
                   for s, ds in datasets.items()}
        meta = {"format": PACK_FORMAT, "version": PACK_VERSION, "size": first.image_size,
                "channels": first.channels, "classes": list(first.classes), "source": str(src_path),
                "source_kind": first.kind, "seconds": round(time.perf_counter() - t0, 2), "splits": entries}
        (tmp / PACK_META).write_text(json.dumps(meta, indent=1) + "\n")
        publish_dir(tmp, out_path)
    except OSError as e:   # a full disk, a folder made read-only meanwhile, ...: one line naming OUT
        shutil.rmtree(tmp, ignore_errors=True)
        raise output_error(out_path, e) from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_path


__all__ = ["PACK_VERSION", "pack_dataset", "pack_folder"]
