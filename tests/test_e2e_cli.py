"""End to end: the command line as a person and a script drive it, one `python -m alexnet` process per command.

data synth -> train -> eval (1 and 10 crops) -> predict -> features -> viz curves/filters/neighbours, checking the
files written (PNG magic bytes, the .npz keys, shapes and paths) and the --json fields that scripts rely on
(documented in docs/json.md); then the usual user mistakes, each of which must end in one line on stderr,
`alexnet VERB: error: ...`, no traceback, a non-zero exit and no output file left behind.

Cost: one tiny network (small channels, fc 32, 64 px crops, 2 epochs on 18 images) trained once per module; the
commands after training are independent and run a few at a time, since most of each one's time is importing torch.
For the same reason most mistakes run in this process through `alexnet.cli.main` (exactly what `python -m alexnet`
calls: an escaping exception fails the test as a traceback would); a few of them also run as real processes.
"""
from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.slow

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
CLASSES, TRAIN_PER_CLASS, VAL_PER_CLASS, SIZE = 3, 6, 3, 72
CHANNELS, FC = (16, 32, 48, 48, 32), 32        # a small `paper` network (two towers, LRN, overlapping pools)
TRAIN_FLAGS = ["--arch", "paper", "--channels", ",".join(map(str, CHANNELS)), "--fc-size", str(FC),
               "--resize", str(SIZE), "--crop", "64", "--epochs", "2", "--batch-size", "6", "--seed", "0",
               "--workers", "0", "--device", "cpu", "--no-progress"]
CPU = ["--device", "cpu"]


def alexnet(*args, cwd: Path, threads: int | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    if threads:
        env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    return subprocess.run([sys.executable, "-m", "alexnet", *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def ok(proc: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert proc.returncode == 0, f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def ok_json(proc: subprocess.CompletedProcess):
    return json.loads(ok(proc).stdout)


def is_png(path: Path) -> bool:
    return path.is_file() and path.read_bytes()[:8] == PNG_MAGIC


def leftovers(folder: Path) -> list[str]:
    """Temporary files of the atomic writers (`.NAME.PID.XXXX.alexnet-tmp...`) that a failed command must not leave."""
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".") and "tmp" in p.name)


# The commands that run after training, all independent of each other: name -> argv (paths relative to the
# work folder).  Mistakes: name -> (argv, text the one-line error must contain, a path that must not appear).
def happy_commands(val_images: dict[str, list[str]]) -> dict[str, list[str]]:
    c0, c1 = sorted(val_images)[:2]
    return {
        "eval1": ["eval", "--checkpoint", "run/best.pt", "--data", "data", "--crops", "1", "--json", "--workers", "0",
                  *CPU],
        "eval10": ["eval", "--checkpoint", "run", "--data", "data", "--crops", "10", "--json", "--workers", "0", *CPU],
        "predict": ["predict", val_images[c0][0], f"data/val/{c1}", "--checkpoint", "run/best.pt", "--topk", "2",
                    "--json", *CPU],
        "predict_text": ["predict", val_images[c0][0], "--checkpoint", "run", "--topk", "5", "--crops", "10", *CPU],
        "features": ["features", "data/val", "--checkpoint", "run/best.pt", "--layer", "conv1", "--layer", "fc7",
                     "-o", "out/feats.npz", "--json", *CPU],
        "features_skip_bad": ["features", "mixed", "--checkpoint", "run/best.pt", "--layer", "conv5", "fc8",
                              "--pool", "avg", "--skip-bad", "-o", "out/mixed.npz", "--json", *CPU],
        "curves": ["viz", "curves", "run", "-o", "out/curves.png"],
        "filters": ["viz", "filters", "run/best.pt", "-o", "out/filters.png", "--json"],
        "neighbours": ["viz", "neighbours", "--checkpoint", "run/best.pt", "--data", "data", "--queries", "3",
                       "--k", "4", "-o", "out/neighbours.png", "--json", *CPU],
    }


MISTAKES = {
    # a missing file or folder
    "eval_missing_checkpoint": (["eval", "--checkpoint", "nope.pt", "--data", "data", *CPU], "nope.pt", None),
    "eval_missing_data": (["eval", "--checkpoint", "run", "--data", "nodata", *CPU], "nodata", None),
    "predict_missing_image": (["predict", "nope.jpg", "--checkpoint", "run", *CPU], "nope.jpg", None),
    "features_missing_dir": (["features", "nodir", "--checkpoint", "run", "--layer", "fc7", "-o", "bad/a.npz",
                              *CPU], "nodir", "bad/a.npz"),
    "curves_missing_run": (["viz", "curves", "norun", "-o", "bad/c.png"], "metrics.csv", "bad/c.png"),
    "filters_missing_checkpoint": (["viz", "filters", "nope.pt", "-o", "bad/f.png"], "nope.pt", "bad/f.png"),
    "neighbours_missing_data": (["viz", "neighbours", "--checkpoint", "run", "--data", "nodata", "-o", "bad/n.png",
                                 *CPU], "nodata", "bad/n.png"),
    "train_missing_data": (["train", "--data", "nodata", "--out", "bad/run1", *TRAIN_FLAGS], "nodata", "bad/run1"),
    "info_missing_dir": (["data", "info", "nodata"], "nodata", None),
    # a wrong layer name
    "features_wrong_layer": (["features", "data/val", "--checkpoint", "run", "--layer", "fc7", "--layer", "fc9",
                              "-o", "bad/b.npz", *CPU], "'fc9'", "bad/b.npz"),
    # an image that cannot be decoded
    "predict_garbage_image": (["predict", "x.jpg", "--checkpoint", "run", *CPU], "x.jpg", None),
    "features_garbage_image": (["features", "x.jpg", "--checkpoint", "run", "--layer", "fc7", "-o", "bad/c.npz",
                                *CPU], "x.jpg", "bad/c.npz"),
    "features_only_garbage_skip_bad": (["features", "x.jpg", "--checkpoint", "run", "--layer", "fc7", "--skip-bad",
                                        "-o", "bad/d.npz", *CPU], "could be read", "bad/d.npz"),
    "eval_garbage_checkpoint": (["eval", "--checkpoint", "x.jpg", "--data", "data", *CPU], "x.jpg", None),
    # a checkpoint of another shape (fc6/fc7 of 64 units in the config, 32 in the weights)
    "eval_wrong_shape": (["eval", "--checkpoint", "wrong.pt", "--data", "data", *CPU], "fc6.weight", None),
    "predict_wrong_shape": (["predict", "x.jpg", "--checkpoint", "wrong.pt", *CPU], "fc6.weight", None),
    "features_wrong_shape": (["features", "data/val", "--checkpoint", "wrong.pt", "--layer", "fc7", "-o",
                              "bad/e.npz", *CPU], "fc6.weight", "bad/e.npz"),
    "filters_wrong_shape": (["viz", "filters", "wrong.pt", "-o", "bad/g.png"], "fc6.weight", "bad/g.png"),
    "neighbours_wrong_shape": (["viz", "neighbours", "--checkpoint", "wrong.pt", "--data", "data", "-o",
                                "bad/h.png", *CPU], "fc6.weight", "bad/h.png"),
    "export_wrong_shape": (["export", "wrong.pt", "-o", "bad/w.safetensors"], "fc6.weight", "bad/w.safetensors"),
    "resume_other_shape": (["train", "--data", "data", "--out", "bad/run2", "--resume", "run",
                            *TRAIN_FLAGS[:4], "--fc-size", str(2 * FC), *TRAIN_FLAGS[6:]], "fc6.weight", "bad/run2"),
    "eval_other_classes": (["eval", "--checkpoint", "run", "--data", "data2", *CPU], "classes", None),
    "torchvision_state_dict": (["predict", "x.jpg", "--checkpoint", "state_dict.pt", *CPU], "not an alexnet checkpoint",
                               None),
    # out-of-range flags that argparse cannot catch
    "synth_too_many_classes": (["data", "synth", "bad/s", "--classes", "20", "--no-progress"], "classes",
                               "bad/s"),
    "neighbours_zero_queries": (["viz", "neighbours", "--checkpoint", "run", "--data", "data", "--queries", "0",
                                 "-o", "bad/i.png", *CPU], "--queries", "bad/i.png"),
}


# These also run as separate processes (one per verb family), the rest only through main() in this process.
MISTAKES_AS_PROCESSES = ("predict_garbage_image", "features_wrong_layer", "resume_other_shape")


@pytest.fixture(scope="module")
def e2e(tmp_path_factory):
    import torch

    work = tmp_path_factory.mktemp("e2e")
    synth = ok(alexnet("data", "synth", "data", "--classes", CLASSES, "--train-per-class", TRAIN_PER_CLASS,
                       "--val-per-class", VAL_PER_CLASS, "--size", SIZE, "--no-progress", cwd=work))
    train = alexnet("train", "--data", "data", "--out", "run", *TRAIN_FLAGS, "--json", cwd=work)

    # What the mistakes need: undecodable bytes named .jpg, a folder mixing them with good images, a checkpoint
    # whose config and weights disagree, a bare state_dict, a dataset with other classes.
    (work / "x.jpg").write_bytes(bytes(range(7, 71)) * 4 + b"definitely not a JPEG")
    val_images = {c.name: sorted(f"data/val/{c.name}/{f.name}" for f in c.iterdir())
                  for c in sorted((work / "data" / "val").iterdir())}
    (work / "mixed").mkdir()
    first_two = [val_images[c][0] for c in sorted(val_images)[:2]]
    for i, src in enumerate(first_two):
        shutil.copy(work / src, work / "mixed" / f"good{i}.jpg")
    shutil.copy(work / "x.jpg", work / "mixed" / "broken.jpg")
    (work / "bad").mkdir()
    (work / "out").mkdir()
    ok(train)
    ckpt = torch.load(work / "run" / "best.pt", weights_only=True)
    ckpt["model_config"]["fc_size"] = 2 * FC
    torch.save(ckpt, work / "wrong.pt")
    torch.save(ckpt["model"], work / "state_dict.pt")
    shutil.copytree(work / "data", work / "data2")
    shutil.rmtree(work / "data2" / "train" / sorted(val_images)[-1])
    shutil.rmtree(work / "data2" / "val" / sorted(val_images)[-1])

    jobs = {name: argv for name, argv in happy_commands(val_images).items()}
    jobs.update({name: MISTAKES[name][0] for name in MISTAKES_AS_PROCESSES})
    # Three at a time, one thread each: on a 2-core machine most of each command's time is importing torch.
    with ThreadPoolExecutor(max_workers=3) as pool:
        futures = {name: pool.submit(alexnet, *argv, cwd=work, threads=1) for name, argv in jobs.items()}
        results = {name: f.result() for name, f in futures.items()}
    return {"work": work, "synth": synth, "train": train, "val_images": val_images, "first_two": first_two,
            "results": results}


def test_data_synth_writes_an_image_folder(e2e):
    data = e2e["work"] / "data"
    assert f"{CLASSES} classes" in e2e["synth"].stdout
    for split, per in (("train", TRAIN_PER_CLASS), ("val", VAL_PER_CLASS)):
        classes = sorted(p.name for p in (data / split).iterdir())
        assert len(classes) == CLASSES
        for c in classes:
            jpegs = list((data / split / c).glob("*.jpg"))
            assert len(jpegs) == per
            assert jpegs[0].read_bytes()[:2] == b"\xff\xd8"      # JPEG SOI marker


def test_train_json_and_run_folder(e2e):
    s = ok_json(e2e["train"])          # with --json, stdout is the summary alone ...
    assert "epoch 2/2" in e2e["train"].stderr and "epoch" not in e2e["train"].stdout.split("{")[0]  # ... lines: stderr
    run = e2e["work"] / "run"
    assert s["run_dir"] == "run" and s["epochs"] == 2 and s["steps"] == 2 * (CLASSES * TRAIN_PER_CLASS // 6)
    assert s["device"] == "cpu" and s["precision"] in ("fp32", "bf16")
    assert s["wall_seconds"] > 0 and s["images_per_second"] > 0
    f = s["final"]
    assert f["epoch"] == 2 and f["step"] == s["steps"] and f["lr"] == pytest.approx(0.01)
    for key in ("train_loss", "train_top1_error", "train_top5_error", "val_loss", "val_top1_error", "val_top5_error"):
        assert isinstance(f[key], float), key
    assert 0 <= f["val_top1_error"] <= 1 and 0 <= s["best_val_top1_error"] <= 1
    for name in ("best.pt", "last.pt", "config.json", "metrics.csv", "train.log", "curves.png"):
        assert f"run/{name}" in s["files"] and (run / name).is_file(), name
    assert is_png(run / "curves.png")
    assert not leftovers(run)
    config = json.loads((run / "config.json").read_text())
    assert config["model"]["fc_size"] == FC and config["model"]["channels"] == list(CHANNELS)
    assert config["data"]["crop"] == 64 and config["data"]["resize"] == SIZE and len(config["classes"]) == CLASSES
    with open(run / "metrics.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [int(float(r["epoch"])) for r in rows] == [1, 2]
    assert float(rows[-1]["val_top1_error"]) == pytest.approx(f["val_top1_error"])


@pytest.mark.parametrize("name, crops", [("eval1", 1), ("eval10", 10)])
def test_eval_json(e2e, name, crops):
    r = ok_json(e2e["results"][name])
    classes = sorted(e2e["val_images"])
    assert r["crops"] == crops and r["n"] == CLASSES * VAL_PER_CLASS and r["split"] == "val"
    assert r["arch"] == "paper" and r["data"] == "data" and r["bad_files"] == 0
    assert r["checkpoint"] == ("run/best.pt" if crops == 1 else "run")
    assert r["top1_error"] + r["top1_accuracy"] == pytest.approx(1)
    assert r["top5_error"] + r["top5_accuracy"] == pytest.approx(1)
    assert 0 <= r["top5_error"] <= r["top1_error"] <= 1 and r["loss"] > 0
    assert sorted(r["per_class_accuracy"]) == classes
    assert all(0 <= a <= 1 for a in r["per_class_accuracy"].values())


def test_eval_on_the_validation_split_matches_training(e2e):
    """`alexnet eval` with 1 crop and the trainer's validation measure the same thing on the same weights."""
    r = ok_json(e2e["results"]["eval1"])
    best = json.loads(e2e["train"].stdout)["best_val_top1_error"]
    assert r["top1_error"] == pytest.approx(best, abs=1e-6)


def test_predict_json(e2e):
    preds = ok_json(e2e["results"]["predict"])
    classes = sorted(e2e["val_images"])
    c0, c1 = classes[:2]
    expected_images = [e2e["val_images"][c0][0]] + e2e["val_images"][c1]
    assert [p["image"] for p in preds] == expected_images    # files as given, folders walked in sorted order
    for p in preds:
        assert len(p["predictions"]) == 2
        probs = [q["probability"] for q in p["predictions"]]
        assert probs == sorted(probs, reverse=True) and all(0 <= q <= 1 for q in probs)
        for q in p["predictions"]:
            assert isinstance(q["index"], int) and classes[q["index"]] == q["class"]


def test_predict_text_with_ten_crops_and_topk_above_classes(e2e):
    out = ok(e2e["results"]["predict_text"]).stdout.splitlines()
    assert out[0] == e2e["val_images"][sorted(e2e["val_images"])[0]][0]
    assert len(out) == 1 + CLASSES                      # --topk 5 with 3 classes: all 3, no error
    total = sum(float(line.split("%")[0]) for line in out[1:])
    assert total == pytest.approx(100, abs=0.05)


def test_features_npz(e2e):
    s = ok_json(e2e["results"]["features"])
    n = CLASSES * VAL_PER_CLASS
    assert s["output"] == "out/feats.npz" and s["n"] == n and s["pool"] == "none" and s["skipped"] == []
    # --layer conv1 --layer fc7 (repeated flag) gives both layers; 64 px crops: conv1 (stride 4, pad 2) -> 15 x 15
    assert s["layers"] == {"conv1": [n, CHANNELS[0], 15, 15], "fc7": [n, FC]}
    with np.load(e2e["work"] / "out" / "feats.npz") as z:
        assert sorted(z.files) == ["conv1", "fc7", "layers", "paths"]
        assert list(z["layers"]) == ["conv1", "fc7"]
        assert z["conv1"].shape == (n, CHANNELS[0], 15, 15) and z["fc7"].shape == (n, FC)
        assert z["conv1"].dtype == np.float32 and (z["conv1"] >= 0).all() and (z["fc7"] >= 0).all()  # post-ReLU
        all_val = sorted(p for paths in e2e["val_images"].values() for p in paths)
        assert list(z["paths"]) == all_val
    assert not leftovers(e2e["work"] / "out")


def test_features_skip_bad_lists_the_undecodable_file(e2e):
    s = ok_json(e2e["results"]["features_skip_bad"])
    assert s["n"] == 2 and s["pool"] == "avg"
    assert s["layers"] == {"conv5": [2, CHANNELS[4]], "fc8": [2, CLASSES]}
    assert [b["path"] for b in s["skipped"]] == ["mixed/broken.jpg"]
    assert "mixed/broken.jpg" in s["skipped"][0]["reason"]
    with np.load(e2e["work"] / "out" / "mixed.npz") as z:
        assert list(z["paths"]) == ["mixed/good0.jpg", "mixed/good1.jpg"]
        assert z["conv5"].shape == (2, CHANNELS[4]) and z["fc8"].shape == (2, CLASSES)


def test_viz_curves(e2e):
    proc = ok(e2e["results"]["curves"])
    assert "out/curves.png" in proc.stdout
    assert is_png(e2e["work"] / "out" / "curves.png")


def test_viz_filters_json(e2e):
    r = ok_json(e2e["results"]["filters"])
    assert r["output"] == "out/filters.png" and is_png(e2e["work"] / "out" / "filters.png")
    spec = r["tower_colour_specificity"]
    assert len(spec) == 2 and all(0 <= s <= 1 for s in spec)     # arch paper: two towers


def test_viz_neighbours_json(e2e):
    r = ok_json(e2e["results"]["neighbours"])
    assert r["figure"] == "out/neighbours.png" and is_png(e2e["work"] / "out" / "neighbours.png")
    assert r["layer"] == "fc7" and r["queries"] == 3 and r["k"] == 4
    assert 0 <= r["same_class_fraction"] <= 1


def check_one_line_error(name: str, returncode: int, stdout: str, stderr: str, work: Path) -> None:
    argv, must_contain, must_not_exist = MISTAKES[name]
    verb = argv[0]
    assert returncode != 0, f"{name}: exit 0\n{stdout}\n{stderr}"
    assert "Traceback" not in stderr, stderr
    lines = [ln for ln in stderr.splitlines() if ln.strip() and "%|" not in ln]   # tqdm bars aside
    assert len(lines) == 1 and lines[0].startswith(f"alexnet {verb}: error: "), stderr
    assert must_contain in lines[0], lines[0]
    assert stdout.strip() == ""
    if must_not_exist:
        assert not (work / must_not_exist).exists(), f"{name} left {must_not_exist} behind"
    assert not leftovers(work / "bad") and not leftovers(work)


@pytest.mark.parametrize("name", sorted(MISTAKES))
def test_user_mistake_is_one_line_without_traceback(e2e, name, capsys, monkeypatch):
    from alexnet.cli import main

    monkeypatch.chdir(e2e["work"])
    try:
        code = main([str(a) for a in MISTAKES[name][0]])
    except SystemExit as e:           # argparse's own errors exit 2 with a usage line; none of these should
        code = e.code
    out, err = capsys.readouterr()
    check_one_line_error(name, code, out, err, e2e["work"])


@pytest.mark.parametrize("name", MISTAKES_AS_PROCESSES)
def test_user_mistake_in_a_real_process(e2e, name):
    proc = e2e["results"][name]
    check_one_line_error(name, proc.returncode, proc.stdout, proc.stderr, e2e["work"])


def test_cli_resume_continues_the_run(e2e):
    """1 epoch, then `--resume` to 2: the same weights as 2 epochs straight, and one metrics table.  (The paper's
    recipe: its plateau schedule does not depend on the number of epochs, while the small recipe's cosine spans
    the run's epochs, so a run extended on resume follows another lr curve than one planned for 2 epochs.)"""
    import torch

    work = e2e["work"]
    flags = [*TRAIN_FLAGS, "--recipe", "paper"]
    ok(alexnet("train", "--data", "data", "--out", "straight", *flags, cwd=work))
    ok(alexnet("train", "--data", "data", "--out", "res", *flags, "--epochs", "1", cwd=work))
    again = alexnet("train", "--data", "data", "--out", "res", *flags, "--epochs", "1", cwd=work)
    assert again.returncode == 1 and "already holds a training run" in again.stderr   # nothing overwritten
    ok(alexnet("train", "--data", "data", "--out", "res", *flags, "--resume", "res", cwd=work))
    rows = (work / "res" / "metrics.csv").read_text().strip().splitlines()
    assert [r.split(",")[0] for r in rows[1:]] == ["1", "2"]
    straight = torch.load(work / "straight" / "last.pt", weights_only=True)["model"]
    resumed = torch.load(work / "res" / "last.pt", weights_only=True)["model"]
    for k in straight:
        torch.testing.assert_close(resumed[k], straight[k], rtol=0, atol=1e-6, msg=k)
