"""Small building blocks the networks share: activations (section 3.1), pooling (section 3.4), and cuda-convnet's
within-map response normalisation of the CIFAR-10 net."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def make_activation(name: str) -> nn.Module:
    """``relu`` (the paper's ReLU, section 3.1) or ``tanh`` (the saturating unit it replaces)."""
    return nn.ReLU(inplace=True) if name == "relu" else nn.Tanh()


def make_max_pool(overlap: bool, ceil_mode: bool = False) -> nn.MaxPool2d:
    """Overlapping pooling (section 3.4): z=3, s=2; the non-overlapping control: z=s=2."""
    return nn.MaxPool2d(3, 2, ceil_mode=ceil_mode) if overlap else nn.MaxPool2d(2, 2, ceil_mode=ceil_mode)


def make_avg_pool(overlap: bool, ceil_mode: bool = False) -> nn.AvgPool2d:
    """Average pooling with the same windows as ``make_max_pool`` (cuda-convnet's CIFAR-10 net)."""
    return nn.AvgPool2d(3, 2, ceil_mode=ceil_mode) if overlap else nn.AvgPool2d(2, 2, ceil_mode=ceil_mode)


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
