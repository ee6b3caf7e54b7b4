"""The dataset registry: one ``open_dataset`` for image folders, ILSVRC-2012, CIFAR-10, (Fashion-)MNIST and packed data.

Every dataset yields ``(uint8 tensor [C, S, S], int label)``: the image with its shorter side resized to S and the
centre S x S square cut out (paper, section 2).  Crops, flips, colour augmentation and normalisation happen later,
batched, on the training device (``alexnet.data.transforms``).

Bad input policy.  Image folders are checked when opened, cheaply: every file's size and first/last bytes
(``imageio.sniff``: zero-byte files, files that are not images, and JPEG/PNG files without their end marker, which
are then decoded once to confirm) plus empty class folders.  Those go to ``dataset.bad_files`` as (path, reason) and
are left out of the dataset; with ``strict=True`` the first one raises DataError instead.  A file that still fails to
decode later, in ``__getitem__`` (rare: corrupt data inside a well-formed file), is recorded in that process's
``bad_files``, logged as a warning on the ``alexnet.data`` logger, and replaced by the next good sample (index
i+1, i+2, ...; its own label comes with it), so a long run never stops on one bad file; strict mode raises.
Whole-dataset files (CIFAR batches, IDX files, packed arrays) of the wrong size or format always raise DataError
naming the file: nothing sensible can be skipped there.
"""
from __future__ import annotations

import csv
import gzip
import hashlib
import json
import logging
import os
import pickle
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

from ..errors import DataError
from .imageio import decode_pil, is_image_name, read_image, resize_tensor, sniff

log = logging.getLogger("alexnet.data")

KINDS = ("auto", "imagefolder", "ilsvrc", "cifar10", "mnist", "fashion-mnist", "packed")
SPLITS = ("train", "val")
DEFAULT_FOLDER_SIZE = 256
PACK_META = "alexnet_pack.json"
PACK_FORMAT = "alexnet-packed"

CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
MNIST_CLASSES = [str(i) for i in range(10)]
FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                   "Ankle boot"]
# folder names tried for each split of an image folder, in order
SPLIT_DIRS = {"train": ("train", "training"), "val": ("val", "validation", "valid")}
# ILSVRC-2012 ground truth and class-name files, looked for in the root, its parent and the devkit's data folder
GT_DEVKIT = "ILSVRC2012_validation_ground_truth.txt"
GT_KAGGLE = "LOC_val_solution.csv"
NAME_FILES = ("synset_words.txt", "LOC_synset_mapping.txt", "words.txt")
DEVKIT_MAPS = ("map_clsloc.txt", "ILSVRC2012_mapping.txt")


class ImageDataset(torch.utils.data.Dataset):
    """Base class: ``ds[i] -> (uint8 [C, S, S], int label)``.

    Attributes: classes (names), targets (one int per sample), image_size (S), channels (3, or 1 for MNIST-type),
    root (the dataset folder), split, kind, strict, bad_files [(path, reason)].
    """

    kind = "?"

    def __init__(self, *, root: Path, split: str, classes: list[str], labels: np.ndarray, image_size: int,
                 channels: int, strict: bool):
        self.root = Path(root)
        self.split = split
        self.classes = list(classes)
        self._labels = np.ascontiguousarray(labels, dtype=np.int64)
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
                 strict: bool, kind: str, source: str, shape: tuple | None = None):
        shape = tuple(array.shape) if shape is None else tuple(shape)
        native = int(shape[-1])
        super().__init__(root=root, split=split, classes=classes, labels=labels,
                         image_size=image_size or native, channels=int(shape[1]), strict=strict)
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


# ------------------------------------------------------------------------------------------------------------------
# image folders and ILSVRC-2012

def _list_class_folder(folder: str) -> tuple[list[str], list[tuple[str, str]]]:
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
                other.append((full, f"not an image file name (extension {os.path.splitext(name)[1] or 'none'})"))
    return images, other


def _check_files(paths: list[str], size: int) -> dict[str, str]:
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


def _raise_strict(bad: list[tuple[str, str]], what: str) -> None:
    if bad:
        shown = "; ".join(f"{p}: {r}" for p, r in bad[:5])
        more = f" (and {len(bad) - 5} more)" if len(bad) > 5 else ""
        raise DataError(f"{len(bad)} bad file(s) in {what} (strict mode): {shown}{more}")


def _read_class_names(root: Path) -> dict[str, str]:
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


def _display_names(ids: list[str], names: dict[str, str]) -> list[str]:
    if not names:
        return list(ids)
    out = [names.get(i, i) for i in ids]
    seen: dict[str, int] = {}
    for n in out:
        seen[n] = seen.get(n, 0) + 1
    return [f"{n} ({i})" if seen[n] > 1 else n for n, i in zip(out, ids)]   # ILSVRC has two "crane"s


def _split_dir(root: Path, split: str) -> Path | None:
    for name in SPLIT_DIRS[split]:
        if (root / name).is_dir():
            return root / name
    return None


def _class_dirs(split_dir: Path) -> list[str]:
    return sorted(e.name for e in os.scandir(split_dir) if e.is_dir() and not e.name.startswith("."))


def _open_imagefolder(root: Path, split: str, size: int, strict: bool, check: bool = True) -> FolderDataset:
    sdir = _split_dir(root, split)
    if sdir is None:
        raise DataError(f"{root}: no '{split}' split (expected {root / SPLIT_DIRS[split][0]}/<class>/<images>)")
    present = _class_dirs(sdir)
    if not present:
        raise DataError(f"{sdir}: no class folders (expected {sdir}/<class>/<image files>)")
    ids = present
    tdir = _split_dir(root, "train") if split != "train" else None
    if tdir is not None:
        # labels must mean the same classes as in training: take the train split's class list; a class with no
        # folder here simply has no samples, a class unknown to the train split is an error
        ids = _class_dirs(tdir) or present
        extra = sorted(set(present) - set(ids))
        if extra:
            raise DataError(f"{sdir}: class folder(s) {extra[:5]} are not in the train split {tdir}")
    files, labels, bad = [], [], []
    for label, cid in enumerate(ids):
        if cid not in present:
            continue
        imgs, other = _list_class_folder(str(sdir / cid))
        bad.extend(other)
        if not imgs:
            bad.append((str(sdir / cid), "empty class folder: no image files"))
        files.extend(imgs)
        labels.extend([label] * len(imgs))
    checked = _check_files(files, size) if check else {}
    if checked:
        bad.extend((p, checked[p]) for p in files if p in checked)
        keep = [k for k, p in enumerate(files) if p not in checked]
        files = [files[k] for k in keep]
        labels = [labels[k] for k in keep]
    if strict:
        _raise_strict(bad, f"{sdir}")
    if not files:
        raise DataError(f"{sdir}: no readable images (expected {sdir}/<class>/<image files>)")
    names = _display_names(ids, _read_class_names(root))
    rel = [os.path.relpath(f, sdir) for f in files]
    ds = FolderDataset(root=root, split=split, classes=names, files=rel, labels=labels, image_size=size,
                       strict=strict, base=sdir, bad_files=bad)
    ds.class_ids = ids
    return ds


def _find_file(root: Path, names: tuple[str, ...]) -> Path | None:
    places = [root, root.parent, root / "devkit" / "data", root / "ILSVRC2012_devkit_t12" / "data",
              root.parent / "ILSVRC2012_devkit_t12" / "data", root / "LOC"]
    for folder in places:
        for n in names:
            if (folder / n).is_file():
                return folder / n
    return None


def _ilsvrc_val_labels(root: Path) -> tuple[dict[str, str], Path]:
    """{image stem: wnid} for the flat ILSVRC-2012 validation folder."""
    kaggle = _find_file(root, (GT_KAGGLE,))
    if kaggle is not None:
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
        return out, kaggle
    gt = _find_file(root, (GT_DEVKIT,))
    if gt is None:
        raise DataError(f"{root / 'val'}: a flat ILSVRC validation folder needs its labels: {GT_DEVKIT} (with the "
                        f"devkit's meta.mat or map_clsloc.txt) or {GT_KAGGLE}, in {root} or its parent")
    id_to_wnid = _devkit_id_map(root, gt)
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


def _devkit_id_map(root: Path, gt: Path) -> dict[int, str]:
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
        from .matfile import read_ilsvrc_meta

        return read_ilsvrc_meta(meta)
    raise DataError(f"{gt}: its class numbers use the devkit's order; put the devkit's meta.mat or map_clsloc.txt "
                    f"beside it")


def _open_ilsvrc_val(root: Path, size: int, strict: bool, check: bool = True) -> FolderDataset:
    vdir = _split_dir(root, "val")
    if vdir is None:
        raise DataError(f"{root}: no 'val' split (expected {root / 'val'}/ with images)")
    mapping, gt_file = _ilsvrc_val_labels(root)
    tdir = _split_dir(root, "train")
    wnids = _class_dirs(tdir) if tdir is not None else sorted(set(mapping.values()))
    index = {w: k for k, w in enumerate(wnids)}
    files, labels, bad = [], [], []
    for e in sorted(os.scandir(vdir), key=lambda e: e.name):
        if e.name.startswith(".") or not e.is_file():
            continue
        if not is_image_name(e.name):
            bad.append((e.path, f"not an image file name (extension {os.path.splitext(e.name)[1] or 'none'})"))
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
    checked = _check_files(files, size) if check else {}
    if checked:
        bad.extend((p, checked[p]) for p in files if p in checked)
        keep = [k for k, p in enumerate(files) if p not in checked]
        files, labels = [files[k] for k in keep], [labels[k] for k in keep]
    if strict:
        _raise_strict(bad, str(vdir))
    if not files:
        raise DataError(f"{vdir}: no labelled images found")
    names = _display_names(wnids, _read_class_names(root))
    ds = FolderDataset(root=root, split="val", classes=names, files=[os.path.relpath(f, vdir) for f in files],
                       labels=labels, image_size=size, strict=strict, base=vdir, kind="ilsvrc", bad_files=bad)
    ds.class_ids = wnids
    return ds


# ------------------------------------------------------------------------------------------------------------------
# CIFAR-10 (python batches)

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


def _load_pickle(path: Path) -> dict:
    try:
        with open(path, "rb") as f:
            d = _SafeUnpickler(f, encoding="bytes").load()
    except (OSError, pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, ImportError) as e:
        raise DataError(f"{path}: not a CIFAR python batch ({type(e).__name__}: {e})") from None
    if not isinstance(d, dict):
        raise DataError(f"{path}: not a CIFAR python batch (a {type(d).__name__}, expected a dict)")
    return {(k.decode() if isinstance(k, bytes) else k): v for k, v in d.items()}


def _cifar_dir(source: Path) -> Path | None:
    for d in (source, source / "cifar-10-batches-py"):
        if (d / "data_batch_1").is_file() or (d / "test_batch").is_file():
            return d
    return None


def _read_cifar_batch(path: Path, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    d = _load_pickle(path)
    data, labels = d.get("data"), d.get("labels", d.get("fine_labels"))
    if not isinstance(data, np.ndarray) or labels is None:
        raise DataError(f"{path}: not a CIFAR python batch (expected keys 'data' and 'labels')")
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise DataError(f"{path}: wrong size: data is {data.dtype} {tuple(data.shape)}, expected uint8 (N, 3072) "
                        f"(N images of 3 x 32 x 32)")
    labels = np.asarray(labels, dtype=np.int64)
    if labels.shape != (data.shape[0],):
        raise DataError(f"{path}: wrong size: {labels.size} labels for {data.shape[0]} images")
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise DataError(f"{path}: labels outside 0..{num_classes - 1}")
    return data.reshape(-1, 3, 32, 32), labels


def _open_cifar10(source: Path, split: str, size: int | None, strict: bool) -> ArrayDataset:
    d = _cifar_dir(source)
    if d is None:
        raise DataError(f"{source}: no CIFAR-10 python batches (expected data_batch_1..5 and test_batch in "
                        f"{source} or {source / 'cifar-10-batches-py'})")
    classes = CIFAR10_CLASSES
    if (d / "batches.meta").is_file():
        meta = _load_pickle(d / "batches.meta")
        names = meta.get("label_names")
        if names:
            classes = [n.decode() if isinstance(n, bytes) else str(n) for n in names]
    if split == "train":
        files = sorted((p for p in d.glob("data_batch_*") if p.name[11:].isdigit()), key=lambda p: int(p.name[11:]))
    else:
        files = [d / "test_batch"] if (d / "test_batch").is_file() else []
    if not files:
        want = "data_batch_1..5" if split == "train" else "test_batch"
        raise DataError(f"{d}: no '{split}' split (expected {want})")
    parts = [_read_cifar_batch(f, len(classes)) for f in files]
    x = np.concatenate([p[0] for p in parts]) if len(parts) > 1 else parts[0][0]
    y = np.concatenate([p[1] for p in parts]) if len(parts) > 1 else parts[0][1]
    src = str(files[0]) if len(files) == 1 else f"{d}/{files[0].name}..{files[-1].name}"
    return ArrayDataset(root=d, split=split, classes=classes, array=np.ascontiguousarray(x), labels=y,
                        image_size=size, strict=strict, kind="cifar10", source=src)


# ------------------------------------------------------------------------------------------------------------------
# MNIST / Fashion-MNIST (IDX files)

_IDX_NAMES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
              "val": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}


def _mnist_dir(source: Path) -> Path | None:
    for d in (source, source / "raw", source / "MNIST" / "raw", source / "FashionMNIST" / "raw",
              source / "fashion-mnist", source / "mnist"):
        if any((d / (n + ext)).is_file() for n in _IDX_NAMES["train"] + _IDX_NAMES["val"] for ext in ("", ".gz")):
            return d
    return None


def _mnist_flavour(source: Path, found: Path) -> str:
    """The IDX files of MNIST and Fashion-MNIST are alike: tell them apart by the folder names (torchvision's
    FashionMNIST/raw, or a dataset folder named like fashion-mnist)."""
    try:
        names = str(found.resolve().relative_to(source.resolve().parent))
    except ValueError:
        names = found.name
    return "fashion-mnist" if "fashion" in names.lower() else "mnist"


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (optionally gzipped) as a numpy array; DataError naming the file for a wrong header or size."""
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        raise DataError(f"{path}: cannot read ({e})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise DataError(f"{path}: not an IDX file (bad magic number)")
    dtypes = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
    if raw[2] not in dtypes:
        raise DataError(f"{path}: not an IDX file (unknown data type 0x{raw[2]:02x})")
    ndim = raw[3]
    if len(raw) < 4 + 4 * ndim:
        raise DataError(f"{path}: wrong size: truncated IDX header")
    dims = tuple(int(v) for v in np.frombuffer(raw, ">u4", count=ndim, offset=4))
    dt = np.dtype(dtypes[raw[2]])
    expected = int(np.prod(dims)) * dt.itemsize
    got = len(raw) - 4 - 4 * ndim
    if got != expected:
        raise DataError(f"{path}: wrong size: {got} data bytes, expected {expected} for shape {dims}")
    return np.frombuffer(raw, dt, offset=4 + 4 * ndim).reshape(dims)


def _open_mnist(source: Path, split: str, size: int | None, strict: bool, kind: str) -> ArrayDataset:
    d = _mnist_dir(source)
    if d is None:
        raise DataError(f"{source}: no MNIST-format IDX files (expected train-images-idx3-ubyte.gz, "
                        f"train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz)")
    paths = []
    for n in _IDX_NAMES[split]:
        p = next((d / (n + ext) for ext in (".gz", "") if (d / (n + ext)).is_file()), None)
        if p is None:
            raise DataError(f"{d}: no '{split}' split (expected {d / (n + '.gz')})")
        paths.append(p)
    x, y = read_idx(paths[0]), read_idx(paths[1])
    if x.ndim != 3 or x.dtype != np.uint8:
        raise DataError(f"{paths[0]}: expected uint8 images of shape (N, H, W), got {x.dtype} {x.shape}")
    if y.ndim != 1 or y.shape[0] != x.shape[0]:
        raise DataError(f"{paths[1]}: wrong size: {y.shape[0] if y.ndim else 0} labels for {x.shape[0]} images "
                        f"in {paths[0].name}")
    if x.shape[1] != x.shape[2]:
        raise DataError(f"{paths[0]}: images are {x.shape[1]}x{x.shape[2]}, expected square")
    if kind == "auto":
        kind = _mnist_flavour(source, d)
    classes = FASHION_CLASSES if kind == "fashion-mnist" else MNIST_CLASSES
    if y.size and int(y.max()) >= len(classes):
        raise DataError(f"{paths[1]}: labels outside 0..{len(classes) - 1}")
    return ArrayDataset(root=d, split=split, classes=classes, array=np.ascontiguousarray(x[:, None]),
                        labels=y.astype(np.int64), image_size=size, strict=strict, kind=kind, source=str(paths[0]))


# ------------------------------------------------------------------------------------------------------------------
# packed folders

def read_pack_meta(folder: Path) -> dict | None:
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


def _open_packed(source: Path, split: str, size: int | None, strict: bool) -> PackedDataset:
    meta = read_pack_meta(source)
    if meta is None:
        raise DataError(f"{source}: not a packed dataset (expected {source / PACK_META}; "
                        f"write one with `alexnet data pack SRC {source}`)")
    if split not in meta.get("splits", {}):
        raise DataError(f"{source}: no '{split}' split in the pack (has {sorted(meta.get('splits', {}))})")
    return PackedDataset(root=source, split=split, meta=meta, image_size=size, strict=strict)


# ------------------------------------------------------------------------------------------------------------------

def detect_kind(source: Path) -> str:
    """What ``source`` holds: packed, cifar10, mnist/fashion-mnist, ilsvrc (flat val) or imagefolder."""
    if (source / PACK_META).is_file():
        return "packed"
    if _cifar_dir(source) is not None:
        return "cifar10"
    d = _mnist_dir(source)
    if d is not None:
        return _mnist_flavour(source, d)
    vdir = _split_dir(source, "val")
    if vdir is not None and _has_flat_images(vdir):
        return "ilsvrc"
    if _split_dir(source, "train") is not None or vdir is not None:
        return "imagefolder"
    raise DataError(f"{source}: cannot tell what dataset this is; expected an image folder ({source}/train/<class>/"
                    f"<images>, {source}/val/...), CIFAR-10 python batches (data_batch_1, test_batch), MNIST IDX "
                    f"files (train-images-idx3-ubyte.gz, ...) or a folder written by `alexnet data pack`")


def _has_flat_images(folder: Path) -> bool:
    for e in os.scandir(folder):
        if e.is_file() and is_image_name(e.name) and not e.name.startswith("."):
            return True
    return False


def available_splits(source: str | os.PathLike, kind: str = "auto") -> list[str]:
    """The splits ("train", "val") that ``source`` has, without opening them."""
    root = Path(source).expanduser()
    if not root.is_dir():
        raise DataError(f"{root}: no such folder")
    k = detect_kind(root) if kind == "auto" else kind
    if k == "packed":
        meta = read_pack_meta(root) or {}
        return [s for s in SPLITS if s in meta.get("splits", {})]
    if k == "cifar10":
        d = _cifar_dir(root)
        if d is None:
            return []
        return [s for s, ok in (("train", (d / "data_batch_1").is_file()), ("val", (d / "test_batch").is_file())) if ok]
    if k in ("mnist", "fashion-mnist"):
        d = _mnist_dir(root)
        if d is None:
            return []
        return [s for s in SPLITS if all(any((d / (n + e)).is_file() for e in ("", ".gz")) for n in _IDX_NAMES[s])]
    return [s for s in SPLITS if _split_dir(root, s) is not None]


def _download(source: Path, kind: str) -> None:
    try:
        import torchvision.datasets as tvd
    except ImportError as e:  # pragma: no cover - torchvision is a dependency
        raise DataError(f"--download needs torchvision ({e})") from None
    cls = {"cifar10": tvd.CIFAR10, "mnist": tvd.MNIST, "fashion-mnist": tvd.FashionMNIST}.get(kind)
    if cls is None:
        raise DataError(f"{source}: --download works for cifar10, mnist and fashion-mnist (kind given: {kind}); "
                        f"name the dataset with --dataset")
    source.mkdir(parents=True, exist_ok=True)
    try:
        for train in (True, False):
            cls(str(source), train=train, download=True)
    except Exception as e:  # network errors come in many types
        raise DataError(f"{source}: download of {kind} failed ({type(e).__name__}: {e})") from None


def open_dataset(source: str | os.PathLike, split: str = "train", *, image_size: int | None = None,
                 strict: bool = False, download: bool = False, kind: str = "auto",
                 check: bool = True) -> ImageDataset:
    """Open one split of a dataset folder; see the module docstring for formats and the bad-input policy.

    source: a folder.  kind "auto" detects an image folder (root/train/<class>/..., root/val/<class>/...), the
    ILSVRC-2012 flat validation folder with its ground truth, CIFAR-10 python batches, MNIST / Fashion-MNIST IDX
    files, or a folder written by ``alexnet data pack``.  split: "train" | "val" (CIFAR/MNIST: "val" = test set).
    image_size: S (default 256 for image folders, the native size for CIFAR (32) / MNIST (28) / packed data).
    download: fetch CIFAR-10 / (Fashion-)MNIST with torchvision's downloaders when missing (kind must be named).
    check: the up-front file checks of image folders (reads 64 bytes per file, in threads; on a cold network disk
    with millions of files this takes minutes: check=False leaves every bad file to the substitute-on-read policy).
    """
    if split not in SPLITS:
        raise DataError(f"split must be one of {SPLITS}; got {split!r}")
    if kind not in KINDS:
        raise DataError(f"dataset kind must be one of {KINDS}; got {kind!r}")
    if image_size is not None and int(image_size) < 1:
        raise DataError(f"image_size must be >= 1; got {image_size}")
    root = Path(source).expanduser()
    if download and kind in ("cifar10", "mnist", "fashion-mnist"):
        found = (_cifar_dir(root) if kind == "cifar10" else _mnist_dir(root)) if root.is_dir() else None
        if found is None:
            _download(root, kind)
    elif download and kind == "auto" and not root.exists():
        raise DataError(f"{root}: --download needs the dataset named (--dataset cifar10, mnist or fashion-mnist)")
    if not root.exists():
        raise DataError(f"{root}: no such folder (expected a dataset folder: {root}/train/<class>/<images>, "
                        f"CIFAR-10 batches, MNIST IDX files or a packed dataset)")
    if not root.is_dir():
        raise DataError(f"{root}: not a folder (expected a dataset folder)")
    k = detect_kind(root) if kind == "auto" else kind
    if k == "packed":
        return _open_packed(root, split, image_size, strict)
    if k == "cifar10":
        return _open_cifar10(root, split, image_size, strict)
    if k in ("mnist", "fashion-mnist"):
        return _open_mnist(root, split, image_size, strict, k)
    size = int(image_size or DEFAULT_FOLDER_SIZE)
    if k == "ilsvrc" and split == "val":
        vdir = _split_dir(root, "val")
        if vdir is not None and _has_flat_images(vdir):
            return _open_ilsvrc_val(root, size, strict, check)
    return _open_imagefolder(root, split, size, strict, check)


__all__ = ["ArrayDataset", "available_splits", "FolderDataset", "ImageDataset", "KINDS", "PackedDataset", "detect_kind", "open_dataset",
           "read_idx", "read_pack_meta"]
