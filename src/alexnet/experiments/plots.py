"""The curves of an experiment: error vs epoch per variant, each seed a thin line and their mean a thick one."""
from __future__ import annotations

from pathlib import Path

from ..utils import atomic_output


def plot_variant_curves(runs: list[dict], out_png: Path, title: str, keys=("train_top1_error", "val_top1_error"),
                        labels=("training top-1 error (running, with dropout/augmentation)",
                                "validation top-1 error"), styles: dict | None = None,
                        threshold: float | None = None, chance: float | None = None) -> Path:
    """One panel per metric in ``keys``: error (%) vs epoch, a colour per variant, each seed a thin line and the
    mean over seeds a thick one.  ``runs``: dicts with variant, seed, history."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(keys), figsize=(max(7.5, 5.5 * len(keys)), 4.2), squeeze=False)
    for ax, key, label in zip(axes[0], keys, labels):
        _draw_curves(ax, runs, key, label, styles, threshold, chance)
    return _save(fig, title, out_png)



def plot_curve_panels(panels: list[tuple[str, list[dict]]], out_png: Path, title: str, key: str = "train_top1_error",
                      styles: dict | None = None, threshold: float | None = None,
                      chance: float | None = None) -> Path:
    """One panel per (panel title, runs) in ``panels`` (e.g. one per init), each drawing metric ``key`` as
    ``plot_variant_curves`` does; the panels share their y axis."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(panels), figsize=(max(7.5, 5.5 * len(panels)), 4.4), squeeze=False,
                             sharey=True)
    for ax, (label, runs) in zip(axes[0], panels):
        _draw_curves(ax, runs, key, label, styles, threshold, chance)
    return _save(fig, title, out_png)


def _save(fig, title: str, out_png: Path) -> Path:
    """Title, layout, written atomically, closed."""
    import matplotlib.pyplot as plt

    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    with atomic_output(out_png) as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)
    return out_png


def _draw_curves(ax, runs: list[dict], key: str, label: str, styles: dict | None, threshold: float | None,
                 chance: float | None) -> None:
    """Error (%) vs epoch on ``ax``: a colour per variant, each seed a thin line and the mean over seeds a thick
    one; the threshold (training metrics) and chance as horizontal lines."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    variants = list(dict.fromkeys(r["variant"] for r in runs))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
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
