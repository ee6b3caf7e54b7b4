"""``augment``: random crops + flips and PCA lighting, each switched off (section 4.1)."""
from __future__ import annotations

from .ablation import CIFAR_DEFAULTS, check_arch, run_ablation
from .records import Experiment, Variant


def variants(cfg) -> list[Variant]:
    arch = check_arch(cfg)
    on = dict(random_crop=True, flip=True, lighting=True)
    return [Variant("full", arch, train=on),
            Variant("no-lighting", arch, train={**on, "lighting": False}),
            Variant("no-crops-flips", arch, train={**on, "random_crop": False, "flip": False}),
            Variant("none", arch, train=dict(random_crop=False, flip=False, lighting=False))]


EXPERIMENT = Experiment(
    name="augment", title="data augmentation (section 4.1)",
    claim="Without the random crops and reflections the network suffers from substantial overfitting; PCA colour "
          "lighting reduces the top-1 error rate by over 1%.",
    defaults=CIFAR_DEFAULTS, runner=run_ablation, variants=variants,
    note="Without random crops the training crop is the centre crop, as at test time. On the synthetic data the "
         "class is the shape's outline and every colour is random, so colour shifts (PCA lighting) teach the "
         "network nothing it does not already see across images.")
