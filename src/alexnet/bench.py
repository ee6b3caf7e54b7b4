"""Throughput and peak-memory benchmarks of our networks against ``torchvision.models.alexnet``, in one process.

``bench_model(BenchConfig("train" | "infer", arch, ...))`` times our network with the fastest correct settings for
the device (``alexnet.runtime``'s defaults unless given) and torchvision's AlexNet at PyTorch defaults (fp32,
contiguous, eager, no compile) and at its best settings for the device (``alexnet.runtime``'s choice: bf16
autocast + channels_last on CPUs with native bf16, AMP + channels_last on CUDA; skipped where that is fp32
contiguous, as on AVX2-only CPUs) on the same random batch, same batch size and input size, in the same process.
They are interleaved step by step (and the order alternates) so that machine noise hits all; the figures are
medians of the timed steps after warm-up.  Then the machine's own peak is measured (``bench_peak``) and each
network's fraction of it reported.  A training step is forward + cross-entropy + backward + SGD step (momentum 0.9,
weight decay 5e-4, ``torch.optim.SGD`` for both); an inference step is a forward pass under
``torch.inference_mode`` in eval mode.

Peak memory is measured separately after the timing, per network, as its persistent tensors (parameters, optimizer
state, the input batch) plus the highest amount of memory torch allocated on top during one step: on CUDA from
``torch.cuda.max_memory_allocated``, on CPU from the allocation events of ``torch.profiler`` (exact byte counts of
torch's allocator, independent of how glibc returns memory to the OS).

``bench_lrn`` is a micro-benchmark of our LocalResponseNorm against ``torch.nn.LocalResponseNorm`` (forward +
backward on conv1- and conv2-sized maps).
"""
from __future__ import annotations

import gc
import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .bench_config import BenchConfig, LRNBenchConfig
from .choices import BENCH_MODES
from .errors import ConfigError
from .runtime import (
    Precision,
    autocast,
    cpu_has_fast_bf16,
    import_compiler_quietly,
    native_stderr_filtered,
    resolve_compile,
    resolve_device,
    resolve_precision,
    to_layout,
    tune_cpu_allocator,
)

MB = 1024 * 1024


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else math.nan


def _persistent_bytes(*objs) -> int:
    """Bytes of the distinct storages of tensors in modules, optimizers and tensors (parameters, state, inputs)."""
    seen, total = set(), 0

    def add(t):
        nonlocal total
        if isinstance(t, torch.Tensor) and t.device.type != "meta":
            st = t.untyped_storage()
            key = (st.data_ptr(), t.device)
            if key not in seen and st.nbytes():
                seen.add(key)
                total += st.nbytes()

    for obj in objs:
        if obj is None:
            continue
        if isinstance(obj, torch.nn.Module):
            for t in list(obj.parameters()) + list(obj.buffers()):
                add(t)
                add(t.grad)
        elif isinstance(obj, torch.optim.Optimizer):
            for state in obj.state.values():
                for v in state.values():
                    add(v)
        else:
            add(obj)
    return total


def _peak_extra_bytes(fn: Callable[[], None], device: torch.device) -> tuple[int, str]:
    """Highest number of bytes allocated by torch on ``device`` while ``fn`` runs, above what was there before."""
    gc.collect()
    if device.type == "cuda":
        _sync(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        fn()
        _sync(device)
        return max(0, torch.cuda.max_memory_allocated(device) - base), "torch.cuda.max_memory_allocated"
    from torch.profiler import ProfilerActivity, profile

    with native_stderr_filtered(), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    try:
        events = prof.profiler.kineto_results.events()
        deltas = sorted((e.start_ns(), e.nbytes()) for e in events
                        if e.name() == "[memory]" and str(e.device_type()).rsplit(".", 1)[-1] == "CPU")
    except Exception:  # pragma: no cover - profiler internals changed
        return -1, "unavailable"
    cur = peak = 0
    for _, nbytes in deltas:
        cur += nbytes
        peak = max(peak, cur)
    return peak, "torch.profiler allocation events"


class _Runner:
    """One network set up for timing: ``step()`` runs one training or inference step."""

    def __init__(self, name: str, model: torch.nn.Module, mode: str, x: torch.Tensor, y: torch.Tensor,
                 device: torch.device, precision=None, compile_model: bool = False):
        self.name, self.mode, self.device, self.precision = name, mode, device, precision
        self.model = model
        self.x, self.y = x, y
        self.optimizer = None
        self.compiled = compile_model
        if compile_model:
            import_compiler_quietly()
        if mode == "train":
            model.train()
            self.optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
            self.fn = torch.compile(model) if compile_model else model
        else:
            model.eval()
            self.fn = torch.compile(model) if compile_model else model
        self.first_call_seconds = None

    def _forward(self):
        if self.precision is not None:
            with autocast(self.device, self.precision):
                return self.fn(self.x)
        return self.fn(self.x)

    def step(self) -> None:
        if self.mode == "train":
            logits = self._forward()
            loss = F.cross_entropy(logits.float(), self.y)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
        else:
            with torch.inference_mode():
                if self.compiled:
                    import torch._inductor.config as inductor_config

                    # freezing: weights become constants (prepacked for oneDNN/cuDNN), inference graphs only
                    with inductor_config.patch(freezing=True):
                        self._forward()
                else:
                    self._forward()

    def timed_step(self) -> float:
        _sync(self.device)
        t0 = time.perf_counter()
        self.step()
        _sync(self.device)
        dt = time.perf_counter() - t0
        if self.first_call_seconds is None:
            self.first_call_seconds = dt
        return dt

    def peak_memory(self) -> tuple[float, str]:
        if self.optimizer is not None:
            self.optimizer.zero_grad(set_to_none=True)
        persistent = _persistent_bytes(self.model, self.optimizer, self.x, self.y)
        extra, method = _peak_extra_bytes(self.step, self.device)
        if extra < 0:
            return math.nan, method
        return (persistent + extra) / MB, method


@dataclass
class _Setup:
    """What ``bench_model`` resolved and built before timing."""

    device: torch.device
    precision: Precision
    compile: bool
    allocator_tuned: bool
    model: torch.nn.Module
    ours: _Runner
    reference: _Runner | None
    best_reference: _Runner | None = None   # torchvision at the device's fastest settings (None: same as defaults)


def _setup(cfg: BenchConfig) -> _Setup:
    """Resolve the runtime settings, build our network and (unless told not to) torchvision's on one batch."""
    from .model import build_model

    dev = resolve_device(cfg.device)
    prec = resolve_precision(dev, cfg.precision, cfg.channels_last)
    use_compile = resolve_compile(cfg.compile)
    allocator = tune_cpu_allocator() if dev.type == "cpu" else False

    torch.manual_seed(cfg.seed)
    model = build_model(cfg.arch, num_classes=cfg.num_classes, input_size=cfg.input_size, **cfg.model_switches)
    in_ch = model.config.in_channels
    x = torch.randn(cfg.batch_size, in_ch, cfg.input_size, cfg.input_size, device=dev)
    y = torch.randint(0, cfg.num_classes, (cfg.batch_size,), device=dev)
    ours = _Runner(cfg.arch, to_layout(model.to(dev), prec), cfg.mode, to_layout(x, prec), y, dev, prec,
                   use_compile)
    ref = None
    if cfg.reference:
        import torchvision

        if in_ch != 3:
            raise ConfigError("bench: the torchvision reference takes 3-channel images")
        ref_model = torchvision.models.alexnet(weights=None, num_classes=cfg.num_classes).to(dev)
        ref = _Runner("torchvision.models.alexnet", ref_model, cfg.mode, x, y, dev, None, False)
    best = None
    best_prec = resolve_precision(dev, "auto")          # what a user of torchvision would pick for this device
    if cfg.reference and (best_prec.amp_dtype is not None or best_prec.channels_last):
        best_model = to_layout(torchvision.models.alexnet(weights=None, num_classes=cfg.num_classes).to(dev),
                               best_prec)
        best = _Runner("torchvision.models.alexnet (best)", best_model, cfg.mode, to_layout(x, best_prec), y, dev,
                       best_prec, False)
    return _Setup(dev, prec, use_compile, allocator, model, ours, ref, best)


def _time_interleaved(runners: list[_Runner], steps: int, warmup: int) -> dict[str, list[float]]:
    """Seconds per timed step of each runner, the runners taking turns (who goes first alternates)."""
    for _ in range(warmup):
        for r in runners:
            r.timed_step()
    times: dict[str, list[float]] = {r.name: [] for r in runners}
    for i in range(steps):
        order = runners if i % 2 == 0 else runners[::-1]   # alternate who goes first
        for r in order:
            times[r.name].append(r.timed_step())
    return times


def _settings(setup: _Setup) -> dict:
    from .layers import get_lrn_backend

    dev, prec = setup.device, setup.precision
    return {
        "device": str(dev), "precision": prec.name, "channels_last": prec.channels_last,
        "compile": setup.compile, "lrn_backend": get_lrn_backend(), "threads": torch.get_num_threads(),
        "cpu_allocator_tuned": setup.allocator_tuned,
        "cpu_fast_bf16": cpu_has_fast_bf16() if dev.type == "cpu" else None,
        "torch": torch.__version__, "model": setup.model.config.to_dict(),
    }


def _report(cfg: BenchConfig, setup: _Setup, times: dict, peak: float, ref_peak: float, method) -> dict:
    """The result dict of ``bench_model`` (its keys and their order are the ``--json`` output)."""
    ours, ref = setup.ours, setup.reference
    ips = cfg.batch_size / _median(times[ours.name])
    out = {
        "mode": cfg.mode, "arch": cfg.arch, "batch_size": cfg.batch_size, "input_size": cfg.input_size,
        "steps": cfg.steps, "warmup": cfg.warmup,
        "images_per_second": ips,
        "seconds_per_step": _median(times[ours.name]),
        "times": times[ours.name],
        "first_step_seconds": ours.first_call_seconds,
        "peak_memory_mb": peak,
        "memory_method": method,
        "reference": "torchvision.models.alexnet" if ref is not None else None,
        "reference_images_per_second": None, "reference_seconds_per_step": None, "reference_times": None,
        "reference_peak_memory_mb": None, "ratio": None, "memory_ratio": None,
        "best_reference": None,
        "settings": _settings(setup),
        "reference_settings": {"precision": "fp32", "channels_last": False, "compile": False,
                               "weights": None} if ref is not None else None,
    }
    best = setup.best_reference
    if best is not None:
        best_ips = cfg.batch_size / _median(times[best.name])
        out["best_reference"] = {
            "name": "torchvision.models.alexnet", "images_per_second": best_ips,
            "seconds_per_step": _median(times[best.name]), "times": times[best.name], "ratio": ips / best_ips,
            "settings": {"precision": best.precision.name, "channels_last": best.precision.channels_last,
                         "compile": False}}
    if ref is not None:
        import torchvision

        ref_ips = cfg.batch_size / _median(times[ref.name])
        out.update(reference_images_per_second=ref_ips, reference_seconds_per_step=_median(times[ref.name]),
                   reference_times=times[ref.name], reference_peak_memory_mb=ref_peak,
                   ratio=ips / ref_ips,
                   memory_ratio=(peak / ref_peak) if cfg.memory and ref_peak and ref_peak > 0 else None)
        out["reference_settings"]["torchvision"] = torchvision.__version__
    return out


def bench_model(cfg: BenchConfig) -> dict:
    """Images/s and peak memory of ``cfg.arch`` against torchvision's AlexNet at PyTorch defaults and at the
    device's best settings, and the fraction of the machine's measured peak each reaches (module doc).

    >>> res = bench_model(BenchConfig("infer", "paper", batch_size=32, model_switches={"lrn": False}))
    Returns a dict with ``images_per_second``, ``reference_images_per_second``, ``ratio`` (ours / reference),
    ``peak_memory_mb``, ``reference_peak_memory_mb``, ``memory_ratio``, ``times``, ``reference_times`` (seconds
    per timed step, in order), ``settings``, ``reference_settings`` and the run's parameters.
    """
    setup = _setup(cfg)
    runners = [r for r in (setup.ours, setup.reference, setup.best_reference) if r is not None]
    times = _time_interleaved(runners, cfg.steps, cfg.warmup)
    peak, ref_peak, method = math.nan, math.nan, None
    if cfg.memory:
        peak, method = setup.ours.peak_memory()
        if setup.reference is not None:
            ref_peak, _ = setup.reference.peak_memory()
    out = _report(cfg, setup, times, peak, ref_peak, method)
    if cfg.peak:
        out["peak"] = _peak_report(cfg, setup, out)
    return out


def _peak_report(cfg: BenchConfig, setup: _Setup, out: dict) -> dict:
    """The machine's measured ceiling in our network's precision, and the fraction of it each network reaches."""
    from .bench_peak import machine_peak, step_flops

    peak = machine_peak(setup.device, setup.precision)
    in_ch = setup.model.config.in_channels
    ours = step_flops(setup.model, in_ch, cfg.input_size, cfg.mode)
    report = {**peak, "gflop_per_image": ours / 1e9,
              "ceiling_images_per_second": peak["gflops"] * 1e9 / ours,
              "fraction": out["images_per_second"] * ours / (peak["gflops"] * 1e9)}
    if setup.reference is not None:
        ref = step_flops(setup.reference.model, in_ch, cfg.input_size, cfg.mode)
        report["reference_gflop_per_image"] = ref / 1e9
        report["reference_fraction"] = out["reference_images_per_second"] * ref / (peak["gflops"] * 1e9)
        if out["best_reference"] is not None:
            report["best_reference_fraction"] = (out["best_reference"]["images_per_second"] * ref
                                                 / (peak["gflops"] * 1e9))
    return report


LRN_SHAPES = {"conv1": (96, 55, 55), "conv2": (256, 27, 27)}


_LRN = LRNBenchConfig()


def bench_lrn(*, batch_size: int = _LRN.batch_size, steps: int = _LRN.steps, warmup: int = _LRN.warmup,
              device: str = _LRN.device,
              layers: tuple = ("conv1", "conv2"), groups: int = 2, backward: bool = True) -> dict:
    """Forward (+ backward) time of our LocalResponseNorm (the paper's, per tower) against
    ``torch.nn.LocalResponseNorm(5, alpha=5e-4, beta=0.75, k=2)`` (the same function: torch divides alpha by n,
    and does not clip the window at the tower boundary) on ReLU-like maps of conv1/conv2 size, interleaved.
    Returns ``{layer: {"ms", "reference_ms", "ratio" (reference time / ours: speed-up), "shape"}}`` plus settings.
    """
    from .layers import LocalResponseNorm, get_lrn_backend

    dev = resolve_device(device)
    if dev.type == "cpu":
        tune_cpu_allocator()
    out: dict = {"batch_size": batch_size, "steps": steps, "device": str(dev), "backward": backward,
                 "lrn_backend": get_lrn_backend(), "threads": torch.get_num_threads(), "layers": {}}
    torch.manual_seed(0)
    for name in layers:
        if name not in LRN_SHAPES:
            raise ConfigError(f"bench lrn: unknown layer {name!r}; choose from {', '.join(LRN_SHAPES)}")
        shape = (batch_size, *LRN_SHAPES[name])
        x = (torch.randn(shape, device=dev) * 30).relu_()
        ours = LocalResponseNorm(groups=groups)
        ref = torch.nn.LocalResponseNorm(5, alpha=5e-4, beta=0.75, k=2.0)

        def run(fn, x=x):
            xx = x.detach().requires_grad_(backward)
            _sync(dev)
            t0 = time.perf_counter()
            yy = fn(xx)
            if backward:
                yy.backward(torch.ones_like(yy))
            _sync(dev)
            return time.perf_counter() - t0

        t_ours, t_ref = [], []
        for _ in range(warmup):
            run(ours)
            run(ref)
        for i in range(steps):
            if i % 2:
                t_ref.append(run(ref))
                t_ours.append(run(ours))
            else:
                t_ours.append(run(ours))
                t_ref.append(run(ref))
        ms, ref_ms = 1e3 * _median(t_ours), 1e3 * _median(t_ref)
        out["layers"][name] = {"shape": list(shape), "ms": ms, "reference_ms": ref_ms, "ratio": ref_ms / ms,
                               "times": t_ours, "reference_times": t_ref}
    return out


__all__ = ["BENCH_MODES", "BenchConfig", "bench_model", "bench_lrn", "LRN_SHAPES"]
