"""Safe loading: weights_only everywhere, pickles with code refused (and their code never runs), one-line errors
for truncated files and for checkpoints of another architecture."""
from __future__ import annotations

import builtins
import pickle
import shutil
from pathlib import Path

import pytest
import torch

import alexnet
from alexnet import checkpoint, interop
from alexnet.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from alexnet.cli import main
from alexnet.errors import CheckpointError
from alexnet.interop import load_model


class _Payload:
    """Unpickling this object calls ``open(marker, "w")``: the marker file appears iff the pickle's code ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return builtins.open, (self.marker, "w")


def _small(arch="paper"):
    if arch == "cifar":
        return alexnet.build_model("cifar")
    return alexnet.build_model(arch, num_classes=10, input_size=96, fc_size=64, channels=(16, 32, 32, 32, 32))


def _save(path, model, **extra):
    return save_checkpoint(path, Checkpoint(model_config=model.config, state_dict=model.state_dict(), **extra))


@pytest.fixture
def evil_files(tmp_path):
    """The same malicious payload as a torch.save zip checkpoint, a torch.save'd state_dict, and a plain pickle."""
    marker = tmp_path / "PWNED"
    model = _small()
    files = []
    p = tmp_path / "evil_checkpoint.pt"
    torch.save({"format": "alexnet-checkpoint", "version": 1, "model_config": model.config.to_dict(),
                "model": model.state_dict(), "classes": _Payload(marker)}, p)
    files.append(p)
    p = tmp_path / "evil_torchvision.pth"
    torch.save({"features.0.weight": torch.zeros(1), "classifier.6.bias": _Payload(marker)}, p)
    files.append(p)
    p = tmp_path / "evil_plain.pkl"
    with open(p, "wb") as f:
        pickle.dump({"model": _Payload(marker)}, f, protocol=2)
    files.append(p)
    return marker, files


def test_pickles_with_code_are_refused_and_the_code_does_not_run(evil_files, tmp_path):
    marker, files = evil_files
    loaders = [load_checkpoint, load_model, alexnet.load_model, interop.load_torchvision_state_dict,
               interop.safe_torch_load, lambda p: interop.convert_torchvision(p, tmp_path / "out.pt"),
               lambda p: interop.export_model(p, "safetensors", tmp_path / "out.safetensors")]
    for path in files:
        for load in loaders:
            with pytest.raises(CheckpointError, match="refused to load") as e:
                load(path)
            msg = str(e.value)
            assert "\n" not in msg and str(path) in msg and "weights_only" in msg
            assert not marker.exists(), f"unpickling {path.name} ran its code"
    assert not (tmp_path / "out.pt").exists() and not (tmp_path / "out.safetensors").exists()


def test_cli_refuses_a_malicious_checkpoint_in_one_line(evil_files, capsys):
    marker, files = evil_files
    out = files[0].with_suffix(".safetensors")
    assert main(["export", str(files[0]), "--format", "safetensors", "-o", str(out)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "refused to load" in err[0]
    assert main(["convert", "torchvision", str(files[1]), "-o", str(files[1].with_suffix(".pt"))]) == 1
    assert "refused to load" in capsys.readouterr().err
    assert not marker.exists()


def test_every_load_uses_weights_only(tmp_path, monkeypatch):
    import torchvision

    calls = []
    real_load = torch.load

    def spy(*args, **kwargs):
        calls.append(kwargs.get("weights_only"))
        return real_load(*args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    ck = _save(tmp_path / "m.pt", _small())
    load_checkpoint(ck)
    load_model(ck)
    _save(tmp_path / "run" / "best.pt", _small())
    load_model(tmp_path / "run")                          # a run folder
    load_checkpoint(tmp_path / "run")
    tv = tmp_path / "tv.pth"
    torch.save(torchvision.models.alexnet(weights=None).state_dict(), tv)
    interop.load_torchvision_state_dict(tv)
    assert calls and all(c is True for c in calls), calls


def test_truncated_and_empty_checkpoints_give_one_line_errors(tmp_path):
    ck = _save(tmp_path / "m.pt", _small())
    data = ck.read_bytes()
    for name, payload in (("half.pt", data[: len(data) // 2]), ("head.pt", data[:100]), ("empty.pt", b""),
                          ("text.pt", b"hello, not a checkpoint\n")):
        p = tmp_path / name
        p.write_bytes(payload)
        for load in (load_checkpoint, load_model):
            with pytest.raises(CheckpointError) as e:
                load(p)
            msg = str(e.value)
            assert "\n" not in msg and name in msg
            assert any(w in msg for w in ("truncated", "corrupt", "empty")), msg


def test_checkpoint_of_another_architecture_names_both(tmp_path, capsys):
    ck = _save(tmp_path / "paper.pt", _small("paper"))
    with pytest.raises(CheckpointError, match="'paper'.*'owt'") as e:
        load_model(ck, expect_arch="owt")
    assert "\n" not in str(e.value)
    with pytest.raises(CheckpointError, match="'paper'.*'cifar'"):
        load_model(ck, expect_arch="cifar")
    # weights of one architecture under another's config: the message names the tensor and the architecture
    cifar = _small("cifar")
    bad = tmp_path / "mixed.pt"
    _save(bad, _small("paper"))
    payload = torch.load(bad, weights_only=True)
    payload["model"] = cifar.state_dict()
    torch.save(payload, bad)
    with pytest.raises(CheckpointError, match="'paper'") as e:
        load_model(bad)
    assert "\n" not in str(e.value) and "missing" in str(e.value)
    # a torchvision file handed to the alexnet checkpoint loader says what to do
    tv = tmp_path / "tv.pth"
    torch.save({"features.0.weight": torch.zeros(64, 3, 11, 11)}, tv)
    with pytest.raises(CheckpointError, match="convert torchvision"):
        load_checkpoint(tv)


# ---------------------------------------------------------------------------------------------------------------
# The Checkpoint record: one layout, versioned; files of every earlier version keep loading
# ---------------------------------------------------------------------------------------------------------------

V1 = Path(__file__).parent / "data" / "v1"      # written by alexnet at commit 1405436 (see tests/data/README.md)


def test_a_version_1_training_checkpoint_still_loads_with_its_training_state():
    raw = torch.load(V1 / "last.pt", weights_only=True)
    assert raw["version"] == 1
    ck = load_checkpoint(V1 / "last.pt")
    cfg = ck.model_config
    assert (ck.arch, cfg.num_classes, cfg.input_size, cfg.towers, cfg.channels, cfg.fc_size) == \
        ("paper", 3, 64, 2, (8, 16, 16, 16, 16), 16)
    assert ck.classes == ["circle", "square", "triangle"]
    prep = ck.preprocessing
    assert (prep["resize"], prep["crop"], prep["channel_order"], prep["channels"]) == (72, 64, "RGB", 3)
    assert len(prep["mean"]) == len(prep["std"]) == 3 and "stats" in prep
    assert ck.resumable and ck.epoch == 1 and ck.batch_in_epoch == 0 and ck.step == 2 and ck.aug_rng is None
    assert ck.train_config["arch"] == "paper" and ck.train_config["batch_size"] == 8 and ck.train_config["seed"] == 3
    assert ck.optimizer["state"] and ck.schedule["kind"] == "plateau" and set(ck.rng) >= {"torch", "python"}
    assert len(ck.history) == 1 and ck.history[0]["step"] == 2 and ck.metrics == ck.history[0]
    assert ck.best_val_top1_error == pytest.approx(ck.metrics["val_top1_error"])
    for k, v in raw["model"].items():
        assert torch.equal(ck.state_dict[k], v), k


def test_a_version_1_mid_epoch_checkpoint_keeps_its_resume_position():
    ck = load_checkpoint(V1 / "mid_epoch.pt")
    assert ck.resumable and (ck.epoch, ck.batch_in_epoch, ck.step) == (0, 1, 1)
    assert isinstance(ck.aug_rng, torch.Tensor) and ck.history == [] and ck.metrics is None
    assert ck.best_val_top1_error == float("inf")


def test_version_1_files_load_as_networks_through_the_one_loader(tmp_path):
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0)) * 50
    model, ck = load_model(V1 / "last.pt")
    assert not model.training and type(model).__name__ == "PaperAlexNet"
    with torch.no_grad():
        ref = model(x)
    st_model, st = load_model(V1 / "weights.safetensors")     # exported by that version (header version "1")
    assert st.classes == ck.classes and st.preprocessing == ck.preprocessing
    assert not st.resumable and st.model_config == ck.model_config
    with torch.no_grad():
        torch.testing.assert_close(st_model(x), ref)
    shutil.copy(V1 / "last.pt", tmp_path / "last.pt")
    folder_model, _ = load_model(tmp_path)                    # a run folder with only last.pt
    with torch.no_grad():
        torch.testing.assert_close(folder_model(x), ref)


def test_training_resumes_from_a_version_1_mid_epoch_checkpoint(tmp_path):
    from alexnet.data import synthetic
    from alexnet.train import TrainConfig, train

    data = synthetic.generate(tmp_path / "d", classes=3, train_per_class=8, val_per_class=3, size=64, seed=1,
                              progress=False)
    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(V1 / "mid_epoch.pt", run / "last.pt")
    # the settings of the run that wrote it (tests/data/make_v1.py)
    cfg = TrainConfig(data=str(data), out=str(run), arch="paper",
                      model={"fc_size": 16, "channels": [8, 16, 16, 16, 16], "init": "kaiming"},
                      epochs=1, batch_size=8, resize=72, crop=64, seed=3, deterministic=True, workers=0,
                      progress=False, steps_per_epoch=2, save_every=1, val_batches=1)
    summary = train(cfg, resume=run, printer=lambda s: None)
    assert summary["steps"] == 2
    ck = load_checkpoint(run / "last.pt")
    assert (ck.epoch, ck.batch_in_epoch, ck.step) == (1, 0, 2) and len(ck.history) == 1


def test_record_round_trip_and_weights_only_files(tmp_path):
    model = _small()
    full = Checkpoint(model_config=model.config, state_dict=model.state_dict(), classes=list("abcdefghij"),
                      preprocessing={"mean": [1.0] * 3, "std": [2.0] * 3, "resize": 110, "crop": 96},
                      metrics={"epoch": 1}, train_config={"seed": 0}, optimizer={"state": {}}, schedule={"lr": 0.1},
                      epoch=1, batch_in_epoch=0, step=5, rng={"torch": torch.get_rng_state()},
                      history=[{"epoch": 1}], best_val_top1_error=0.5)
    back = load_checkpoint(save_checkpoint(tmp_path / "full.pt", full))
    assert back.resumable and back.model_config == full.model_config and back.classes == full.classes
    assert (back.epoch, back.step, back.history, back.best_val_top1_error) == (1, 5, [{"epoch": 1}], 0.5)
    assert torch.equal(back.rng["torch"], full.rng["torch"])
    # the on-disk layout (what older and newer code read) is version 1's
    raw = torch.load(tmp_path / "full.pt", weights_only=True)
    assert raw["format"] == "alexnet-checkpoint" and raw["version"] == checkpoint.VERSION
    assert raw["model_config"] == model.config.to_dict() and raw["data"] == full.preprocessing
    assert set(raw["model"]) == set(model.state_dict())
    slim = full.weights_only()
    assert not slim.resumable and slim.classes == full.classes and slim.metrics == full.metrics
    assert set(slim.to_payload()) == {"format", "version", "model_config", "model", "classes", "data", "metrics"}
    assert Checkpoint.from_payload(slim.to_payload()).model_config == full.model_config
    with pytest.raises(TypeError, match="Checkpoint record"):
        save_checkpoint(tmp_path / "dict.pt", {"model_config": model.config.to_dict(), "model": {}})


def test_upgrade_steps_bring_old_versions_up_to_date(tmp_path, monkeypatch):
    """A layout change bumps VERSION and adds a step to UPGRADES; the frozen version-1 files go through it."""
    calls = []

    def upgrade_v1_to_v2(payload):
        calls.append(payload["version"])
        return {**payload, "source": {"kind": "upgraded", "from": payload.get("source")}}

    monkeypatch.setattr(checkpoint, "VERSION", 2)
    monkeypatch.setattr(checkpoint, "UPGRADES", {1: upgrade_v1_to_v2})
    for path in (V1 / "last.pt", V1 / "weights.safetensors"):
        _, ck = load_model(path)
        assert ck.source == {"kind": "upgraded", "from": None} and ck.classes == ["circle", "square", "triangle"]
    assert calls == [1, 1]
    saved = save_checkpoint(tmp_path / "v2.pt", load_checkpoint(V1 / "last.pt"))
    assert torch.load(saved, weights_only=True)["version"] == 2
    assert load_checkpoint(saved).source["kind"] == "upgraded" and calls == [1, 1, 1]   # v2 files: no step
    monkeypatch.setattr(checkpoint, "UPGRADES", {})
    with pytest.raises(CheckpointError, match="version 1 can no longer be read") as e:
        load_checkpoint(V1 / "last.pt")
    assert "last.pt" in str(e.value) and "\n" not in str(e.value)


def test_bad_record_entries_are_one_line_errors(tmp_path):
    raw = torch.load(V1 / "last.pt", weights_only=True)
    cases = {"newer.pt": {**raw, "version": checkpoint.VERSION + 1},
             "noversion.pt": {k: v for k, v in raw.items() if k != "version"},
             "unknown.pt": {**raw, "blob": torch.zeros(2)},
             "noconfig.pt": {k: v for k, v in raw.items() if k != "model_config"},
             "badconfig.pt": {**raw, "model_config": {**raw["model_config"], "wings": 2}}}
    expect = {"newer.pt": "newer than this alexnet", "noversion.pt": "'version'", "unknown.pt": r"\['blob'\]",
              "noconfig.pt": "'model_config'", "badconfig.pt": "bad model_config.*wings"}
    for name, payload in cases.items():
        torch.save(payload, tmp_path / name)
        for load in (load_checkpoint, load_model):
            with pytest.raises(CheckpointError, match=expect[name]) as e:
                load(tmp_path / name)
            assert name in str(e.value) and "\n" not in str(e.value)
