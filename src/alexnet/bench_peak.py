"""The machine's own ceiling, and where a network stands against it.

``machine_peak`` measures what plain PyTorch reaches on this device in the precision a network runs in: a square
matmul and a convolution of conv2's shape (the kind of work AlexNet's step is made of), best of a few repetitions.
``step_flops`` counts the multiply-adds of one image through a network's convolutions and linear layers (a forward
hook per layer; the LRN, pooling and activations are a few percent and left out, so fractions are slight
underestimates); a training step costs about three forward passes (forward, and backward for the inputs and the
weights).  ``images/s x FLOP per image / peak FLOP/s`` is then the fraction of the machine a network uses.
"""
from __future__ import annotations

import time

import torch
import torch.nn.functional as F

from .runtime import Precision

# The probe's sizes: large enough to reach the machine's steady rate, small enough to take about a second.
PROBE = {"matmul_size": 2048, "conv_batch": 32, "repeats": 5}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _best_seconds(fn, device: torch.device, repeats: int) -> float:
    fn()                                  # warm-up: kernels chosen, weights packed
    best = float("inf")
    for _ in range(repeats):
        _sync(device)
        t0 = time.perf_counter()
        fn()
        _sync(device)
        best = min(best, time.perf_counter() - t0)
    return best


@torch.no_grad()
def machine_peak(device: torch.device, precision: Precision, *, matmul_size: int | None = None,
                 conv_batch: int | None = None, repeats: int | None = None) -> dict:
    """GFLOP/s of a ``matmul_size``-square matmul and of a conv2-shaped convolution (96 -> 256 channels, 5x5, 27x27
    maps, batch ``conv_batch``) in ``precision``'s dtype and layout on ``device``; ``gflops`` is the higher."""
    matmul_size = matmul_size or PROBE["matmul_size"]
    conv_batch = conv_batch or PROBE["conv_batch"]
    repeats = repeats or PROBE["repeats"]
    dtype = precision.amp_dtype or torch.float32
    a = torch.randn(matmul_size, matmul_size, device=device, dtype=dtype)
    b = torch.randn(matmul_size, matmul_size, device=device, dtype=dtype)
    t_mm = _best_seconds(lambda: a @ b, device, repeats)
    mm = 2 * matmul_size ** 3 / t_mm / 1e9
    x = torch.randn(conv_batch, 96, 27, 27, device=device, dtype=dtype)
    w = torch.randn(256, 96, 5, 5, device=device, dtype=dtype)
    if precision.channels_last:
        x, w = x.to(memory_format=torch.channels_last), w.to(memory_format=torch.channels_last)
    t_conv = _best_seconds(lambda: F.conv2d(x, w, padding=2), device, repeats)
    conv = 2 * conv_batch * 256 * 27 * 27 * 96 * 25 / t_conv / 1e9
    return {"dtype": str(dtype).replace("torch.", ""), "channels_last": precision.channels_last,
            "matmul_gflops": mm, "conv_gflops": conv, "gflops": max(mm, conv),
            "probe": f"{matmul_size}^2 matmul; conv 96->256 5x5 on {conv_batch}x27x27"}


@torch.no_grad()
def forward_flops(model: torch.nn.Module, in_channels: int, input_size: int) -> float:
    """FLOPs (2 per multiply-add) of one image's forward pass through ``model``'s convolutions and linear layers."""
    total = [0.0]

    def conv_hook(m, inputs, out):
        k = m.kernel_size[0] * m.kernel_size[1] * (m.in_channels // m.groups)
        total[0] += 2.0 * out[0].numel() * k

    def linear_hook(m, inputs, out):
        total[0] += 2.0 * m.in_features * m.out_features

    hooks = []
    for m in model.modules():
        if isinstance(m, torch.nn.Conv2d):
            hooks.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, torch.nn.Linear):
            hooks.append(m.register_forward_hook(linear_hook))
    was_training = model.training
    param = next(model.parameters())
    try:
        model.eval()
        model(torch.zeros(1, in_channels, input_size, input_size, device=param.device, dtype=param.dtype))
    finally:
        model.train(was_training)
        for h in hooks:
            h.remove()
    return total[0]


def step_flops(model: torch.nn.Module, in_channels: int, input_size: int, mode: str) -> float:
    """FLOPs of one image's step: a forward pass to infer, about three to train (forward, two backward products)."""
    return forward_flops(model, in_channels, input_size) * (3 if mode == "train" else 1)


__all__ = ["PROBE", "machine_peak", "forward_flops", "step_flops"]
