"""alexnet.bench and ``alexnet bench``: keys and sanity of tiny runs (speeds are not tested here)."""
import json
import math

import pytest
import torch

from alexnet.bench import BenchConfig, bench_lrn, bench_model
from alexnet.cli import main
from alexnet.errors import ConfigError
from alexnet.runtime import resolve_compile, tune_cpu_allocator

TINY = dict(batch_size=2, input_size=64, steps=1, warmup=1, device="cpu", peak=False)


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


def test_flop_count_is_the_papers_layer_table():
    """Multiply-adds per 224-px image, by hand from the paper's layer sizes (two towers: conv2, 4, 5 see half the
    channels): 724,406,816; torchvision's one-tower variant (64-192-384-256-256 kernels): 714,188,480."""
    import torchvision

    from alexnet.bench_peak import forward_flops, step_flops
    from alexnet.model import build_model

    by_hand = (96 * 55 * 55 * 11 * 11 * 3 + 256 * 27 * 27 * 5 * 5 * 48 + 384 * 13 * 13 * 3 * 3 * 256
               + 384 * 13 * 13 * 3 * 3 * 192 + 256 * 13 * 13 * 3 * 3 * 192 + 9216 * 4096 + 4096 * 4096 + 4096 * 1000)
    paper = build_model("paper")
    assert forward_flops(paper, 3, 224) == 2 * by_hand == 1_448_813_632
    assert step_flops(paper, 3, 224, "train") == 3 * 2 * by_hand
    tv = (64 * 55 * 55 * 11 * 11 * 3 + 192 * 27 * 27 * 5 * 5 * 64 + 384 * 13 * 13 * 3 * 3 * 192
          + 256 * 13 * 13 * 3 * 3 * 384 + 256 * 13 * 13 * 3 * 3 * 256 + 9216 * 4096 + 4096 * 4096 + 4096 * 1000)
    assert forward_flops(torchvision.models.alexnet(), 3, 224) == 2 * tv


def test_bench_times_torchvision_at_its_best_and_reports_the_fraction_of_peak(monkeypatch):
    """On a CPU with native bf16 (forced here, so the test runs on any CPU) torchvision's best settings are bf16
    autocast + channels_last: a third network in the same interleaved timing, and every network's fraction of the
    measured peak is images/s x FLOP per image / peak FLOP/s."""
    import alexnet.bench_peak
    from alexnet.bench_peak import step_flops

    monkeypatch.setenv("ALEXNET_CPU_BF16", "1")
    monkeypatch.setattr(alexnet.bench_peak, "PROBE", {"matmul_size": 256, "conv_batch": 2, "repeats": 2})
    res = bench_model(tiny("train", "paper", memory=False, peak=True))
    best = res["best_reference"]
    assert best["settings"] == {"precision": "bf16", "channels_last": True, "compile": False}
    assert len(best["times"]) == 1 and best["ratio"] == pytest.approx(res["images_per_second"]
                                                                      / best["images_per_second"])
    peak = res["peak"]
    assert peak["gflops"] == max(peak["matmul_gflops"], peak["conv_gflops"]) > 0 and peak["dtype"] == "bfloat16"
    import torchvision

    from alexnet.model import build_model
    ours = step_flops(build_model("paper", num_classes=1000, input_size=64, fc_size=64), 3, 64, "train")
    assert peak["gflop_per_image"] == pytest.approx(ours / 1e9)
    assert peak["fraction"] == pytest.approx(res["images_per_second"] * ours / (peak["gflops"] * 1e9))
    ref = step_flops(torchvision.models.alexnet(num_classes=1000), 3, 64, "train")
    assert peak["best_reference_fraction"] == pytest.approx(best["images_per_second"] * ref / (peak["gflops"] * 1e9))


def test_no_best_reference_where_the_defaults_are_the_best(monkeypatch):
    """An AVX2-only CPU: fp32 contiguous is torchvision's best too, so it is timed once."""
    monkeypatch.setenv("ALEXNET_CPU_BF16", "0")
    res = bench_model(tiny("infer", "paper", memory=False))
    assert res["best_reference"] is None and "peak" not in res and res["reference_images_per_second"] > 0
