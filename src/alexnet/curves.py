"""A run's own outputs read back and drawn: ``metrics.csv`` as rows, ``curves.png`` from them.

The run folder (``runfolder.py``) draws the curves after every epoch, so this lives beside it in the engine's layer;
``alexnet.viz`` re-exports it with the other pictures.
"""
from __future__ import annotations

import csv
import math
import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from .errors import ConfigError  # noqa: E402
from .utils import atomic_output, check_output  # noqa: E402


def read_metrics(run_dir: str | os.PathLike) -> list[dict]:
    """The rows of ``RUN_DIR/metrics.csv`` as numbers (an empty cell: None); a malformed file is a one-line
    ConfigError naming the file, the line and the column."""
    path = Path(run_dir) / "metrics.csv"
    if not path.is_file():
        raise ConfigError(f"{path}: no metrics.csv (expected a run folder written by `alexnet train`)")
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            header = reader.fieldnames or []
            if "epoch" not in header:
                raise ConfigError(f"{path}: line 1: no 'epoch' column in the header (expected the metrics.csv "
                                  "written by `alexnet train`)")
            out = []
            for row in reader:
                line = reader.line_num
                if None in row:
                    raise ConfigError(f"{path}: line {line}: {len(header) + len(row[None])} fields, the header "
                                      f"has {len(header)}")
                values = {}
                for k, v in row.items():
                    try:
                        values[k] = float(v) if v not in ("", None) else None
                    except ValueError:
                        raise ConfigError(f"{path}: line {line}, column {k!r}: {v[:40]!r} is not a number") from None
                if values["epoch"] is None:
                    raise ConfigError(f"{path}: line {line}, column 'epoch': empty")
                out.append(values)
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not UTF-8 text (byte {e.start}); expected the metrics.csv written by "
                          "`alexnet train`") from None
    except csv.Error as e:
        raise ConfigError(f"{path}: malformed CSV: {e}") from None
    return out


def check_figure_output(path: str | os.PathLike, overwrite: bool = True) -> Path:
    """Before any work: ``path`` names a picture format matplotlib writes (by its extension) in a writable place
    (and, unless ``overwrite``, does not exist yet)."""
    path = Path(path)
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    supported = sorted(FigureCanvasAgg.get_supported_filetypes())
    ext = path.suffix.lower().lstrip(".")
    if ext not in supported:
        raise ConfigError(f"{path}: unknown picture format {path.suffix or '(no extension)'!r}; use one of "
                          f"{', '.join('.' + e for e in supported)} (e.g. .png)")
    return check_output(path, overwrite)


def plot_curves(rows: list[dict], out_png: str | os.PathLike, title: str = "", overwrite: bool = True) -> Path:
    """Loss and top-1/top-5 error per epoch, train (solid) and validation (dashed), lr changes marked."""
    check_figure_output(out_png, overwrite)
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
    with atomic_output(out_png, overwrite=overwrite) as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)
    return Path(out_png)


__all__ = ["read_metrics", "check_figure_output", "plot_curves"]
