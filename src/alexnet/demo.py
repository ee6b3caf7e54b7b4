"""The main job: synthetic data -> the paper's network and recipe (scaled for a small CPU) -> 1- and 10-crop
evaluation -> curves, conv1 filters per tower (Figure 3) and fc7 nearest neighbours (Figure 4)."""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

from .utils import write_text_atomic


@dataclass(frozen=True)
class DemoConfig:
    data: str = "data/synth"
    out: str = "runs/demo"
    epochs: int = 12
    batch_size: int | None = None
    resize: int = 144          # scaled from the paper's 256 -> 224 for a 2-core CPU
    crop: int = 128
    fc_size: int = 2048        # scaled from 4096
    # The training recipe (alexnet.recipes): "small", the from-scratch recipe for small datasets (He init,
    # standardised input, batch 32, lr 0.02 warmed up over 0.3 epoch, cosine decay).  The paper's recipe
    # (`--recipe paper`: N(0, 0.01) init with biases 1, mean-subtracted 0-255 input, lr 0.01 / 10 on plateau) was
    # measured at chance (loss ln 10) through the first epochs of this scaled network.  batch_size / lr / init None:
    # the recipe's.
    recipe: str = "small"
    lr: float | None = None
    init: str | None = None
    seed: int = 0
    # synthetic data
    classes: int = 10
    train_per_class: int = 300
    val_per_class: int = 50
    image_size: int = 256
    steps_per_epoch: int | None = None
    device: str = "auto"
    progress: bool = True


SCALED_NOTE = ("scaled for this machine: {resize}->{crop} px crops (paper 256->224), fc6/fc7 {fc} units (paper "
               "4096), {epochs} epochs; the paper's network (two towers, LRN, overlapping pooling) and "
               "augmentation (crops + flips + PCA lighting); training recipe {recipe}: {recipe_values}")


def run_demo(cfg: DemoConfig, printer=print) -> dict:
    from .data import open_dataset, synthetic
    from .evaluate import evaluate
    from .interop import load_model
    from .model import PAPER_DROPOUT
    from .recipes import resolve_recipe
    from .train import TrainConfig, train
    from .viz import conv1_change, neighbours_figure, plot_filters, tower_colour_specificity

    t0 = time.perf_counter()
    out = Path(cfg.out)
    printer(f"[1/4] synthetic dataset in {cfg.data} ({cfg.classes} classes, {cfg.train_per_class} train + "
            f"{cfg.val_per_class} val images per class; reused when already there)")
    synthetic.generate(cfg.data, classes=cfg.classes, train_per_class=cfg.train_per_class,
                       val_per_class=cfg.val_per_class, size=cfg.image_size, seed=cfg.seed, progress=cfg.progress)
    model_switches = {"fc_size": cfg.fc_size, **({"init": cfg.init} if cfg.init else {})}
    tcfg = TrainConfig(data=cfg.data, out=str(out), arch="paper", model=model_switches, recipe=cfg.recipe,
                       epochs=cfg.epochs, batch_size=cfg.batch_size, lr=cfg.lr, resize=cfg.resize, crop=cfg.crop,
                       seed=cfg.seed, device=cfg.device, steps_per_epoch=cfg.steps_per_epoch, progress=cfg.progress)
    resolved, _ = resolve_recipe(tcfg, train_images=cfg.classes * cfg.train_per_class)
    values = (f"init {resolved.model.get('init', 'paper')}, dropout {resolved.model.get('dropout', PAPER_DROPOUT):g}, "
              f"{resolved.normalize} input, "
              f"batch {resolved.batch_size}, lr {resolved.lr:g}, {resolved.warmup_epochs:g}-epoch warm-up, "
              f"{resolved.schedule} schedule, PaperSGD momentum {resolved.momentum:g} / weight decay "
              f"{resolved.weight_decay:g}; --recipe paper for the paper's section-5 recipe")
    note = SCALED_NOTE.format(resize=cfg.resize, crop=cfg.crop, fc=cfg.fc_size, epochs=cfg.epochs,
                              recipe=cfg.recipe, recipe_values=values)
    printer(f"[2/4] training the paper network ({note})")
    summary = train(tcfg, printer=printer, overwrite=True)   # a second demo run trains afresh

    printer("[3/4] evaluating best.pt on the validation split: centre crop and the paper's 10 crops")
    model, ckpt = load_model(out / "best.pt")
    prep = ckpt.preprocessing
    val_set = open_dataset(cfg.data, "val", image_size=prep["resize"])
    train_set = open_dataset(cfg.data, "train", image_size=prep["resize"])
    evals = {}
    for crops in (1, 10):
        evals[crops] = evaluate(model, val_set, prep, crops=crops,
                                batch_size=resolved.batch_size, device=cfg.device, progress=cfg.progress)

    printer("[4/4] pictures: conv1 filters per tower (Figure 3), fc7 nearest neighbours (Figure 4)")
    plot_filters(model, out / "filters.png", title="conv1 kernels learned on the synthetic data")
    # How far conv1 moved from its initialisation (the same draw: the trainer seeds torch before building), and
    # the change itself: a briefly trained conv1 still looks mostly like its random init, the change shows what
    # training put into it.
    moved = conv1_change(model, seed=cfg.seed, out_png=out / "filters_change.png",
                         title="conv1: trained minus initial kernels (what training added)")
    nb = neighbours_figure(model, prep, train_set, val_set, out / "neighbours.png", queries=8, k=6,
                           device=cfg.device, seed=cfg.seed)
    spec = tower_colour_specificity(model)
    wall = time.perf_counter() - t0
    result = {
        "top1_error_1crop": evals[1]["top1_error"], "top5_error_1crop": evals[1]["top5_error"],
        "top1_error_10crop": evals[10]["top1_error"], "top5_error_10crop": evals[10]["top5_error"],
        "val_images": evals[1]["n"], "epochs": summary["epochs"], "wall_seconds": wall,
        "train_images_per_second": summary["images_per_second"], "device": summary["device"],
        "precision": summary["precision"], "tower_colour_specificity": spec,
        "neighbours_same_class": nb["same_class_fraction"], "scaled_settings": note, "recipe": cfg.recipe,
        "conv1_relative_change": moved["relative_change"],
        "conv1_change_colour_specificity": moved["change_colour_specificity"],
    }
    write_text_atomic(out / "summary.json", json.dumps(result, indent=2) + "\n")
    files = sorted(p for p in out.iterdir() if p.is_file() and not p.name.startswith("."))
    result["files"] = [str(p) for p in files]
    _print_summary(result, cfg.classes, files, out, printer)
    return result


def _print_summary(result: dict, classes: int, files: list, out: Path, printer) -> None:
    """The demo's closing table: errors, speed, what conv1 learned, the files written."""
    printer("")
    printer(f"AlexNet demo ({result['device']}, {result['precision']}): {classes}-class synthetic data, "
            f"{result['val_images']} validation images")
    printer(f"  {'':<10}{'top-1 error':>12}{'top-5 error':>13}")
    printer(f"  {'1 crop':<10}{100 * result['top1_error_1crop']:>11.1f}%{100 * result['top5_error_1crop']:>12.1f}%")
    printer(f"  {'10 crops':<10}{100 * result['top1_error_10crop']:>11.1f}%{100 * result['top5_error_10crop']:>12.1f}%")
    printer(f"  epochs {result['epochs']}, wall time {result['wall_seconds'] / 60:.1f} min, training "
            f"{result['train_images_per_second']:.0f} images/s")
    spec = ", ".join(f"{s:.2f}" for s in result["tower_colour_specificity"])
    printer(f"  conv1 colour specificity per tower: {spec}; fc7 neighbours of the "
            f"same class: {100 * result['neighbours_same_class']:.0f}%")
    printer(f"  conv1 moved {100 * result['conv1_relative_change']:.0f}% from its initialisation (|W - W0| / |W0|); "
            f"colour specificity of that change per tower: "
            f"{', '.join(f'{s:.2f}' for s in result['conv1_change_colour_specificity'])}")
    printer("written:")
    for p in files:
        printer(f"  {p}")
    tb = out / "tb"
    if tb.exists():
        printer(f"  {tb}/ (TensorBoard: tensorboard --logdir {tb})")

