"""The paper's LRN formula (section 3.3) with plain tensor ops: the reference loop, the window matrix, and the
two autograd-recorded forms used where a custom autograd function cannot be (export, ``torch.compile``).

    b[i] = a[i] / (k + alpha * sum_{j=max(0, i-n/2)}^{min(N-1, i+n/2)} a[j]^2) ** beta

with k=2, n=5, alpha=1e-4, beta=0.75.  Trap: ``torch.nn.LocalResponseNorm`` and Caffe compute
``k + (alpha / n) * sum``; the paper does not divide by n (``convention="caffe"`` gives the divided form).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..errors import ConfigError

# The paper's constants (section 3.3).
LRN_SIZE = 5
LRN_ALPHA = 1e-4
LRN_BETA = 0.75
LRN_K = 2.0


@dataclass(frozen=True)
class LRNConvention:
    """How a code base reads section 3.3's formula: its k, whether alpha is divided by n, and whether the window
    stops at a tower's channel boundary."""

    name: str
    k: float
    alpha_over_size: bool
    per_tower: bool
    source: str


# The paper's text and its authors' code disagree: cuda-convnet and cuda-convnet2 divide alpha by n (cuda-convnet2's
# ImageNet layer params: scale=0.0001, size=5, minDiv=2 -- five times weaker than the text), each GPU normalising its
# own maps; Caffe's bvlc_alexnet keeps Caffe's default k=1, divides alpha by n and normalises all 96/256 maps at once.
LRN_CONVENTION_TABLE = {
    "paper": LRNConvention("paper", LRN_K, False, True, "the paper's text (section 3.3): k + alpha * sum"),
    "cuda-convnet": LRNConvention("cuda-convnet", LRN_K, True, True,
                                  "Krizhevsky's cuda-convnet/cuda-convnet2: minDiv 2 + scale/size * sum, per GPU"),
    "caffe": LRNConvention("caffe", 1.0, True, False, "Caffe bvlc_alexnet: k=1 + alpha/size * sum, both towers"),
}


def check_groups(channels: int, groups: int) -> None:
    """A tower normalises only its own maps, so the channels must split evenly between the towers."""
    if channels % groups:
        raise ConfigError(f"LRN: channels={channels} is not divisible by groups={groups}")


def lrn_window_matrix(channels: int, size: int, groups: int = 1, dtype=torch.float32,
                      device=None) -> torch.Tensor:
    """C x C 0/1 matrix M with M[i, j] = 1 where channel j lies in channel i's window.

    The window is j in [i - size//2, i + (size-1)//2], clipped at the first and last channel of
    i's group (a tower normalises only its own kernel maps: the paper's GPUs did not communicate
    in this layer).
    """
    check_groups(channels, groups)
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


def compute_dtype(a: torch.Tensor) -> torch.Tensor:
    """Half-precision inputs are normalised in float32 (sums of squares overflow/round badly in bf16)."""
    return a.float() if a.dtype in (torch.float16, torch.bfloat16) else a


def neg_power(s: torch.Tensor, beta: float, out: torch.Tensor | None = None) -> torch.Tensor:
    """``s ** -beta``.  For the paper's 0.75, rsqrt(s) * sqrt(rsqrt(s)): ~5x faster than ``pow`` on CPUs.
    With ``out`` (eager path only) the result is written there; ``s`` may then be overwritten as scratch."""
    if out is None:
        if beta == 0.75:
            r = torch.rsqrt(s)
            return r * torch.sqrt(r)
        if beta == 0.5:
            return torch.rsqrt(s)
        return s.pow(-beta)
    if beta == 0.75:
        r = torch.rsqrt(s, out=out)
        return r.mul_(torch.sqrt(r, out=s))
    if beta == 0.5:
        return torch.rsqrt(s, out=out)
    return torch.pow(s, -beta, out=out)


def shifted_sum(t: torch.Tensor, groups: int, before: int, after: int) -> torch.Tensor:
    """``out[:, i] = sum of t[:, i - before .. i + after]``, clipped at each group's first/last channel."""
    n, ch, h, w = t.shape
    c = ch // groups
    p = F.pad(t.reshape(n, groups, c, h, w), (0, 0, 0, 0, before, after))
    out = p[:, :, 0:c]
    for d in range(1, before + after + 1):
        out = out + p[:, :, d:d + c]
    return out.reshape(n, ch, h, w)


def channels_last_map(t: torch.Tensor) -> bool:
    """A 4-D map stored channels_last (and not also plain contiguous, as 1-channel or 1x1 maps are)."""
    return t.dim() == 4 and not t.is_contiguous() and t.is_contiguous(memory_format=torch.channels_last)


def to_towers(t: torch.Tensor, groups: int) -> torch.Tensor:
    """A channels_last (N, C, H, W) map's memory as a (N * H * W, towers, C / towers) view: one row per pixel."""
    return t.permute(0, 2, 3, 1).reshape(-1, groups, t.shape[1] // groups)


def from_towers(t: torch.Tensor, shape) -> torch.Tensor:
    """``to_towers``'s inverse: the (N, C, H, W) channels_last view of a (N * H * W, towers, C / towers) tensor."""
    n, ch, h, w = shape
    return t.reshape(n, h, w, ch).permute(0, 3, 1, 2)


def padded_window_sum(p: torch.Tensor, before: int, after: int) -> torch.Tensor:
    """``shifted_sum`` on a ``to_towers`` tensor whose last dimension is already zero-padded by (before, after)
    (``F.pad``, outside ``torch.compile``): the window is then ``before + after + 1`` plain slices, which inductor
    compiles to one vectorized pass with affine loads.  Padding inside the compiled graph instead fuses the pad into
    every load as a bounds check (a masked load per window term); the flat form with 0/1 tower masks this replaces
    paid that too (conv1's forward, batch 64, bf16: 13.5 -> 6.7 ms with the eager pad included).  Equal to
    ``shifted_sum`` bit for bit (the same terms added in the same order)."""
    c = p.shape[-1] - before - after
    out = p[..., 0:c]
    for d in range(1, before + after + 1):
        out = out + p[..., d:d + c]
    return out


def lrn_shifted(a: torch.Tensor, size: int, scale: float, beta: float, k: float, groups: int = 1) -> torch.Tensor:
    """The formula with plain tensor ops and the window as ``size`` shifted slices (autograd-recorded).

    Used inside ``torch.compile`` (inductor fuses it into one pass); equal to ``lrn_functional``."""
    x = compute_dtype(a)
    s = shifted_sum(x * x, groups, size // 2, (size - 1) // 2) * scale + k
    return (x * neg_power(s, beta)).to(a.dtype)


def lrn_functional(a: torch.Tensor, window: torch.Tensor, scale: float, beta: float, k: float) -> torch.Tensor:
    """The same computation with plain tensor ops (autograd-recorded): used for ONNX/TorchScript export and
    tracing, where a custom autograd function cannot be exported.  ``window`` is the C x C matrix of
    ``lrn_window_matrix``."""
    x = compute_dtype(a)
    w = window.to(device=x.device, dtype=x.dtype).view(window.shape[0], window.shape[1], 1, 1)
    s = F.conv2d(x * x, w) * scale + k
    return (x * s.pow(-beta)).to(a.dtype)
