"""The run folder: everything a training run writes, owned by one object outside the training loop.

``RunFolder`` writes config.json, train.log, metrics.csv, tb/ (TensorBoard events), last.pt / best.pt and
curves.png, each at the hook where it changes (Lightning keeps logging and checkpointing in callbacks for the same
reason: the loop stays a loop). Only rank 0 of a data-parallel run writes; the other ranks get ``NullRunFolder``,
whose hooks do nothing.
"""
from __future__ import annotations

import csv
import io
import json
import logging
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .utils import prepare_output_dir, sweep_stale_temporaries, write_text_atomic

METRIC_FIELDS = ("epoch", "step", "lr", "train_loss", "train_top1_error", "train_top5_error", "val_loss",
                 "val_top1_error", "val_top5_error", "images_per_second", "epoch_seconds")
RUN_FILES = ("last.pt", "best.pt", "metrics.csv", "train.log", "config.json", "curves.png")
TB_EVERY = 10   # steps between TensorBoard loss points


class NullRunFolder:
    """What a non-main rank writes: nothing."""

    def __init__(self, out: str | Path, *_, **__):
        self.out = Path(out)

    def claim(self, overwrite: bool) -> None: ...
    def open(self, full_config: dict, resumed_step: int | None) -> None: ...
    def log(self, msg: str, level: int = logging.INFO) -> None: ...
    def step(self, step: int, loss: float) -> None: ...
    def save(self, name: str, payload: Any) -> None: ...
    def epoch_end(self, row: dict, history: list[dict], payload: Any, is_best: bool) -> None: ...
    def close(self) -> None: ...
    def abandon(self) -> None: ...

    def files(self) -> list[str]:
        return []


class RunFolder(NullRunFolder):
    """Rank 0's run folder. ``title`` heads the curves plot."""

    def __init__(self, out: str | Path, title: str = "", save: Callable[[Path, Any], Any] | None = None):
        super().__init__(out)
        self.title = title
        self._save = save
        self._logger: logging.Logger | None = None
        self._writer = None
        self._created = not self.out.exists()

    def claim(self, overwrite: bool) -> None:
        """Refuse to train into a folder holding another run's checkpoint, or clear that run when ``overwrite``."""
        if self.out.exists() and not self.out.is_dir():
            raise ConfigError(f"--out {self.out}: exists and is not a folder; choose a run folder path")
        if not (self.out / "last.pt").exists() and not (self.out / "best.pt").exists():
            return
        if not overwrite:
            raise ConfigError(f"{self.out} already holds a training run (last.pt); continue it with --resume "
                              f"{self.out}, start afresh with --overwrite, or choose another --out")
        for name in RUN_FILES:
            (self.out / name).unlink(missing_ok=True)
        shutil.rmtree(self.out / "tb", ignore_errors=True)

    def open(self, full_config: dict, resumed_step: int | None) -> None:
        """Create the folder, sweep a killed run's temporaries, write config.json, start train.log and TensorBoard."""
        prepare_output_dir(self.out)
        # atomic_output sweeps a name's stale temporaries only when that name is written again, and a resumed run
        # may never write best.pt (no better epoch): sweep them all here.
        sweep_stale_temporaries(self.out)
        self._logger = _file_logger(self.out)
        write_text_atomic(self.out / "config.json", json.dumps(full_config, indent=2) + "\n")
        self.log(f"config: {json.dumps(full_config)}")
        try:
            from torch.utils.tensorboard import SummaryWriter
            self._writer = SummaryWriter(str(self.out / "tb"), purge_step=resumed_step)
        except ImportError:  # pragma: no cover - tensorboard is a dependency
            self.log("tensorboard not installed: no event files", logging.WARNING)

    def log(self, msg: str, level: int = logging.INFO) -> None:
        if self._logger is not None:
            self._logger.log(level, "%s", msg)

    def step(self, step: int, loss: float) -> None:
        if self._writer is not None and step % TB_EVERY == 0:
            self._writer.add_scalar("train/loss_step", loss, step)

    def save(self, name: str, payload: Any) -> None:
        self._save(self.out / name, payload)

    def epoch_end(self, row: dict, history: list[dict], payload: Any, is_best: bool) -> None:
        """TensorBoard scalars, last.pt (and best.pt), metrics.csv and curves.png after each epoch."""
        if self._writer is not None:
            for k, v in row.items():
                if k not in ("epoch", "step") and v is not None:
                    self._writer.add_scalar(f"epoch/{k}", v, row["epoch"])
            self._writer.flush()
        self.save("last.pt", payload)
        if is_best:
            self.save("best.pt", payload)
        write_metrics(self.out / "metrics.csv", history)
        from .curves import plot_curves  # matplotlib is imported only by a run that writes a plot

        plot_curves(history, self.out / "curves.png", title=self.title)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        if self._logger is not None:
            for h in list(self._logger.handlers):
                self._logger.removeHandler(h)
                h.close()
            self._logger = None

    def abandon(self) -> None:
        """A run that failed before its first checkpoint leaves nothing behind in a folder it created."""
        self.close()
        if self._created and self.out.is_dir() and not (self.out / "last.pt").exists():
            shutil.rmtree(self.out, ignore_errors=True)

    def files(self) -> list[str]:
        return sorted(str(p) for p in self.out.iterdir()) if self.out.exists() else []


def _file_logger(out: Path) -> logging.Logger:
    log = logging.getLogger(f"alexnet.train.{out}")
    log.setLevel(logging.INFO)
    log.propagate = False
    for h in list(log.handlers):
        log.removeHandler(h)
        h.close()
    fh = logging.FileHandler(out / "train.log")
    fh.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log.addHandler(fh)
    return log


def write_metrics(path: Path, rows: list[dict]) -> None:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=METRIC_FIELDS)
    w.writeheader()
    for r in rows:
        w.writerow({k: r.get(k, "") for k in METRIC_FIELDS})
    write_text_atomic(path, buf.getvalue())


__all__ = ["RunFolder", "NullRunFolder", "METRIC_FIELDS", "RUN_FILES", "write_metrics"]
