"""alexnet.bench and ``alexnet bench``: keys and sanity of tiny runs (speeds are not tested here)."""
import json
import math

import pytest
import torch

from alexnet.bench import BenchConfig, bench_lrn, bench_model
from alexnet.cli import main
from alexnet.errors import ConfigError
from alexnet.runtime import resolve_compile, tune_cpu_allocator

TINY = dict(batch_size=2, input_size=64, steps=1, warmup=1, device="cpu")


def tiny(mode, arch="paper", **kw):
    """A BenchConfig of a tiny run (64 px, batch 2, one timed step, fc6/fc7 of 64 units)."""
    switches = {"fc_size": 64, **kw.pop("model_switches", {})}
    return BenchConfig(mode, arch, **{**TINY, **kw}, model_switches=switches)


def _positive(v):
    return isinstance(v, float) and v > 0 and math.isfinite(v)


def test_bench_train_keys_and_ratio():
    res = bench_model(tiny("train", "paper"))
    for key in ("images_per_second", "reference_images_per_second", "ratio", "peak_memory_mb",
                "reference_peak_memory_mb", "memory_ratio", "settings", "times", "reference_times"):
        assert key in res
    assert _positive(res["images_per_second"]) and _positive(res["reference_images_per_second"])
    assert res["ratio"] == pytest.approx(res["images_per_second"] / res["reference_images_per_second"])
    assert len(res["times"]) == 1 and len(res["reference_times"]) == 1
    assert res["images_per_second"] == pytest.approx(2 / res["times"][0])
    # peak memory includes at least the parameters (fp32) of each network
    n_ours = sum(p.numel() for p in torch.nn.Linear(256, 64).parameters())  # fc6 of the 64-px paper net
    assert res["peak_memory_mb"] > 4 * n_ours / 2**20
    assert res["reference_peak_memory_mb"] > 4 * 61e6 / 2**20
    assert res["memory_ratio"] == pytest.approx(res["peak_memory_mb"] / res["reference_peak_memory_mb"])
    s = res["settings"]
    assert s["device"] == "cpu" and s["precision"] in ("fp32", "bf16") and isinstance(s["channels_last"], bool)
    assert s["model"]["arch"] == "paper" and s["model"]["input_size"] == 64 and s["model"]["fc_size"] == 64


def test_bench_infer_without_reference_and_switches():
    res = bench_model(tiny("infer", "paper", reference=False, memory=False, model_switches={"lrn": False}))
    assert _positive(res["images_per_second"])
    assert res["reference_images_per_second"] is None and res["ratio"] is None
    assert res["settings"]["model"]["lrn"] is False


def test_bench_rejects_bad_mode():
    with pytest.raises(ConfigError, match="mode"):
        bench_model(tiny("fly"))


def test_bench_cli_json_and_table(capsys):
    argv = ["bench", "train", "--arch", "paper", "--batch", "2", "--input-size", "64", "--steps", "1",
            "--warmup", "0", "--device", "cpu", "--fc-size", "64"]
    assert main(argv + ["--json", "--no-reference"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["images_per_second"] > 0 and res["ratio"] is None and res["peak_memory_mb"] > 0
    assert res["batch_size"] == 2 and res["input_size"] == 64 and res["settings"]["model"]["fc_size"] == 64
    assert main(argv[:2] + ["--no-memory", "--no-lrn"] + argv[2:]) == 0
    out = capsys.readouterr().out
    assert "images/s" in out and "ratio" in out and "torchvision" in out


def test_bench_lrn_micro(capsys):
    res = bench_lrn(batch_size=1, steps=1, warmup=0, device="cpu")
    for name in ("conv1", "conv2"):
        r = res["layers"][name]
        assert r["ms"] > 0 and r["reference_ms"] > 0
        assert r["ratio"] == pytest.approx(r["reference_ms"] / r["ms"])
    assert main(["bench", "lrn", "--batch", "1", "--steps", "1", "--warmup", "0", "--device", "cpu"]) == 0
    assert "speed-up" in capsys.readouterr().out


def test_bench_data_cli_prints_ratios(monkeypatch, capsys):
    import alexnet.data.bench as data_bench

    seen = {}

    def fake(data_dir=None, images=512, **kw):
        seen.update(data_dir=data_dir, images=images)
        return {"direct": 300.0, "packed": 900.0, "reference": 150.0, "direct_vs_reference": 2.0,
                "packed_vs_reference": 6.0, "images": images, "batch_size": 64, "workers": 2, "source": "fake"}

    monkeypatch.setattr(data_bench, "run_data_bench", fake)
    assert main(["bench", "data", "some/dir", "--images", "32"]) == 0
    out = capsys.readouterr().out
    assert seen == {"data_dir": "some/dir", "images": 32}
    assert "2.00x" in out and "6.00x" in out and "packed" in out
    assert main(["bench", "data", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["packed"] == 900.0


def test_runtime_bench_defaults():
    assert isinstance(tune_cpu_allocator(), bool)
    assert tune_cpu_allocator() == tune_cpu_allocator()      # idempotent
    assert resolve_compile(True) is True
    assert resolve_compile(False) is False
    assert isinstance(resolve_compile(), bool)


def test_bench_cli_builds_the_config_with_the_library_defaults():
    from alexnet.cli import build_parser
    from alexnet.cli.bench import bench_config_from_args

    parse = build_parser().parse_args
    assert bench_config_from_args(parse(["bench", "infer"])) == BenchConfig("infer")
    cfg = bench_config_from_args(parse(["bench", "train", "--arch", "owt", "--batch", "8", "--no-channels-last",
                                        "--no-reference", "--input-size", "96", "--dropout", "0"]))
    assert cfg == BenchConfig("train", "owt", batch_size=8, channels_last=False, reference=False, input_size=96,
                              model_switches={"dropout": 0.0})


@pytest.mark.parametrize("argv", [["bench", "train", "--help"], ["bench", "lrn", "--help"],
                                  ["bench", "data", "--help"]])
def test_bench_help_states_true_defaults(argv, capsys):
    with pytest.raises(SystemExit):
        main(argv)
    out = capsys.readouterr().out
    assert "(default: None)" not in out and "(default: True)" not in out
