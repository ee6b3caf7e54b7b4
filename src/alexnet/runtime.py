"""Device selection and the fastest correct precision/layout for the device found.

On CPUs, bf16 autocast is only fast with native bf16 matrix units (AMX, or AVX-512 BF16): measured on an
AVX2-only AMD EPYC (2 cores), a bf16 2048^2 matmul ran at 0.3 GFLOP/s against 131 GFLOP/s in fp32, and a grouped
conv2 was 7-30x slower.  So CPU defaults are decided from the CPU's feature flags, not assumed.
"""
from __future__ import annotations

import contextlib
import functools
import os
import random
import re
import sys
from dataclasses import dataclass

import torch

from .choices import PRECISIONS
from .errors import ConfigError


@functools.lru_cache(maxsize=1)
def cpu_flags() -> frozenset:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def cpu_has_fast_bf16() -> bool:
    """True when the CPU has native bf16 matrix instructions (AMX-BF16 or AVX512-BF16)."""
    if os.environ.get("ALEXNET_CPU_BF16") in ("0", "1"):
        return os.environ["ALEXNET_CPU_BF16"] == "1"
    flags = cpu_flags()
    return "amx_bf16" in flags or "avx512_bf16" in flags


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` -> cuda if available, else cpu.  Raises ConfigError for an unavailable device."""
    if name in (None, "", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except RuntimeError as e:
        raise ConfigError(f"--device: {name!r} is not a device name (expected auto, cpu, cuda, cuda:N)") from e
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"--device {name}: CUDA is not available on this machine (use --device cpu)")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ConfigError(f"--device {name}: only {torch.cuda.device_count()} CUDA device(s) present")
    return dev


@dataclass(frozen=True)
class Precision:
    amp_dtype: torch.dtype | None   # None = fp32
    channels_last: bool

    @property
    def name(self) -> str:
        return {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[self.amp_dtype]


def resolve_precision(device: torch.device, precision: str = "auto", channels_last: bool | None = None) -> Precision:
    """The fastest correct settings for ``device`` where the user did not choose."""
    if precision not in PRECISIONS:
        raise ConfigError(f"--precision must be one of {', '.join(PRECISIONS)}; got {precision!r}")
    if precision == "auto":
        if device.type == "cuda":
            precision = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        else:
            precision = "bf16" if cpu_has_fast_bf16() else "fp32"
    if precision == "fp16" and device.type == "cpu":
        raise ConfigError("--precision fp16 is for CUDA; on CPU use bf16 or fp32")
    dtype = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]
    if channels_last is None:
        # channels_last pays with reduced-precision kernels (oneDNN/AMX, cuDNN tensor cores); on the fp32-only
        # AVX2 CPU it gave nothing for the paper network (training step 1.02x, within noise: docs/performance.md).
        channels_last = device.type == "cuda" or dtype is not None
    return Precision(dtype, channels_last)


def autocast(device: torch.device, precision: Precision):
    if precision.amp_dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=precision.amp_dtype)


def to_layout(x: torch.Tensor | torch.nn.Module, precision: Precision):
    if precision.channels_last:
        return x.to(memory_format=torch.channels_last)
    return x


_ALLOCATOR = {"tuned": None}


def tune_cpu_allocator() -> bool:
    """Keep freed large blocks in glibc's heap instead of returning them to the OS (``mallopt``).

    PyTorch's CPU allocator is plain malloc: every activation above glibc's mmap threshold is a fresh ``mmap``
    whose pages are faulted in and zeroed on first touch, and ``munmap``-ed when freed.  On the 2-core AVX2 VM this
    project was measured on, that made a 37 MB out-of-place element-wise op ~7x slower than the same op into an
    existing buffer (80 ms vs 12 ms), and it hits every layer of every training step.  With a 1 GiB mmap threshold
    and a 2 GiB trim threshold, freed activations are reused by the next step without page faults (what jemalloc /
    tcmalloc, recommended for PyTorch on CPUs, also achieve).  The price: the process keeps its peak heap resident.

    Process-wide and idempotent; affects allocations made afterwards (tensors of both our network and anything else
    in the process).  A no-op returning False off glibc, when ``ALEXNET_CPU_ALLOCATOR=0``, or if mallopt refuses.
    """
    if _ALLOCATOR["tuned"] is not None:
        return _ALLOCATOR["tuned"]
    tuned = False
    if os.environ.get("ALEXNET_CPU_ALLOCATOR", "1") != "0" and sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL("libc.so.6")
            _ = libc.gnu_get_libc_version  # glibc only (musl has no mallopt knobs of this kind)
            m_trim_threshold, m_mmap_threshold = -1, -3
            tuned = bool(libc.mallopt(m_mmap_threshold, 1 << 30)) and bool(
                libc.mallopt(m_trim_threshold, (1 << 31) - 1))
        except (OSError, AttributeError):
            tuned = False
    _ALLOCATOR["tuned"] = tuned
    return tuned


def resolve_compile(compile: bool | str | None = None) -> bool:
    """Whether to ``torch.compile`` the whole network: the user's choice, else off (None or "auto").

    Off on every device, so the device and the mode (train/infer) do not enter.  CPU: measured on the AVX2-only EPYC
    (fp32), whole-network inductor brought no training speed-up (the convolutions stay oneDNN calls; the LRN is
    already fused by the LRN's own compiled kernels) and costs minutes of compile; see docs/performance.md.  CUDA:
    not measured here; pass ``compile=True`` / ``--compile`` to try it.
    """
    if compile is not None and compile != "auto":
        return bool(compile)
    return False


def import_compiler_quietly() -> None:
    """Import torch's C++-extension helper with its "No CUDA runtime is found" warning muted.

    ``torch.compile`` imports ``torch.utils.cpp_extension``, which on a CPU-only machine that has a CUDA toolkit
    folder (``/usr/local/cuda``) logs that warning once per process, about a GPU we are not using.  Idempotent."""
    import logging

    log = logging.getLogger("torch.utils.cpp_extension")
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        import torch.utils.cpp_extension  # noqa: F401
    finally:
        log.setLevel(level)


# Lines that C++ libraries inside torch write straight to file descriptor 2, past Python's sys.stderr: kineto's
# profiler stages (``USDT:... profiler_start``, ``STAGE:...``) and its GPU probe on a machine without one
# (``ERROR:... gpuGetDeviceCount failed``).  Each is a glog-style ``LEVEL:date time pid:tid File.cpp:line] text``.
NATIVE_NOISE = re.compile(r"^(USDT|STAGE|INFO|WARNING|ERROR):\d{4}-\d\d-\d\d [\d:.]+ \d+:\d+ \w+\.cpp:\d+\] ")


@contextlib.contextmanager
def native_stderr_filtered(noise: re.Pattern = NATIVE_NOISE):
    """Run the block with file descriptor 2 captured; afterwards pass on every line except ``noise``.

    For calls into native code that logs on its own (``torch.profiler``).  Anything else written meanwhile, by
    Python or C, reaches stderr unchanged (after the block, in its order)."""
    import tempfile

    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            kept = [line for line in capture.read().decode(errors="replace").splitlines(keepends=True)
                    if not noise.match(line)]
            if kept:
                sys.stderr.write("".join(kept))
                sys.stderr.flush()


# --- process globals a run sets and restores ----------------------------------------------------------------
def rng_state() -> dict:
    state = {"torch": torch.get_rng_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(_tupled(state["python"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _tupled(x):
    return tuple(_tupled(i) for i in x) if isinstance(x, (list, tuple)) else x


@contextlib.contextmanager
def scoped_globals(deterministic: bool):
    """Run with the RNGs and (when asked) deterministic algorithms, and put everything back afterwards."""
    saved_rng = rng_state()
    saved_det = (torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.benchmark,
                 os.environ.get("CUBLAS_WORKSPACE_CONFIG"))
    if deterministic:
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    try:
        yield
    finally:
        set_rng_state(saved_rng)
        torch.use_deterministic_algorithms(saved_det[0])
        torch.backends.cudnn.benchmark = saved_det[1]
        if saved_det[2] is None:
            os.environ.pop("CUBLAS_WORKSPACE_CONFIG", None)
