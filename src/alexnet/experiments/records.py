"""The records every experiment is made of: its config, the registered experiment, one variant, the result.

An experiment trains *variants* (the paper's setting and its ablation) for each seed (``runs``), then writes the
result table (``tables``) and the curves (``plots``).  Torch-free, so that ``alexnet experiment --help`` stays fast.
"""
from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ..choices import INITS
from ..errors import ConfigError

Printer = Callable[[str], None]
# experiment name -> perf_counter at the start of its latest run (for the wall time in the table's footer)
_START: dict[str, float] = {}

# Synthetic data made when --data does not exist: 10 shape classes (chance: 90% top-1 error, and top-5 means
# something), 4,000 training and 500 validation images stored at 96 px (every experiment resizes them to 72 or 36 px,
# so decoding stays cheap).  With 5 classes x 100 images (the first defaults) the networks stayed near chance or
# memorised the training set: see EXPERIMENTS.md.
SYNTH_DEFAULTS = dict(classes=10, train_per_class=400, val_per_class=50, size=96)
DEFAULT_DATA = "data/synth-exp10"
DEFAULT_ROOT = "runs/experiments"       # OUT defaults to DEFAULT_ROOT/NAME; the report reads the tables there
# The paper network scaled for that data when the flags do not say otherwise: 72-px images, 64-px crops (conv1 -> 15,
# pools -> 7 -> 3 -> 1, with either pooling), 512 units in fc6/fc7.
SCALED_PAPER = dict(resize=72, crop=64, fc_size=512)


def _distinct(flag: str, noun: str, values: list) -> tuple:
    """``values`` as a tuple: at least one, none repeated (a one-line ConfigError naming ``flag`` otherwise)."""
    article = "an" if noun[0] in "aeiou" else "a"
    if not values:
        raise ConfigError(f"{flag}: give at least one {noun}")
    if len(set(values)) != len(values):
        raise ConfigError(f"{flag}: {article} {noun} is repeated in {values}")
    return tuple(values)


@dataclass(frozen=True)
class ExperimentConfig:
    """Every knob of an experiment.  None means "the experiment's default" (each experiment module lists its
    defaults in ``DEFAULTS``); ``resolve`` fills them in, and the resolved config is saved as OUT/NAME.json."""

    data: str = DEFAULT_DATA
    out: str | None = None                  # None: runs/experiments/NAME (filters, neighbours: .../figures)
    epochs: int | None = None
    seeds: tuple | None = None
    arch: str | None = None                 # lrn, overlap-pool, dropout, augment: paper | cifar | owt
    batch_size: int | None = None
    lr: float | None = None
    recipe: str | None = None               # the training recipe (alexnet.recipes); its values fill what is unset
    init: str | None = None
    schedule: str | None = None
    resize: int | None = None
    crop: int | None = None
    fc_size: int | None = None
    weight_decay: float | None = None
    steps_per_epoch: int | None = None      # cap on training batches per epoch (quick looks)
    val_batches: int | None = None          # cap on validation batches
    train_eval_images: int | None = None    # training images re-evaluated (eval mode) for the train/val gap
    # relu-vs-tanh (Figure 1)
    threshold: float | None = None          # training top-1 error to reach (paper: 0.25)
    lr_relu: float | None = None
    lr_tanh: float | None = None
    lr_grid: tuple | None = None            # choose each activation's lr from these (the paper tuned them apart)
    inits: tuple | None = None              # the whole experiment once per init (alexnet.choices.INITS)
    # filters / neighbours (Figures 3 and 4)
    checkpoint: str | None = None           # a trained checkpoint instead of a brief training run
    queries: int | None = None
    neighbours: int | None = None
    # synthetic data, generated at --data when that folder does not exist
    synth_classes: int = SYNTH_DEFAULTS["classes"]
    synth_train_per_class: int = SYNTH_DEFAULTS["train_per_class"]
    synth_val_per_class: int = SYNTH_DEFAULTS["val_per_class"]
    device: str = "auto"
    workers: int | None = None
    reuse: bool = True                      # reuse finished runs with identical configs
    progress: bool = True

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        for k in ("seeds", "lr_grid", "inits"):
            if d[k] is not None:
                d[k] = list(d[k])
        return d

    def resolve(self, defaults: dict) -> "ExperimentConfig":
        """Fill the fields left at None from ``defaults``; check the result."""
        unknown = set(defaults) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise ValueError(f"experiment defaults name unknown fields {sorted(unknown)}")
        filled = {k: v for k, v in defaults.items() if getattr(self, k) is None}
        cfg = dataclasses.replace(self, **filled)
        if cfg.seeds is not None:
            cfg = dataclasses.replace(cfg, seeds=_distinct("--seeds", "seed", [int(s) for s in cfg.seeds]))
        if cfg.lr_grid is not None:
            cfg = dataclasses.replace(cfg, lr_grid=tuple(float(x) for x in cfg.lr_grid))
        if cfg.inits is not None:
            cfg = dataclasses.replace(cfg, inits=_distinct("--inits", "init", [str(i) for i in cfg.inits]))
            unknown = [i for i in cfg.inits if i not in INITS]
            if unknown:
                raise ConfigError(f"--inits: {unknown[0]!r} is not one of {', '.join(INITS)}")
        checks = [(cfg.epochs is None or cfg.epochs >= 1, "--epochs must be >= 1"),
                  (cfg.threshold is None or 0 < cfg.threshold < 1, "--threshold is a training error in (0, 1)"),
                  (cfg.train_eval_images is None or cfg.train_eval_images >= 0, "--train-eval-images must be >= 0"),
                  (cfg.queries is None or cfg.queries >= 1, "--queries must be >= 1"),
                  (cfg.neighbours is None or cfg.neighbours >= 1, "--neighbours must be >= 1")]
        for ok, msg in checks:
            if not ok:
                raise ConfigError(msg)
        return cfg


@dataclass(frozen=True)
class Experiment:
    """A registered experiment: ``runner(self, resolved_cfg, printer)`` does the work; ``defaults`` fill the config
    fields the user left at None; ``variants`` (ablations) lists the paper's setting first, then its ablations."""

    name: str
    title: str
    claim: str
    defaults: dict
    runner: Callable
    variants: Callable | None = None
    note: str = ""
    folder: str = ""            # default output folder name (several experiments may share one), else the name

    def run(self, cfg: ExperimentConfig, printer: Printer = print) -> "Result":
        cfg = cfg.resolve(self.defaults)
        if cfg.out is None:
            cfg = dataclasses.replace(cfg, out=f"{DEFAULT_ROOT}/{self.folder or self.name}")
        _START[self.name] = time.perf_counter()
        return self.runner(self, cfg, printer)

    def elapsed(self) -> float | None:
        """Seconds since this experiment's latest ``run`` started; None when it was not started by ``run``."""
        start = _START.get(self.name)
        return None if start is None else time.perf_counter() - start


@dataclass
class Result:
    """An experiment's outcome: ``rows`` is the result table (one row per variant and seed, each with its seed and
    config), ``summary`` the table over seeds, ``files`` what was written (CSV, markdown, PNG)."""

    name: str
    rows: list[dict]
    summary: list[dict] = field(default_factory=list)
    files: dict = field(default_factory=dict)
    markdown: str = ""
    wall_seconds: float | None = None       # from the start of Experiment.run to the tables


@dataclass(frozen=True)
class Variant:
    """One setting of an experiment: a name, the architecture, model switches and training-config overrides."""

    name: str
    arch: str
    model: dict = field(default_factory=dict)
    train: dict = field(default_factory=dict)

    def describe(self) -> str:
        parts = [f"arch={self.arch}"] + [f"{k}={short_value(v)}" for k, v in sorted(self.model.items())]
        parts += [f"{k}={short_value(v)}" for k, v in sorted(self.train.items())]
        return " ".join(parts)


def short_value(v) -> str:
    """A value as a config description or a command-line flag writes it: 0.01, 1,2 (a list), paper."""
    if isinstance(v, (list, tuple)):
        return ",".join(str(x) for x in v)
    return f"{v:g}" if isinstance(v, float) else str(v)
