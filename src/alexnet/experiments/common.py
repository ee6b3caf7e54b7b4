"""What every experiment shares: its config, the data it runs on, training one variant per seed, the result table
(CSV + markdown) and the curves.

An experiment trains *variants* (the paper's setting and its ablation) for each seed with ``alexnet.train.train``;
each run keeps its own folder (``OUT/runs/VARIANT-seedN``) with metrics.csv and checkpoints.  A run whose folder
already holds the same finished config is reused, so adding a seed or re-drawing a table does not retrain.
"""
from __future__ import annotations

import csv
import dataclasses
import functools
import io
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..errors import ConfigError
from ..utils import atomic_output, write_text_atomic
from .stats import mean_std

Printer = Callable[[str], None]
_START: dict[str, float] = {}       # experiment name -> perf_counter at the start of its run (for the wall time)

# Synthetic data made when --data does not exist: 10 shape classes (chance: 90% top-1 error, and top-5 means
# something), 4,000 training and 500 validation images stored at 96 px (every experiment resizes them to 72 or 36 px,
# so decoding stays cheap).  With 5 classes x 100 images (the first defaults) the networks stayed near chance or
# memorised the training set: see EXPERIMENTS.md.
SYNTH_DEFAULTS = dict(classes=10, train_per_class=400, val_per_class=50, size=96)
DEFAULT_DATA = "data/synth-exp10"
# The paper network scaled for that data when the flags do not say otherwise: 72-px images, 64-px crops (conv1 -> 15,
# pools -> 7 -> 3 -> 1, with either pooling), 512 units in fc6/fc7.
SCALED_PAPER = dict(resize=72, crop=64, fc_size=512)


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
        for k in ("seeds", "lr_grid"):
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
            cfg = dataclasses.replace(cfg, seeds=tuple(int(s) for s in cfg.seeds))
            if not cfg.seeds:
                raise ConfigError("--seeds: give at least one seed")
            if len(set(cfg.seeds)) != len(cfg.seeds):
                raise ConfigError(f"--seeds: a seed is repeated in {list(cfg.seeds)}")
        if cfg.lr_grid is not None:
            cfg = dataclasses.replace(cfg, lr_grid=tuple(float(x) for x in cfg.lr_grid))
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
            cfg = dataclasses.replace(cfg, out=f"runs/experiments/{self.folder or self.name}")
        _START[self.name] = time.perf_counter()
        return self.runner(self, cfg, printer)


def _wall_text(result: "Result") -> str:
    secs = result.wall_seconds
    if secs is None:
        return "not measured"
    # a run folder can appear in several rows (relu-vs-tanh: the lr search and the final table); it was reused from
    # an earlier invocation when no row of this one trained it
    runs: dict[str, bool] = {}
    train_secs: dict[str, float] = {}
    for r in result.rows:
        if "reused" in r:
            key = r.get("run_dir") or str(len(runs))
            runs[key] = runs.get(key, True) and bool(r["reused"])
            train_secs[key] = r.get("train_seconds") or 0.0
    reused = sum(runs.values())
    txt = _duration(secs)
    if reused:
        txt += (f"; {reused} of {len(runs)} training runs reused from earlier invocations (identical configs); "
                f"the {len(runs)} runs' training epochs took {_duration(sum(train_secs.values()))} in all")
    return txt


def _duration(secs: float) -> str:
    return f"{secs / 60:.1f} min" if secs >= 60 else f"{secs:.0f} s"


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
        parts = [f"arch={self.arch}"] + [f"{k}={_short(v)}" for k, v in sorted(self.model.items())]
        parts += [f"{k}={_short(v)}" for k, v in sorted(self.train.items())]
        return " ".join(parts)


def _short(v) -> str:
    if isinstance(v, (list, tuple)):
        return ",".join(str(x) for x in v)
    return f"{v:g}" if isinstance(v, float) else str(v)


# ----------------------------------------------------------------------------------------------------- data

def ensure_data(cfg: ExperimentConfig, printer: Printer) -> Path:
    """The dataset folder; the embedded synthetic dataset is generated there when the folder does not exist."""
    path = Path(cfg.data)
    if path.exists():
        return path
    from ..data import synthetic

    printer(f"{path} does not exist: generating the synthetic dataset there ({cfg.synth_classes} classes, "
            f"{cfg.synth_train_per_class} train + {cfg.synth_val_per_class} val images per class)")
    synthetic.generate(path, classes=cfg.synth_classes, train_per_class=cfg.synth_train_per_class,
                       val_per_class=cfg.synth_val_per_class, size=SYNTH_DEFAULTS["size"], seed=0,
                       progress=cfg.progress)
    return path


@functools.lru_cache(maxsize=8)
def native_size(data: str) -> int | None:
    """The dataset's own image size when it has one (CIFAR-10: 32, MNIST: 28); None for image folders."""
    from ..data import open_dataset

    return getattr(open_dataset(data, "train"), "native_size", None)


def input_sizes(cfg: ExperimentConfig, arch: str, data: Path) -> tuple[int | None, int | None]:
    """(resize, crop) for ``arch``: the flags when given; else the experiment's scaled defaults for image folders
    (cfg.resize/cfg.crop), and the native size for small-image datasets with the cifar network."""
    if cfg.resize is None and cfg.crop is None:
        n = native_size(str(data))
        if arch == "cifar":
            return (None, None) if n is not None and n <= 40 else (36, 32)
        if n is None:                   # an image folder: the scaled paper network's input
            return SCALED_PAPER["resize"], SCALED_PAPER["crop"]
    return cfg.resize, cfg.crop


# ------------------------------------------------------------------------------------------------- training

def train_config(cfg: ExperimentConfig, variant: Variant, seed: int, out: Path, data: Path):
    """The TrainConfig of one (variant, seed) run."""
    from ..train import TrainConfig

    model = {"init": cfg.init} if cfg.init else {}
    if variant.arch in ("paper", "paper-1tower"):
        model["fc_size"] = cfg.fc_size if cfg.fc_size is not None else SCALED_PAPER["fc_size"]
    model.update(variant.model)
    resize, crop = input_sizes(cfg, variant.arch, data)
    kw = dict(data=str(data), out=str(out), arch=variant.arch, model=model, epochs=cfg.epochs,
              batch_size=cfg.batch_size, lr=cfg.lr, schedule=cfg.schedule, resize=resize, crop=crop, seed=seed,
              steps_per_epoch=cfg.steps_per_epoch, val_batches=cfg.val_batches, device=cfg.device,
              workers=cfg.workers, progress=cfg.progress)
    if cfg.weight_decay is not None:
        kw["weight_decay"] = cfg.weight_decay
    kw.update(variant.train)
    return TrainConfig(**{k: v for k, v in kw.items() if v is not None or k in ("resize", "crop")})


# Fields that do not change what a run computes ("out": a finished run folder copied elsewhere is still that run).
_VOLATILE = ("out", "progress", "workers", "device")


def _finished_run(run_dir: Path, tcfg) -> bool:
    """True when ``run_dir`` already holds this exact config trained to its last epoch."""
    try:
        saved = json.loads((run_dir / "config.json").read_text())["train"]
        rows = _read_metrics(run_dir)
    except (OSError, ValueError, KeyError):
        return False
    want = json.loads(json.dumps(tcfg.to_dict()))
    same = all(saved.get(k) == v for k, v in want.items() if k not in _VOLATILE and k != "model")
    same = same and _canonical_model(saved.get("arch"), saved.get("model")) == _canonical_model(want["arch"],
                                                                                                want["model"])
    return same and len(rows) == tcfg.epochs and (run_dir / "last.pt").is_file()


def _identical_sibling_run(run_dir: Path, tcfg) -> Path | None:
    """A finished run with exactly this config in a sibling experiment folder (OUT/../*/runs/*), or None."""
    out = run_dir.parent.parent
    try:
        candidates = sorted(out.parent.glob("*/runs/*/config.json"))
    except OSError:
        return None
    for c in candidates:
        d = c.parent
        if d.resolve() != run_dir.resolve() and _finished_run(d, tcfg):
            return d
    return None


def _canonical_model(arch, model) -> dict | None:
    """The full network config a model dict asks for, so that {} and {"lrn": True} on a network with LRN are the
    same run."""
    from ..model import make_config

    try:
        return make_config(arch, **(model or {})).to_dict()
    except Exception:  # noqa: BLE001 - an unreadable saved config is simply not the same run
        return None


def _read_metrics(run_dir: Path) -> list[dict]:
    from ..viz import read_metrics

    return read_metrics(run_dir)


def run_variant(cfg: ExperimentConfig, variant: Variant, seed: int, data: Path, printer: Printer,
                label: str = "") -> dict:
    """Train (or reuse) one variant for one seed; returns {history, run_dir, train_config, reused}."""
    from ..train import train

    run_dir = Path(cfg.out) / "runs" / f"{variant.name}-seed{seed}"
    tcfg = train_config(cfg, variant, seed, run_dir, data)
    reused = cfg.reuse and _finished_run(run_dir, tcfg)
    twin = None if reused or not cfg.reuse else _identical_sibling_run(run_dir, tcfg)
    if twin is not None:
        # the same training (e.g. the default CIFAR network is `lrn` in lrn, `overlap-3x3s2` in overlap-pool and
        # `full` in augment): copy the finished run instead of training it again
        import shutil

        if run_dir.exists():
            shutil.rmtree(run_dir)
        shutil.copytree(twin, run_dir)
        reused = True
        printer(f"{label}{variant.name}, seed {seed}: reusing the identical finished run {twin} (copied to {run_dir})")
    elif reused:
        printer(f"{label}{variant.name}, seed {seed}: reusing the finished run in {run_dir}")
    else:
        printer(f"{label}{variant.name}, seed {seed}: training ({variant.describe()}) -> {run_dir}")
        train(tcfg, printer=printer, overwrite=True)   # an unfinished or differently-configured run: afresh
    return {"history": _read_metrics(run_dir), "run_dir": run_dir, "train_config": tcfg, "reused": reused}


def timing(history: list[dict]) -> tuple[float, float | None]:
    """(training seconds, training images/s) from a run's metrics (validation time not included)."""
    secs = sum(r.get("epoch_seconds") or 0.0 for r in history)
    images = sum((r.get("images_per_second") or 0.0) * (r.get("epoch_seconds") or 0.0) for r in history)
    return secs, (images / secs if secs > 0 else None)


def train_set_error(model, prep: dict, data: Path, images: int, seed: int, cfg: ExperimentConfig) -> dict | None:
    """Top-1/top-5 error of a trained network on ``images`` random training images in eval mode (no dropout, centre
    crops, no lighting): the training side of the train/val gap.  The running training error in metrics.csv is
    measured with dropout and augmentation on, so it overstates the error the network makes on its training data.
    """
    if images <= 0:
        return None
    import torch

    from ..data import open_dataset
    from ..evaluate import evaluate

    full = open_dataset(str(data), "train", image_size=prep["resize"])
    g = torch.Generator().manual_seed(seed)
    idx = torch.randperm(len(full), generator=g)[:images].tolist()
    r = evaluate(model, torch.utils.data.Subset(full, idx), prep,
                 batch_size=cfg.batch_size or 128, device=cfg.device, workers=cfg.workers, progress=False)
    return {"top1_error": r["top1_error"], "top5_error": r["top5_error"], "n": r["n"]}


# --------------------------------------------------------------------------------------------------- tables

def top5_meaningful(classes: int | None) -> bool:
    """Top-5 error says something only with more than 5 classes (with 5 or fewer every label is in the top 5, so
    the error is 0 by construction): with fewer, tables report it as n/a."""
    return classes is None or classes > 5


def pct(x: float | None, digits: int = 1) -> str:
    return "—" if x is None else f"{100 * x:.{digits}f}"


def fmt_mean_std(values, scale: float = 100.0, digits: int = 1) -> str:
    """'12.3 ± 0.4' (sample std over seeds), '12.3' for one value, '—' for none."""
    m, s, n = mean_std(values)
    if m is None:
        return "—"
    if s is None:
        return f"{scale * m:.{digits}f}"
    return f"{scale * m:.{digits}f} ± {scale * s:.{digits}f}"


def markdown_table(rows: list[dict], columns: list[tuple[str, str]]) -> str:
    """A GitHub markdown table of ``rows``; columns are (key, header); values are printed as they are."""
    head = "| " + " | ".join(h for _, h in columns) + " |"
    rule = "|" + "|".join("---" for _ in columns) + "|"
    body = ["| " + " | ".join(_cell(r.get(k)) for k, _ in columns) + " |" for r in rows]
    return "\n".join([head, rule, *body])


def _cell(v) -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v).replace("|", "\\|")


def write_csv(path: Path, rows: list[dict]) -> Path:
    keys: list[str] = []
    for r in rows:
        keys.extend(k for k in r if k not in keys)
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=keys)
    w.writeheader()
    for r in rows:
        w.writerow({k: _csv_value(r.get(k)) for k in keys})
    write_text_atomic(path, buf.getvalue())
    return path


def _csv_value(v):
    if v is None:
        return ""
    if isinstance(v, (dict, list, tuple)):
        return json.dumps(v)
    return v


# Fields that never become flags of the reproducing command (runtime only).
_NOT_FLAGS = ("out", "device", "workers", "progress", "reuse")


def command_line(exp: "Experiment", cfg: ExperimentConfig) -> str:
    """The ``alexnet experiment`` command that reproduces ``cfg`` (resolved): the experiment's name, --data, --out,
    and a flag for every field that differs from what the command would get without it."""
    base = ExperimentConfig().resolve(exp.defaults)
    parts = ["alexnet experiment", exp.name, "--data", str(cfg.data)]
    for f in dataclasses.fields(cfg):
        if f.name in _NOT_FLAGS or f.name == "data":
            continue
        v, d = getattr(cfg, f.name), getattr(base, f.name)
        if v == d or v is None:
            continue
        flag = "--" + f.name.replace("_", "-")
        if isinstance(v, bool):
            parts.append(flag if v else "--no-" + f.name.replace("_", "-"))
        elif isinstance(v, (list, tuple)):
            parts += [flag, *(_short(x) for x in v)]
        else:
            parts += [flag, _short(v)]
    parts += ["--out", str(cfg.out)]
    return " ".join(parts)


def finish(result: Result, cfg: ExperimentConfig, markdown: str, printer: Printer,
           exp: "Experiment | None" = None) -> Result:
    """Write OUT/NAME.csv (rows), OUT/NAME-summary.csv, OUT/NAME.md and OUT/NAME.json (the resolved config, the
    files and the command that reproduces them); print the markdown."""
    out = Path(cfg.out)
    if exp is not None and exp.name in _START:
        result.wall_seconds = time.perf_counter() - _START[exp.name]
    command = command_line(exp, cfg) if exp is not None else None
    if command:
        markdown += f"\n\n**Command:** `{command}` (wall time {_wall_text(result)})"
    out.mkdir(parents=True, exist_ok=True)
    result.files["csv"] = str(write_csv(out / f"{result.name}.csv", result.rows))
    if result.summary:
        result.files["summary_csv"] = str(write_csv(out / f"{result.name}-summary.csv", result.summary))
    write_text_atomic(out / f"{result.name}.md", markdown + "\n")
    result.files["markdown"] = str(out / f"{result.name}.md")
    write_text_atomic(out / f"{result.name}.json", json.dumps({"experiment": result.name, "config": cfg.to_dict(),
                                                               "command": command, "files": result.files},
                                                              indent=2) + "\n")
    result.markdown = markdown
    printer("")
    printer(markdown)
    printer("")
    printer("written: " + ", ".join(str(v) for v in result.files.values()))
    return result


def setup_line(cfg: ExperimentConfig, data: Path, arch: str, tcfg, show_lr: bool = True) -> str:
    """One sentence naming the data and the settings every variant shares (for the markdown)."""
    model = tcfg.model
    size = f"{tcfg.resize}->{tcfg.crop} px" if tcfg.resize else "native size"
    bits = [f"data `{data}`", f"arch `{arch}`", size, f"{tcfg.epochs} epoch{'s' if tcfg.epochs != 1 else ''}",
            f"batch {tcfg.batch_size}"]
    bits.append(f"lr {tcfg.lr:g} ({tcfg.schedule})" if show_lr else f"{tcfg.schedule} lr")
    bits += [f"init {model.get('init')}", f"weight decay {tcfg.weight_decay:g}"]
    if "fc_size" in model:
        bits.append(f"fc6/fc7 {model['fc_size']} units")
    if tcfg.steps_per_epoch:
        bits.append(f"at most {tcfg.steps_per_epoch} batches per epoch")
    bits.append(f"seed{'s' if len(cfg.seeds) > 1 else ''} {', '.join(str(s) for s in cfg.seeds)}")
    return "; ".join(bits)


# ---------------------------------------------------------------------------------------------------- plots

def plot_variant_curves(runs: list[dict], out_png: Path, title: str, keys=("train_top1_error", "val_top1_error"),
                        labels=("training top-1 error (running, with dropout/augmentation)",
                                "validation top-1 error"), styles: dict | None = None,
                        threshold: float | None = None, chance: float | None = None) -> Path:
    """One panel per metric in ``keys``: error (%) vs epoch, a colour per variant, each seed a thin line and the
    mean over seeds a thick one.  ``runs``: dicts with variant, seed, history."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    variants = list(dict.fromkeys(r["variant"] for r in runs))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    fig, axes = plt.subplots(1, len(keys), figsize=(max(7.5, 5.5 * len(keys)), 4.2), squeeze=False)
    for ax, key, label in zip(axes[0], keys, labels):
        for vi, v in enumerate(variants):
            style = (styles or {}).get(v, {})
            colour = style.get("color", colours[vi % len(colours)])
            ls = style.get("ls", "-")
            curves = [[(h["epoch"], h.get(key)) for h in r["history"] if h.get(key) is not None]
                      for r in runs if r["variant"] == v]
            curves = [c for c in curves if c]
            for c in curves:
                ax.plot([e for e, _ in c], [100 * y for _, y in c], ls=ls, color=colour, lw=0.8, alpha=0.35)
            if curves:
                n = min(len(c) for c in curves)
                ep = [curves[0][i][0] for i in range(n)]
                mean = [100 * sum(c[i][1] for c in curves) / len(curves) for i in range(n)]
                ax.plot(ep, mean, ls=ls, color=colour, lw=2.2, marker="o", ms=3,
                        label=f"{v} (mean of {len(curves)})" if len(curves) > 1 else v)
        if threshold is not None and key.startswith("train"):
            ax.axhline(100 * threshold, color="grey", ls=":", lw=1.2, label=f"{100 * threshold:g}% threshold")
        if chance is not None:
            ax.axhline(100 * chance, color="black", ls="--", lw=0.8, alpha=0.5, label=f"chance ({100 * chance:.0f}%)")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epoch")
        ax.set_ylabel("error (%)")
        ax.set_title(label, fontsize=9)
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    with atomic_output(out_png) as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)
    return out_png

