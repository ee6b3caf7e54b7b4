"""The training run's configuration: one frozen dataclass, saved as ``run_dir/config.json``. Importable without torch.

Every field carries its command-line help in its metadata; ``alexnet.cli.fields`` builds the ``alexnet train``
flags from these fields, their types and defaults, so a default is written exactly once (here), and the choice lists
come from ``alexnet.choices``.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from . import choices
from .errors import ConfigError

REQUIRED = object()   # a field with no default: a required flag


def option(default: Any = None, help: str = "", *, choices: tuple | None = None, flag: str | None = None,
           group: str = "training", default_text: str | None = None, negative: str | None = None,
           metavar: str | None = None, cli: bool = True, factory: Any = None, recipe: bool = False):
    """A config field with its command-line description.

    flag: the option name when it differs from ``--field-name``; negative: the name of a bool field's off switch
    (default ``--no-NAME``); default_text: how ``--help`` states a default of None (what None means); recipe: the
    field defaults to None, meaning "the recipe's value" (``alexnet.recipes``), so a value the user gives wins.
    """
    if recipe:
        default, default_text = None, default_text or "the recipe's"
    meta = {"help": help, "choices": choices, "flag": flag, "group": group, "default_text": default_text,
            "negative": negative, "metavar": metavar, "cli": cli, "recipe": recipe}
    if factory is not None:
        return field(default_factory=factory, metadata=meta)
    if default is REQUIRED:
        return field(metadata=meta)
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class TrainConfig:
    """Every knob of a training run.

    The fields marked ``recipe=True`` default to None: "the recipe's value".  ``alexnet.recipes.resolve_recipe``
    fills them from the recipe named by ``recipe`` ("auto": chosen from the number of training images), so any field
    given explicitly, as a flag or a keyword argument, wins over the recipe.  ``Trainer`` resolves the config before
    it builds anything; the resolved config (recipe named, every field set) is what ``config.json`` records.
    """

    data: str = option(REQUIRED, "dataset folder (image folders/ILSVRC, CIFAR-10, MNIST, packed)", group="run")
    out: str = option(REQUIRED, "run folder", group="run")
    arch: str = option("paper", "architecture (with --weights: the weights' own)", choices=choices.ARCHS, group="run")
    weights: str | None = option(None, "start from pretrained weights: a registered name "
                                 f"({', '.join(choices.WEIGHTS)}), a weight file or an http(s) URL; every layer but "
                                 "the classifier's last is kept, the last gets the data's classes; the weights' "
                                 "architecture and preprocessing are used", group="run", metavar="NAME|FILE|URL",
                                 default_text="train from scratch")
    model: dict = option(help="model switches (activation, lrn, towers, ...)", factory=dict, cli=False)
    dataset_kind: str = option("auto", "dataset format (auto: detected from the folder)", flag="--dataset",
                               choices=choices.DATASET_KINDS, group="run")
    recipe: str = option("auto", "training recipe: paper (section 5 as written, for ImageNet-scale data), small "
                         "(from scratch on small datasets), finetune (pretrained layers at a tenth of the head's "
                         "lr); auto: small below 100,000 training images, else paper. Every flag below marked "
                         "'default: the recipe's' overrides it", choices=choices.RECIPE_CHOICES)
    epochs: int = option(90, "training epochs (the paper: about 90)")
    batch_size: int | None = option(help="global batch size (section 5: 128)", recipe=True)
    lr: float | None = option(help="learning rate (section 5: 0.01 for all layers; with finetune: the new head's)",
                              recipe=True)
    momentum: float | None = option(help="momentum (section 5: 0.9)", recipe=True)
    weight_decay: float | None = option(help="weight decay (section 5: 0.0005)", recipe=True)
    bias_decay: bool | None = option(help="weight decay on the biases too (section 5's rule applied to every "
                                     "parameter; cuda-convnet (wc=0) and Caffe's bvlc_alexnet (decay_mult 0) give "
                                     "biases none: the paper recipe's choice)", recipe=True)
    optimizer: str | None = option(help="paper: section 5's update (lr inside the velocity); sgd: torch.optim.SGD; "
                                   "adamw: torch.optim.AdamW (--momentum is its beta1)",
                                   choices=choices.OPTIMIZERS, recipe=True)
    schedule: str | None = option(help="learning-rate schedule (paper: plateau, divide by 10 when the val error "
                                  "stops improving)", choices=choices.SCHEDULES, recipe=True)
    warmup_epochs: float | None = option(help="linear learning-rate warm-up over this many epochs, step by step "
                                         "(the paper: 0)", recipe=True)
    pretrained_lr_mult: float | None = option(help="learning rate of every layer but the last (fc8), relative to "
                                              "--lr (the paper: 1; finetune: 0.1)", recipe=True)
    freeze: str | None = option(help="keep the layers up to LAYER (conv1 .. fc7) fixed: not trained, not in the "
                                "optimizer", choices=choices.FREEZE_LAYERS, metavar="LAYER",
                                default_text="every layer trains")
    patience: int = option(3, "plateau: epochs without improvement before lr/10")
    max_reductions: int = option(3, "plateau: at most this many lr/10 (the paper reduced three times)")
    step_size: int = option(30, "step schedule: epochs between lr/10 (torchvision: 30)")
    resize: int | None = option(None, "shorter side S", group="data",
                                default_text="256 for image folders, native size for CIFAR/MNIST "
                                "(256 when the network takes no images that small: paper, owt)")
    crop: int | None = option(None, "crop = network input", group="data",
                              default_text="S * 224/256, i.e. 224 for S=256; S for S < 64")
    flip: bool = option(True, "horizontal reflections (section 4.1)", group="data")
    random_crop: bool = option(True, "random crops in training (else centre crops)", group="data")
    lighting: bool = option(True, "PCA colour augmentation (section 4.1)", group="data")
    lighting_std: float = option(0.1, "PCA lighting: std of the alpha_i (section 4.1)", group="data")
    normalize: str | None = option(help="paper: subtract the training mean (0-255 units); standard: also divide "
                                   "by the std; auto: paper for --init paper/caffe, standard for kaiming/default",
                                   choices=choices.NORMALIZATIONS, group="data", recipe=True)
    mean: str | None = option(help="what is subtracted: channel: one mean per channel (a common simplification); "
                              "image: the paper's mean image of the training set at S x S, cropped and flipped "
                              "with each crop (Caffe's mean_file; the paper recipe's)", choices=choices.MEANS,
                              group="data", recipe=True)
    val_every: int = option(1, "validate every N epochs (0: never)", group="validation")
    val_crops: int = option(1, "validation crops: 1 centre or the paper's 10", choices=choices.EVAL_CROPS,
                            group="validation")
    seed: int = option(0, "seed of the data order, augmentation, dropout and init", group="run")
    deterministic: bool = option(False, "bitwise-repeatable CPU runs (deterministic algorithms during the run)",
                                 group="run")
    device: str = option("auto", f"device: {choices.DEVICES_HELP}", group="runtime")
    precision: str = option("auto", "auto: bf16 autocast on CUDA and on CPUs with native bf16 (AMX/AVX512-BF16), "
                            "else fp32", choices=choices.PRECISIONS, group="runtime")
    channels_last: bool | None = option(None, "channels_last memory layout", group="runtime",
                                        default_text="with bf16/fp16, not with fp32")
    compile: bool = option(False, "torch.compile the model", group="runtime")
    workers: int | None = option(None, "data-loading worker processes", group="runtime",
                                 default_text="per machine")
    steps_per_epoch: int | None = option(None, "cap on training batches per epoch (quick runs)",
                                         default_text="the whole split")
    val_batches: int | None = option(None, "cap on validation batches", group="validation",
                                     default_text="the whole split")
    save_every: int = option(0, "also checkpoint every N steps, for mid-epoch resume (0: at epoch ends only)",
                             group="run")
    strict_data: bool = option(False, "a bad image is an error, not skipped", flag="--strict", group="data")
    progress: bool = option(True, "progress bars", group="run")
    tower_devices: str | None = option(None, "the paper's two-GPU model parallelism (arch paper): tower 1 on DEV0, "
                                       "tower 2 on DEV1, e.g. cuda:0,cuda:1; they exchange activations only into "
                                       "conv3 and fc6/fc7/fc8", metavar="DEV0,DEV1", group="runtime",
                                       default_text="one device")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ConfigError(f"train config: unknown field(s) {sorted(unknown)}")
        return cls(**d)

    def explicit(self) -> dict:
        """The recipe fields given a value (by a flag or a keyword argument): these win over the recipe."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                if f.metadata.get("recipe") and getattr(self, f.name) is not None}

    def validate(self) -> None:
        """Raise ConfigError naming the first bad field (before anything is written).  A recipe field left at None
        is checked once the recipe filled it in."""
        def unset_or(name, ok):
            return getattr(self, name) is None or ok(getattr(self, name))

        checks = [(self.epochs >= 1, "epochs must be >= 1"),
                  (self.recipe in choices.RECIPE_CHOICES, f"recipe must be one of {choices.RECIPE_CHOICES}"),
                  (unset_or("batch_size", lambda v: v >= 1), "batch_size must be >= 1"),
                  (unset_or("lr", lambda v: v > 0), "lr must be > 0"),
                  (unset_or("momentum", lambda v: 0 <= v < 1), "momentum must be in [0, 1)"),
                  (unset_or("weight_decay", lambda v: v >= 0), "weight_decay must be >= 0"),
                  (unset_or("warmup_epochs", lambda v: v >= 0), "warmup_epochs must be >= 0"),
                  (unset_or("pretrained_lr_mult", lambda v: v >= 0), "pretrained_lr_mult must be >= 0"),
                  (self.freeze is None or self.freeze in choices.FREEZE_LAYERS,
                   f"freeze must be one of {choices.FREEZE_LAYERS}"),
                  (unset_or("normalize", lambda v: v in choices.NORMALIZATIONS),
                   f"normalize must be one of {choices.NORMALIZATIONS}"),
                  (unset_or("mean", lambda v: v in choices.MEANS), f"mean must be one of {choices.MEANS}; "
                   f"got {self.mean!r}"),
                  (self.val_crops in choices.EVAL_CROPS, "val_crops must be 1 or 10"),
                  (self.val_every >= 0, "val_every >= 0"),
                  (self.lighting_std >= 0, "lighting_std must be >= 0"), (self.save_every >= 0, "save_every >= 0"),
                  (self.steps_per_epoch is None or self.steps_per_epoch >= 1, "steps_per_epoch must be >= 1"),
                  (self.val_batches is None or self.val_batches >= 1, "val_batches must be >= 1"),
                  (self.workers is None or self.workers >= 0, f"workers must be >= 0; got {self.workers}"),
                  (self.patience >= 0, "patience must be >= 0"), (self.max_reductions >= 0, "max_reductions >= 0"),
                  (self.step_size >= 1, "step_size must be >= 1")]
        for ok, msg in checks:
            if not ok:
                raise ConfigError(f"train config: {msg}")


__all__ = ["TrainConfig", "option"]
