"""User mistakes through the real command line: one `python -m alexnet` process per row.

Each row is a mistake a person makes with the verbs that write or read model files (export, convert, features,
viz, predict, eval, data synth): a full disk, an output in a place that cannot be written or that already exists,
an out-of-range number, a malformed or lying input file.  Every row must end in exactly one line on stderr,
`alexnet VERB: error: ...` with the words that tell the user what is wrong, a non-zero exit, no traceback, no
warning lines, nothing on stdout, and no new or changed file anywhere in the work folder (listing, sizes and
mtimes compared before and after: no temporary file left, no existing file overwritten, no half-made folder).

The network is the frozen v1 checkpoint (tests/data/v1/last.pt: 3 classes, 64 px crops from 72 px images), so
nothing is trained here; the images are the shared tiny synthetic set.
"""
from __future__ import annotations

import errno
import json
import os
import pickle
import resource
import shutil
import signal
import struct
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
V1 = Path(__file__).resolve().parent / "data" / "v1" / "last.pt"
FILE_SIZE_LIMIT = 4096   # bytes a process may write per file in the "full disk" rows (RLIMIT_FSIZE)
AS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


class _RunsCode:
    """Unpickling this runs `touch PWNED` in the work folder: the snapshot would show the file if it ran."""

    def __reduce__(self):
        return os.system, ("touch PWNED",)


def _torch_checkpoint_variants(work: Path) -> None:
    """crop500.pt: preprocessing that crops more than the image; short_classes.pt: 2 names for 3 outputs."""
    import torch

    payload = torch.load(V1, weights_only=True)
    bad = dict(payload, data=dict(payload["data"], crop=500))
    torch.save(bad, work / "crop500.pt")
    torch.save(dict(payload, classes=payload["classes"][:2]), work / "short_classes.pt")


def _lying_safetensors(work: Path) -> None:
    """lie.safetensors: our safetensors export of ck.pt whose header declares conv1.weight's float32 bytes as I32
    (same byte length, so only a dtype check can tell)."""
    from alexnet.interop import export_model

    good = export_model(work / "ck.pt", "safetensors", work / "tmp-good.safetensors")
    data = good.read_bytes()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    assert header["conv1.weight"]["dtype"] == "F32"
    header["conv1.weight"]["dtype"] = "I32"
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    (work / "lie.safetensors").write_bytes(struct.pack("<Q", len(raw)) + raw + data[8 + n:])
    good.unlink()


@pytest.fixture(scope="module")
def work(tmp_path_factory, make_synth):
    w = tmp_path_factory.mktemp("mistakes")
    shutil.copy(V1, w / "ck.pt")
    shutil.copytree(make_synth(), w / "data")
    (w / "run").mkdir()
    shutil.copy(V1, w / "run" / "best.pt")
    (w / "afile").write_text("a file, not a folder\n")
    (w / "readonly").mkdir()
    (w / "readonly").chmod(0o555)
    for name in ("existing.onnx", "existing.npz", "existing.png", "existing.pt"):
        (w / name).write_bytes(b"the user's own file\n")
    (w / "latin1_classes.txt").write_bytes("circle\ncarr\xe9\ntriangle\n".encode("latin-1"))
    runs = {"bad_number": "epoch,train_loss\n1,0.5\n2,abc\n", "extra_field": "epoch,train_loss\n1,0.5,7\n",
            "no_epoch": "step,loss\n1,0.5\n"}
    for name, text in runs.items():
        (w / name).mkdir()
        (w / name / "metrics.csv").write_text(text)
    (w / "latin1_run").mkdir()
    (w / "latin1_run" / "metrics.csv").write_bytes("epoch,train_loss\n1,0.5 \xe9\n".encode("latin-1"))
    (w / "raw_pickle.pt").write_bytes(pickle.dumps(_RunsCode(), protocol=pickle.HIGHEST_PROTOCOL))
    _torch_checkpoint_variants(w)
    _lying_safetensors(w)
    yield w
    (w / "readonly").chmod(0o755)


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    """Every path under ``folder`` (hidden ones too) -> (size, mtime_ns); folders by their own entry."""
    out = {}
    for p in sorted(folder.rglob("*")):
        st = p.lstat()
        out[str(p.relative_to(folder))] = (st.st_size if p.is_file() else -1, st.st_mtime_ns)
    return out


def _limit_file_size():
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)   # the write fails with EFBIG instead of killing the process
    resource.setrlimit(resource.RLIMIT_FSIZE, (FILE_SIZE_LIMIT, FILE_SIZE_LIMIT))


def run_cli(argv: list[str], cwd: Path, full_disk: bool = False) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(SRC), OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    return subprocess.run([sys.executable, "-m", "alexnet", *argv], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300, preexec_fn=_limit_file_size if full_disk else None)


CPU = ["--device", "cpu"]
FEATURES = ["features", "data/val", "--checkpoint", "ck.pt", "--layer", "conv1", "--json", *CPU]
TOO_LARGE = ("cannot write", "file too large")
NOT_A_FOLDER = ("cannot write", "afile is a file, not a folder")
READ_ONLY = ("cannot write", "not writable")
EXISTS = ("exists", "--overwrite")
root_ignores_modes = pytest.mark.skipif(AS_ROOT, reason="root writes into 0555 folders; the afile/ rows cover it")

# name -> (argv, words the one error line must contain, words it must not contain, run with a full disk?)
ROWS = {
    # 2. a full disk (a file-size limit: the same failed write(2), EFBIG instead of ENOSPC)
    "export_torchscript_full_disk": (["export", "ck.pt", "--format", "torchscript", "-o", "m.ts"],
                                     ("m.ts", *TOO_LARGE), (), True),
    "export_onnx_full_disk": (["export", "ck.pt", "-o", "new/deeper/m.onnx"], ("new/deeper/m.onnx", *TOO_LARGE), (),
                              True),   # the folders made for the output go too
    "export_safetensors_full_disk": (["export", "ck.pt", "-o", "m.safetensors"], ("m.safetensors", *TOO_LARGE), (),
                                     True),
    "features_full_disk": ([*FEATURES, "-o", "f.npz"], ("f.npz", *TOO_LARGE), (), True),
    "viz_filters_full_disk": (["viz", "filters", "ck.pt", "-o", "f.png"], ("f.png", *TOO_LARGE), (), True),
    "data_synth_full_disk": (["data", "synth", "synth", "--size", "256", "--classes", "2", "--train-per-class", "1",
                              "--val-per-class", "1", "--no-progress"], ("synth", *TOO_LARGE), (), True),
    # 3. an output under a file (fails for root too) or in a read-only folder
    "export_under_a_file": (["export", "ck.pt", "-o", "afile/m.onnx"], NOT_A_FOLDER, (), False),
    "features_under_a_file": ([*FEATURES, "-o", "afile/f.npz"], NOT_A_FOLDER, (), False),
    "viz_filters_under_a_file": (["viz", "filters", "ck.pt", "-o", "afile/f.png"], NOT_A_FOLDER, (), False),
    "viz_curves_under_a_file": (["viz", "curves", "bad_number", "-o", "afile/c.png"], NOT_A_FOLDER, (), False),
    "convert_under_a_file": (["convert", "torchvision", "ck.pt", "-o", "afile/x.pt"], NOT_A_FOLDER, (), False),
    "data_synth_under_a_file": (["data", "synth", "afile/s", "--no-progress"], NOT_A_FOLDER, (), False),
    "export_read_only": (["export", "ck.pt", "-o", "readonly/m.onnx"], READ_ONLY, (), False),
    "features_read_only": ([*FEATURES, "-o", "readonly/f.npz"], READ_ONLY, (), False),
    "viz_read_only": (["viz", "filters", "ck.pt", "-o", "readonly/f.png"], READ_ONLY, (), False),
    "convert_read_only": (["convert", "torchvision", "ck.pt", "-o", "readonly/x.pt"], READ_ONLY, (), False),
    "data_synth_read_only": (["data", "synth", "readonly/s", "--no-progress"], READ_ONLY, (), False),
    # 6. a class-names file that is not UTF-8
    "convert_classes_not_utf8": (["convert", "torchvision", "ck.pt", "-o", "x.pt", "--classes",
                                  "latin1_classes.txt"], ("latin1_classes.txt", "not UTF-8", "line 2"), (), False),
    # 8. numbers out of range
    "features_batch_size_0": ([*FEATURES, "-o", "f.npz", "--batch-size", "0"], ("--batch-size", ">= 1", "got 0"),
                              (), False),
    "features_batch_size_negative": ([*FEATURES, "-o", "f.npz", "--batch-size", "-4"], ("--batch-size", "got -4"),
                                     (), False),
    "export_opset_1": (["export", "ck.pt", "-o", "m.onnx", "--opset", "1"], ("--opset 1", "opsets"), (), False),
    "export_opset_999": (["export", "ck.pt", "-o", "m.onnx", "--opset", "999"], ("--opset 999", "opsets"), (), False),
    "export_opset_without_the_op": (["export", "ck.pt", "-o", "m.onnx", "--opset", "8"], ("opset 8", "failed"), (),
                                    False),
    "export_opset_for_torchscript": (["export", "ck.pt", "-o", "m.ts", "--opset", "17"], ("--opset", "ONNX"), (),
                                     False),
    # 9. a safetensors header that lies about a tensor's dtype
    "predict_lying_safetensors": (["predict", "data/val", "--checkpoint", "lie.safetensors", *CPU],
                                  ("lie.safetensors", "conv1.weight", "int32", "float32"), (), False),
    # 10. a malformed metrics.csv, an unknown picture format
    "viz_curves_not_a_number": (["viz", "curves", "bad_number", "-o", "c.png"],
                                ("bad_number/metrics.csv", "line 3", "'train_loss'", "'abc'"), (), False),
    "viz_curves_extra_field": (["viz", "curves", "extra_field", "-o", "c.png"],
                               ("extra_field/metrics.csv", "line 2", "3 fields"), (), False),
    "viz_curves_no_epoch_column": (["viz", "curves", "no_epoch", "-o", "c.png"],
                                   ("no_epoch/metrics.csv", "'epoch'"), (), False),
    "viz_curves_not_utf8": (["viz", "curves", "latin1_run", "-o", "c.png"], ("latin1_run/metrics.csv", "UTF-8"), (),
                            False),
    "viz_filters_unknown_format": (["viz", "filters", "ck.pt", "-o", "f.jpgx"], ("f.jpgx", "'.jpgx'", ".png"), (),
                                   False),
    "viz_curves_no_extension": (["viz", "curves", "bad_number", "-o", "curves"], ("curves", ".png"), (), False),
    # 13. existing outputs, a run's best.pt among them
    "convert_onto_best_pt": (["convert", "torchvision", "ck.pt", "-o", "run/best.pt"], ("run/best.pt", *EXISTS), (),
                             False),
    "export_onto_best_pt": (["export", "ck.pt", "--format", "torchscript", "-o", "run/best.pt"],
                            ("run/best.pt", *EXISTS), (), False),
    "export_onto_a_file": (["export", "ck.pt", "-o", "existing.onnx"], ("existing.onnx", *EXISTS), (), False),
    "features_onto_a_file": ([*FEATURES, "-o", "existing.npz"], ("existing.npz", *EXISTS), (), False),
    "viz_filters_onto_a_file": (["viz", "filters", "ck.pt", "-o", "existing.png"], ("existing.png", *EXISTS), (),
                                False),
    "viz_curves_onto_a_file": (["viz", "curves", "bad_number", "-o", "existing.png"], ("existing.png", *EXISTS), (),
                               False),
    # 14. messages that point at what the user can do with this verb
    "predict_crop_larger_than_image": (["predict", "data/val", "--checkpoint", "crop500.pt", *CPU],
                                       ("crop500.pt", "crops 500", "72"), ("--crop", "--resize"), False),
    "eval_crop_larger_than_image": (["eval", "--checkpoint", "crop500.pt", "--data", "data", "--workers", "0", *CPU],
                                    ("crop500.pt", "crops 500", "72"), ("--crop", "--resize"), False),
    "predict_raw_malicious_pickle": (["predict", "data/val", "--checkpoint", "raw_pickle.pt", *CPU],
                                     ("raw_pickle.pt", "refused", "not a safe checkpoint", "system"),
                                     ("no torch.save zip/pickle at all",), False),
    # 15. a class list that does not match the outputs
    "predict_short_class_list": (["predict", "data/val", "--checkpoint", "short_classes.pt", *CPU],
                                 ("short_classes.pt", "2 names", "3 outputs"), ("class_1",), False),
}


@pytest.mark.parametrize("name", [pytest.param(n, marks=root_ignores_modes) if n.endswith("_read_only") else n
                                  for n in ROWS])
def test_user_mistake(work, name):
    argv, words, forbidden, full_disk = ROWS[name]
    before = snapshot(work)
    proc = run_cli(argv, work, full_disk=full_disk)
    after = snapshot(work)
    verb = argv[0]
    assert proc.returncode == 1, f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    assert "Traceback" not in proc.stderr and "Warning" not in proc.stderr, proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"alexnet {verb}: error: "), proc.stderr
    for word in words:
        assert word in lines[0], f"{word!r} not in: {lines[0]}"
    for word in forbidden:
        assert word not in lines[0], f"{word!r} in: {lines[0]}"
    assert proc.stdout == ""
    new = sorted(set(after) - set(before))
    gone = sorted(set(before) - set(after))
    changed = sorted(k for k in set(before) & set(after) if before[k] != after[k])
    assert not (new or gone or changed), f"files: new {new}, removed {gone}, changed {changed}"


def test_overwrite_flag_replaces_an_existing_output(work, tmp_path):
    """The refusal above is the default, not the only outcome: --overwrite replaces the file (atomically)."""
    target = tmp_path / "existing.safetensors"
    target.write_bytes(b"old")
    proc = run_cli(["export", str(work / "ck.pt"), "-o", str(target), "--overwrite"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert target.stat().st_size > 1000 and sorted(p.name for p in tmp_path.iterdir()) == ["existing.safetensors"]


def _no_space_open(real_open):
    """``open`` whose files fail every write with ENOSPC after the first 1000 bytes, as a full disk does."""

    class Full:
        def __init__(self, f):
            self.f, self.written = f, 0

        def write(self, data):
            if self.written + len(data) > 1000:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            self.written += len(data)
            return self.f.write(data)

        def __getattr__(self, name):
            return getattr(self.f, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

    def fake(path, mode="r", *args, **kwargs):
        f = real_open(path, mode, *args, **kwargs)
        return Full(f) if "w" in mode else f

    return fake


@pytest.mark.parametrize("fmt", ["torchscript", "onnx", "safetensors", "checkpoint"])
def test_enospc_is_one_line_and_leaves_no_temporary(fmt, tmp_path, monkeypatch):
    """A full disk (ENOSPC from write) under every writer of model files: an OutputError naming the file and the
    reason, no file and no temporary left.  (The table above runs a real file-size limit in a real process.)"""
    import builtins

    from alexnet import checkpoint, utils
    from alexnet.checkpoint import load_checkpoint, save_checkpoint
    from alexnet.errors import OutputError
    from alexnet.interop import export_model

    fake = _no_space_open(builtins.open)
    monkeypatch.setattr(utils, "open", fake, raising=False)        # write_bytes_atomic's open
    monkeypatch.setattr(checkpoint, "open", fake, raising=False)   # save_checkpoint's open
    out = tmp_path / {"torchscript": "m.ts", "onnx": "m.onnx", "safetensors": "m.safetensors",
                      "checkpoint": "c.pt"}[fmt]
    with pytest.raises(OutputError) as e:
        if fmt == "checkpoint":
            save_checkpoint(out, load_checkpoint(V1))
        else:
            export_model(V1, fmt, out)
    assert str(e.value) == f"cannot write {out}: no space left on the device"
    assert list(tmp_path.iterdir()) == []


def test_onnx_export_has_exactly_the_opset_asked_for(tmp_path):
    """Below the new exporter's own opsets the legacy one writes the file: opset 14 is opset 14, not 18."""
    import onnx

    from alexnet.interop import export_model

    out = export_model(V1, "onnx", tmp_path / "m.onnx", opset=14)
    proto = onnx.load(str(out))
    assert [o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")] == [14]
