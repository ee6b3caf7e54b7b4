"""``lrn``: with and without local response normalization (section 3.3)."""
from __future__ import annotations

from .ablation import CIFAR_DEFAULTS, check_arch, run_ablation
from .records import Experiment, Variant


def variants(cfg) -> list[Variant]:
    arch = check_arch(cfg, ("owt",), "owt has no LRN")
    return [Variant("lrn", arch, {"lrn": True}), Variant("no-lrn", arch, {"lrn": False})]


EXPERIMENT = Experiment(
    name="lrn", title="local response normalization (section 3.3)",
    claim="LRN (k=2, n=5, alpha=1e-4, beta=0.75 after the ReLUs of conv1/conv2) reduced the ImageNet top-1/top-5 "
          "error rates by 1.4%/1.2%; on CIFAR-10 a four-layer CNN went from 13% test error without normalization "
          "to 11% with it.",
    defaults=CIFAR_DEFAULTS, runner=run_ablation, variants=variants,
    note="With `--arch cifar` the network is the four-layer CIFAR net, whose normalization (cuda-convnet `rnorm`) "
         "is over 3x3 neighbourhoods within a map.")
