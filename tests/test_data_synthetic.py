"""The embedded synthetic dataset: deterministic, reused when complete, never half-written, class-neutral nuisances."""
import json

import numpy as np
import pytest

import alexnet.data.synthetic as synthetic
from alexnet.data import open_dataset
from alexnet.errors import ConfigError, DataError


def small(out, **kw):
    args = dict(classes=3, train_per_class=4, val_per_class=2, size=48, seed=1, progress=False, workers=1)
    args.update(kw)
    return synthetic.generate(out, **args)


def test_generates_a_real_imagefolder_and_reuses_it(tmp_path):
    out = small(tmp_path / "s")
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["classes"] == ["circle", "triangle", "square"] and manifest["images"] == {"train": 12, "val": 6}
    train, val = open_dataset(out, "train", image_size=32), open_dataset(out, "val", image_size=32)
    assert len(train) == 12 and len(val) == 6 and train.classes == sorted(manifest["classes"])
    assert train.bad_files == [] and train[0][0].shape == (3, 32, 32)
    stamp = (out / "manifest.json").stat().st_mtime_ns
    assert small(tmp_path / "s") == out and (out / "manifest.json").stat().st_mtime_ns == stamp   # reused
    assert not list(tmp_path.glob(".s.*"))


def test_deterministic_from_the_seed(tmp_path):
    a, b = small(tmp_path / "a"), small(tmp_path / "b", workers=2)
    c = small(tmp_path / "c", seed=2)
    f = "train/square/square_00003.jpg"
    assert (a / f).read_bytes() == (b / f).read_bytes()
    assert (a / f).read_bytes() != (c / f).read_bytes()


def test_other_parameters_regenerate_cleanly(tmp_path):
    out = small(tmp_path / "s")
    (out / "val" / "circle" / "circle_00000.jpg").unlink()          # incomplete
    assert not synthetic.is_complete(out, synthetic._params(3, 4, 2, 48, 1))
    small(tmp_path / "s")
    assert (out / "val" / "circle" / "circle_00000.jpg").is_file()
    small(tmp_path / "s", classes=4, train_per_class=2)
    assert json.loads((out / "manifest.json").read_text())["classes"][-1] == "pentagon"
    assert len(list((out / "train" / "circle").iterdir())) == 2


def test_interrupted_generation_leaves_nothing_half_written(tmp_path, monkeypatch):
    old = small(tmp_path / "s")
    calls = {"n": 0}
    real = synthetic._task

    def dying(args):
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt
        real(args)
    monkeypatch.setattr(synthetic, "_task", dying)
    with pytest.raises(KeyboardInterrupt):
        small(tmp_path / "s", seed=9)
    assert synthetic.is_complete(old, synthetic._params(3, 4, 2, 48, 1))   # the previous set is untouched
    assert [p.name for p in tmp_path.iterdir()] == ["s"]


def test_refuses_to_overwrite_a_foreign_folder(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.txt").write_text("precious")
    with pytest.raises(DataError, match="not written by"):
        small(tmp_path / "mine")
    with pytest.raises(ConfigError):
        small(tmp_path / "x", classes=1)


def test_nuisances_do_not_give_the_class_away():
    # mean colour and foreground area must carry (almost) no class information
    feats, labels = [], []
    for c, name in enumerate(synthetic.SHAPES[:10]):
        for i in range(12):
            img = np.asarray(synthetic.render(name, synthetic._image_rng(0, "train", c, i), 64), dtype=np.float32)
            feats.append(img.reshape(-1, 3).mean(0))
            labels.append(c)
    feats, labels = np.array(feats), np.array(labels)
    class_means = np.array([feats[labels == c].mean(0) for c in range(10)])
    between = class_means.var(0).mean()
    within = np.mean([feats[labels == c].var(0).mean() for c in range(10)])
    assert between < 0.35 * within
