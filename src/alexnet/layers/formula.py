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


# Channels per tower up to which the compiled LRN kernels take ``flat_window_sum`` for channels_last maps: measured
# (2-core AMD EPYC, AVX512-BF16, batch 64, bf16 in, fp32 math) on conv1's 2 x 48 maps 13.8 ms against 32.9 ms for
# ``shifted_sum``'s padded 5-D form, whose tower index (channel % c) keeps inductor's loop scalar; on conv2's
# 2 x 128 maps 9.7 against 7.3 ms, so those keep the 5-D form.
FLAT_WINDOW_MAX_CHANNELS = 64


def window_masks(channels: int, groups: int, reach: int, device=None) -> torch.Tensor:
    """(2 * reach + 1) x channels 0/1 float32: row ``reach + d`` keeps channel i's neighbour i + d when both are in
    the same tower.  Made outside ``torch.compile`` and passed in: computed inside, its ``% c`` would be fused
    into the kernel's index arithmetic again."""
    c = channels // groups
    i = torch.arange(channels, device=device) % c
    return torch.stack([((i + d >= 0) & (i + d < c)).float() for d in range(-reach, reach + 1)])


def flat_window_sum(flat: torch.Tensor, channels: int, before: int, after: int, masks: torch.Tensor) -> torch.Tensor:
    """``shifted_sum`` of a channels_last tensor given as its flat memory (``to_flat``; channel innermost): shifts
    of the flat tensor, each times its 0/1 mask (``window_masks``) so nothing crosses a tower or pixel boundary.
    Inductor vectorizes this one-dimensional form.  Equal to ``shifted_sum`` bit for bit (the same terms added in
    the same order)."""
    reach = (masks.shape[0] - 1) // 2
    length = flat.shape[0]
    padded = F.pad(flat, (before, after))
    out = None
    for d in range(-before, after + 1):
        term = padded[before + d:before + d + length]
        if d:
            term = (term.view(-1, channels) * masks[reach + d].to(flat.dtype)).view(-1)
        out = term if out is None else out + term
    return out


def use_flat_window(t: torch.Tensor, groups: int) -> bool:
    """Whether the flat form is the faster compiled one for ``t`` (channels_last, few channels a tower)."""
    return (t.dim() == 4 and not t.is_contiguous() and t.is_contiguous(memory_format=torch.channels_last)
            and t.shape[1] // groups <= FLAT_WINDOW_MAX_CHANNELS)


def to_flat(t: torch.Tensor) -> torch.Tensor:
    """A channels_last (N, C, H, W) tensor's memory as a 1-D view (N, H, W, C order)."""
    return t.permute(0, 2, 3, 1).reshape(-1)


def from_flat(flat: torch.Tensor, shape) -> torch.Tensor:
    """``to_flat``'s inverse: the (N, C, H, W) channels_last view of ``flat``."""
    n, ch, h, w = shape
    return flat.view(n, h, w, ch).permute(0, 3, 1, 2)


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
