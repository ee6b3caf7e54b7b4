"""Local Response Normalization (paper section 3.3) and small building blocks.

The paper's formula, for activity a at channel i of N channels:

    b[i] = a[i] / (k + alpha * sum_{j=max(0, i-n/2)}^{min(N-1, i+n/2)} a[j]^2) ** beta

with k=2, n=5, alpha=1e-4, beta=0.75.  Trap: ``torch.nn.LocalResponseNorm`` and Caffe compute
``k + (alpha / n) * sum``; the paper does not divide by n.  ``convention="caffe"`` gives the
divided form (needed for imported ``bvlc_alexnet`` weights, together with k=1).

Where each piece lives:

``formula``    the constants, the reference loop ``lrn_reference``, ``lrn_window_matrix``, and the plain-op forms
               ``lrn_functional`` (export) and ``lrn_shifted`` (inside ``torch.compile``).
``kernels``    the fast backends (``eager``: a banded GEMM; ``compiled``: inductor kernels; ``auto``), their custom
               autograd functions with the analytic gradient, and ``set_lrn_backend`` / ``get_lrn_backend``.
``lrn``        the ``LocalResponseNorm`` module, which picks the right form for eager, export and compile.
``lrn_pool``   ``lrn_max_pool2d``: LRN + max-pool fused for training steps (the LRN's output is not kept).
``blocks``     activations, pooling, and cuda-convnet's within-map ``SpatialResponseNorm`` (CIFAR-10 net).
"""
from ..choices import LRN_BACKENDS
from .blocks import SpatialResponseNorm, make_activation, make_avg_pool, make_max_pool
from .formula import (
                      LRN_ALPHA,
                      LRN_BETA,
                      LRN_CONVENTION_TABLE,
                      LRN_K,
                      LRN_SIZE,
                      LRNConvention,
                      lrn_functional,
                      lrn_reference,
                      lrn_shifted,
                      lrn_window_matrix,
)
from .kernels import (
                      COMPILE_MAX_SHAPES,
                      COMPILE_MIN_NUMEL,
                      COMPILE_MIN_NUMEL_INFERENCE,
                      compile_failure,
                      compiled_shapes,
                      get_lrn_backend,
                      set_lrn_backend,
)
from .lrn import LocalResponseNorm
from .lrn_pool import lrn_max_pool2d

__all__ = ["LRN_SIZE", "LRN_ALPHA", "LRN_BETA", "LRN_K", "LRN_CONVENTION_TABLE", "LRNConvention", "LRN_BACKENDS",
           "COMPILE_MIN_NUMEL", "COMPILE_MIN_NUMEL_INFERENCE", "COMPILE_MAX_SHAPES",
           "LocalResponseNorm", "SpatialResponseNorm", "lrn_max_pool2d", "lrn_reference", "lrn_functional",
           "lrn_shifted", "lrn_window_matrix", "set_lrn_backend", "get_lrn_backend", "compiled_shapes",
           "compile_failure", "make_activation", "make_max_pool", "make_avg_pool"]
