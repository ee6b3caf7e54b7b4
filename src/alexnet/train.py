"""The training engine: a ``Trainer`` with short named stages, and ``train(cfg)``, the one call behind it.

``train(TrainConfig(...))`` runs the paper's recipe (section 5) by default: PaperSGD (batch 128, momentum 0.9,
weight decay 0.0005, lr 0.01 inside the velocity), lr divided by 10 when the validation error stops improving
(at most three times), random crops + flips + PCA lighting (section 4.1), validation on centre crops each epoch.

Stages, in the spirit of torchvision's references/classification/train.py: ``setup`` (data, model, optimizer,
schedule, resume), ``train_one_epoch``, ``validate``, ``fit`` (the epoch loop). What the run writes (config.json,
train.log, metrics.csv, tb/, last.pt, best.pt, curves.png) belongs to ``alexnet.runfolder.RunFolder``, called at
the stage boundaries; data parallelism travels as one ``DistContext``.

Exact resume: checkpoints hold model, optimizer, schedule, epoch/step, RNG states and the augmentation generator;
data order is a pure function of (seed, epoch), so ``resume`` continues the same run bitwise (on CPU with
``deterministic``), also from a mid-epoch checkpoint (``save_every``). No global state is left changed by a run:
the RNGs and the deterministic-algorithm switches are restored when ``fit`` returns.
"""
from __future__ import annotations

import dataclasses
import math
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from .checkpoint import Checkpoint, newest_training_state
from .config import TrainConfig
from .data.validate import printable
from .distributed import DistContext
from .errors import ConfigError, TrainingDiverged
from .metrics import TopKMeter
from .progress import progress_bar
from .recipes import LEGACY_VALUES, flat_loss_hint, inherit_run_settings, resolve_recipe
from .runfolder import NullRunFolder, RunFolder
from .runtime import (
    autocast,
    import_compiler_quietly,
    resolve_device,
    resolve_precision,
    rng_state,
    scoped_globals,
    set_rng_state,
    to_layout,
    tune_cpu_allocator,
)
from .train_data import TrainData, default_sizes, open_splits, prepare_data
from .utils import check_writable

# A resumed run must keep these (bias_decay: the optimizer's parameter groups; mean: the network's input).
RESUME_KEYS = ("arch", "batch_size", "seed", "optimizer", "weights", "bias_decay", "mean")


def epoch_seed(seed: int, epoch: int, rank: int = 0) -> int:
    # rank: every data-parallel process draws its own crops, flips, lighting and dropout (rank 0: as one process)
    return (seed * 1_000_003 + epoch * 7919 + rank * 104_729 + 12345) % (2 ** 63)


@dataclass
class TrainState:
    """Where the run is: what a checkpoint restores besides the weights and the optimizer."""

    epoch: int = 0                    # epochs finished
    batch: int = 0                    # batches finished in the current epoch (mid-epoch checkpoints)
    step: int = 0
    history: list = field(default_factory=list)
    best_err: float = math.inf
    rng: dict | None = None           # the RNG states to restore on resume
    aug_rng: Any = None               # the augmentation generator's state (mid-epoch resume)
    images: int = 0                   # images trained on in this process's run (for the summary's images/s)
    seconds: float = 0.0


class Trainer:
    """One training run of ``cfg``. ``fit(resume=..., overwrite=...)`` runs it; the stages are public for reuse.

    ``cfg`` may leave its recipe fields at None; ``setup`` resolves the recipe (``alexnet.recipes``) once it knows the
    number of training images, says which recipe it took and why, and from then on ``self.cfg`` is the resolved
    config.  model: an already-built network to train instead of a fresh ``cfg.arch`` (pretrained weights with a
    new head, say); it must have the data's number of classes."""

    def __init__(self, cfg: TrainConfig, *, dist: DistContext | None = None,
                 printer: Callable[[str], None] | None = None, model: torch.nn.Module | None = None):
        cfg.validate()
        if (dist is None or dist.is_main) and cfg.out:
            check_writable(cfg.out, folder=True)   # before any work: a read-only or file --out fails now
        self.cfg = cfg
        self.dist = dist or DistContext.single()
        self.is_main = self.dist.is_main
        self.say = printer or (lambda s: tqdm.write(s))
        if not self.is_main:
            self.say = lambda s: None
        self.state = TrainState()
        self.given_model = model
        self.recipe_line = ""
        self.start = None             # the pretrained weights the run starts from (--weights), once loaded
        self.started_from = None      # ... and their provenance, recorded in every checkpoint

    # -- setup ---------------------------------------------------------------------------------------------------
    def setup(self, resume: str | os.PathLike | None = None, overwrite: bool = False) -> None:
        """Data, model, optimizer, schedule and (when resuming) their saved state; then the run folder."""
        if self.cfg.weights:
            self.load_start_weights()
        splits = open_splits(self.cfg)
        found = newest_training_state(resume, self.say) if resume is not None else None
        if found is not None:   # unset recipe fields: the run's own values, not today's recipe's
            self.cfg = inherit_run_settings(self.cfg, found[1].train_config, found[1].model_config.to_dict())
        self.resolve(len(splits[0]))
        cfg = self.cfg
        ckpt = self.load_resume(resume, found) if found is not None else None
        self.device, self.towers = self._resolve_device()
        self.precision = resolve_precision(self.device, cfg.precision, cfg.channels_last)
        if self.device.type == "cpu":   # reuse freed activations without page faults (docs/performance.md)
            tune_cpu_allocator()
        self.data: TrainData = prepare_data(cfg, self.start.record.preprocessing if self.start else None, splits)
        self._build_model(copy_weights=ckpt is None)
        if ckpt is not None:
            self._restore(ckpt, resume)
        self.run_model = self.dist.wrap(self.model)
        if cfg.compile:
            import_compiler_quietly()
            self.run_model = torch.compile(self.run_model)
        # The run folder appears only once the data and the checkpoint were accepted: a user mistake leaves no
        # empty run folder behind.
        folder = RunFolder if self.is_main else NullRunFolder
        self.run = folder(cfg.out, title=f"{cfg.arch} on {Path(cfg.data).name}", save=_save_checkpoint)
        if resume is None:
            self.run.claim(overwrite)
        self.run.open(self._full_config(), self.state.step if ckpt is not None else None)
        self._announce(resume)

    def resolve(self, train_images: int) -> None:
        """Apply the recipe (``alexnet.recipes``): self.cfg gets every recipe field; ``_announce`` says which recipe
        was taken and why as the run's first output line (once every check passed: a user mistake prints only its
        error)."""
        self.cfg, self.recipe_line = resolve_recipe(self.cfg, train_images)
        world = self.dist.world_size
        if self.cfg.batch_size % world:
            raise ConfigError(f"batch size {self.cfg.batch_size} is not divisible by the {world} processes; the "
                              "global batch is split evenly across ranks (--batch-size)")

    def load_resume(self, resume: str | os.PathLike, found: tuple[Path, Checkpoint]) -> Checkpoint:
        """The checkpoint to continue (``found``: the newest complete training state of ``resume``, see
        ``checkpoint.newest_training_state``), checked against this config."""
        path, ckpt = found
        self.recipe_line = f"recipe: {self.cfg.recipe} (the resumed run's own settings)"
        prev = ckpt.train_config
        defaults = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
        for key in RESUME_KEYS:
            # a field newer than the checkpoint: that run did what the code did before the field existed
            was = prev.get(key, LEGACY_VALUES.get(key, defaults[key]))
            if was != getattr(self.cfg, key):
                raise ConfigError(f"--resume {resume}: {key} was {was!r} in that run, now "
                                  f"{getattr(self.cfg, key)!r}; resume with the same settings")
        if prev.get("epochs") not in (None, self.cfg.epochs) and self.cfg.schedule == "cosine":
            self.say(f"note: the cosine schedule now spans {self.cfg.epochs} epochs (that run: {prev['epochs']}), so "
                     "the learning rate rises again where the run continues")
        if prev.get("recipe") not in (None, self.cfg.recipe):   # checkpoints from before recipes: no "recipe"
            raise ConfigError(f"--resume {resume}: that run used --recipe {prev['recipe']}, this one "
                              f"{self.cfg.recipe}; resume with --recipe {prev['recipe']}")
        if bool(prev.get("tower_devices")) != bool(self.cfg.tower_devices):
            was = "with" if prev.get("tower_devices") else "without"
            raise ConfigError(f"--resume {resume}: that run was trained {was} --tower-devices (its optimizer state "
                              "has that layout); resume it the same way")
        self.resumed_from = path
        return ckpt

    def load_start_weights(self) -> None:
        """Read ``--weights`` (downloaded and converted once, see alexnet.weights); the run takes the weights'
        architecture and, for networks whose fc6 depends on it, their crop size."""
        from .weights import fixed_input, load_start_weights

        cfg = self.cfg
        self.start = load_start_weights(cfg.weights, progress=cfg.progress and self.is_main)
        arch = self.start.record.arch
        if cfg.arch != arch and cfg.arch != TrainConfig.__dataclass_fields__["arch"].default:
            raise ConfigError(f"--arch {cfg.arch} but --weights {cfg.weights} are weights of arch {arch!r}; leave "
                              "--arch out (the weights decide it)")
        changes: dict[str, Any] = {"arch": arch}
        if cfg.crop is None and fixed_input(arch):
            changes["crop"] = self.start.record.model_config.input_size
        self.cfg = dataclasses.replace(cfg, **changes)

    def _resolve_device(self):
        if self.cfg.tower_devices:
            from .parallel import parse_tower_devices
            towers = parse_tower_devices(self.cfg.tower_devices)
            return towers[0], towers   # the batch, the loss and the metrics live on tower 1's device
        return self.dist.device or resolve_device(self.cfg.device), None

    def _build_model(self, copy_weights: bool = True) -> None:
        from .model import build_model, model_from_config
        from .optim import LRSchedule, make_optimizer, trainable_groups

        cfg, data = self.cfg, self.data
        switches = dict(cfg.model)
        if "input_size" in switches and switches["input_size"] != data.crop:
            raise ConfigError(f"model input_size {switches['input_size']} differs from the crop size {data.crop}; "
                              "set --crop")
        switches.update(input_size=data.crop, in_channels=data.channels)
        torch.manual_seed(cfg.seed)
        random.seed(cfg.seed)
        if self.start is not None:
            from .weights import finetune_config, start_from_weights

            switches.pop("input_size")
            switches.pop("in_channels")
            # Built (and initialised, so the new last layer gets the network's init) from the weights' layout with
            # the data's classes; then every other tensor is copied from the weights.
            model = model_from_config(finetune_config(self.start.record.model_config, num_classes=len(data.classes),
                                                      input_size=data.crop, in_channels=data.channels,
                                                      switches=switches))
            if copy_weights:   # a resumed run restores its own weights and provenance instead
                from .evaluate import same_classes

                record_classes = self.start.record.classes
                keep = bool(record_classes) and same_classes(data.train_set, record_classes)   # ImageNet on ImageNet
                self.started_from = start_from_weights(model, self.start, data.classes, keep_head=keep)
        elif self.given_model is not None:
            model = self.given_model
            if model.config.num_classes != len(data.classes):
                raise ConfigError(f"the given model has {model.config.num_classes} classes, {cfg.data} has "
                                  f"{len(data.classes)}; replace its head (fc8) first")
        else:
            model = build_model(cfg.arch, num_classes=len(data.classes), **switches)
        if self.towers:
            from .parallel import TowerParallelAlexNet
            model = TowerParallelAlexNet(model, self.towers)   # checkpoints keep the grouped layout (its state_dict)
        self.model = to_layout(model if self.towers else model.to(self.device), self.precision)
        params = self.model.named_parameters()
        if cfg.freeze is not None or cfg.pretrained_lr_mult != 1:
            params = trainable_groups(self.model, freeze=cfg.freeze, pretrained_lr_mult=cfg.pretrained_lr_mult,
                                      bias_decay=cfg.bias_decay)
        self.optimizer = make_optimizer(params, cfg.optimizer, lr=cfg.lr, momentum=cfg.momentum,
                                        weight_decay=cfg.weight_decay, bias_decay=cfg.bias_decay)
        self.schedule = LRSchedule(self.optimizer, cfg.schedule, base_lr=cfg.lr, epochs=cfg.epochs,
                                   patience=cfg.patience, max_reductions=cfg.max_reductions,
                                   step_size=cfg.step_size,
                                   warmup_steps=round(cfg.warmup_epochs * self.batches_per_epoch()))

    def batches_per_epoch(self) -> int:
        """Training batches in one epoch of this process (what ``_epoch_batches`` will give), for the warm-up."""
        cfg, world = self.cfg, self.dist.world_size
        n, per_rank = len(self.data.train_set), cfg.batch_size // world
        batches = n // world // per_rank if self._drops_last() else math.ceil(n / world / per_rank)
        return min(batches, cfg.steps_per_epoch or batches)

    def _drops_last(self) -> bool:
        """An epoch drops its incomplete last batch only on data of two global batches or more."""
        return len(self.data.train_set) >= 2 * self.cfg.batch_size * self.dist.world_size

    def _restore(self, ckpt: Checkpoint, resume) -> None:
        from .checkpoint import load_state_dict_checked

        classes = self.data.classes
        if ckpt.classes and list(ckpt.classes) != classes:
            raise ConfigError(f"--resume {resume}: that run had {len(ckpt.classes)} classes, {self.cfg.data} "
                              f"has {len(classes)} (first: {list(ckpt.classes)[:3]} vs {classes[:3]}); resume on "
                              "the same data")
        load_state_dict_checked(self.model, ckpt.state_dict, resume)
        self.started_from = ckpt.started_from
        self.optimizer.load_state_dict(ckpt.optimizer)
        self.schedule.load_state_dict(ckpt.schedule)
        best = ckpt.best_val_top1_error
        self.state = TrainState(epoch=int(ckpt.epoch), batch=int(ckpt.batch_in_epoch or 0), step=int(ckpt.step),
                                history=[dict(r) for r in ckpt.history or []],
                                best_err=math.inf if best is None else float(best), rng=ckpt.rng,
                                aug_rng=ckpt.aug_rng)
        if self.state.batch == 0:
            set_rng_state(self.state.rng)

    def _full_config(self) -> dict:
        from .data.preprocessing import for_json

        return {"train": self.cfg.to_dict(), "model": self.model.config.to_dict(),
                "data": for_json(self.data.prep, full=False),
                "device": str(self.device), "precision": self.precision.name,
                "channels_last": self.precision.channels_last, "world_size": self.dist.world_size,
                "classes": self.data.classes, "torch": torch.__version__}

    def _announce(self, resume) -> None:
        cfg, data, s = self.cfg, self.data, self.state
        n_val = len(data.val_set) if data.val_set is not None else 0
        if self.recipe_line:
            self.say(self.recipe_line)
            self.run.log(self.recipe_line)
        if cfg.recipe == "finetune" and self.given_model is None and not cfg.weights:
            self.say("warning: --recipe finetune trains a pretrained network's new head; without pretrained weights "
                     "this network starts from its random init (for training from scratch: --recipe small)")
        self.say(f"alexnet train: {cfg.arch} on {cfg.data} ({len(data.train_set)} train / {n_val} val images, "
                 f"{len(data.classes)} classes), {data.resize}->{data.crop} px, batch {cfg.batch_size}, "
                 f"{self.device} {self.precision.name}{' channels_last' if self.precision.channels_last else ''}, "
                 f"world {self.dist.world_size}; run folder {cfg.out}")
        for split_set in (data.train_set, data.val_set):
            bad = getattr(split_set, "bad_files", []) if split_set is not None else []
            if bad and self.is_main:   # bad files, empty class folders, symlink loops: each says what it is
                first = f"{printable(bad[0][0])}: {bad[0][1]}"
                self.say(f"warning: {len(bad)} bad file(s) or folder(s) left out of the {split_set.split} split "
                         f"(first: {first}); all listed in {Path(cfg.out) / 'train.log'}")
                for path, reason in bad:
                    self.run.log(f"left out {printable(path)}: {reason}", 30)
        if self.started_from is not None and resume is None:
            f = self.started_from
            replaced = ", ".join(f["replaced"]) or "none (same classes)"
            self.say(f"started from --weights {f['spec']} ({f['arch']}, {f['file']}): kept {f['kept']} tensors, new "
                     f"last layer for {len(data.classes)} classes: {replaced}")
        if resume is not None:
            self.say(f"resumed from {self.resumed_from}: epoch {s.epoch + 1}, batch {s.batch}, step {s.step}")

    # -- checkpoints ---------------------------------------------------------------------------------------------
    def checkpoint(self, epoch: int, batch_in_epoch: int, aug_generator, metrics: dict | None = None) -> Checkpoint:
        """The training checkpoint: weights, optimizer, schedule and where the run is (built in one place)."""
        s = self.state
        return Checkpoint(model_config=self.model.config, state_dict=self.model.state_dict(),
                          classes=self.data.classes, preprocessing=self.data.prep, metrics=metrics,
                          train_config=self.cfg.to_dict(), optimizer=self.optimizer.state_dict(),
                          schedule=self.schedule.state_dict(), epoch=epoch, batch_in_epoch=batch_in_epoch,
                          step=s.step, rng=rng_state(),
                          aug_rng=aug_generator.get_state() if aug_generator is not None else None,
                          history=s.history, best_val_top1_error=s.best_err, started_from=self.started_from)

    # -- one epoch -----------------------------------------------------------------------------------------------
    def _epoch_batches(self, epoch: int):
        """(iterator, first batch, number of batches, augmentation generator) for ``epoch``."""
        from .data import make_loader

        cfg, s, world, rank = self.cfg, self.state, self.dist.world_size, self.dist.rank
        mid_epoch = s.rng is not None and epoch == s.epoch and s.batch > 0
        skip = s.batch if mid_epoch else 0
        loader = make_loader(self.data.train_set, cfg.batch_size // world, shuffle=True, seed=cfg.seed,
                             epoch=epoch, drop_last=self._drops_last(), num_workers=cfg.workers, rank=rank,
                             world_size=world, skip_batches=skip)
        n_batches = len(loader) + skip
        if cfg.steps_per_epoch:
            n_batches = min(n_batches, cfg.steps_per_epoch)
        gen = torch.Generator().manual_seed(epoch_seed(cfg.seed, epoch, rank))
        if world > 1 and not mid_epoch:
            torch.manual_seed(epoch_seed(cfg.seed, epoch, rank) + 1)   # else every rank drops the same units
        it = iter(loader)
        if mid_epoch:
            set_rng_state(s.rng)      # after the iterator drew its worker seed, as in the original run
            if s.aug_rng is not None:
                gen.set_state(s.aug_rng)
        return it, skip, n_batches, gen

    def train_one_epoch(self, epoch: int) -> dict:
        """Train one epoch; returns its metrics row (train loss and errors, images/s)."""
        cfg, s = self.cfg, self.state
        it, skip, n_batches, gen = self._epoch_batches(epoch)
        self.run_model.train()
        meter = TopKMeter()
        t0, images = time.perf_counter(), 0
        bar = progress_bar(total=n_batches, initial=skip, desc=f"epoch {epoch + 1}/{cfg.epochs}", unit="batch",
                   disable=not (cfg.progress and self.is_main), leave=False, dynamic_ncols=True)
        for b in range(skip, n_batches):
            try:
                images_u8, labels = next(it)
            except StopIteration:
                break
            logits, labels, loss = self._train_step(images_u8, labels, gen, epoch, b)
            meter.update(logits.detach().float().cpu(), labels.cpu(), loss)
            images += labels.shape[0] * self.dist.world_size
            bar.set_postfix(loss=f"{meter.loss:.3f}", err=f"{100 * meter.error(1):.1f}%",
                            img_s=f"{images / max(time.perf_counter() - t0, 1e-9):.0f}", refresh=False)
            bar.update(1)
            self.run.step(s.step, loss)
            if cfg.save_every and s.step % cfg.save_every == 0 and b + 1 < n_batches:
                self.run.save("last.pt", self.checkpoint(epoch, b + 1, gen))
        bar.close()
        seconds = time.perf_counter() - t0
        meter.load_state(self.dist.reduce(meter.state()))
        s.images += images
        s.seconds += seconds
        return {"epoch": epoch + 1, "step": s.step, "lr": self.schedule.lr, "train_loss": meter.loss,
                "train_top1_error": meter.error(1), "train_top5_error": meter.error(5),
                "images_per_second": images / max(seconds, 1e-9), "epoch_seconds": seconds}

    def _train_step(self, images, labels, gen, epoch: int, b: int):
        """Forward, loss, backward and the optimizer step on one batch of uint8 images."""
        images = images.to(self.device, non_blocking=True)
        labels = labels.to(self.device, non_blocking=True)
        x = to_layout(self.data.transform(images, generator=gen), self.precision)
        self.schedule.before_step(self.state.step)
        with autocast(self.device, self.precision):
            logits = self.run_model(x)
        loss = F.cross_entropy(logits.float(), labels)
        if not torch.isfinite(loss):
            last = Path(self.cfg.out) / "last.pt"
            raise TrainingDiverged(
                f"loss became {loss.item()} at epoch {epoch + 1}, batch {b + 1} (global step {self.state.step + 1}); "
                f"stopped. Last good checkpoint: {last if last.exists() else 'none yet'}. "
                f"Try a lower --lr (now {self.schedule.lr:g}).")
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.state.step += 1
        return logits, labels, loss.item()

    def validate(self, epoch: int) -> dict | None:
        """Validation loss and errors after ``epoch`` (0-based), or None when this epoch is not validated."""
        from .evaluate import evaluate

        cfg, data = self.cfg, self.data
        due = cfg.val_every and ((epoch + 1) % cfg.val_every == 0 or epoch + 1 == cfg.epochs)
        if data.val_set is None or not due:
            return None
        return evaluate(self.model, data.val_set, data.prep, crops=cfg.val_crops,
                        batch_size=max(1, cfg.batch_size // self.dist.world_size), device=self.device,
                        precision=cfg.precision, workers=cfg.workers, progress=cfg.progress and self.is_main,
                        max_batches=cfg.val_batches, dist=self.dist)

    # -- the loop ------------------------------------------------------------------------------------------------
    def fit(self, resume: str | os.PathLike | None = None, overwrite: bool = False) -> dict:
        """Set up, train ``cfg.epochs`` epochs (from the resumed state), return the summary."""
        t0 = time.perf_counter()
        self.run = NullRunFolder(self.cfg.out)
        with scoped_globals(self.cfg.deterministic):
            try:
                self.setup(resume, overwrite)
                for epoch in range(self.state.epoch, self.cfg.epochs):
                    row = self.train_one_epoch(epoch)
                    self.epoch_end(epoch, row, self.validate(epoch))
            except BaseException:
                self.run.abandon()
                raise
            finally:
                self.run.close()
        return self.summary(time.perf_counter() - t0)

    def epoch_end(self, epoch: int, row: dict, val: dict | None) -> None:
        """Record the epoch, step the schedule, report, and hand the checkpoint to the run folder."""
        s = self.state
        if val is not None:
            row.update(val_loss=val["loss"], val_top1_error=val["top1_error"], val_top5_error=val["top5_error"])
        s.history.append(row)
        is_best = val is not None and val["top1_error"] < s.best_err
        if is_best:
            s.best_err = val["top1_error"]
        lr_changed = self.schedule.epoch_end(epoch, val["top1_error"] if val else None)
        s.epoch, s.batch, s.rng = epoch + 1, 0, None
        self._report(epoch, row, val, lr_changed)
        final_without_val = val is None and epoch + 1 == self.cfg.epochs
        self.run.epoch_end(row, s.history, self.checkpoint(epoch + 1, 0, None, metrics=row),
                           is_best or final_without_val)

    def _report(self, epoch: int, row: dict, val: dict | None, lr_changed: bool) -> None:
        msg = (f"epoch {epoch + 1}/{self.cfg.epochs}  lr {row['lr']:.0e}  train loss {row['train_loss']:.4f} "
               f"top-1 err {100 * row['train_top1_error']:.1f}%")
        if val is not None:
            msg += f" | val loss {val['loss']:.4f} top-1 err {100 * val['top1_error']:.1f}%"
            if len(self.data.classes) > 5:   # with 5 classes or fewer top-5 error is 0 by definition
                msg += f" top-5 err {100 * val['top5_error']:.1f}%"
        msg += f" | {row['images_per_second']:.0f} img/s, {row['epoch_seconds']:.0f} s"
        if lr_changed:
            msg += f"  -> lr {self.schedule.lr:.0e}"
        self.say(msg)
        self.run.log(msg)
        hint = flat_loss_hint(row["train_loss"], len(self.data.classes), self.model.config.init, self.cfg.recipe)
        if hint and 1 <= epoch < 3:
            self.say(f"warning: {hint}")
            self.run.log(hint, 30)

    def summary(self, wall: float) -> dict:
        s = self.state
        return {"run_dir": str(self.cfg.out), "epochs": len(s.history), "steps": s.step, "wall_seconds": wall,
                "images_per_second": s.images / max(s.seconds, 1e-9) if s.seconds else None,
                "final": s.history[-1] if s.history else {},
                "best_val_top1_error": None if math.isinf(s.best_err) else s.best_err,
                "device": str(self.device), "precision": self.precision.name, "recipe": self.cfg.recipe,
                "files": self.run.files()}


def _save_checkpoint(path: Path, payload) -> None:
    from .checkpoint import save_checkpoint

    save_checkpoint(path, payload)


def train(cfg: TrainConfig, *, resume: str | os.PathLike | None = None, dist: DistContext | None = None,
          printer: Callable[[str], None] | None = None, overwrite: bool = False,
          model: torch.nn.Module | None = None) -> dict:
    """Train per ``cfg``; returns a summary dict (final/best errors, epochs, wall time, images/s, paths).

    resume: a run folder (or checkpoint file) to continue exactly.  A run folder that already holds a checkpoint is
    never overwritten silently: without ``resume`` that is an error unless ``overwrite=True``, which first removes the
    old run's files (checkpoints, metrics, log, TensorBoard events, curves) so nothing of two runs is mixed.
    dist: this process's place in a data-parallel run (``alexnet.distributed``); only rank 0 writes files.
    model: an already-built network to train instead of a fresh one (``Trainer``).
    The recipe fields ``cfg`` leaves at None come from its recipe (``alexnet.recipes``); the summary names it.
    """
    return Trainer(cfg, dist=dist, printer=printer, model=model).fit(resume=resume, overwrite=overwrite)


__all__ = ["TrainConfig", "Trainer", "TrainState", "train", "default_sizes", "flat_loss_hint", "scoped_globals"]
