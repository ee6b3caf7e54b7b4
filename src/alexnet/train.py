"""The training loop: one config, one function, no hidden globals.

``train(TrainConfig(...))`` runs the paper's recipe (section 5) by default: PaperSGD (batch 128, momentum 0.9,
weight decay 0.0005, lr 0.01 inside the velocity), lr divided by 10 when the validation error stops improving
(at most three times), random crops + flips + PCA lighting (section 4.1), validation on centre crops each epoch.

Run folder: config.json, metrics.csv, train.log, tb/ (TensorBoard events), last.pt, best.pt, curves.png.
Exact resume: checkpoints hold model, optimizer, schedule, epoch/step, RNG states and the augmentation
generator; data order is a pure function of (seed, epoch), so ``--resume`` continues the same run bitwise
(on CPU with --deterministic), also from a mid-epoch checkpoint (``save_every``).
"""
from __future__ import annotations

import csv
import dataclasses
import io
import json
import logging
import math
import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from .checkpoint import Checkpoint, load_checkpoint, load_state_dict_checked, save_checkpoint
from .errors import CheckpointError, ConfigError, TrainingDiverged
from .evaluate import evaluate
from .metrics import TopKMeter
from .model import build_model
from .optim import LRSchedule, make_optimizer
from .runtime import autocast, resolve_device, resolve_precision, to_layout, tune_cpu_allocator
from .utils import write_text_atomic

NORMALIZATIONS = ("auto", "paper", "standard")
METRIC_FIELDS = ("epoch", "step", "lr", "train_loss", "train_top1_error", "train_top5_error", "val_loss",
                 "val_top1_error", "val_top5_error", "images_per_second", "epoch_seconds")


@dataclass(frozen=True)
class TrainConfig:
    """Every knob of a training run; saved as run_dir/config.json."""

    data: str
    out: str
    arch: str = "paper"
    model: dict = field(default_factory=dict)      # model switches (activation, lrn, towers, ...)
    dataset_kind: str = "auto"
    epochs: int = 90
    batch_size: int = 128                          # section 5
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 0.0005
    optimizer: str = "paper"                       # "paper" (section 5 update) | "sgd" (PyTorch's)
    schedule: str = "plateau"                      # plateau | step | cosine | constant
    patience: int = 3                              # plateau: epochs without val improvement
    max_reductions: int = 3                        # the paper reduced the lr three times
    step_size: int = 30                            # step schedule (torchvision: 30)
    resize: int | None = None                      # shorter side S (None: 256 for image folders, native for CIFAR/MNIST)
    crop: int | None = None                        # network input (None: 224 for S=256, i.e. S * 7/8; S for S < 64)
    flip: bool = True
    random_crop: bool = True
    lighting: bool = True                          # PCA colour augmentation (section 4.1)
    lighting_std: float = 0.1
    normalize: str = "auto"                        # "paper": subtract the mean (0-255 units); "standard": also / std;
                                                   # auto: paper for the paper/caffe inits, standard for kaiming/default
    val_every: int = 1
    val_crops: int = 1
    seed: int = 0
    deterministic: bool = False
    device: str = "auto"
    precision: str = "auto"
    channels_last: bool | None = None
    compile: bool = False
    workers: int | None = None
    steps_per_epoch: int | None = None             # cap on training batches per epoch (quick runs)
    val_batches: int | None = None                 # cap on validation batches
    save_every: int = 0                            # also checkpoint every N steps (0: at epoch ends only)
    strict_data: bool = False
    progress: bool = True
    tower_devices: str | None = None               # "cuda:0,cuda:1": the paper's two-GPU layout (section 3.2)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ConfigError(f"train config: unknown field(s) {sorted(unknown)}")
        return cls(**d)

    def validate(self) -> None:
        checks = [(self.epochs >= 1, "epochs must be >= 1"), (self.batch_size >= 1, "batch_size must be >= 1"),
                  (self.lr > 0, "lr must be > 0"), (0 <= self.momentum < 1, "momentum must be in [0, 1)"),
                  (self.weight_decay >= 0, "weight_decay must be >= 0"),
                  (self.normalize in NORMALIZATIONS, f"normalize must be one of {NORMALIZATIONS}"),
                  (self.val_crops in (1, 10), "val_crops must be 1 or 10"), (self.val_every >= 0, "val_every >= 0"),
                  (self.lighting_std >= 0, "lighting_std must be >= 0"), (self.save_every >= 0, "save_every >= 0"),
                  (self.steps_per_epoch is None or self.steps_per_epoch >= 1, "steps_per_epoch must be >= 1")]
        for ok, msg in checks:
            if not ok:
                raise ConfigError(f"train config: {msg}")


def _rng_state() -> dict:
    state = {"torch": torch.get_rng_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(_tupled(state["python"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _tupled(x):
    return tuple(_tupled(i) for i in x) if isinstance(x, (list, tuple)) else x


def _epoch_seed(seed: int, epoch: int, rank: int = 0) -> int:
    # rank: every data-parallel process draws its own crops, flips, lighting and dropout (rank 0: as one process)
    return (seed * 1_000_003 + epoch * 7919 + rank * 104_729 + 12345) % (2 ** 63)


def default_sizes(resize: int | None, crop: int | None, native: int) -> tuple[int, int]:
    """(S, crop): the paper's 256/224 for image folders; native size, no crop, for CIFAR/MNIST-sized images."""
    s = resize or native
    if crop is None:
        crop = s if s < 64 else round(s * 224 / 256)
    if crop > s:
        raise ConfigError(f"crop {crop} is larger than the resized image ({s}); expected crop <= resize")
    return s, crop


RUN_FILES = ("last.pt", "best.pt", "metrics.csv", "train.log", "config.json", "curves.png")


def _claim_run_folder(out: Path, overwrite: bool) -> None:
    """Refuse to train into a folder holding another run's checkpoint, or clear that run when ``overwrite``."""
    if not (out / "last.pt").exists() and not (out / "best.pt").exists():
        return
    if not overwrite:
        raise ConfigError(f"{out} already holds a training run (last.pt); continue it with --resume {out}, "
                          f"start afresh with --overwrite, or choose another --out")
    import shutil

    for name in RUN_FILES:
        (out / name).unlink(missing_ok=True)
    shutil.rmtree(out / "tb", ignore_errors=True)


def _setup_logging(out: Path, is_main: bool) -> logging.Logger:
    log = logging.getLogger(f"alexnet.train.{out}")
    log.setLevel(logging.INFO)
    log.propagate = False
    for h in list(log.handlers):
        log.removeHandler(h)
        h.close()
    if is_main:
        out.mkdir(parents=True, exist_ok=True)
        fh = logging.FileHandler(out / "train.log")
        fh.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        log.addHandler(fh)
    return log


def _write_metrics(path: Path, rows: list[dict]) -> None:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=METRIC_FIELDS)
    w.writeheader()
    for r in rows:
        w.writerow({k: r.get(k, "") for k in METRIC_FIELDS})
    write_text_atomic(path, buf.getvalue())


def _flat_loss_hint(train_loss: float, num_classes: int, init: str) -> str | None:
    """Caffe's bvlc_alexnet readme and many users report the loss stuck at ln(classes) with the paper's init."""
    chance = math.log(num_classes)
    if num_classes > 1 and abs(train_loss - chance) < 0.02 * chance:
        others = " or ".join(f"--init {i}" for i in ("caffe", "kaiming") if i != init)
        why = ("the known AlexNet plateau (Caffe used biases of 0.1 and std 0.005 in fc6/fc7 for this reason)"
               if init == "paper" else "a plateau")
        return (f"training loss {train_loss:.3f} is still at ln({num_classes}) = {chance:.3f} (chance). Deep nets often "
                f"sit there for a few epochs before they learn; with init={init!r} this is {why}. If it stays there, "
                f"try {others}, a lower --lr, or more epochs.")
    return None


def train(cfg: TrainConfig, *, resume: str | os.PathLike | None = None, rank: int = 0, world_size: int = 1,
          reduce: Callable | None = None, wrap_model: Callable | None = None, device: torch.device | None = None,
          printer: Callable[[str], None] | None = None, overwrite: bool = False) -> dict:
    """Train per ``cfg``; returns a summary dict (final/best errors, epochs, wall time, images/s, paths).

    resume: a run folder (or checkpoint file) to continue exactly.  A run folder that already holds a checkpoint is
    never overwritten silently: without ``resume`` that is an error unless ``overwrite=True``, which first removes the
    old run's files (checkpoints, metrics, log, TensorBoard events, curves) so nothing of two runs is mixed.
    rank/world_size/reduce/wrap_model are for data-parallel training (``alexnet.distributed``): ``reduce`` sums a float64 tensor across ranks and
    ``wrap_model`` wraps the model (DistributedDataParallel); only rank 0 writes files.
    """
    from .data import TrainTransform, dataset_stats, open_dataset

    cfg.validate()
    is_main = rank == 0
    out = Path(cfg.out)
    say = printer or (lambda s: tqdm.write(s) if is_main else None)

    ckpt = None
    if resume is not None:
        ckpt = load_checkpoint(resume)
        if not ckpt.resumable:
            raise CheckpointError(f"{resume}: not a resumable training checkpoint (no train state)")
        prev = ckpt.train_config
        for key in ("arch", "batch_size", "seed", "optimizer"):
            if prev.get(key) != getattr(cfg, key):
                raise ConfigError(f"--resume {resume}: {key} was {prev.get(key)!r} in that run, now "
                                  f"{getattr(cfg, key)!r}; resume with the same settings")
        if bool(prev.get("tower_devices")) != bool(cfg.tower_devices):
            was = "with" if prev.get("tower_devices") else "without"
            raise ConfigError(f"--resume {resume}: that run was trained {was} --tower-devices (its optimizer state "
                              "has that layout); resume it the same way")

    if cfg.deterministic:
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    dev = device or resolve_device(cfg.device)
    towers = None
    if cfg.tower_devices:
        from .parallel import parse_tower_devices
        towers = parse_tower_devices(cfg.tower_devices)
        dev = towers[0]          # the batch, the loss and the metrics live on tower 1's device
    prec = resolve_precision(dev, cfg.precision, cfg.channels_last)
    if dev.type == "cpu":   # reuse freed activations without page faults: 1.1-1.2x faster steps (docs/performance.md)
        tune_cpu_allocator()

    # Data: uint8 S x S images from the dataset, crops/flips/lighting as batched tensor ops on the device.
    probe = open_dataset(cfg.data, "train", image_size=cfg.resize, strict=cfg.strict_data, kind=cfg.dataset_kind)
    resize, crop = default_sizes(cfg.resize, cfg.crop, probe.image_size)
    train_set = probe if probe.image_size == resize else open_dataset(
        cfg.data, "train", image_size=resize, strict=cfg.strict_data, kind=cfg.dataset_kind)
    val_set = None
    if cfg.val_every:
        val_set = open_dataset(cfg.data, "val", image_size=resize, strict=cfg.strict_data, kind=cfg.dataset_kind)
        if list(val_set.classes) != list(train_set.classes):
            raise ConfigError(f"{cfg.data}: train and val have different classes "
                              f"({len(train_set.classes)} vs {len(val_set.classes)})")
    classes = list(train_set.classes)
    stats = dataset_stats(train_set, seed=cfg.seed)
    mean = list(stats.mean)
    normalize = cfg.normalize
    if normalize == "auto":
        # The paper's N(0, 0.01) init was designed for mean-subtracted 0-255 pixels; He init for unit variance.
        init = cfg.model.get("init") or ("default" if cfg.arch == "owt" else "paper")
        normalize = "paper" if init in ("paper", "caffe") else "standard"
    std = list(stats.std) if normalize == "standard" else [1.0] * len(mean)
    lighting = stats if (cfg.lighting and train_set.channels == 3) else None
    transform = TrainTransform(crop, mean=mean, std=std, flip=cfg.flip, random_crop=cfg.random_crop,
                               lighting=lighting, lighting_std=cfg.lighting_std)

    switches = dict(cfg.model)
    if "input_size" in switches and switches["input_size"] != crop:
        raise ConfigError(f"model input_size {switches['input_size']} differs from the crop size {crop}; set --crop")
    switches.update(input_size=crop, in_channels=train_set.channels)
    torch.manual_seed(cfg.seed)
    random.seed(cfg.seed)
    model = build_model(cfg.arch, num_classes=len(classes), **switches)
    if towers:
        from .parallel import TowerParallelAlexNet
        model = TowerParallelAlexNet(model, towers)   # checkpoints keep the grouped layout (its state_dict)
    model = to_layout(model if towers else model.to(dev), prec)
    optimizer = make_optimizer(model.parameters(), cfg.optimizer, lr=cfg.lr, momentum=cfg.momentum,
                               weight_decay=cfg.weight_decay)
    schedule = LRSchedule(optimizer, cfg.schedule, base_lr=cfg.lr, epochs=cfg.epochs, patience=cfg.patience,
                          max_reductions=cfg.max_reductions, step_size=cfg.step_size)

    start_epoch, start_batch, step = 0, 0, 0
    history: list[dict] = []
    best_err = math.inf
    aug_state = None
    if ckpt is not None:
        if ckpt.classes and list(ckpt.classes) != classes:
            raise ConfigError(f"--resume {resume}: that run had {len(ckpt.classes)} classes, {cfg.data} has "
                              f"{len(classes)} (first: {list(ckpt.classes)[:3]} vs {classes[:3]}); resume on "
                              "the same data")
        load_state_dict_checked(model, ckpt.state_dict, resume)
        optimizer.load_state_dict(ckpt.optimizer)
        schedule.load_state_dict(ckpt.schedule)
        start_epoch, start_batch, step = int(ckpt.epoch), int(ckpt.batch_in_epoch or 0), int(ckpt.step)
        history = [dict(r) for r in ckpt.history or []]
        best_err = float(ckpt.best_val_top1_error if ckpt.best_val_top1_error is not None else math.inf)
        aug_state = ckpt.aug_rng
        if start_batch == 0:
            _set_rng_state(ckpt.rng)
    run_model = wrap_model(model) if wrap_model else model
    if cfg.compile:
        run_model = torch.compile(run_model)

    prep = {"mean": mean, "std": std, "resize": resize, "crop": crop, "channels": train_set.channels,
            "channel_order": "RGB", "normalize": normalize, "stats": stats.to_dict()}
    # The run folder (and train.log) appear only once the data and the checkpoint were accepted: a user mistake
    # leaves no empty run folder behind.
    if resume is None and is_main:
        _claim_run_folder(out, overwrite)
    log = _setup_logging(out, is_main)
    if is_main:
        out.mkdir(parents=True, exist_ok=True)
        full = {"train": cfg.to_dict(), "model": model.config.to_dict(), "data": prep,
                "device": str(dev), "precision": prec.name, "channels_last": prec.channels_last,
                "world_size": world_size, "classes": classes, "torch": torch.__version__}
        write_text_atomic(out / "config.json", json.dumps(full, indent=2) + "\n")
        log.info("config: %s", json.dumps(full))
        say(f"alexnet train: {cfg.arch} on {cfg.data} ({len(train_set)} train / "
            f"{len(val_set) if val_set is not None else 0} val images, {len(classes)} classes), "
            f"{resize}->{crop} px, batch {cfg.batch_size}, {dev} {prec.name}"
            f"{' channels_last' if prec.channels_last else ''}, world {world_size}; run folder {out}")
        for split_set in (train_set, val_set):
            bad = getattr(split_set, "bad_files", []) if split_set is not None else []
            if bad:
                say(f"warning: {len(bad)} unreadable image(s) skipped; listed in {out / 'train.log'}")
                for path, reason in bad:
                    log.warning("skipped bad image %s: %s", path, reason)
        if ckpt is not None:
            say(f"resumed from {resume}: epoch {start_epoch + 1}, batch {start_batch}, step {step}")
    writer = None
    if is_main:
        try:
            from torch.utils.tensorboard import SummaryWriter
            writer = SummaryWriter(str(out / "tb"), purge_step=step if ckpt is not None else None)
        except ImportError:  # pragma: no cover - tensorboard is a dependency
            log.warning("tensorboard not installed: no event files")

    def checkpoint_record(epoch: int, batch_in_epoch: int, aug_generator, metrics: dict | None = None) -> Checkpoint:
        return Checkpoint(model_config=model.config, state_dict=model.state_dict(), classes=classes,
                          preprocessing=prep, metrics=metrics, train_config=cfg.to_dict(),
                          optimizer=optimizer.state_dict(), schedule=schedule.state_dict(), epoch=epoch,
                          batch_in_epoch=batch_in_epoch, step=step, rng=_rng_state(),
                          aug_rng=aug_generator.get_state() if aug_generator is not None else None,
                          history=history, best_val_top1_error=best_err)

    t_start = time.perf_counter()
    images_seen, train_seconds = 0, 0.0
    num_classes = len(classes)
    drop_last = len(train_set) >= 2 * cfg.batch_size * world_size
    for epoch in range(start_epoch, cfg.epochs):
        from .data import make_loader

        resuming_mid_epoch = ckpt is not None and epoch == start_epoch and start_batch > 0
        skip = start_batch if resuming_mid_epoch else 0
        loader = make_loader(train_set, cfg.batch_size // world_size, shuffle=True, seed=cfg.seed, epoch=epoch,
                             drop_last=drop_last, num_workers=cfg.workers, rank=rank, world_size=world_size,
                             skip_batches=skip)
        n_batches = len(loader) + skip
        if cfg.steps_per_epoch:
            n_batches = min(n_batches, cfg.steps_per_epoch)
        gen = torch.Generator().manual_seed(_epoch_seed(cfg.seed, epoch, rank))
        if world_size > 1 and not resuming_mid_epoch:
            torch.manual_seed(_epoch_seed(cfg.seed, epoch, rank) + 1)   # else every rank drops the same units
        it = iter(loader)
        if resuming_mid_epoch:
            _set_rng_state(ckpt.rng)         # after the iterator drew its worker seed, as in the original run
            if aug_state is not None:
                gen.set_state(aug_state)
        run_model.train()
        meter = TopKMeter()
        t_epoch = time.perf_counter()
        epoch_images = 0
        bar = tqdm(total=n_batches, initial=skip, desc=f"epoch {epoch + 1}/{cfg.epochs}", unit="batch",
                   disable=not (cfg.progress and is_main), leave=False, dynamic_ncols=True)
        for b in range(skip, n_batches):
            try:
                images, labels = next(it)
            except StopIteration:
                break
            images = images.to(dev, non_blocking=True)
            labels = labels.to(dev, non_blocking=True)
            x = to_layout(transform(images, generator=gen), prec)
            with autocast(dev, prec):
                logits = run_model(x)
            loss = F.cross_entropy(logits.float(), labels)
            if not torch.isfinite(loss):
                last = out / "last.pt"
                raise TrainingDiverged(
                    f"loss became {loss.item()} at epoch {epoch + 1}, batch {b + 1} (global step {step + 1}); "
                    f"stopped. Last good checkpoint: {last if last.exists() else 'none yet'}. "
                    f"Try a lower --lr (now {schedule.lr:g}).")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            meter.update(logits.detach().float().cpu(), labels.cpu(), loss.item())
            epoch_images += labels.shape[0] * world_size
            elapsed = time.perf_counter() - t_epoch
            bar.set_postfix(loss=f"{meter.loss:.3f}", err=f"{100 * meter.error(1):.1f}%",
                            img_s=f"{epoch_images / max(elapsed, 1e-9):.0f}", refresh=False)
            bar.update(1)
            if writer is not None and step % 10 == 0:
                writer.add_scalar("train/loss_step", loss.item(), step)
            if cfg.save_every and step % cfg.save_every == 0 and b + 1 < n_batches and is_main:
                save_checkpoint(out / "last.pt", checkpoint_record(epoch, b + 1, gen))
        bar.close()
        epoch_seconds = time.perf_counter() - t_epoch
        if reduce is not None:
            meter.load_state(reduce(meter.state()))
        images_seen += epoch_images
        train_seconds += epoch_seconds
        row = {"epoch": epoch + 1, "step": step, "lr": schedule.lr, "train_loss": meter.loss,
               "train_top1_error": meter.error(1), "train_top5_error": meter.error(5),
               "images_per_second": epoch_images / max(epoch_seconds, 1e-9), "epoch_seconds": epoch_seconds}
        val = None
        if val_set is not None and cfg.val_every and ((epoch + 1) % cfg.val_every == 0 or epoch + 1 == cfg.epochs):
            val = evaluate(model, val_set, crop=crop, mean=mean, std=std, crops=cfg.val_crops,
                           batch_size=max(1, cfg.batch_size // world_size), device=dev, precision=cfg.precision,
                           workers=cfg.workers,
                           progress=cfg.progress and is_main, max_batches=cfg.val_batches, rank=rank,
                           world_size=world_size, reduce=reduce)
            row.update(val_loss=val["loss"], val_top1_error=val["top1_error"], val_top5_error=val["top5_error"])
        history.append(row)
        is_best = val is not None and val["top1_error"] < best_err
        if is_best:
            best_err = val["top1_error"]
        lr_changed = schedule.epoch_end(epoch, val["top1_error"] if val else None)
        if is_main:
            msg = (f"epoch {epoch + 1}/{cfg.epochs}  lr {row['lr']:.0e}  train loss {row['train_loss']:.4f} "
                   f"top-1 err {100 * row['train_top1_error']:.1f}%")
            if val is not None:
                msg += f" | val loss {val['loss']:.4f} top-1 err {100 * val['top1_error']:.1f}%"
                if len(classes) > 5:   # with 5 classes or fewer top-5 error is 0 by definition
                    msg += f" top-5 err {100 * val['top5_error']:.1f}%"
            msg += f" | {row['images_per_second']:.0f} img/s, {epoch_seconds:.0f} s"
            if lr_changed:
                msg += f"  -> lr {schedule.lr:.0e}"
            say(msg)
            log.info(msg)
            hint = _flat_loss_hint(row["train_loss"], num_classes, model.config.init) if epoch < 3 else None
            if hint and epoch >= 1:
                say(f"warning: {hint}")
                log.warning(hint)
            if writer is not None:
                for k, v in row.items():
                    if k not in ("epoch", "step") and v is not None:
                        writer.add_scalar(f"epoch/{k}", v, epoch + 1)
                writer.flush()
            record = checkpoint_record(epoch + 1, 0, None, metrics=row)
            save_checkpoint(out / "last.pt", record)
            if is_best or (val is None and epoch + 1 == cfg.epochs):
                save_checkpoint(out / "best.pt", record)
            _write_metrics(out / "metrics.csv", history)
            from .viz import plot_curves
            plot_curves(history, out / "curves.png", title=f"{cfg.arch} on {Path(cfg.data).name}")
    if writer is not None:
        writer.close()
    wall = time.perf_counter() - t_start
    last = history[-1] if history else {}
    summary = {"run_dir": str(out), "epochs": len(history), "steps": step, "wall_seconds": wall,
               "images_per_second": images_seen / max(train_seconds, 1e-9) if train_seconds else None,
               "final": last, "best_val_top1_error": None if math.isinf(best_err) else best_err,
               "device": str(dev), "precision": prec.name,
               "files": sorted(str(p) for p in out.iterdir()) if is_main and out.exists() else []}
    return summary
