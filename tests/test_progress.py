"""Progress bars and native log noise: what a user sees on stderr, on a terminal and in a log file."""
import io
import os
import subprocess
import sys

import pytest

from alexnet.progress import progress_bar
from alexnet.runtime import NATIVE_NOISE, native_stderr_filtered


class Terminal(io.StringIO):
    def isatty(self):
        return True


def run_bar(stream, n=10, **kw):
    with progress_bar(total=n, desc="work", unit="x", file=stream, mininterval=0, maxinterval=0, miniters=1,
                      **kw) as bar:
        for _ in range(n):
            bar.update(1)
    return stream.getvalue()


def test_in_a_log_each_refresh_is_its_own_line_and_the_last_state_is_written_once():
    text = run_bar(io.StringIO())
    assert "\r" not in text
    lines = text.splitlines()
    assert lines[0].startswith("work:  10%") and lines[-1].startswith("work: 100%")   # no 0/10 line
    assert sum("10/10" in line for line in lines) == 1          # tqdm's closing redraw is not repeated
    assert [int(line.split("/")[0].rsplit(" ", 1)[-1]) for line in lines] == list(range(1, 11))


def test_on_a_terminal_the_bar_redraws_in_place():
    text = run_bar(Terminal())
    assert text.count("\r") >= 10 and text.count("\n") <= 1


def test_in_a_log_lines_are_sparse_by_default():
    stream = io.StringIO()
    for _ in progress_bar(range(1000), desc="fast", file=stream):
        pass
    assert len(stream.getvalue().splitlines()) <= 1                # at most the end, not 1000 refreshes


def test_disabled_bar_writes_nothing():
    assert run_bar(io.StringIO(), disable=True) == ""


def test_native_noise_is_dropped_and_everything_else_kept(capfd):
    noise = ["USDT:2026-12-07 01:37:21 5982:5982 SyncActivityProfilerHandler.cpp:39] profiler_start\n",
             "ERROR:2026-12-07 01:37:22 5982:5982 DeviceProperties.cpp:56] gpuGetDeviceCount failed with code 35\n"]
    assert all(NATIVE_NOISE.match(line) for line in noise)
    with native_stderr_filtered():
        os.write(2, noise[0].encode())
        os.write(2, b"a real error from C\n")
        print("from python", file=sys.stderr)
        os.write(2, noise[1].encode())
    err = capfd.readouterr().err      # (under pytest, sys.stderr is not fd 2: the Python line comes first)
    assert sorted(err.splitlines()) == ["a real error from C", "from python"]


def test_native_stderr_is_restored_when_the_block_raises(capfd):
    with pytest.raises(RuntimeError), native_stderr_filtered():
        os.write(2, b"kept\n")
        raise RuntimeError("boom")
    os.write(2, b"after\n")
    assert capfd.readouterr().err == "kept\nafter\n"


def test_bench_and_compiled_lrn_print_no_library_noise(tmp_path):
    """`alexnet bench` measures CPU memory with torch.profiler (kineto logs to fd 2) and the compiled LRN imports
    torch's C++-extension helper (it warns about CUDA on CPU machines with a toolkit folder): neither reaches a user."""
    code = ("import sys; from alexnet.cli import main; "
            "from alexnet.layers import kernels; kernels.kernel('forward'); "
            "sys.exit(main(['bench', 'infer', '--arch', 'cifar', '--batch-size', '2', '--steps', '1', "
            "'--warmup', '1', '--device', 'cpu']))")
    env = {**os.environ, "CUDA_HOME": str(tmp_path)}       # a toolkit folder exists: torch would warn
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path,
                         timeout=600)
    assert out.returncode == 0, out.stderr
    assert "images/s" in out.stdout
    assert out.stderr == "", out.stderr


def test_a_description_with_a_slash_is_not_the_count():
    """Training bars are called "epoch 1/12": the opening 0/93 line is still dropped, and each later count shown."""
    stream = io.StringIO()
    with progress_bar(total=3, desc="epoch 1/12", file=stream, mininterval=0, maxinterval=0, miniters=1) as bar:
        for _ in range(3):
            bar.update(1)
    lines = stream.getvalue().splitlines()
    assert [line.split("|")[-1].split("[")[0].strip() for line in lines] == ["1/3", "2/3", "3/3"]
