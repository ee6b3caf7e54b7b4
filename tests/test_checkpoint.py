"""Safe loading: weights_only everywhere, pickles with code refused (and their code never runs), one-line errors
for truncated files and for checkpoints of another architecture."""
from __future__ import annotations

import builtins
import pickle

import pytest
import torch

import alexnet
from alexnet import interop
from alexnet.checkpoint import load_checkpoint, load_model, save_checkpoint
from alexnet.cli import main
from alexnet.errors import CheckpointError


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
    return save_checkpoint(path, {"model_config": model.config.to_dict(), "model": model.state_dict(), **extra})


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
    loaders = [load_checkpoint, load_model, interop.load_weights, interop.load_torchvision_state_dict,
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
    assert main(["export", str(files[0]), "--format", "safetensors", "-o", str(files[0].with_suffix(".st"))]) == 1
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
    interop.load_weights(ck)
    _save(tmp_path / "run" / "best.pt", _small())
    interop.load_weights(tmp_path / "run")               # a run folder
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
        for load in (load_checkpoint, interop.load_weights):
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
        interop.load_weights(ck, expect_arch="cifar")
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
