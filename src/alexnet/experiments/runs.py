"""The training side of an experiment: its data, one TrainConfig per variant and seed, training it with the
project's ``Trainer``, and reusing a finished identical run instead of training it again.

Each run keeps its own folder (``OUT/runs/VARIANT-seedN``) with metrics.csv and checkpoints.  A run whose folder
already holds the same finished config is reused, so adding a seed or re-drawing a table does not retrain.
"""
from __future__ import annotations

import functools
import json
import shutil
from pathlib import Path

from ..config import TrainConfig
from ..errors import AlexNetError
from ..recipes import LEGACY_VALUES
from .records import SCALED_PAPER, SYNTH_DEFAULTS, ExperimentConfig, Printer, Variant

# The paper's own networks (two towers and one), whose fc6/fc7 the experiments scale (--fc-size): owt keeps
# torchvision's 4096 units, cifar has no fc6/fc7.
FC_SIZED_ARCHS = ("paper", "paper-1tower")
# Fields that do not change what a run computes ("out": a finished run folder copied elsewhere is still that run).
VOLATILE_FIELDS = ("out", "progress", "workers", "device")


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

@functools.lru_cache(maxsize=8)
def train_images(data: str) -> int:
    """The number of training images (for --recipe auto)."""
    from ..data import open_dataset

    return len(open_dataset(data, "train"))


def train_config(cfg: ExperimentConfig, variant: Variant, seed: int, out: Path, data: Path) -> TrainConfig:
    """The TrainConfig of one (variant, seed) run, its recipe applied (what config.json of the run will hold)."""
    from ..recipes import resolve_recipe

    model = {"init": cfg.init} if cfg.init else {}
    if variant.arch in FC_SIZED_ARCHS:
        model["fc_size"] = cfg.fc_size if cfg.fc_size is not None else SCALED_PAPER["fc_size"]
    model.update(variant.model)
    resize, crop = input_sizes(cfg, variant.arch, data)
    kw = dict(data=str(data), out=str(out), arch=variant.arch, model=model, epochs=cfg.epochs,
              batch_size=cfg.batch_size, lr=cfg.lr, schedule=cfg.schedule, resize=resize, crop=crop, seed=seed,
              recipe=cfg.recipe or "auto",
              steps_per_epoch=cfg.steps_per_epoch, val_batches=cfg.val_batches, device=cfg.device,
              workers=cfg.workers, progress=cfg.progress)
    if cfg.weight_decay is not None:
        kw["weight_decay"] = cfg.weight_decay
    kw.update(variant.train)
    tcfg = TrainConfig(**{k: v for k, v in kw.items() if v is not None or k in ("resize", "crop")})
    count = train_images(str(data)) if tcfg.recipe == "auto" else None
    return resolve_recipe(tcfg, count)[0]


def finished_run(run_dir: Path, tcfg: TrainConfig) -> bool:
    """True when ``run_dir`` already holds this exact config trained to its last epoch."""
    try:
        saved = json.loads((run_dir / "config.json").read_text())["train"]
        rows = read_metrics(run_dir)
    except (OSError, ValueError, KeyError, AlexNetError):   # not (yet) a finished run: a run in progress elsewhere,
        return False                                        # a killed one, a malformed metrics.csv
    want = json.loads(json.dumps(tcfg.to_dict()))
    # a field newer than the saved run: that run did what the code did before the field existed
    same = all(saved.get(k, LEGACY_VALUES.get(k)) == v for k, v in want.items()
               if k not in VOLATILE_FIELDS and k != "model")
    same = same and canonical_model(saved.get("arch"), saved.get("model")) == canonical_model(want["arch"],
                                                                                              want["model"])
    return same and len(rows) == tcfg.epochs and (run_dir / "last.pt").is_file()


def identical_sibling_run(run_dir: Path, tcfg: TrainConfig) -> Path | None:
    """A finished run with exactly this config in a sibling experiment folder (OUT/../*/runs/*), or None."""
    out = run_dir.parent.parent
    try:
        candidates = sorted(out.parent.glob("*/runs/*/config.json"))
    except OSError:
        return None
    for c in candidates:
        d = c.parent
        if d.resolve() != run_dir.resolve() and finished_run(d, tcfg):
            return d
    return None


def canonical_model(arch, model) -> dict | None:
    """The full network config a model dict asks for, so that {} and {"lrn": True} on a network with LRN are the
    same run."""
    from ..model import make_config

    try:
        return make_config(arch, **(model or {})).to_dict()
    except Exception:  # noqa: BLE001 - an unreadable saved config is simply not the same run
        return None


def read_metrics(run_dir: Path) -> list[dict]:
    """A run folder's metrics.csv, one dict per epoch."""
    from ..viz import read_metrics as read

    return read(run_dir)


def run_variant(cfg: ExperimentConfig, variant: Variant, seed: int, data: Path, printer: Printer,
                label: str = "") -> dict:
    """Train (or reuse) one variant for one seed; returns {history, run_dir, train_config, reused}."""
    from ..train import Trainer

    run_dir = Path(cfg.out) / "runs" / f"{variant.name}-seed{seed}"
    tcfg = train_config(cfg, variant, seed, run_dir, data)
    reused = cfg.reuse and finished_run(run_dir, tcfg)
    twin = None if reused or not cfg.reuse else identical_sibling_run(run_dir, tcfg)
    if twin is not None:
        # the same training (e.g. the default CIFAR network is `lrn` in lrn, `overlap-3x3s2` in overlap-pool and
        # `full` in augment): copy the finished run instead of training it again
        if run_dir.exists():
            shutil.rmtree(run_dir)
        shutil.copytree(twin, run_dir)
        reused = True
        printer(f"{label}{variant.name}, seed {seed}: reusing the identical finished run {twin} (copied to {run_dir})")
    elif reused:
        printer(f"{label}{variant.name}, seed {seed}: reusing the finished run in {run_dir}")
    else:
        printer(f"{label}{variant.name}, seed {seed}: training ({variant.describe()}) -> {run_dir}")
        # an unfinished or differently-configured run: afresh
        Trainer(tcfg, printer=printer).fit(overwrite=True)
    return {"history": read_metrics(run_dir), "run_dir": run_dir, "train_config": tcfg, "reused": reused}


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
