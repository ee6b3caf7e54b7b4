"""``LocalResponseNorm``: the paper's cross-channel LRN (section 3.3) as a module.

In ordinary eager calls it runs one of the custom autograd functions of ``kernels`` (chosen by the LRN backend).
While tracing, scripting, exporting (ONNX) it uses the plain-op ``lrn_functional``; inside ``torch.compile`` of a
whole model, the plain-op shifted-window form ``lrn_shifted`` (which inductor fuses).
"""
from __future__ import annotations

import torch
from torch import nn

from ..choices import LRN_CONVENTIONS
from ..errors import ConfigError
from .formula import (
    LRN_ALPHA,
    LRN_BETA,
    LRN_CONVENTION_TABLE,
    LRN_K,
    LRN_SIZE,
    check_groups,
    lrn_functional,
    lrn_shifted,
    lrn_window_matrix,
)
from .kernels import LRNCompiledFunction, LRNFunction, dispatch, shape_key


def exporting_to_file() -> bool:
    """Tracing, scripting or exporting (ONNX, torch.export): the graph must be plain ops."""
    is_exporting = getattr(torch.compiler, "is_exporting", lambda: False)
    return (torch.jit.is_scripting() or torch.jit.is_tracing() or torch.onnx.is_in_onnx_export()
            or is_exporting())


def exporting() -> bool:
    """Tracing, scripting, exporting (ONNX, torch.export) or compiling: a custom autograd function cannot be used."""
    return exporting_to_file() or torch.compiler.is_compiling()


class LocalResponseNorm(nn.Module):
    """The paper's cross-channel LRN (section 3.3); a fast, exact replacement for nn.LocalResponseNorm.

    convention: ``"paper"`` sums ``alpha * sum a^2``; ``"cuda-convnet"`` and ``"caffe"`` (and torch) use
    ``alpha / size`` (``LRN_CONVENTION_TABLE``; the convention's k is the network's default, ``k`` here is explicit).
    groups: number of towers; the window is clipped at each tower's channel boundary.
    """

    def __init__(self, size: int = LRN_SIZE, alpha: float = LRN_ALPHA, beta: float = LRN_BETA,
                 k: float = LRN_K, convention: str = "paper", groups: int = 1):
        super().__init__()
        if convention not in LRN_CONVENTIONS:
            raise ConfigError(f"LRN convention must be one of {', '.join(LRN_CONVENTIONS)}; got {convention!r}")
        if size < 1:
            raise ConfigError(f"LRN size must be >= 1, got {size}")
        if groups < 1:
            raise ConfigError(f"LRN groups must be >= 1, got {groups}")
        self.size, self.alpha, self.beta, self.k = size, float(alpha), float(beta), float(k)
        self.convention, self.groups = convention, groups
        self._windows: dict[tuple, torch.Tensor] = {}

    @property
    def scale(self) -> float:
        return self.alpha / self.size if LRN_CONVENTION_TABLE[self.convention].alpha_over_size else self.alpha

    @property
    def params(self) -> tuple:
        """(groups, size, scale, beta, k): the arguments of the kernels."""
        return self.groups, self.size, self.scale, self.beta, self.k

    def window_matrix(self, channels: int, device, per_group: bool = False) -> torch.Tensor:
        """The C x C window matrix, or (per_group) one tower's c x c band; cached per size and device."""
        key = (channels, str(device), per_group)
        if key not in self._windows:
            if per_group:
                check_groups(channels, self.groups)
                m = lrn_window_matrix(channels // self.groups, self.size, 1, device=device)
            else:
                m = lrn_window_matrix(channels, self.size, self.groups, device=device)
            self._windows[key] = m
        return self._windows[key]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4:
            raise ValueError(f"LocalResponseNorm expects N x C x H x W input, got shape {tuple(x.shape)}")
        if exporting_to_file():   # ONNX / TorchScript / torch.export: plain Conv, Pow, Mul
            return lrn_functional(x, self.window_matrix(x.shape[1], x.device), self.scale, self.beta, self.k)
        check_groups(x.shape[1], self.groups)
        if torch.compiler.is_compiling():   # inside torch.compile: a form inductor fuses into one pass
            return lrn_shifted(x, self.size, self.scale, self.beta, self.k, self.groups)
        params = self.params
        m = self.window_matrix(x.shape[1], x.device, per_group=True)
        return dispatch(x, shape_key(x, params), lambda: LRNCompiledFunction.apply(x, m, *params),
                        lambda: LRNFunction.apply(x, m, *params))

    def extra_repr(self) -> str:
        return (f"size={self.size}, alpha={self.alpha:g}, beta={self.beta:g}, k={self.k:g}, "
                f"convention={self.convention!r}, groups={self.groups}")
