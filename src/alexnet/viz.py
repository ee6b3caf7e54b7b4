"""Pictures a person would rather look at than read: training curves, filter grids, nearest neighbours."""
from __future__ import annotations

import csv
import math
import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from .errors import ConfigError  # noqa: E402
from .utils import atomic_output  # noqa: E402


def read_metrics(run_dir: str | os.PathLike) -> list[dict]:
    path = Path(run_dir) / "metrics.csv"
    if not path.is_file():
        raise ConfigError(f"{path}: no metrics.csv (expected a run folder written by `alexnet train`)")
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    out = []
    for r in rows:
        out.append({k: (float(v) if v not in ("", None) else None) for k, v in r.items()})
    return out


def plot_curves(rows: list[dict], out_png: str | os.PathLike, title: str = "") -> Path:
    """Loss and top-1/top-5 error per epoch, train (solid) and validation (dashed), lr changes marked."""
    if not rows:
        raise ConfigError("no epochs to plot (metrics.csv is empty)")
    ep = [r["epoch"] for r in rows]
    fig, (ax_loss, ax_err) = plt.subplots(1, 2, figsize=(11, 4))

    def series(key):
        pts = [(e, r.get(key)) for e, r in zip(ep, rows) if r.get(key) is not None]
        return [p[0] for p in pts], [p[1] for p in pts]

    ax_loss.plot(*series("train_loss"), "-o", ms=3, label="train")
    ax_loss.plot(*series("val_loss"), "--o", ms=3, label="val")
    ax_loss.set_xlabel("epoch"), ax_loss.set_ylabel("cross-entropy loss"), ax_loss.set_title("loss")
    for key, style, label in (("train_top1_error", "-", "train top-1"), ("val_top1_error", "--", "val top-1"),
                              ("train_top5_error", "-", "train top-5"), ("val_top5_error", "--", "val top-5")):
        xs, ys = series(key)
        if xs:
            ax_err.plot(xs, [100 * y for y in ys], style, marker="o", ms=3, label=label)
    ax_err.set_xlabel("epoch"), ax_err.set_ylabel("error (%)"), ax_err.set_title("top-1 / top-5 error")
    ax_err.set_ylim(0, 100)
    lrs = [r.get("lr") for r in rows]
    for i in range(1, len(lrs)):
        if lrs[i] is not None and lrs[i - 1] is not None and not math.isclose(lrs[i], lrs[i - 1]):
            for ax in (ax_loss, ax_err):
                ax.axvline(ep[i] - 0.5, color="grey", lw=0.8, ls=":")
            ax_err.text(ep[i] - 0.5, 95, f"lr {lrs[i]:.0e}", fontsize=7, rotation=90, va="top", color="grey")
    for ax in (ax_loss, ax_err):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    with atomic_output(out_png) as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)
    return Path(out_png)
