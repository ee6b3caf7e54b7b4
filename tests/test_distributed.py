"""Data parallelism on torch.distributed: 2 CPU processes with Gloo, rendezvous on 127.0.0.1 only.

Starting torch costs seconds per process on this machine, so one spawned pair of processes does all the in-process
checks (``ddp_run``): one DDP SGD step, a distributed evaluation, and a straight 2-epoch ``train_entry`` run that
the torchrun test below continues a 1-epoch run with ``--resume`` and must arrive at the same weights.
"""
import json
import os
import socket
import subprocess
import sys

import pytest
import torch
import torch.multiprocessing as mp
import torch.nn.functional as F

from alexnet import build_model
from alexnet.errors import ConfigError
from alexnet.metrics import TopKMeter
from alexnet.optim import PaperSGD

WORLD = 2
GLOBAL_BATCH = 8
TINY = dict(num_classes=3, input_size=64, channels=(16, 32, 48, 48, 32), fc_size=32, dropout=0.0)
VAL_IMAGES = 9      # odd: the two ranks' evaluation shards differ in size
# --recipe paper (the default before recipes): the resume test extends a 1-epoch run to 2 epochs, which only the
# epoch-count-free plateau schedule continues bitwise (cosine, the small recipe's, depends on --epochs)
TRAIN_ARGS = ["--arch", "paper", "--recipe", "paper", "--fc-size", "32", "--init", "kaiming", "--resize", "72",
              "--crop", "64",
              "--batch-size", "4", "--seed", "3", "--deterministic", "--workers", "0", "--device", "cpu",
              "--precision", "fp32", "--no-progress"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def dist_env() -> dict:
    """Loopback-only rendezvous, one thread per process (2 processes on a 2-core machine)."""
    return {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(free_port()), "GLOO_SOCKET_IFNAME": "lo",
            "OMP_NUM_THREADS": "1", "WORLD_SIZE": str(WORLD)}


@pytest.fixture(scope="module")
def synth(make_synth):
    return make_synth(classes=3, train_per_class=6, val_per_class=3, size=72, seed=1)


def tiny_model():
    torch.manual_seed(0)
    model = build_model("paper", **TINY)
    with torch.no_grad():   # weights large enough that one step changes every layer measurably
        for p in model.parameters():
            p.normal_(0.0, 0.05)
    return model


def global_batch():
    g = torch.Generator().manual_seed(1)
    return torch.randn(GLOBAL_BATCH, 3, 64, 64, generator=g), torch.randint(0, 3, (GLOBAL_BATCH,), generator=g)


def sgd_steps(model, x, y, steps=2):
    opt = PaperSGD(model.parameters(), lr=0.05)
    for _ in range(steps):      # two steps, so that the momentum (velocity) is exercised too
        opt.zero_grad(set_to_none=True)
        logits = model(x)
        loss = F.cross_entropy(logits, y)
        loss.backward()
        opt.step()
    return logits.detach(), loss.item()


def evaluate_tiny(data, **dist_kw):
    from alexnet.data import open_dataset
    from alexnet.evaluate import evaluate

    val = open_dataset(data, "val", image_size=72)
    assert len(val) == VAL_IMAGES
    prep = {"crop": 64, "mean": [120.0] * 3, "std": [60.0] * 3}
    return evaluate(tiny_model(), val, prep, batch_size=2, device="cpu", precision="fp32", workers=0, progress=False,
                    **dist_kw)


def train_config(data, out, epochs):
    from alexnet.cli import build_parser
    from alexnet.cli.train import config_from_args

    args = build_parser().parse_args(["train", "--data", str(data), "--out", str(out), "--epochs", str(epochs),
                                      *TRAIN_ARGS])
    return config_from_args(args)


def _worker(rank, data, out_dir):
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    from alexnet.distributed import all_reduce_sum, ddp_wrapper, init_from_env, train_entry

    ctx = init_from_env("cpu")
    assert (ctx.rank, ctx.world_size, ctx.backend, ctx.device.type) == (rank, WORLD, "gloo", "cpu")
    reduce = all_reduce_sum(ctx.device)
    result = {}
    # (a) one data-parallel step: each rank takes its half of the global batch
    model = tiny_model()
    if rank == 1:        # DDP starts every rank from rank 0's weights
        with torch.no_grad():
            for p in model.parameters():
                p.add_(1.0)
    net = ddp_wrapper(ctx)(model)
    x, y = global_batch()
    per = GLOBAL_BATCH // WORLD
    shard = slice(rank * per, (rank + 1) * per)
    logits, loss = sgd_steps(net, x[shard], y[shard])
    meter = TopKMeter()
    meter.update(logits, y[shard], loss)
    result.update(model=model.state_dict(), meter=reduce(meter.state()))
    # (b) distributed evaluation of an odd number of images
    result["eval"] = evaluate_tiny(data, dist=ctx)
    # (c) the same tiny run twice: 2 epochs straight, and 1 epoch through the CLI's entry point (which leaves the
    # process group at the end); the torchrun test resumes the second and must arrive at the first's weights
    from alexnet.train import train

    result["straight"] = train(train_config(data, os.path.join(out_dir, "straight"), epochs=2), dist=ctx,
                               printer=lambda s: None)
    result["split"] = train_entry(train_config(data, os.path.join(out_dir, "split"), epochs=1))
    torch.save(result, os.path.join(out_dir, f"rank{rank}.pt"))


@pytest.fixture(scope="module")
def ddp_run(synth, tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp")
    with pytest.MonkeyPatch.context() as mp_env:
        for k, v in dist_env().items():
            mp_env.setenv(k, v)
        mp.spawn(_worker, args=(str(synth), str(out)), nprocs=WORLD, join=True)
    return out, [torch.load(out / f"rank{r}.pt", weights_only=False) for r in range(WORLD)]


def test_ddp_step_equals_one_process_on_the_global_batch(ddp_run):
    _, ranks = ddp_run
    ref = tiny_model()
    x, y = global_batch()
    logits, loss = sgd_steps(ref, x, y)
    start = tiny_model().state_dict()
    for name, w in ref.state_dict().items():
        assert not torch.allclose(w, start[name]), f"{name} did not move: the test would prove nothing"
        for r in ranks:
            torch.testing.assert_close(r["model"][name], w, rtol=1e-4, atol=1e-6,
                                       msg=lambda m, name=name: f"{name}: {m}")
    # metrics summed across ranks count every sample of the global batch once, as one process does
    full = TopKMeter()
    full.update(logits, y, loss)
    for r in ranks:
        torch.testing.assert_close(r["meter"], full.state(), rtol=1e-5, atol=1e-5)
    assert ranks[0]["meter"][0] == GLOBAL_BATCH


def test_distributed_evaluation_counts_every_image_once(ddp_run, synth):
    _, ranks = ddp_run
    single = evaluate_tiny(synth)
    assert single["n"] == VAL_IMAGES
    for r in ranks:
        ev = r["eval"]
        assert ev["n"] == VAL_IMAGES          # 5 + 4, no padding: nothing counted twice
        for key in ("top1_error", "top5_error", "loss"):
            assert ev[key] == pytest.approx(single[key], rel=1e-5, abs=1e-6), key
        assert ev["per_class_accuracy"] == pytest.approx(single["per_class_accuracy"])


def torchrun(args, env_extra=None, timeout=300):
    env = {**os.environ, **dist_env(), **(env_extra or {})}
    env.pop("WORLD_SIZE")
    cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={WORLD}", "--nnodes=1",
           "--master_addr=127.0.0.1", f"--master_port={env['MASTER_PORT']}", "-m", "alexnet", *args]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow
def test_torchrun_resumes_a_run_and_only_rank0_writes(ddp_run, synth):
    out_dir, ranks = ddp_run
    run = out_dir / "split"                      # 1 epoch, written by the 2 spawned ranks through train_entry
    assert ranks[0]["split"]["epochs"] == 1 and ranks[1]["split"] is None   # rank 1 returns quietly
    done = torchrun(["train", "--data", str(synth), "--out", str(run), *TRAIN_ARGS, "--epochs", "2",
                     "--resume", str(run)])
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("done: 2 epochs") == 1

    config = json.loads((run / "config.json").read_text())
    assert config["world_size"] == WORLD
    rows = (run / "metrics.csv").read_text().strip().splitlines()
    assert len(rows) == 1 + 2
    log = (run / "train.log").read_text()
    # one writer: each launch logged its config and each epoch once (two writers would double every line)
    assert log.count("config: ") == 2 and log.count("epoch 1/1 ") == 1 and log.count("epoch 2/2 ") == 1
    assert len(list((run / "tb").iterdir())) == 2                # one event file per launch, from rank 0
    assert sorted(p.name for p in run.iterdir()) == sorted(
        ["best.pt", "config.json", "curves.png", "last.pt", "metrics.csv", "tb", "train.log"])

    # resume works as in one process: 1 epoch + resume == the straight 2-epoch run of the same 2 ranks
    from alexnet.checkpoint import load_checkpoint

    resumed, straight = load_checkpoint(run / "last.pt"), load_checkpoint(out_dir / "straight" / "last.pt")
    # 18 training images: 9 per rank, 4 full per-rank batches of 2 (drop_last) = 4 global steps per epoch
    assert resumed.step == straight.step == 2 * 4
    assert not any(k.startswith("module.") for k in resumed.state_dict)   # DDP's wrapper is not in the checkpoint
    for k, v in straight.state_dict.items():
        assert torch.equal(resumed.state_dict[k], v), k
    for a, b in zip(resumed.history, straight.history, strict=True):
        assert (a["train_loss"], a["val_loss"]) == (b["train_loss"], b["val_loss"])


def test_torchrun_environment_is_required(monkeypatch):
    from alexnet.distributed import init_from_env

    for key in ("RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(key, raising=False)
    with pytest.raises(ConfigError, match="torchrun"):
        init_from_env("cpu")


def test_batch_must_split_evenly(monkeypatch, tmp_path):
    from alexnet.distributed import train_entry
    from alexnet.train import TrainConfig

    monkeypatch.setenv("WORLD_SIZE", "3")
    with pytest.raises(ConfigError, match="not divisible by the 3 processes"):
        train_entry(TrainConfig(data=str(tmp_path), out=str(tmp_path / "o"), batch_size=128))
