"""Packing (decode once, memmap), the `alexnet data` verbs, and the data benchmark."""
import json

import pytest
import torch

from alexnet.cli import main
from alexnet.data import open_dataset
from alexnet.data.bench import run_data_bench
from alexnet.data.datasets import read_pack_meta
from alexnet.data.pack import pack_folder
from alexnet.errors import DataError
from test_data_datasets import make_folder, write_mnist


def test_pack_roundtrip_equals_the_direct_path(tmp_path):
    root = make_folder(tmp_path / "d", classes=("a", "b"), per=3, size=(30, 20))
    out = pack_folder(root, tmp_path / "p", size=16, progress=False, workers=0)
    meta = read_pack_meta(out)
    assert meta["size"] == 16 and meta["splits"]["train"]["count"] == 6 and meta["classes"] == ["a", "b"]
    for split in ("train", "val"):
        direct, packed = open_dataset(root, split, image_size=16), open_dataset(out, split)
        assert packed.kind == "packed" and packed.image_size == 16 and len(packed) == len(direct)
        assert packed.classes == direct.classes and packed.targets == direct.targets
        for i in range(len(direct)):
            assert torch.equal(packed[i][0], direct[i][0])
    assert open_dataset(out, "train", image_size=8)[0][0].shape == (3, 8, 8)     # resized on the fly
    assert not list(tmp_path.glob(".p.*"))


def test_pack_skips_and_lists_bad_images_or_fails_in_strict_mode(tmp_path):
    root = make_folder(tmp_path / "d", per=2, size=(30, 20))
    bad = root / "train" / "dog" / "dog_1.jpg"
    bad.write_bytes(bad.read_bytes()[:300] + b"\x00" * 64 + b"\xff\xd9")          # decodes badly, looks fine
    (root / "train" / "cat" / "zero.jpg").write_bytes(b"")
    out = pack_folder(root, tmp_path / "p", size=16, progress=False, workers=0)
    entry = read_pack_meta(out)["splits"]["train"]
    names = [p for p, _ in entry["bad_files"]]
    assert entry["count"] == 3 and str(bad) in names and str(root / "train" / "cat" / "zero.jpg") in names
    packed = open_dataset(out, "train")
    assert len(packed) == 3 and len(packed.bad_files) == 2
    assert (out / "train_images.u8").stat().st_size == 3 * 3 * 16 * 16
    with pytest.raises(DataError, match="zero.jpg"):
        pack_folder(root, tmp_path / "q", size=16, strict=True, progress=False, workers=0)
    assert not (tmp_path / "q").exists() and not list(tmp_path.glob(".q.*"))


def test_pack_refuses_foreign_folders_and_checks_its_files(tmp_path):
    root = make_folder(tmp_path / "d", per=1, size=(20, 20))
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "x").write_text("x")
    with pytest.raises(DataError, match="not a packed dataset"):
        pack_folder(root, tmp_path / "taken", size=8, progress=False, workers=0)
    out = pack_folder(root, tmp_path / "p", size=8, progress=False, workers=0)
    pack_folder(root, out, size=8, progress=False, workers=0)                       # replacing a pack is fine
    with open(out / "train_images.u8", "ab") as f:
        f.write(b"\x00")
    with pytest.raises(DataError, match="train_images.u8: .* bytes; expected"):
        open_dataset(out, "train")


def test_pack_mnist_keeps_one_channel(tmp_path):
    write_mnist(tmp_path / "m")
    out = pack_folder(tmp_path / "m", tmp_path / "p", size=None, progress=False, workers=0)
    ds = open_dataset(out, "val")
    assert ds.channels == 1 and ds.image_size == 28 and len(ds) == 3


def test_data_cli_verbs(tmp_path, capsys):
    synth = tmp_path / "s"
    assert main(["data", "synth", str(synth), "--classes", "3", "--train-per-class", "3", "--val-per-class", "1",
                 "--size", "40", "--no-progress", "--workers", "1"]) == 0
    assert "3 classes" in capsys.readouterr().out
    assert main(["data", "info", str(synth), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["train"]["images"] == 9 and info["val"]["classes"] == 3 and info["train"]["image_size"] == 256
    assert main(["data", "stats", str(synth), "--size", "32", "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert len(stats["mean"]) == 3 and len(stats["eigvec"]) == 3 and stats["image_size"] == 32
    assert main(["data", "pack", str(synth), str(tmp_path / "p"), "--size", "24", "--no-progress",
                 "--workers", "0"]) == 0
    assert "train 9 images" in capsys.readouterr().out
    assert main(["data", "info", str(tmp_path / "p")]) == 0
    assert "packed" in capsys.readouterr().out
    assert main(["data", "info", str(tmp_path / "missing")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "missing" in err[0]


def test_data_bench_contract(tmp_path):
    root = make_folder(tmp_path / "d", classes=("a", "b"), per=8, size=(300, 280))
    r = run_data_bench(str(root), images=16, batch_size=8, workers=0, repeats=1)
    for k in ("direct", "packed", "reference"):
        assert r[k] > 0
    assert r["images"] == 16 and r["crop"] == 224 and r["image_size"] == 256
    assert r["packed_vs_reference"] == pytest.approx(r["packed"] / r["reference"])
