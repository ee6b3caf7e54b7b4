"""User mistakes with datasets, run through the real CLI (issue 13, the data side), plus the validation functions.

Each row of ``MISTAKES`` builds a bad input in real formats (PNG folders, CIFAR-10 python batches, MNIST IDX files,
packs written by ``alexnet data pack``), runs ``python -m alexnet ...`` on it and expects: a non-zero exit, exactly
one line on stderr naming the file or field, no traceback, and nothing created (the folder listing is the same
before and after; a run folder named on the command line must not appear).
"""
import errno
import gzip
import json
import os
import pickle
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import alexnet
from alexnet.data import open_dataset
from alexnet.data.base import DROPPED, dropping_bad
from alexnet.data.formats.packed import PACK_META, check_pack_meta
from alexnet.data.imageio import os_reason, sniff
from alexnet.data.pack import _check_places, _check_space, _human, pack_folder
from alexnet.data.validate import FolderWalk, check_labels, check_trainable, printable
from alexnet.errors import DataError, OutputError

SRC = str(Path(alexnet.__file__).resolve().parents[1])
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


# ------------------------------------------------------------------------------------- real-format builders --

def png(path: Path, seed: int = 0, size: int = 8) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    a = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    Image.fromarray(a, "RGB").save(path)


def png_folder(root: Path, classes=("cat", "dog"), per: int = 3, splits=("train", "val")) -> Path:
    for split in splits:
        for c, name in enumerate(classes):
            for i in range(per):
                png(root / split / name / f"{name}_{i}.png", seed=100 * c + i)
    return root


def png_bomb(width: int = 30000, height: int = 30000) -> bytes:
    """A few hundred bytes whose header claims width x height pixels (9e8 > Pillow's limit)."""
    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + \
        chunk(b"IEND", b"")


def cifar(root: Path, train_labels, test_labels=(0, 1)) -> Path:
    """CIFAR-10 python batches as the original pickles: data uint8 (N, 3072), labels a list."""
    root.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name, labels in (("data_batch_1", train_labels), ("test_batch", test_labels)):
        d = {b"data": rng.integers(0, 256, (len(labels), 3072), dtype=np.uint8), b"labels": list(labels),
             b"batch_label": name.encode()}
        (root / name).write_bytes(pickle.dumps(d, protocol=2))
    names = [b"airplane", b"automobile", b"bird", b"cat", b"deer", b"dog", b"frog", b"horse", b"ship", b"truck"]
    (root / "batches.meta").write_bytes(pickle.dumps({b"label_names": names}, protocol=2))
    return root


def idx(array: np.ndarray) -> bytes:
    return struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape) + \
        array.astype(np.uint8).tobytes()


def mnist(root: Path, train_labels, test_labels=(0, 1)) -> Path:
    """MNIST IDX files, gzipped, as distributed."""
    root.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for prefix, labels in (("train", train_labels), ("t10k", test_labels)):
        images = rng.integers(0, 256, (len(labels), 28, 28), dtype=np.uint8)
        (root / f"{prefix}-images-idx3-ubyte.gz").write_bytes(gzip.compress(idx(images)))
        (root / f"{prefix}-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx(np.asarray(labels))))
    return root


def packed(tmp: Path, name: str = "p") -> Path:
    """A pack written by the project's own packer from a two-class PNG folder (the source is then removed)."""
    import shutil

    src = png_folder(tmp / f".{name}-src", per=2)
    out = pack_folder(src, tmp / name, size=8, progress=False, workers=0)
    shutil.rmtree(src)
    return out


def set_label(pack: Path, index: int, value: int) -> None:
    labels = np.load(pack / "train_labels.npy")
    labels[index] = value
    np.save(pack / "train_labels.npy", labels)


def edit_meta(pack: Path, fn) -> None:
    meta = json.loads((pack / PACK_META).read_text())
    fn(meta)
    (pack / PACK_META).write_text(json.dumps(meta))


# ------------------------------------------------------------------------------------------- the mistakes --

def loop_folder(t: Path) -> list[str]:
    d = png_folder(t / "d")
    os.symlink("..", d / "train" / "cat" / "loop")              # train/cat/loop -> train
    return ["data", "info", "d", "--strict"]


def loop_file(t: Path) -> list[str]:
    d = png_folder(t / "d")
    os.symlink("selfloop.png", d / "train" / "cat" / "selfloop.png")
    return ["data", "info", "d", "--strict"]


def packed_label_info(t: Path) -> list[str]:
    set_label(packed(t), 1, 7)
    return ["data", "info", "p"]


def packed_label_train(t: Path) -> list[str]:
    set_label(packed(t), 3, -2)
    return ["train", "--data", "p", "--out", "run", "--epochs", "1", "--batch-size", "2", "--device", "cpu"]


def packed_label_eval_file(t: Path) -> list[str]:
    edit_meta(packed(t), lambda m: m.update(classes=["only"]))   # labels 0 and 1, one class named
    return ["data", "info", "p"]


def packed_meta_field(t: Path) -> list[str]:
    edit_meta(packed(t), lambda m: m.pop("size"))
    return ["data", "info", "p"]


def packed_meta_escape(t: Path) -> list[str]:
    edit_meta(packed(t), lambda m: m["splits"]["train"].update(labels="../train_labels.npy"))
    return ["data", "info", "p"]


def cifar_label(t: Path) -> list[str]:
    cifar(t / "c", train_labels=[0, 3, 10, 1])
    return ["data", "info", "c"]


def cifar_label_train(t: Path) -> list[str]:
    cifar(t / "c", train_labels=[0, 3, 1, 2], test_labels=[0, -1])
    return ["train", "--data", "c", "--out", "run", "--epochs", "1", "--batch-size", "2", "--device", "cpu"]


def mnist_label(t: Path) -> list[str]:
    mnist(t / "m", train_labels=[0, 1, 12])
    return ["data", "info", "m"]


def bomb_strict(t: Path) -> list[str]:
    d = png_folder(t / "d")
    (d / "val" / "dog" / "bomb.png").write_bytes(png_bomb())
    return ["data", "info", "d", "--strict"]


def pack_into_source(t: Path) -> list[str]:
    png_folder(t / "d")
    return ["data", "pack", "d", "d/train/packed", "--no-progress"]


def pack_under_a_file(t: Path) -> list[str]:
    png_folder(t / "d")
    (t / "notes.txt").write_text("a file")
    return ["data", "pack", "d", "notes.txt/packed", "--no-progress"]


def pack_read_only(t: Path) -> list[str]:
    png_folder(t / "d")
    (t / "ro").mkdir()
    os.chmod(t / "ro", 0o555)
    return ["data", "pack", "d", "ro/packed", "--no-progress"]


def pack_non_utf8_class(t: Path) -> list[str]:
    d = png_folder(t / "d")
    png(Path(os.fsdecode(os.fsencode(str(d / "train")) + b"/caf\xe9/x.png")))
    return ["data", "pack", "d", "out", "--no-progress"]


def empty_class_strict(t: Path) -> list[str]:
    d = png_folder(t / "d")
    (d / "train" / "zebra").mkdir()
    return ["data", "info", "d", "--strict"]


def one_class_train(t: Path) -> list[str]:
    png_folder(t / "d", classes=("cat",))
    return ["train", "--data", "d", "--out", "run", "--epochs", "1", "--batch-size", "2", "--device", "cpu",
            "--resize", "8", "--crop", "8"]


def one_class_with_images_train(t: Path) -> list[str]:
    d = png_folder(t / "d")
    for f in (d / "train" / "dog").iterdir():    # the class is named, but has no training images
        f.unlink()
    return ["train", "--data", "d", "--out", "run", "--epochs", "1", "--batch-size", "2", "--device", "cpu",
            "--resize", "8", "--crop", "8"]


MISTAKES = [
    # (id, build(tmp) -> argv, words stderr must contain, a run folder that must not appear)
    ("symlink-loop-folder", loop_folder, ["d/train/cat/loop", "symlink loop"], None),
    ("symlink-loop-file", loop_file, ["selfloop.png", "symlink loop"], None),
    ("packed-label-out-of-range", packed_label_info, ["p/train_labels.npy", "label 7", "0..1"], None),
    ("packed-label-negative-train", packed_label_train, ["p/train_labels.npy", "label -2", "0..1"], "run"),
    ("packed-labels-vs-classes", packed_label_eval_file, ["train_labels.npy", "label 1", "0..0 (1 class)"], None),
    ("packed-index-field-missing", packed_meta_field, [PACK_META, "'size'"], None),
    ("packed-index-file-outside", packed_meta_escape, [PACK_META, "splits.train.labels", "inside the pack"], None),
    ("cifar-label-out-of-range", cifar_label, ["c/data_batch_1", "label 10", "0..9"], None),
    ("cifar-label-negative-train", cifar_label_train, ["c/test_batch", "label -1"], "run"),
    ("mnist-label-out-of-range", mnist_label, ["train-labels-idx1-ubyte.gz", "label 12", "0..9"], None),
    ("decompression-bomb-strict", bomb_strict, ["bomb.png", "decompression bomb"], None),
    ("pack-output-inside-input", pack_into_source, ["d/train/packed", "inside its source"], None),
    ("pack-output-under-a-file", pack_under_a_file, ["notes.txt", "is a file, not a folder"], None),
    pytest.param("pack-read-only-place", pack_read_only, ["ro", "not writable"], None,
                 marks=pytest.mark.skipif(IS_ROOT, reason="root writes into read-only folders")),
    ("pack-non-utf8-class-folder", pack_non_utf8_class, ["caf\\xe9", "not valid UTF-8"], None),
    ("empty-class-folder-strict", empty_class_strict, ["d/train/zebra", "empty class folder"], None),
    ("one-class-train", one_class_train, ["d/train", "at least 2 classes", "'cat'"], "run"),
    ("one-class-with-images-train", one_class_with_images_train, ["d/train", "at least 2 classes", "'cat'"],
     "run"),
]


def listing(root: Path) -> list[str]:
    out = []
    for dirpath, dirnames, filenames in os.walk(root):   # symlinks not followed: a loop is listed once
        for name in dirnames + filenames:
            p = Path(dirpath, name)
            out.append(f"{p.relative_to(root)} {p.lstat().st_size if p.is_file() else ''}")
    return sorted(out)


def run_cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", ""),
           "XDG_CACHE_HOME": str(cwd / ".cache-not-expected")}
    return subprocess.run([sys.executable, "-m", "alexnet", *args], cwd=cwd, capture_output=True, env=env,
                          timeout=300)


@pytest.mark.parametrize("name, build, words, run_folder", MISTAKES, ids=[
    m.values[0] if hasattr(m, "values") else m[0] for m in MISTAKES])
def test_mistake_gives_one_line_and_leaves_nothing(tmp_path, name, build, words, run_folder):
    args = build(tmp_path)
    before = listing(tmp_path)
    r = run_cli(args, tmp_path)
    err = r.stderr.decode("utf-8", "replace")
    assert r.returncode not in (0, None) and r.returncode == 1, (r.returncode, err)
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"alexnet {args[0]}: error: "), lines[0]
    for w in words:
        assert w in lines[0], (w, lines[0])
    assert listing(tmp_path) == before
    if run_folder is not None:
        assert not (tmp_path / run_folder).exists()


# ------------------------------------------------------------------- what is accepted, and counted right --

def test_symlink_loop_is_listed_once_and_never_counted(tmp_path):
    d = png_folder(tmp_path / "d", classes=("a", "b", "c"), per=10, splits=("train",))
    os.symlink("..", d / "train" / "a" / "up")                   # a loop through the split folder
    os.symlink("../a", d / "train" / "b" / "also_a")             # class a's images again, under class b
    r = run_cli(["data", "info", "d", "--json"], tmp_path)
    assert r.returncode == 0 and r.stderr == b"", r.stderr
    info = json.loads(r.stdout)["train"]
    assert info["images"] == 30 and info["per_class"] == [10, 10, 10]
    bad = dict(info["bad_files"])
    assert set(bad) == {"d/train/a/up", "d/train/b/also_a"}
    assert bad["d/train/a/up"].startswith("symlink loop")
    assert "already included" in bad["d/train/b/also_a"]


def test_non_utf8_file_name_is_packed_and_traced_back(tmp_path):
    d = png_folder(tmp_path / "d")
    raw = os.fsencode(str(d / "train" / "cat")) + b"/b\xffd.png"
    png(Path(os.fsdecode(raw)), seed=9)
    r = run_cli(["data", "pack", "d", "out", "--size", "8", "--no-progress"], tmp_path)
    assert r.returncode == 0 and r.stderr == b"", r.stderr
    names = (tmp_path / "out" / "train_files.txt").read_bytes().splitlines()
    assert b"d/train/cat/b\xffd.png" in names and len(names) == 7
    assert len(open_dataset(tmp_path / "out", "train")) == 7


def test_pack_reports_bad_non_utf8_names_in_printable_form(tmp_path):
    d = png_folder(tmp_path / "d")
    Path(os.fsdecode(os.fsencode(str(d / "train" / "cat")) + b"/z\xfe.png")).write_bytes(b"")
    r = run_cli(["data", "pack", "d", "out", "--size", "8", "--no-progress"], tmp_path)
    assert r.returncode == 0 and r.stderr == b"", r.stderr
    assert "skipped (train): d/train/cat/z\\xfe.png: zero-byte file" in r.stdout.decode()


def test_bomb_is_a_bad_file_in_data_info(tmp_path):
    d = png_folder(tmp_path / "d")
    (d / "val" / "dog" / "bomb.png").write_bytes(png_bomb())
    r = run_cli(["data", "info", "d", "--json"], tmp_path)
    assert r.returncode == 0 and r.stderr == b""
    val = json.loads(r.stdout)["val"]
    assert val["images"] == 6 and [p for p, _ in val["bad_files"]] == ["d/val/dog/bomb.png"]
    assert "decompression bomb refused" in val["bad_files"][0][1]


# ---------------------------------------------------------------------------------- the validation functions --

def test_check_labels():
    assert check_labels([0, 2, 1], 3, "f").tolist() == [0, 2, 1]
    assert check_labels(np.array([1.0, 0.0]), 2, "f").dtype == np.int64         # whole floats are accepted
    assert check_labels(np.zeros(0, np.int64), 1, "f").shape == (0,)
    with pytest.raises(DataError, match=r"^f: label 3 at index 1 is outside 0..2 \(3 classes\)$"):
        check_labels([0, 3, 5], 3, "f")
    with pytest.raises(DataError, match=r"^f: label -1 at index 2 is outside"):
        check_labels(np.array([0, 1, -1], np.int8), 3, "f")
    with pytest.raises(DataError, match="whole numbers"):
        check_labels([0.5, 1.0], 3, "f")
    with pytest.raises(DataError, match="one number per image"):
        check_labels(np.zeros((2, 2), np.int64), 3, "f")
    with pytest.raises(DataError, match="no classes"):
        check_labels([0], 0, "f")


def test_printable():
    assert printable("plain/name.png") == "plain/name.png"
    assert printable(os.fsdecode(b"a\xffb.png")) == "a\\xffb.png"
    assert printable(b"x\xfe") == "x\\xfe"
    assert printable("two\nlines\t.png") == "two\\nlines\\t.png"
    assert printable("café.png") == "café.png"


def test_folder_walk_visits_each_real_folder_once(tmp_path):
    split = tmp_path / "train"
    for rel in ("a/x.png", "a/sub/y.png", "a/sub/deeper/z.png", "a/t.png", "b/w.png"):
        png(split / rel)
    (split / "a" / "notes.txt").write_text("n")
    os.symlink("..", split / "a" / "sub" / "up")            # loop to a (an ancestor)
    os.symlink("../../b", split / "a" / "sub" / "tob")      # b, walked by its own class later: first here
    os.symlink("nowhere", split / "a" / "broken.png")
    walk = FolderWalk(split)
    imgs, other = walk.class_folder(split / "a")
    rel = [os.path.relpath(p, split) for p in imgs]
    # files of a folder in sorted order, then its subfolders depth first: os.walk's order
    assert rel == ["a/broken.png", "a/t.png", "a/x.png", "a/sub/y.png", "a/sub/deeper/z.png", "a/sub/tob/w.png"]
    reasons = {os.path.relpath(p, split): r for p, r in other}
    assert reasons["a/notes.txt"].startswith("not an image file name")
    assert reasons["a/sub/up"].startswith("symlink loop: leads back to")
    imgs_b, other_b = walk.class_folder(split / "b")
    assert imgs_b == [] and "already included" in other_b[0][1] and other_b[0][0] == str(split / "b")
    loop_class = FolderWalk(split)
    os.symlink(".", split / "self")
    assert loop_class.class_folder(split / "self")[1][0][1].startswith("symlink loop")


def test_os_reasons_and_sniff(tmp_path):
    os.symlink("loop2", tmp_path / "loop1")
    os.symlink("loop1", tmp_path / "loop2")
    os.symlink("missing.png", tmp_path / "dangling.png")
    assert sniff(tmp_path / "loop1") == "symlink loop (too many levels of symbolic links)"
    assert sniff(tmp_path / "dangling.png") == "broken symlink (points to missing.png, which does not exist)"
    assert os_reason(OSError(errno.ENOENT, "x")) == "no such file"
    assert os_reason(OSError(errno.EACCES, "x")) == "permission denied"
    (tmp_path / "bomb.png").write_bytes(png_bomb())
    assert sniff(tmp_path / "bomb.png").startswith("decompression bomb refused")
    (tmp_path / "halfbomb.png").write_bytes(png_bomb(10000, 10000))   # between 1x and 2x Pillow's limit
    with pytest.warns(Image.DecompressionBombWarning):
        assert sniff(tmp_path / "halfbomb.png").startswith("decompression bomb refused")
    png(tmp_path / "ok.png")
    assert sniff(tmp_path / "ok.png") is None
    with pytest.raises(DataError, match=r"loop1: symlink loop"):
        open_dataset  # noqa: B018 - (the decode path names it the same way)
        from alexnet.data.imageio import decode_pil
        decode_pil(tmp_path / "loop1", 8)


def test_check_trainable(tmp_path):
    d = png_folder(tmp_path / "d", classes=("cat", "dog"), per=1, splits=("train",))
    check_trainable(open_dataset(d, "train", image_size=8))
    for f in (d / "train" / "dog").iterdir():
        f.unlink()
    ds = open_dataset(d, "train", image_size=8)                 # data info can still open and describe it
    assert ds.describe()["per_class"] == [1, 0]
    with pytest.raises(DataError, match=r"train: training needs at least 2 classes with images; only class 'cat'"):
        check_trainable(ds)


def test_check_pack_meta_names_the_field(tmp_path):
    good = {"format": "alexnet-packed", "size": 8, "channels": 3, "classes": ["a", "b"],
            "splits": {"train": {"count": 2, "images": "train_images.u8", "labels": "train_labels.npy"}}}
    check_pack_meta(good, tmp_path / PACK_META)
    cases = [("size", 0), ("channels", 2), ("classes", []), ("classes", [1, 2]), ("splits", {"test": {}}),
             ("splits.train.count", -1), ("splits.train.images", "/etc/passwd"), ("splits.train.labels", "..")]
    for field, value in cases:
        meta = json.loads(json.dumps(good))
        node, *path = field.split(".")
        if path:
            meta[node][path[0]][path[1]] = value
        else:
            meta[node] = value
        with pytest.raises(DataError, match=rf"{PACK_META}: field '{field.split('.')[0] if not path else field}'"):
            check_pack_meta(meta, tmp_path / PACK_META)


def test_pack_places_and_space(tmp_path, monkeypatch):
    d = png_folder(tmp_path / "d", per=1)
    with pytest.raises(DataError, match="inside its source"):
        _check_places(d, d / "val" / "x")
    with pytest.raises(DataError, match="another folder than its source"):
        _check_places(d, d / "train" / "..")
    monkeypatch.setattr(os, "access", lambda *a, **k: False)    # a read-only place, as root cannot make one
    with pytest.raises(OutputError, match=r"^cannot write .*out: .* is not writable$"):
        _check_places(d, tmp_path / "out")
    monkeypatch.undo()
    assert [_human(v) for v in (0, 999, 1500, 2.5e6, 3e9)] == ["0 bytes", "999 bytes", "1.5 kB", "2.5 MB", "3.0 GB"]
    import shutil

    monkeypatch.setattr(shutil, "disk_usage", lambda p: shutil._ntuple_diskusage(100, 100, 1000))
    _check_space(tmp_path / "out", 900)
    with pytest.raises(OutputError, match=rf"deeper/out: the pack needs 1.2 kB, only 1.0 kB free on {tmp_path} "):
        _check_space(tmp_path / "new" / "deeper" / "out", 1200)
    with pytest.raises(OutputError, match="needs 3.1 kB"):
        pack_folder(d, tmp_path / "p", size=16, progress=False, workers=0)   # 4 images x 3 x 16 x 16 = 3.1 kB
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d"]


class _Mean(torch.nn.Module):
    """Scores that do not depend on the weights: class k's score is k (so the prediction is always the last)."""

    def forward(self, x):
        return torch.arange(2, dtype=x.dtype, device=x.device).expand(x.shape[0], 2).clone()


def test_evaluation_drops_undecodable_images_instead_of_counting_a_substitute(tmp_path):
    from alexnet.evaluate import evaluate

    d = png_folder(tmp_path / "d", per=3, splits=("val",))
    ds = open_dataset(d, "val", image_size=8, check=False)
    (d / "val" / "dog" / "dog_0.png").write_bytes(png_bomb())   # becomes a bomb after the dataset was opened
    prep = {"crop": 8, "mean": [0.0] * 3, "std": [1.0] * 3}
    r = evaluate(_Mean(), ds, prep, batch_size=4, device="cpu", precision="fp32", workers=0, progress=False)
    assert r["n"] == 5 and r["dropped"] == 1
    assert r["top1_error"] == pytest.approx(3 / 5)           # 3 cats wrong, 2 dogs right; the bomb not counted
    assert ds.substitute_bad is True                          # the mode was the evaluation's only
    x, y = ds[3]                                              # training still substitutes the next good image
    assert y == 1 and x.shape == (3, 8, 8)
    with dropping_bad(torch.utils.data.Subset(ds, [3])):
        x, y = ds[3]
        assert y == DROPPED and int(x.sum()) == 0


def test_full_disk_while_packing_is_one_line_and_leaves_nothing(tmp_path, monkeypatch):
    d = png_folder(tmp_path / "d", per=1)

    def full(fd, offset, length):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "posix_fallocate", full)    # the blocks are reserved before the memmap is written
    with pytest.raises(OutputError, match=r"^cannot write .*/p: no space left on the device$"):
        pack_folder(d, tmp_path / "p", size=8, progress=False, workers=0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d"]

    def unsupported(fd, offset, length):
        raise OSError(errno.EOPNOTSUPP, "Operation not supported")

    monkeypatch.setattr(os, "posix_fallocate", unsupported)   # a file system without fallocate: packed as before
    out = pack_folder(d, tmp_path / "p", size=8, progress=False, workers=0)
    assert len(open_dataset(out, "train")) == 2 and (out / "train_images.u8").stat().st_size == 2 * 3 * 8 * 8


def test_training_names_an_empty_class_folder_as_such(tmp_path):
    from alexnet.train import TrainConfig, train

    d = png_folder(tmp_path / "d", classes=("cat", "dog"), per=4)
    (d / "train" / "zebra").mkdir()
    (d / "val" / "zebra").mkdir()
    said = []
    cfg = TrainConfig(data=str(d), out=str(tmp_path / "run"), arch="cifar", epochs=1, batch_size=4, resize=32,
                      crop=32, seed=0, workers=0, progress=False, val_every=0, device="cpu")
    train(cfg, printer=said.append)
    warning = [s for s in said if s.startswith("warning:")]
    assert warning == [f"warning: 1 bad file(s) or folder(s) left out of the train split (first: {d}/train/zebra: "
                       f"empty class folder: no image files); all listed in {tmp_path / 'run' / 'train.log'}"]
    assert "left out " + str(d / "train" / "zebra") in (tmp_path / "run" / "train.log").read_text()
