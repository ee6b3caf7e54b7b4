"""Local Response Normalization (paper section 3.3) and small building blocks.

The paper's formula, for activity a at channel i of N channels:

    b[i] = a[i] / (k + alpha * sum_{j=max(0, i-n/2)}^{min(N-1, i+n/2)} a[j]^2) ** beta

with k=2, n=5, alpha=1e-4, beta=0.75.  Trap: ``torch.nn.LocalResponseNorm`` and Caffe compute
``k + (alpha / n) * sum``; the paper does not divide by n.  ``convention="caffe"`` gives the
divided form (needed for imported ``bvlc_alexnet`` weights, together with k=1).

Speed: the channel-window sum is a 1x1 convolution with a fixed banded (and, with towers,
block-diagonal) C x C matrix, i.e. one GEMM over channels, which is fast in channels_last and
contiguous layouts.  Forward and backward are a custom autograd function with the analytic
gradient, so no average-pooling graph is recorded (``nn.LocalResponseNorm`` is ~5x slower).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .errors import ConfigError

# The paper's constants (section 3.3).
LRN_SIZE = 5
LRN_ALPHA = 1e-4
LRN_BETA = 0.75
LRN_K = 2.0


def lrn_window_matrix(channels: int, size: int, groups: int = 1, dtype=torch.float32,
                      device=None) -> torch.Tensor:
    """C x C 0/1 matrix M with M[i, j] = 1 where channel j lies in channel i's window.

    The window is j in [i - size//2, i + (size-1)//2], clipped at the first and last channel of
    i's group (a tower normalises only its own kernel maps: the paper's GPUs did not communicate
    in this layer).
    """
    if channels % groups:
        raise ConfigError(f"LRN: channels={channels} is not divisible by groups={groups}")
    idx = torch.arange(channels, device=device)
    diff = idx[None, :] - idx[:, None]  # j - i
    band = (diff >= -(size // 2)) & (diff <= (size - 1) // 2)
    per = channels // groups
    same_group = (idx[:, None] // per) == (idx[None, :] // per)
    return (band & same_group).to(dtype)


def lrn_reference(a: torch.Tensor, size: int = LRN_SIZE, alpha: float = LRN_ALPHA,
                  beta: float = LRN_BETA, k: float = LRN_K, groups: int = 1,
                  convention: str = "paper") -> torch.Tensor:
    """Plain-loop transcription of the paper's formula (slow; for tests and documentation)."""
    n_ch = a.shape[1]
    per = n_ch // groups
    scale = alpha / size if convention == "caffe" else alpha
    out = torch.empty_like(a)
    for i in range(n_ch):
        g0 = (i // per) * per
        lo, hi = max(g0, i - size // 2), min(g0 + per - 1, i + (size - 1) // 2)
        s = a[:, lo:hi + 1].pow(2).sum(dim=1)
        out[:, i] = a[:, i] / (k + scale * s).pow(beta)
    return out


def _compute_dtype(a: torch.Tensor) -> torch.Tensor:
    """Half-precision inputs are normalised in float32 (sums of squares overflow/round badly in bf16)."""
    return a.float() if a.dtype in (torch.float16, torch.bfloat16) else a


class _LRNFunction(torch.autograd.Function):
    """b = a * s^-beta with s = k + scale * W(a^2); W symmetric, so the gradient is

        da = g * s^-beta - 2 * scale * beta * a * W(g * b / s)
    """

    @staticmethod
    def forward(ctx, a, window, scale: float, beta: float, k: float):
        in_dtype = a.dtype
        x = _compute_dtype(a)
        w = window.to(device=x.device, dtype=x.dtype).view(*window.shape, 1, 1)
        s = F.conv2d(x * x, w).mul_(scale).add_(k)
        b = x * s.pow(-beta)
        ctx.save_for_backward(a, s, window)
        ctx.scale, ctx.beta = scale, beta
        return b.to(in_dtype)

    @staticmethod
    def backward(ctx, g):
        a, s, window = ctx.saved_tensors
        x = _compute_dtype(a)
        gf = g.to(x.dtype)
        w = window.to(device=x.device, dtype=x.dtype).view(*window.shape, 1, 1)
        s_pow = s.pow(-ctx.beta)
        # g * b / s = g * a * s^(-beta-1)
        t = gf * x * s_pow / s
        grad = gf * s_pow - (2.0 * ctx.scale * ctx.beta) * x * F.conv2d(t, w)
        return grad.to(a.dtype), None, None, None, None


def lrn_functional(a: torch.Tensor, window: torch.Tensor, scale: float, beta: float, k: float) -> torch.Tensor:
    """The same computation with plain tensor ops (autograd-recorded): used for ONNX/TorchScript export and
    tracing/compiling, where a custom autograd function cannot be exported."""
    x = _compute_dtype(a)
    w = window.to(device=x.device, dtype=x.dtype).view(window.shape[0], window.shape[1], 1, 1)
    s = F.conv2d(x * x, w) * scale + k
    return (x * s.pow(-beta)).to(a.dtype)


def _exporting() -> bool:
    return (torch.jit.is_scripting() or torch.jit.is_tracing() or torch.onnx.is_in_onnx_export()
            or torch.compiler.is_compiling())


class LocalResponseNorm(nn.Module):
    """The paper's cross-channel LRN (section 3.3); a fast, exact replacement for nn.LocalResponseNorm.

    convention: ``"paper"`` sums ``alpha * sum a^2``; ``"caffe"`` (and torch) use ``alpha / size``.
    groups: number of towers; the window is clipped at each tower's channel boundary.
    """

    def __init__(self, size: int = LRN_SIZE, alpha: float = LRN_ALPHA, beta: float = LRN_BETA,
                 k: float = LRN_K, convention: str = "paper", groups: int = 1):
        super().__init__()
        if convention not in ("paper", "caffe"):
            raise ConfigError(f"LRN convention must be 'paper' or 'caffe', got {convention!r}")
        if size < 1:
            raise ConfigError(f"LRN size must be >= 1, got {size}")
        self.size, self.alpha, self.beta, self.k = size, float(alpha), float(beta), float(k)
        self.convention, self.groups = convention, groups
        self._windows: dict[tuple, torch.Tensor] = {}

    @property
    def scale(self) -> float:
        return self.alpha / self.size if self.convention == "caffe" else self.alpha

    def _window(self, channels: int, device) -> torch.Tensor:
        key = (channels, str(device))
        if key not in self._windows:
            self._windows[key] = lrn_window_matrix(channels, self.size, self.groups, device=device)
        return self._windows[key]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4:
            raise ValueError(f"LocalResponseNorm expects N x C x H x W input, got shape {tuple(x.shape)}")
        window = self._window(x.shape[1], x.device)
        if _exporting():
            return lrn_functional(x, window, self.scale, self.beta, self.k)
        return _LRNFunction.apply(x, window, self.scale, self.beta, self.k)

    def extra_repr(self) -> str:
        return (f"size={self.size}, alpha={self.alpha:g}, beta={self.beta:g}, k={self.k:g}, "
                f"convention={self.convention!r}, groups={self.groups}")


class SpatialResponseNorm(nn.Module):
    """cuda-convnet's ``rnorm``: normalisation over a size x size neighbourhood within each map.

    b = a / (k + (alpha / size^2) * sum_{size x size} a^2) ** beta  (zero padding at borders).
    Used by the four-layer CIFAR-10 network (``layers-18pct``), whose LRN is over local
    neighbourhoods rather than across kernel maps.
    """

    def __init__(self, size: int = 3, alpha: float = 5e-5, beta: float = 0.75, k: float = 1.0):
        super().__init__()
        self.size, self.alpha, self.beta, self.k = size, alpha, beta, k

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pad = self.size // 2
        sq = F.avg_pool2d(x.float().pow(2), self.size, stride=1, padding=pad,
                          count_include_pad=True)  # mean = sum / size^2
        return (x.float() / (self.k + self.alpha * sq).pow(self.beta)).to(x.dtype)

    def extra_repr(self) -> str:
        return f"size={self.size}, alpha={self.alpha:g}, beta={self.beta:g}, k={self.k:g}"
