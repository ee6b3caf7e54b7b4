"""``overlap-pool``: overlapping 3x3 stride-2 max-pooling against non-overlapping 2x2 stride 2 (section 3.4)."""
from __future__ import annotations

from .ablation import CIFAR_DEFAULTS, check_arch, run_ablation
from .records import Experiment, Variant


def variants(cfg) -> list[Variant]:
    arch = check_arch(cfg)
    return [Variant("overlap-3x3s2", arch, {"overlap_pool": True}),
            Variant("pool-2x2s2", arch, {"overlap_pool": False})]


EXPERIMENT = Experiment(
    name="overlap-pool", title="overlapping pooling (section 3.4)",
    claim="Pooling with z=3, s=2 instead of z=s=2 reduced the top-1/top-5 error rates by 0.4%/0.3% (the two "
          "schemes give outputs of equal size), and models with overlapping pooling were slightly more difficult "
          "to overfit.",
    defaults=CIFAR_DEFAULTS, runner=run_ablation, variants=variants,
    note="Both schemes give outputs of the same size, as in the paper, so the networks have the same parameters: "
         "the four-layer CIFAR network (default) max-pools only after conv1 (32 -> 16; its other pools average, as "
         "in cuda-convnet's net, and switch along), the scaled paper network (`--arch paper`, 64-px crops) maps "
         "15 -> 7 -> 3 -> 1.")
