"""``towers``: the two-tower network against one tower with half the kernels (section 3.2 and its footnote)."""
from __future__ import annotations

from .ablation import DEFAULTS, run_ablation
from .records import Experiment, Variant

# Footnote 2: the one-GPU net halves every convolutional layer but the last (most parameters sit in fc6, which
# takes conv5's output), and keeps the fully connected layers.
HALF_CHANNELS = (48, 128, 192, 192, 256)


def variants(cfg) -> list[Variant]:
    return [Variant("two-towers", "paper", {"towers": 2}),
            Variant("one-tower-half", "paper-1tower", {"channels": HALF_CHANNELS})]


EXPERIMENT = Experiment(
    name="towers", title="two towers vs one tower of half the kernels (section 3.2)",
    claim="The two-GPU net has top-1/top-5 error rates 1.7%/1.2% lower than a net with half as many kernels in "
          "each convolutional layer trained on one GPU (conv5 and the fully connected layers not halved, "
          "footnote 2), and takes slightly less time to train.",
    defaults=DEFAULTS, runner=run_ablation, variants=variants,
    note="Time: the paper's two towers ran in parallel on two GPUs; here both towers run on one device, so the "
         "two-tower net does about twice the convolution work of the half-size net in the same process and "
         "cannot be faster: the table's time compares the work, not the paper's two-GPU wall clock. "
         "The architecture is fixed by the experiment (`--arch` is ignored).")
