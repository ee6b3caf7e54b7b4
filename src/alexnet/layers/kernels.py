"""The LRN's two backends and their custom autograd functions (the speed half of section 3.3's layer).

``nn.LocalResponseNorm`` records an avg-pool graph and computes ``pow`` (slow on CPUs); ours is a custom autograd
function with the analytic gradient that saves only its input (the ReLU output, which autograd keeps anyway) and
recomputes the window sum in backward, so it adds no activation memory.  Two backends compute it:

``eager``     the channel-window sum is one batched GEMM with the per-tower banded c x c matrix
              (c = C / towers), in NCHW and channels_last; ``s ** -0.75`` is ``rsqrt(s) * sqrt(rsqrt(s))``;
              the element-wise work runs in place.  Works for every device and dtype (float64 for gradcheck).
``compiled``  the same formula as three ``torch.compile``d (inductor) kernels -- forward, and backward in two
              passes -- with the window as shifted loads, so each is one pass over memory.  Channels_last maps
              go in as one row per pixel, each tower's channels zero-padded by an eager ``F.pad`` first
              (``formula.padded_window_sum``), so inductor vectorizes plain affine loads (conv1's forward, batch
              64, bf16: 33 ms in the 5-D form, 13 with tower masks, 6.7 now; its backward 78 -> 50 -> 18 ms).
              Measured ~3x faster than ``eager`` on an AVX2 CPU for conv1-sized maps, 3-6x on the AVX512-BF16
              EPYC; costs a compile (~2-10 s per shape, cached on disk by inductor).
``auto``      (default) ``compiled`` for large CPU maps (>= COMPILE_MIN_NUMEL elements in training,
              COMPILE_MIN_NUMEL_INFERENCE in inference), where
              it was measured to pay, else ``eager``; if compiling fails once, ``eager`` from then on.

Choose with ``set_lrn_backend(name)`` or the environment variable ``ALEXNET_LRN_BACKEND``.
"""
from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable

from ..choices import LRN_BACKENDS
from ..errors import ConfigError
from .formula import (
    channels_last_map,
    compute_dtype,
    from_towers,
    neg_power,
    padded_window_sum,
    shifted_sum,
    to_towers,
)

# "auto" compiles a training step's LRN (input requiring grad) from this many elements (conv1's maps of >= 4
# 224-px or >= 12 128-px images).  The compiled kernels are 3-6x faster than eager's down to 0.4M elements (2-core
# AMD EPYC, forward + backward, bf16 channels_last and fp32 NCHW; e.g. 32 x 96 x 31 x 31: 15.6 -> 4.2 ms), and a new
# shape costs ~2.3 s of compile (0.2 s from inductor's disk cache): a training run repays that within a few hundred
# steps; the demo's maps (3.0M, 1.8M) train 20% faster than under the earlier single threshold, 1 << 22.
COMPILE_MIN_NUMEL = 1 << 20
# ... and an inference call's from this many: a forward alone gains less, and one-off commands (`features` of 500
# images at 128 px) spent longer compiling than computing.  Tiny maps (tests, toy runs) stay eager either way.
COMPILE_MIN_NUMEL_INFERENCE = 1 << 22
# Distinct (shape, dtype, layout, parameters) keys compiled before "auto" stops compiling new ones.
COMPILE_MAX_SHAPES = 16
# Below this many elements (or in float64, whose batched GEMM is pathologically slow on CPUs: 25 ms for 9 x 9
# matrices) the window is summed with shifted slices instead of a GEMM (which also avoids thread start-up).
GEMM_MIN_NUMEL = 1 << 15

_state = {"backend": os.environ.get("ALEXNET_LRN_BACKEND", "auto") or "auto", "failed": None}
_compiled_keys: set = set()
_kernels: dict = {}


def set_lrn_backend(name: str) -> str:
    """Select how LocalResponseNorm computes: ``auto`` (default), ``eager`` or ``compiled``.  Returns the previous."""
    if name not in LRN_BACKENDS:
        raise ConfigError(f"LRN backend must be one of {', '.join(LRN_BACKENDS)}; got {name!r}")
    prev = _state["backend"]
    _state["backend"] = name
    return prev


def get_lrn_backend() -> str:
    name = _state["backend"]
    if name not in LRN_BACKENDS:
        raise ConfigError(f"ALEXNET_LRN_BACKEND must be one of {', '.join(LRN_BACKENDS)}; got {name!r}")
    return name


def compiled_shapes() -> frozenset:
    """The (shape, dtype, device, contiguous, parameters) keys the compiled backend has run so far."""
    return frozenset(_compiled_keys)


def compile_failure() -> str | None:
    """Why compiling failed (then every call uses ``eager``), or None."""
    return _state["failed"]


def shape_key(x: torch.Tensor, params: tuple) -> tuple:
    return (tuple(x.shape), x.dtype, x.device.type, x.is_contiguous(), params)


def no_autocast(device: torch.device):
    """The LRN computes in float32 (or the input's wider dtype) whatever autocast region it is called from."""
    return torch.autocast(device.type, enabled=False) if device.type in ("cpu", "cuda") else contextlib.nullcontext()


# --- eager backend -------------------------------------------------------------------------------------------
def _window_gemm(t: torch.Tensor, m: torch.Tensor, groups: int) -> torch.Tensor:
    """``out[:, i] = sum_j m[i, j] * t[:, g*c + j]`` within each of ``groups`` blocks of c channels: one GEMM."""
    n, ch, h, w = t.shape
    c = ch // groups
    if t.is_contiguous():
        return torch.matmul(m, t.view(n, groups, c, h * w)).view(n, ch, h, w)
    if t.is_contiguous(memory_format=torch.channels_last):
        rows = t.permute(0, 2, 3, 1).reshape(-1, c)   # a view: (N*H*W*groups) x c
        return torch.matmul(rows, m.t()).view(n, h, w, ch).permute(0, 3, 1, 2)
    return _window_gemm(t.contiguous(), m, groups)


def _window(t: torch.Tensor, m: torch.Tensor, groups: int, size: int, scale: float, transpose: bool = False):
    """``scale * W(t)`` (``W^T`` with transpose), per tower; m is one tower's c x c band (0/1)."""
    if t.dtype == torch.float64 or t.numel() < GEMM_MIN_NUMEL:
        before, after = size // 2, (size - 1) // 2
        if transpose:
            before, after = after, before
        return shifted_sum(t, groups, before, after).mul_(scale)
    return _window_gemm(t, (m.t() if transpose else m).to(t.dtype) * scale, groups)


def eager_forward(a, m, groups: int, size: int, scale: float, beta: float, k: float):
    x = compute_dtype(a)
    with no_autocast(x.device):
        sq = x * x
        s = _window(sq, m, groups, size, scale).add_(k)
        b = neg_power(s, beta, out=sq).mul_(x)
    return b.to(a.dtype)


def eager_backward(a, m, g, groups: int, size: int, scale: float, beta: float, k: float, inplace: bool = False):
    """The gradient; with ``inplace`` (g is a buffer nobody else holds, of a's dtype) it is written into g."""
    x = compute_dtype(a)
    with no_autocast(x.device):
        sq = x * x
        s = _window(sq, m, groups, size, scale).add_(k)
        t = x / s
        r = neg_power(s, beta, out=sq)                             # s^-beta (s is scratch from here)
        del s
        if inplace and g.dtype == x.dtype:
            gr = g.mul_(r)                                         # g * s^-beta
            del r, sq
        else:
            gr = r.mul_(g.to(x.dtype))
        t.mul_(gr)                                                 # g * a * s^-beta / s
        w = _window(t, m, groups, size, 2.0 * scale * beta, transpose=True)
        del t
        return gr.sub_(w.mul_(x)).to(a.dtype)


# --- compiled backend: three pure functions handed to torch.compile --------------------------------------------
# Each takes either (N, C, H, W) maps (``towers=False``) or, for channels_last maps, ``to_towers`` views (one row
# per pixel) whose ``a`` arrives zero-padded by the window's reach (``_padded_towers``) and whose ``t`` is padded
# for the window's transpose (``backward_t_into``; see ``compiled_forward``, ``compiled_backward``).
def _kernel_window(t, groups: int, before: int, after: int, towers: bool):
    """The channel-window sum of ``t``: a padded ``to_towers`` tensor (``padded_window_sum``) or an (N, C, H, W) map."""
    return padded_window_sum(t, before, after) if towers else shifted_sum(t, groups, before, after)


def _centre(x, before: int, after: int, towers: bool):
    """The unpadded part of a padded ``to_towers`` tensor (the map itself otherwise)."""
    return x[..., before:x.shape[-1] - after] if towers else x


def _k_forward(a, groups: int, size: int, scale: float, beta: float, k: float, towers: bool = False):
    x = compute_dtype(a)
    before, after = size // 2, (size - 1) // 2
    s = _kernel_window(x * x, groups, before, after, towers) * scale + k
    return (_centre(x, before, after, towers) * neg_power(s, beta)).to(a.dtype)


def _k_backward_t(a, g, groups: int, size: int, scale: float, beta: float, k: float, towers: bool = False):
    x = compute_dtype(a)
    before, after = size // 2, (size - 1) // 2
    s = _kernel_window(x * x, groups, before, after, towers) * scale + k
    return g.to(x.dtype) * _centre(x, before, after, towers) * neg_power(s, beta) / s


def _k_backward_t_into(a, g, out, groups: int, size: int, scale: float, beta: float, k: float):
    """``_k_backward_t`` of padded towers written into the centre of ``out``, the float32 buffer padded for the
    window's transpose (its pad columns zeroed by the caller): t exists once, already padded (returning a padded t
    made inductor keep an unpadded float32 copy of it too, +200 MB at batch 128)."""
    t = _k_backward_t(a, g, groups, size, scale, beta, k, towers=True)
    return out[..., (size - 1) // 2:out.shape[-1] - size // 2].copy_(t)


def _k_backward_grad(a, g, t, groups: int, size: int, scale: float, beta: float, k: float, towers: bool = False):
    x = compute_dtype(a)
    before, after = size // 2, (size - 1) // 2
    s = _kernel_window(x * x, groups, before, after, towers) * scale + k
    # the window's transpose: channel j receives from i in [j - after, j + before]
    w = _kernel_window(t, groups, after, before, towers)
    return (g.to(x.dtype) * neg_power(s, beta)
            - (2.0 * scale * beta) * _centre(x, before, after, towers) * w).to(a.dtype)


def _k_backward_grad_inplace(a, g, t, groups: int, size: int, scale: float, beta: float, k: float,
                             towers: bool = False):
    """``_k_backward_grad`` written into ``g`` (each element of g is read only where it is written): for a
    gradient buffer nobody else holds, this saves one full-size buffer at the backward's peak."""
    return g.copy_(_k_backward_grad(a, g, t, groups, size, scale, beta, k, towers))


_KERNEL_FUNCTIONS = {"forward": _k_forward, "backward_t": _k_backward_t, "backward_t_into": _k_backward_t_into,
                     "backward_grad": _k_backward_grad,
                     "backward_grad_inplace": _k_backward_grad_inplace}


def kernel(name: str):
    """The ``torch.compile``d kernel ``name`` (a key of ``_KERNEL_FUNCTIONS``)."""
    if name not in _kernels:
        import torch._dynamo

        from ..runtime import import_compiler_quietly

        import_compiler_quietly()
        cfg = torch._dynamo.config
        for limit in ("recompile_limit", "cache_size_limit"):
            if hasattr(cfg, limit) and getattr(cfg, limit) < COMPILE_MAX_SHAPES * 2:
                setattr(cfg, limit, COMPILE_MAX_SHAPES * 2)
        # Static shapes: dynamic-shape kernels were measured ~5x slower on CPU.
        _kernels[name] = torch.compile(_KERNEL_FUNCTIONS[name], dynamic=False)
    return _kernels[name]


def _as_towers(a: torch.Tensor, groups: int) -> bool:
    return channels_last_map(a) and a.shape[1] % groups == 0


def _padded_towers(a: torch.Tensor, params: tuple) -> torch.Tensor:
    """``a`` as towers, zero-padded by the window's reach on each side (eagerly: see ``padded_window_sum``)."""
    groups, size = params[0], params[1]
    return F.pad(to_towers(a, groups), (size // 2, (size - 1) // 2))


def _transposed_pad_buffer(g: torch.Tensor, size: int) -> torch.Tensor:
    """An uninitialised float32 towers buffer like ``g``, padded for the window's transpose (``after`` zeros on
    the left, ``before`` on the right, as ``_k_backward_t_into`` and ``_k_backward_grad`` read it), pads zeroed."""
    left, right = (size - 1) // 2, size // 2
    out = g.new_empty((*g.shape[:-1], g.shape[-1] + size - 1), dtype=torch.float32)
    out[..., :left].zero_()
    out[..., out.shape[-1] - right:].zero_()
    return out


def compiled_forward(a: torch.Tensor, params: tuple) -> torch.Tensor:
    """The LRN of ``a`` with the compiled forward kernel (``params``: groups, size, scale, beta, k), in ``a``'s
    layout; channels_last maps run as padded towers."""
    with no_autocast(a.device):
        if not _as_towers(a, params[0]):
            return kernel("forward")(a, *params)
        return from_towers(kernel("forward")(_padded_towers(a, params), *params, towers=True), a.shape)


def compiled_backward(a, g, params: tuple, grad_kernel: str = "backward_grad"):
    """The gradient with the compiled kernels (g laid out like a), or None if compiling failed (then use eager).
    ``backward_grad_inplace`` writes it into ``g`` when g is already laid out like ``a`` (the caller's buffer)."""
    if _state["failed"] is not None:
        return None
    towers = _as_towers(a, params[0])
    gc = g.contiguous(memory_format=torch.channels_last) if channels_last_map(a) else g.contiguous()
    try:
        with no_autocast(a.device):
            if not towers:
                t = kernel("backward_t")(a, gc, *params)
                return kernel(grad_kernel)(a, gc, t, *params)
            ap, gt = _padded_towers(a, params), to_towers(gc, params[0])
            t = _transposed_pad_buffer(gt, params[1])
            kernel("backward_t_into")(ap, gt, t, *params)
            return from_towers(kernel(grad_kernel)(ap, gt, t, *params, towers=True), a.shape)
    except Exception as e:  # compiling the backward failed: stay correct with the eager formula
        if get_lrn_backend() == "compiled":
            raise
        _compile_failed(e)
        return None


def _use_compiled(x: torch.Tensor, key: tuple) -> bool:
    backend = get_lrn_backend()
    if backend == "eager" or _state["failed"] is not None:
        return False
    if x.dtype not in (torch.float32, torch.bfloat16, torch.float16):
        return False
    if backend == "compiled":
        return True
    training = torch.is_grad_enabled() and x.requires_grad
    min_numel = COMPILE_MIN_NUMEL if training else COMPILE_MIN_NUMEL_INFERENCE
    if x.device.type != "cpu" or x.numel() < min_numel or x.dtype == torch.float16:
        return False
    return key in _compiled_keys or len(_compiled_keys) < COMPILE_MAX_SHAPES


def _compile_failed(e: Exception) -> None:
    _state["failed"] = f"{type(e).__name__}: {e}"
    warnings.warn(f"LocalResponseNorm: torch.compile failed ({_state['failed'][:300]}); "
                  "using the eager backend from now on", RuntimeWarning, stacklevel=3)


def dispatch(x: torch.Tensor, key: tuple, compiled: Callable[[], torch.Tensor],
             eager: Callable[[], torch.Tensor]) -> torch.Tensor:
    """``compiled()`` where the backend choice says so for ``x`` (remembering ``key``), else ``eager()``; if
    compiling fails under ``auto``, warn once and use ``eager`` from then on (``compiled`` re-raises)."""
    if _use_compiled(x, key):
        try:
            out = compiled()
            _compiled_keys.add(key)
            return out
        except Exception as e:  # no C++ compiler / triton, unsupported platform, ...: stay correct
            if get_lrn_backend() == "compiled":
                raise
            _compile_failed(e)
    return eager()


class LRNFunction(torch.autograd.Function):
    """b = a * s^-beta with s = k + scale * W(a^2) (W: the window, applied per tower), so

        da = g * s^-beta - 2 * scale * beta * a * W^T(g * a * s^-beta / s)

    Saves only ``a`` and the small window matrix; s is recomputed in backward (one GEMM), so the layer adds
    no activation memory beyond its output.
    """

    @staticmethod
    def forward(ctx, a, m, groups: int, size: int, scale: float, beta: float, k: float):
        ctx.save_for_backward(a, m)
        ctx.params = (groups, size, scale, beta, k)
        return eager_forward(a, m, groups, size, scale, beta, k)

    @staticmethod
    @once_differentiable
    def backward(ctx, g):
        a, m = ctx.saved_tensors
        return eager_backward(a, m, g, *ctx.params), None, None, None, None, None, None


class LRNCompiledFunction(torch.autograd.Function):
    """The same gradient, with inductor-fused kernels (see the module docstring)."""

    @staticmethod
    def forward(ctx, a, m, groups: int, size: int, scale: float, beta: float, k: float):
        ctx.save_for_backward(a, m)
        ctx.params = (groups, size, scale, beta, k)
        return compiled_forward(a, ctx.params)

    @staticmethod
    @once_differentiable
    def backward(ctx, g):
        a, m = ctx.saved_tensors
        grad = compiled_backward(a, g, ctx.params)
        if grad is None:
            grad = eager_backward(a, m, g, *ctx.params)
        return grad, None, None, None, None, None, None
