"""``dropout``: dropout 0.5 on the outputs of fc6 and fc7 against none (section 4.2)."""
from __future__ import annotations

from .ablation import DEFAULTS, check_arch, run_ablation
from .records import Experiment, Variant


def variants(cfg) -> list[Variant]:
    arch = check_arch(cfg, ("cifar",), "the networks with fc6/fc7")
    return [Variant("dropout-0.5", arch, {"dropout": 0.5}), Variant("no-dropout", arch, {"dropout": 0.0})]


EXPERIMENT = Experiment(
    name="dropout", title="dropout (section 4.2)",
    claim="Without dropout the network exhibits substantial overfitting; dropout roughly doubles the number of "
          "iterations required to converge.",
    defaults=DEFAULTS, runner=run_ablation, variants=variants,
    note="Read the gap column: the paper's claim is about overfitting (train/val gap), and about slower convergence "
         "with dropout, which a short run shows as a higher training error.")
