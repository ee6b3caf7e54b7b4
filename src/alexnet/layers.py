"""Local Response Normalization (paper section 3.3) and small building blocks.

The paper's formula, for activity a at channel i of N channels:

    b[i] = a[i] / (k + alpha * sum_{j=max(0, i-n/2)}^{min(N-1, i+n/2)} a[j]^2) ** beta

with k=2, n=5, alpha=1e-4, beta=0.75.  Trap: ``torch.nn.LocalResponseNorm`` and Caffe compute
``k + (alpha / n) * sum``; the paper does not divide by n.  ``convention="caffe"`` gives the
divided form (needed for imported ``bvlc_alexnet`` weights, together with k=1).

Speed.  ``nn.LocalResponseNorm`` records an avg-pool graph and computes ``pow`` (slow on CPUs);
ours is a custom autograd function with the analytic gradient that saves only its input (the ReLU
output, which autograd keeps anyway) and recomputes the window sum in backward, so it adds no
activation memory.  Two backends compute it:

``eager``     the channel-window sum is one batched GEMM with the per-tower banded c x c matrix
              (c = C / towers), in NCHW and channels_last; ``s ** -0.75`` is ``rsqrt(s) * sqrt(rsqrt(s))``;
              the element-wise work runs in place.  Works for every device and dtype (float64 for gradcheck).
``compiled``  the same formula as three ``torch.compile``d (inductor) kernels -- forward, and backward in two
              passes -- with the window as shifted loads, so each is one pass over memory.  Measured ~3x
              faster than ``eager`` on an AVX2 CPU for conv1-sized maps; costs a compile (~10-20 s per shape,
              cached on disk by inductor).
``auto``      (default) ``compiled`` for large contiguous CPU tensors (>= COMPILE_MIN_NUMEL elements), where
              it was measured to pay, else ``eager``; if compiling fails once, ``eager`` from then on.

``lrn_max_pool2d(x, norm, pool)`` fuses the LRN with the max-pool after it (either backend) for training steps: the
LRN's output is then not kept for the pool's backward (only the pooling indices are).  The paper network uses it for
norm1/pool1 and norm2/pool2: measured at batch 128 (224 px, fp32, AVX2 CPU) it lowers the training peak from 1565 to
1351 MB at the same speed (1.00x); it falls back to the two modules wherever that could be observed (hooks, no grad).

Choose with ``set_lrn_backend(name)`` or the environment variable ``ALEXNET_LRN_BACKEND``.  While tracing,
scripting, exporting (ONNX) the plain-op ``lrn_functional`` is used; inside ``torch.compile`` of a whole model,
the plain-op shifted-window form ``lrn_shifted`` (which inductor fuses).
"""
from __future__ import annotations

import contextlib
import os
import warnings

import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd.function import once_differentiable

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


LRN_BACKENDS = ("auto", "eager", "compiled")
# "auto" compiles only tensors at least this large (conv1 maps of a batch of >= 15 224-px images): smaller ones
# do not repay a compile.
COMPILE_MIN_NUMEL = 1 << 22
# Distinct (shape, dtype, layout, parameters) keys compiled before "auto" stops compiling new ones.
COMPILE_MAX_SHAPES = 16

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


def _compute_dtype(a: torch.Tensor) -> torch.Tensor:
    """Half-precision inputs are normalised in float32 (sums of squares overflow/round badly in bf16)."""
    return a.float() if a.dtype in (torch.float16, torch.bfloat16) else a


def _neg_power(s: torch.Tensor, beta: float, out: torch.Tensor | None = None) -> torch.Tensor:
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


# Below this many elements (or in float64, whose batched GEMM is pathologically slow on CPUs: 25 ms for 9 x 9
# matrices) the window is summed with shifted slices instead of a GEMM (which also avoids thread start-up).
_GEMM_MIN_NUMEL = 1 << 15


def _window(t: torch.Tensor, m: torch.Tensor, groups: int, size: int, scale: float, transpose: bool = False):
    """``scale * W(t)`` (``W^T`` with transpose), per tower; m is one tower's c x c band (0/1)."""
    if t.dtype == torch.float64 or t.numel() < _GEMM_MIN_NUMEL:
        before, after = size // 2, (size - 1) // 2
        if transpose:
            before, after = after, before
        return _shifted_sum(t, groups, before, after).mul_(scale)
    return _window_gemm(t, (m.t() if transpose else m).to(t.dtype) * scale, groups)


def lrn_shifted(a: torch.Tensor, size: int, scale: float, beta: float, k: float, groups: int = 1) -> torch.Tensor:
    """The formula with plain tensor ops and the window as ``size`` shifted slices (autograd-recorded).

    Used inside ``torch.compile`` (inductor fuses it into one pass); equal to ``lrn_functional``."""
    x = _compute_dtype(a)
    s = _shifted_sum(x * x, groups, size // 2, (size - 1) // 2) * scale + k
    return (x * _neg_power(s, beta)).to(a.dtype)


def _shifted_sum(t: torch.Tensor, groups: int, before: int, after: int) -> torch.Tensor:
    """``out[:, i] = sum of t[:, i - before .. i + after]``, clipped at each group's first/last channel."""
    n, ch, h, w = t.shape
    c = ch // groups
    p = F.pad(t.reshape(n, groups, c, h, w), (0, 0, 0, 0, before, after))
    out = p[:, :, 0:c]
    for d in range(1, before + after + 1):
        out = out + p[:, :, d:d + c]
    return out.reshape(n, ch, h, w)


# --- compiled backend: three pure functions handed to torch.compile --------------------------------------------
def _k_forward(a, groups: int, size: int, scale: float, beta: float, k: float):
    return lrn_shifted(a, size, scale, beta, k, groups)


def _k_backward_t(a, g, groups: int, size: int, scale: float, beta: float, k: float):
    x = _compute_dtype(a)
    s = _shifted_sum(x * x, groups, size // 2, (size - 1) // 2) * scale + k
    return g.to(x.dtype) * x * _neg_power(s, beta) / s


def _k_backward_grad(a, g, t, groups: int, size: int, scale: float, beta: float, k: float):
    x = _compute_dtype(a)
    s = _shifted_sum(x * x, groups, size // 2, (size - 1) // 2) * scale + k
    # the window's transpose: channel j receives from i in [j - after, j + before]
    w = _shifted_sum(t, groups, (size - 1) // 2, size // 2)
    return (g.to(x.dtype) * _neg_power(s, beta) - (2.0 * scale * beta) * x * w).to(a.dtype)


def _k_backward_grad_inplace(a, g, t, groups: int, size: int, scale: float, beta: float, k: float):
    """``_k_backward_grad`` written into ``g`` (each element of g is read only where it is written): for a
    gradient buffer nobody else holds, this saves one full-size buffer at the backward's peak."""
    return g.copy_(_k_backward_grad(a, g, t, groups, size, scale, beta, k))


def _kernel(name: str):
    if name not in _kernels:
        import torch._dynamo

        cfg = torch._dynamo.config
        for limit in ("recompile_limit", "cache_size_limit"):
            if hasattr(cfg, limit) and getattr(cfg, limit) < COMPILE_MAX_SHAPES * 2:
                setattr(cfg, limit, COMPILE_MAX_SHAPES * 2)
        fn = {"forward": _k_forward, "backward_t": _k_backward_t, "backward_grad": _k_backward_grad,
              "backward_grad_inplace": _k_backward_grad_inplace}[name]
        # Static shapes: dynamic-shape kernels were measured ~5x slower on CPU.
        _kernels[name] = torch.compile(fn, dynamic=False)
    return _kernels[name]


def _use_compiled(x: torch.Tensor, key: tuple) -> bool:
    backend = get_lrn_backend()
    if backend == "eager" or _state["failed"] is not None:
        return False
    if x.dtype not in (torch.float32, torch.bfloat16, torch.float16):
        return False
    if backend == "compiled":
        return True
    if x.device.type != "cpu" or x.numel() < COMPILE_MIN_NUMEL or x.dtype == torch.float16:
        return False
    return key in _compiled_keys or len(_compiled_keys) < COMPILE_MAX_SHAPES


def _compile_failed(e: Exception) -> None:
    _state["failed"] = f"{type(e).__name__}: {e}"
    warnings.warn(f"LocalResponseNorm: torch.compile failed ({_state['failed'][:300]}); "
                  "using the eager backend from now on", RuntimeWarning, stacklevel=3)


def _no_autocast(device: torch.device):
    """The LRN computes in float32 (or the input's wider dtype) whatever autocast region it is called from."""
    return torch.autocast(device.type, enabled=False) if device.type in ("cpu", "cuda") else contextlib.nullcontext()


def _eager_forward(a, m, groups: int, size: int, scale: float, beta: float, k: float):
    x = _compute_dtype(a)
    with _no_autocast(x.device):
        sq = x * x
        s = _window(sq, m, groups, size, scale).add_(k)
        b = _neg_power(s, beta, out=sq).mul_(x)
    return b.to(a.dtype)


def _eager_backward(a, m, g, groups: int, size: int, scale: float, beta: float, k: float, inplace: bool = False):
    """The gradient; with ``inplace`` (g is a buffer nobody else holds, of a's dtype) it is written into g."""
    x = _compute_dtype(a)
    with _no_autocast(x.device):
        sq = x * x
        s = _window(sq, m, groups, size, scale).add_(k)
        t = x / s
        r = _neg_power(s, beta, out=sq)                            # s^-beta (s is scratch from here)
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


class _LRNFunction(torch.autograd.Function):
    """b = a * s^-beta with s = k + scale * W(a^2) (W: the window, applied per tower), so

        da = g * s^-beta - 2 * scale * beta * a * W^T(g * a * s^-beta / s)

    Saves only ``a`` and the small window matrix; s is recomputed in backward (one GEMM), so the layer adds
    no activation memory beyond its output.
    """

    @staticmethod
    def forward(ctx, a, m, groups: int, size: int, scale: float, beta: float, k: float):
        ctx.save_for_backward(a, m)
        ctx.params = (groups, size, scale, beta, k)
        return _eager_forward(a, m, groups, size, scale, beta, k)

    @staticmethod
    @once_differentiable
    def backward(ctx, g):
        a, m = ctx.saved_tensors
        return _eager_backward(a, m, g, *ctx.params), None, None, None, None, None, None


class _LRNCompiledFunction(torch.autograd.Function):
    """The same gradient, with inductor-fused kernels (see the module docstring)."""

    @staticmethod
    def forward(ctx, a, m, groups: int, size: int, scale: float, beta: float, k: float):
        ctx.save_for_backward(a, m)
        ctx.params = (groups, size, scale, beta, k)
        with _no_autocast(a.device):
            return _kernel("forward")(a, groups, size, scale, beta, k)

    @staticmethod
    @once_differentiable
    def backward(ctx, g):
        a, m = ctx.saved_tensors
        if _state["failed"] is None:
            cl = not a.is_contiguous() and a.is_contiguous(memory_format=torch.channels_last)
            gc = g.contiguous(memory_format=torch.channels_last) if cl else g.contiguous()
            try:
                with _no_autocast(a.device):
                    t = _kernel("backward_t")(a, gc, *ctx.params)
                    return _kernel("backward_grad")(a, gc, t, *ctx.params), None, None, None, None, None, None
            except Exception as e:  # compiling the backward failed: stay correct with the eager formula
                if get_lrn_backend() == "compiled":
                    raise
                _compile_failed(e)
        return _eager_backward(a, m, g, *ctx.params), None, None, None, None, None, None


def lrn_functional(a: torch.Tensor, window: torch.Tensor, scale: float, beta: float, k: float) -> torch.Tensor:
    """The same computation with plain tensor ops (autograd-recorded): used for ONNX/TorchScript export and
    tracing, where a custom autograd function cannot be exported.  ``window`` is the C x C matrix of
    ``lrn_window_matrix``."""
    x = _compute_dtype(a)
    w = window.to(device=x.device, dtype=x.dtype).view(window.shape[0], window.shape[1], 1, 1)
    s = F.conv2d(x * x, w) * scale + k
    return (x * s.pow(-beta)).to(a.dtype)


def _exporting() -> bool:
    """Tracing, scripting, exporting (ONNX, torch.export) or compiling: a custom autograd function cannot be used."""
    return _exporting_to_file() or torch.compiler.is_compiling()


def _exporting_to_file() -> bool:
    is_exporting = getattr(torch.compiler, "is_exporting", lambda: False)
    return (torch.jit.is_scripting() or torch.jit.is_tracing() or torch.onnx.is_in_onnx_export()
            or is_exporting())


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
        if groups < 1:
            raise ConfigError(f"LRN groups must be >= 1, got {groups}")
        self.size, self.alpha, self.beta, self.k = size, float(alpha), float(beta), float(k)
        self.convention, self.groups = convention, groups
        self._windows: dict[tuple, torch.Tensor] = {}

    @property
    def scale(self) -> float:
        return self.alpha / self.size if self.convention == "caffe" else self.alpha

    def _window(self, channels: int, device, per_group: bool = False) -> torch.Tensor:
        """The C x C window matrix, or (per_group) one tower's c x c band."""
        key = (channels, str(device), per_group)
        if key not in self._windows:
            if per_group:
                if channels % self.groups:
                    raise ConfigError(f"LRN: channels={channels} is not divisible by groups={self.groups}")
                m = lrn_window_matrix(channels // self.groups, self.size, 1, device=device)
            else:
                m = lrn_window_matrix(channels, self.size, self.groups, device=device)
            self._windows[key] = m
        return self._windows[key]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4:
            raise ValueError(f"LocalResponseNorm expects N x C x H x W input, got shape {tuple(x.shape)}")
        if _exporting_to_file():   # ONNX / TorchScript / torch.export: plain Conv, Pow, Mul
            return lrn_functional(x, self._window(x.shape[1], x.device), self.scale, self.beta, self.k)
        if torch.compiler.is_compiling():   # inside torch.compile: a form inductor fuses into one pass
            if x.shape[1] % self.groups:
                raise ConfigError(f"LRN: channels={x.shape[1]} is not divisible by groups={self.groups}")
            return lrn_shifted(x, self.size, self.scale, self.beta, self.k, self.groups)
        if x.shape[1] % self.groups:
            raise ConfigError(f"LRN: channels={x.shape[1]} is not divisible by groups={self.groups}")
        params = (self.groups, self.size, self.scale, self.beta, self.k)
        key = (tuple(x.shape), x.dtype, x.device.type, x.is_contiguous(), params)
        if _use_compiled(x, key):
            try:
                out = _LRNCompiledFunction.apply(x, self._window(x.shape[1], x.device, per_group=True), *params)
                _compiled_keys.add(key)
                return out
            except Exception as e:  # no C++ compiler / triton, unsupported platform, ...: stay correct
                if get_lrn_backend() == "compiled":
                    raise
                _compile_failed(e)
        return _LRNFunction.apply(x, self._window(x.shape[1], x.device, per_group=True), *params)

    def extra_repr(self) -> str:
        return (f"size={self.size}, alpha={self.alpha:g}, beta={self.beta:g}, k={self.k:g}, "
                f"convention={self.convention!r}, groups={self.groups}")


def _pool_args(pool: nn.MaxPool2d) -> tuple:
    def pair(v):
        return tuple(v) if isinstance(v, (tuple, list)) else (v, v)

    stride = pool.stride if pool.stride is not None else pool.kernel_size
    return pair(pool.kernel_size), pair(stride), pair(pool.padding), pair(pool.dilation), bool(pool.ceil_mode)


class _LRNMaxPoolFunction(torch.autograd.Function):
    """max_pool2d(lrn(a)) saving only ``a`` (which the ReLU before keeps anyway) and the pooling indices.

    Unfused, max-pooling keeps the LRN's full-size output alive for its backward although it only needs the
    indices: for the paper's network that is 244 MB of the batch-128 training peak.  Backward scatters the
    gradient through the indices (``max_pool2d_with_indices_backward`` reads only the shape and layout of its
    ``self`` argument, so ``a``, of the same shape and layout, stands in for the freed output) and then runs the LRN
    backward, which recomputes what it needs from ``a``.
    """

    @staticmethod
    def forward(ctx, a, m, compiled: bool, pool_args: tuple, groups: int, size: int, scale: float, beta: float,
                k: float):
        params = (groups, size, scale, beta, k)
        if compiled:
            with _no_autocast(a.device):
                b = _kernel("forward")(a, *params)
        else:
            b = _eager_forward(a, m, *params)
        out, idx = torch.ops.aten.max_pool2d_with_indices(b, *pool_args)
        del b
        ctx.save_for_backward(a, m, idx)
        ctx.params, ctx.pool_args, ctx.compiled = params, pool_args, compiled
        ctx.mark_non_differentiable(idx)
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, g):
        a, m, idx = ctx.saved_tensors
        fmt = torch.channels_last if (not a.is_contiguous() and a.is_contiguous(
            memory_format=torch.channels_last)) else torch.contiguous_format
        gb = torch.ops.aten.max_pool2d_with_indices_backward(g.contiguous(memory_format=fmt), a, *ctx.pool_args,
                                                             idx)
        if ctx.compiled and _state["failed"] is None:
            cl = not a.is_contiguous() and a.is_contiguous(memory_format=torch.channels_last)
            gb = gb.contiguous(memory_format=torch.channels_last) if cl else gb.contiguous()
            try:
                with _no_autocast(a.device):
                    t = _kernel("backward_t")(a, gb, *ctx.params)
                    return (_kernel("backward_grad_inplace")(a, gb, t, *ctx.params),) + (None,) * 8
            except Exception as e:
                if get_lrn_backend() == "compiled":
                    raise
                _compile_failed(e)
        return (_eager_backward(a, m, gb, *ctx.params, inplace=True),) + (None,) * 8


def _has_hooks(module: nn.Module) -> bool:
    return bool(module._forward_hooks or module._forward_pre_hooks or getattr(module, "_backward_hooks", None)
                or getattr(module, "_backward_pre_hooks", None))


def lrn_max_pool2d(x: torch.Tensor, norm: nn.Module, pool: nn.Module) -> torch.Tensor:
    """``pool(norm(x))``; when that is our LocalResponseNorm followed by an ``nn.MaxPool2d`` in a step that records
    gradients, one fused autograd function that does not keep the LRN's output for backward (see
    ``_LRNMaxPoolFunction``): the same values and gradients with less activation memory.

    Falls back to ``pool(norm(x))`` (the two modules called as usual) whenever fusing could change anything
    observable: forward hooks on either module (``alexnet features`` reads ``norm1``'s output through one), no
    gradient being recorded, tracing/exporting/compiling, or a norm/pool of another kind (``--no-lrn`` gives an
    Identity).
    """
    if (not isinstance(norm, LocalResponseNorm) or type(pool) is not nn.MaxPool2d or pool.return_indices
            or not (torch.is_grad_enabled() and x.requires_grad) or _exporting() or x.dim() != 4
            or _has_hooks(norm) or _has_hooks(pool)
            or torch.nn.modules.module._global_forward_hooks or torch.nn.modules.module._global_forward_pre_hooks):
        return pool(norm(x))
    if x.shape[1] % norm.groups:
        raise ConfigError(f"LRN: channels={x.shape[1]} is not divisible by groups={norm.groups}")
    params = (norm.groups, norm.size, norm.scale, norm.beta, norm.k)
    m = norm._window(x.shape[1], x.device, per_group=True)
    key = (tuple(x.shape), x.dtype, x.device.type, x.is_contiguous(), params)
    if _use_compiled(x, key):
        try:
            out = _LRNMaxPoolFunction.apply(x, m, True, _pool_args(pool), *params)
            _compiled_keys.add(key)
            return out
        except Exception as e:
            if get_lrn_backend() == "compiled":
                raise
            _compile_failed(e)
    return _LRNMaxPoolFunction.apply(x, m, False, _pool_args(pool), *params)


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
