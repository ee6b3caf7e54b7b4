"""Training recipes: named sets of ``TrainConfig`` values, one extension point.  Importable without torch.

A recipe fills the fields of ``TrainConfig`` that are marked ``recipe=True`` (they default to None, "the recipe's
value") and the network switches of ``RECIPE_MODEL_SWITCHES`` (``init``, ``dropout``) that ``model`` does not
name.  Whatever the user gave, as a flag or as a keyword argument, is not None and is kept: every flag overrides its
recipe's value.

- ``paper``: section 5 exactly as written (ImageNet scale, ~10,000 steps an epoch): PaperSGD, batch 128, momentum
  0.9, weight decay 0.0005, lr 0.01 divided by 10 when the validation error stops improving, no warm-up, the
  network's own init (``paper``: N(0, 0.01), biases 1 in conv2, conv4, conv5, fc6, fc7), 0-255 input minus the
  training set's mean image (section 2), weight decay on the weights only (the rule is written for ``w``; the
  authors' code decays no biases).  On a few thousand images this sits at ln(classes) (chance) for many epochs
  (the issue that made the recipes: 89.2% top-1 error on 10 classes after 4 epochs; reproduced here: 90.0%,
  and 1.1% with ``small``).
- ``small``: the same network and optimizer from scratch on small data: He init (zero biases), no dropout (a
  deviation from section 4.2, measured below), inputs divided by the pixel std, batch 32, lr 0.02 warmed up linearly
  over the first 0.3 epoch, cosine decay (see ``SMALL_EVIDENCE``).
- ``finetune``: a pretrained network with a new head: the head (fc8) at lr 0.01, every other layer at a tenth of
  it (Caffe's fine-tuning example: base_lr 0.001 with lr_mult 10 on the new fc8), cosine decay, batch 64.  The
  pretrained layers keep the init they came with; ``--freeze LAYER`` keeps the first layers fixed.

To add a recipe: its name in ``alexnet.choices.RECIPES``, a ``register_recipe(...)`` entry here, and nothing else:
``tests/test_recipes.py`` checks every registered recipe.
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from . import choices
from .config import TrainConfig
from .errors import ConfigError

# "auto" takes the paper's recipe from this many training images on (ILSVRC-2012: 1.28 million); below it the
# paper's recipe has too few steps an epoch to leave the ln(classes) plateau in a reasonable number of epochs.
SMALL_DATA_LIMIT = 100_000

# The network switches (``alexnet.model.make_config``) a recipe may set; the rest are the architecture's.
RECIPE_MODEL_SWITCHES = ("init", "dropout")


@dataclass(frozen=True)
class Recipe:
    """A named set of TrainConfig values and network switches (``model``: init, dropout; absent: the
    architecture's own)."""

    name: str
    summary: str                                       # one line: what it is for
    values: Mapping = field(default_factory=dict)      # TrainConfig recipe field -> value
    model: Mapping = field(default_factory=dict)       # RECIPE_MODEL_SWITCHES -> value

    def describe(self) -> str:
        """The values as a short list, e.g. "kaiming init, standard input scaling, batch 32, lr 0.02, ..."."""
        v, m = self.values, self.model
        bits = [f"{m['init']} init" if "init" in m else "the network's own init"]
        if "dropout" in m:
            bits.append(f"dropout {m['dropout']:g}")
        bits += [f"{v['normalize']} input scaling", f"batch {v['batch_size']}", f"lr {v['lr']:g}"]
        if v["pretrained_lr_mult"] != 1:
            bits.append(f"pretrained layers x{v['pretrained_lr_mult']:g}")
        if v["warmup_epochs"]:
            bits.append(f"{v['warmup_epochs']:g}-epoch warm-up")
        bits += [f"{v['schedule']} schedule", f"momentum {v['momentum']:g}", f"weight decay {v['weight_decay']:g}"
                 + ("" if v["bias_decay"] else " (not on biases)"), f"{v['optimizer']} optimizer",
                 f"{v['mean']} mean"]
        return ", ".join(bits)


RECIPE_REGISTRY: dict[str, Recipe] = {}


def recipe_fields() -> tuple[str, ...]:
    """The TrainConfig fields a recipe sets (those marked ``recipe=True``)."""
    return tuple(f.name for f in dataclasses.fields(TrainConfig) if f.metadata.get("recipe"))


def register_recipe(name: str, summary: str, *, model: Mapping | None = None, **values) -> Recipe:
    """Register a recipe: a value for every recipe field of TrainConfig, and ``model``: network switches of
    ``RECIPE_MODEL_SWITCHES`` (checked now, not at training time)."""
    if name not in choices.RECIPES:
        raise ValueError(f"recipe {name!r} is not named in alexnet.choices.RECIPES")
    missing, unknown = set(recipe_fields()) - set(values), set(values) - set(recipe_fields())
    if missing or unknown:
        raise ValueError(f"recipe {name!r}: missing {sorted(missing)}, unknown {sorted(unknown)}")
    model = dict(model or {})
    if set(model) - set(RECIPE_MODEL_SWITCHES):
        raise ValueError(f"recipe {name!r}: model switches {sorted(set(model) - set(RECIPE_MODEL_SWITCHES))} are "
                         f"not among {RECIPE_MODEL_SWITCHES}")
    if "init" in model and model["init"] not in choices.INITS:
        raise ValueError(f"recipe {name!r}: init {model['init']!r} is not one of {choices.INITS}")
    if "dropout" in model and not 0.0 <= model["dropout"] < 1.0:
        raise ValueError(f"recipe {name!r}: dropout {model['dropout']!r} is not in [0, 1)")
    RECIPE_REGISTRY[name] = Recipe(name, summary, dict(values), model)
    return RECIPE_REGISTRY[name]


register_recipe(
    "paper", "the paper's section-5 recipe, for ImageNet-scale data",
    batch_size=128, lr=0.01, momentum=0.9, weight_decay=0.0005, optimizer="paper", schedule="plateau",
    warmup_epochs=0.0, pretrained_lr_mult=1.0,
    normalize="auto",          # auto: the 0-255 mean subtraction the paper's init was made for (He init: / std)
    mean="image",              # section 2: "the mean activity over the training set" at each pixel: a mean image
    bias_decay=False)          # the rule is written for weights w; cuda-convnet (wc=0) and Caffe decay no biases

# SMALL_EVIDENCE (2-core AMD EPYC, 4 epochs, everything else at its default, the default 256 -> 224 px; README "Train
# on your own data"): 10 shape classes, 4,000 training / 1,000 validation images: the paper's recipe ends at 90.0%
# validation top-1 error (chance) on every set; `small` at 6.8% (synthetic set), 0.8% (MNIST idx), 1.1% (the
# issue's own case, 28-px grayscale PNG folders), 21.4% (CIFAR pickles of the synthetic set's shapes) and 49.6%
# (CIFAR pickles of flat shapes in random colours on random colours: the network first collapses to a uniform
# output there; an lr scan 0.005-0.05, batch 64 or 128, a 1-epoch warm-up, positive biases and AdamW did not
# shorten that; 1.1% after 20 epochs).  With the paper's dropout 0.5 (`--dropout 0.5`) the same runs end at 19.9%,
# 2.4%, 8.5%, 41.2% and 86.2% (4.5% after 20 epochs), hence no dropout.  Batch 32 rather than 128 (steps are what
# small data lacks), a warm-up of only 0.3 epoch; cosine decay needs no validation signal to lower the rate.
register_recipe(
    "small", "from scratch on a small dataset (He init, no dropout, standardised input, warm-up, cosine)",
    model={"init": "kaiming", "dropout": 0.0},
    batch_size=32, lr=0.02, momentum=0.9, weight_decay=0.0005, optimizer="paper", schedule="cosine",
    warmup_epochs=0.3, pretrained_lr_mult=1.0, normalize="standard", mean="channel", bias_decay=True)

register_recipe(
    "finetune", "a pretrained network with a new head (pretrained layers at a tenth of the head's lr)",
    batch_size=64, lr=0.01, momentum=0.9, weight_decay=0.0005, optimizer="paper", schedule="cosine",
    warmup_epochs=0.0, pretrained_lr_mult=0.1, normalize="auto", mean="channel", bias_decay=True)

if tuple(RECIPE_REGISTRY) != choices.RECIPES:   # pragma: no cover - a registration was forgotten
    raise ImportError(f"registered recipes {tuple(RECIPE_REGISTRY)} != choices.RECIPES {choices.RECIPES}")


def get_recipe(name: str) -> Recipe:
    if name not in RECIPE_REGISTRY:
        raise ConfigError(f"--recipe must be one of {', '.join(choices.RECIPE_CHOICES)}; got {name!r}")
    return RECIPE_REGISTRY[name]


def choose_recipe(cfg: TrainConfig, train_images: int | None) -> tuple[str, str]:
    """(recipe name, why): the one named, or for "auto": finetune with --weights, else small below SMALL_DATA_LIMIT
    training images, else paper."""
    if cfg.recipe != "auto":
        get_recipe(cfg.recipe)
        return cfg.recipe, f"--recipe {cfg.recipe}"
    if cfg.weights:
        return "finetune", ("auto: --weights given; --recipe small or --recipe paper to train every layer at one "
                            "learning rate")
    if train_images is None:
        raise ConfigError("recipe auto: needs the number of training images; name a recipe (--recipe paper|small)")
    if train_images < SMALL_DATA_LIMIT:
        return "small", (f"auto: {train_images:,} training images < {SMALL_DATA_LIMIT:,}; --recipe paper for the "
                         "paper's section-5 recipe")
    return "paper", (f"auto: {train_images:,} training images >= {SMALL_DATA_LIMIT:,}; --recipe small for the "
                     "small-data recipe")


def apply_recipe(cfg: TrainConfig, name: str) -> TrainConfig:
    """``cfg`` with recipe ``name``'s values in every recipe field it left at None (and its network switches where
    ``model`` names none): what the user set explicitly stays."""
    recipe = get_recipe(name)
    fill = {k: v for k, v in recipe.values.items() if getattr(cfg, k) is None}
    model = dict(cfg.model)
    model.update({k: v for k, v in recipe.model.items() if model.get(k) is None})
    return dataclasses.replace(cfg, recipe=name, model=model, **fill)


def resolve_recipe(cfg: TrainConfig, train_images: int | None = None) -> tuple[TrainConfig, str]:
    """(the config with its recipe applied, the line saying which recipe and why).

    ``train_images`` is needed only for ``recipe="auto"``.  Resolving a resolved config changes nothing."""
    name, why = choose_recipe(cfg, train_images)
    own = {k: cfg.model[k] for k in RECIPE_MODEL_SWITCHES if cfg.model.get(k) is not None}
    own.update(cfg.explicit())
    resolved = apply_recipe(cfg, name)
    resolved.validate()
    line = f"recipe: {name} ({why})"
    if own:
        line += "; set explicitly, over the recipe: " + ", ".join(f"{k} {v}" for k, v in own.items())
    return resolved, line


# What a run did for a recipe field newer than its checkpoint: the code's behaviour before the field existed.
LEGACY_VALUES = {"mean": "channel", "bias_decay": True, "warmup_epochs": 0.0, "pretrained_lr_mult": 1.0}


def inherit_run_settings(cfg: TrainConfig, saved: Mapping, network: Mapping | None = None) -> TrainConfig:
    """For a resumed run: every recipe field left unset takes the value the run was started with (``saved``, its
    config.json "train" record; a field newer than the checkpoint: ``LEGACY_VALUES``), every recipe network switch
    left unset the checkpoint's (``network``: its model config; e.g. the dropout of a run from before ``small`` set
    one), and ``recipe="auto"`` the run's recipe, so a resumed run continues with its own settings whatever today's
    recipes say."""
    fill = {k: saved.get(k, LEGACY_VALUES.get(k)) for k in recipe_fields() if getattr(cfg, k) is None}
    fill = {k: v for k, v in fill.items() if v is not None}
    if cfg.recipe == "auto" and saved.get("recipe") in choices.RECIPES:
        fill["recipe"] = saved["recipe"]
    ran = {**(saved.get("model") or {}), **(network or {})}
    model = {**{k: ran[k] for k in RECIPE_MODEL_SWITCHES if ran.get(k) is not None}, **cfg.model}
    return dataclasses.replace(cfg, model=model, **fill)


def recipes_help() -> str:
    """The recipes and their values, for ``alexnet train --help``."""
    lines = [f"  {r.name}: {r.summary}\n      {r.describe()}" for r in RECIPE_REGISTRY.values()]
    return f"recipes (--recipe; auto: small below {SMALL_DATA_LIMIT:,} training images, else paper):\n" + \
        "\n".join(lines)


def flat_loss_hint(train_loss: float, num_classes: int, init: str, recipe: str = "small") -> str | None:
    """Caffe's bvlc_alexnet readme and many users report the loss stuck at ln(classes) with the paper's init."""
    chance = math.log(num_classes)
    if num_classes > 1 and abs(train_loss - chance) < 0.02 * chance:
        others = ", ".join(([] if recipe == "small" else ["--recipe small"]) +
                           [f"--init {i}" for i in ("caffe", "kaiming") if i != init])
        why = ("the known AlexNet plateau (Caffe used biases of 0.1 and std 0.005 in fc6/fc7 for this reason)"
               if init == "paper" else "a plateau")
        return (f"training loss {train_loss:.3f} is still at ln({num_classes}) = {chance:.3f} (chance). "
                f"Deep nets often "
                f"sit there for a few epochs before they learn; with init={init!r} this is {why}. If it stays there, "
                f"try {others}, a lower --lr, or more epochs.")
    return None


__all__ = ["Recipe", "RECIPE_REGISTRY", "SMALL_DATA_LIMIT", "register_recipe", "get_recipe", "choose_recipe",
           "flat_loss_hint", "apply_recipe", "inherit_run_settings", "LEGACY_VALUES",
           "resolve_recipe", "recipe_fields", "recipes_help", "RECIPE_MODEL_SWITCHES"]
