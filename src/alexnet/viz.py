"""Pictures a person would rather look at than read: training curves, filter grids, nearest neighbours."""
from __future__ import annotations

import math
import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from .curves import check_figure_output, plot_curves, read_metrics  # noqa: E402,F401 (re-exported)
from .errors import ConfigError  # noqa: E402
from .utils import atomic_output  # noqa: E402


def colour_specificity(filters) -> list[float]:
    """Per filter: the fraction of its energy in the colour-opponent part, 0 (grey) .. 1 (pure colour).

    A filter w (3 x k x k) splits into its luminance part (the channel mean, the same in R, G and B) and the
    rest; specificity = ||w - mean_c w||^2 / ||w - mean(w)||^2 (the DC offset removed first, so a constant tint
    does not count as structure).  The paper (Figure 3) saw tower 1's kernels largely colour-agnostic and tower 2's
    largely colour-specific.
    """
    import torch

    w = torch.as_tensor(filters).detach().double()
    if w.dim() != 4 or w.shape[1] != 3:
        raise ConfigError(f"colour_specificity needs RGB filters (N x 3 x k x k); got shape {tuple(w.shape)}")
    w = w - w.mean(dim=(1, 2, 3), keepdim=True)
    chroma = w - w.mean(dim=1, keepdim=True)
    total = w.pow(2).sum(dim=(1, 2, 3)).clamp_min(1e-30)
    return (chroma.pow(2).sum(dim=(1, 2, 3)) / total).tolist()


def tower_colour_specificity(model) -> list[float]:
    """Mean colour specificity of conv1's kernels per tower (tower t = kernels t*96/T .. (t+1)*96/T - 1)."""
    w = model.layer("conv1").weight.detach().cpu()
    towers = getattr(model.config, "towers", 1) or 1
    spec = colour_specificity(w)
    per = len(spec) // towers
    return [sum(spec[t * per:(t + 1) * per]) / per for t in range(towers)]


def conv1_change(model, *, seed: int, out_png: str | os.PathLike | None = None, title: str = "") -> dict:
    """How far conv1 moved from the initialisation ``train`` gave it (seeded with ``seed``): |W - W0| / |W0|, the
    colour specificity of W - W0 per tower, and (``out_png``) W - W0 drawn as ``plot_filters`` draws kernels."""
    import copy

    import torch

    from .model import model_from_config

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        initial = model_from_config(model.config)
    w = model.layer("conv1").weight.detach().cpu().float()
    w0 = initial.layer("conv1").weight.detach().float()
    change = copy.deepcopy(model).cpu()
    with torch.no_grad():
        change.layer("conv1").weight.copy_(w - w0)
    if out_png is not None:
        plot_filters(change, out_png, title=title)
    spec = tower_colour_specificity(change) if w.shape[1] == 3 else []
    return {"relative_change": float((w - w0).norm() / w0.norm()), "change_colour_specificity": spec}


def plot_filters(model, out_png: str | os.PathLike, title: str = "", overwrite: bool = True) -> Path:
    """conv1's kernels as a grid, one block per tower (the paper's Figure 3), with each tower's colour score."""
    import numpy as np

    check_figure_output(out_png, overwrite)
    w = model.layer("conv1").weight.detach().cpu().float().numpy()
    n, c = w.shape[:2]
    towers = getattr(model.config, "towers", 1) or 1
    per = n // towers
    cols = min(per, 16) if per >= 16 else per
    rows_per = math.ceil(per / cols)
    spec = tower_colour_specificity(model) if c == 3 else [float("nan")] * towers
    fig, axes = plt.subplots(towers, 1, figsize=(cols * 0.55 + 0.5, towers * (rows_per * 0.6 + 0.6)), squeeze=False)
    for t in range(towers):
        k = w.shape[-1]
        pad = 1
        grid = np.ones((rows_per * (k + pad) + pad, cols * (k + pad) + pad, 3))
        for i in range(per):
            f = w[t * per + i]
            f = (f - f.min()) / max(f.max() - f.min(), 1e-12)   # each kernel stretched to [0, 1]
            img = np.repeat(f, 3, axis=0) if c == 1 else f[:3]
            r, q = divmod(i, cols)
            y, x = pad + r * (k + pad), pad + q * (k + pad)
            grid[y:y + k, x:x + k] = img.transpose(1, 2, 0)
        ax = axes[t][0]
        ax.imshow(grid, interpolation="nearest")
        ax.set_axis_off()
        label = f"tower {t + 1}" if towers > 1 else "conv1"
        ax.set_title(f"{label}: {per} kernels {k}x{k}, colour specificity {spec[t]:.2f}", fontsize=9)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    with atomic_output(out_png, overwrite=overwrite) as tmp:
        fig.savefig(tmp, dpi=120)
    plt.close(fig)
    return Path(out_png)


def nearest_neighbours(query_feats, db_feats, k: int = 6):
    """Indices (Q x k) of the k database vectors nearest to each query by Euclidean distance (Figure 4: fc7)."""
    import torch

    q = torch.as_tensor(query_feats).float()
    d = torch.as_tensor(db_feats).float()
    dist = torch.cdist(q, d)
    k = min(k, d.shape[0])
    return dist.topk(k, dim=1, largest=False).indices.tolist()


def plot_neighbours(query_images, neighbour_images, out_png: str | os.PathLike, *, query_labels=None,
                    neighbour_labels=None, title: str = "", overwrite: bool = True) -> Path:
    """One row per query: the query image (first column) and its nearest training images by fc7 distance.

    Images are H x W x 3 uint8 arrays (or tensors C x H x W); labels are optional strings shown under each image.
    """
    import numpy as np

    check_figure_output(out_png, overwrite)

    def as_hwc(img):
        a = np.asarray(img)
        if a.ndim == 3 and a.shape[0] in (1, 3) and a.shape[-1] not in (1, 3):
            a = a.transpose(1, 2, 0)
        if a.shape[-1] == 1:
            a = np.repeat(a, 3, axis=-1)
        return a

    nq = len(query_images)
    nk = max(len(r) for r in neighbour_images) if neighbour_images else 0
    fig, axes = plt.subplots(nq, nk + 1, figsize=(1.6 * (nk + 1), 1.75 * nq), squeeze=False)
    for i in range(nq):
        row = [query_images[i]] + list(neighbour_images[i])
        labels = [query_labels[i] if query_labels else "query"] + (
            list(neighbour_labels[i]) if neighbour_labels else [""] * len(neighbour_images[i]))
        for j in range(nk + 1):
            ax = axes[i][j]
            ax.set_axis_off()
            if j < len(row):
                ax.imshow(as_hwc(row[j]))
                colour = "black"
                if j > 0 and query_labels and neighbour_labels:
                    colour = "green" if labels[j] == labels[0] else "red"
                ax.set_title(str(labels[j])[:16], fontsize=7, color=colour)
        axes[i][0].patch.set_edgecolor("blue")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    with atomic_output(out_png, overwrite=overwrite) as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)
    return Path(out_png)


def neighbours_figure(model, prep: dict, train_set, query_set, out_png: str | os.PathLike, *, queries: int = 8,
                      k: int = 6, max_db: int = 2000, batch_size: int = 64, seed: int = 0,
                      device: str = "auto", overwrite: bool = True) -> dict:
    """The paper's Figure 4: query images (from ``query_set``) and their k nearest ``train_set`` images by
    Euclidean distance of fc7 activations.  Returns the figure path and the fraction of neighbours that share
    the query's class (a number to compare runs by)."""
    import torch

    from .features import batch_features
    from .runtime import resolve_device

    for flag, value in (("--queries", queries), ("--k", k), ("--max-db", max_db)):
        if value < 1:
            raise ConfigError(f"{flag} must be >= 1; got {value}")
    check_figure_output(out_png, overwrite)
    dev = resolve_device(device) if not isinstance(device, torch.device) else device
    model = model.to(dev).eval()
    g = torch.Generator().manual_seed(seed)
    db_idx = torch.randperm(len(train_set), generator=g)[:max_db].tolist()
    q_idx = torch.randperm(len(query_set), generator=g)[:queries].tolist()
    layer = "fc7" if "fc7" in getattr(model, "layer_names", ()) else model.layer_names[-2]

    def feats(ds, idx):
        out = []
        for s in range(0, len(idx), batch_size):
            x = torch.stack([ds[i][0] for i in idx[s:s + batch_size]]).to(dev)
            out.append(batch_features(model, x, prep, [layer])[layer].flatten(1).cpu())
        return torch.cat(out)

    db, q = feats(train_set, db_idx), feats(query_set, q_idx)
    nn_idx = nearest_neighbours(q, db, k)
    classes = list(getattr(train_set, "classes", []))

    def label(ds, i):
        t = int(ds[i][1])
        return classes[t] if classes else str(t)

    q_images = [query_set[i][0] for i in q_idx]
    n_images = [[train_set[db_idx[j]][0] for j in row] for row in nn_idx]
    q_labels = [label(query_set, i) for i in q_idx]
    n_labels = [[label(train_set, db_idx[j]) for j in row] for row in nn_idx]
    same = sum(nl == ql for ql, row in zip(q_labels, n_labels) for nl in row) / max(1, sum(map(len, n_labels)))
    plot_neighbours(q_images, n_images, out_png, query_labels=q_labels, neighbour_labels=n_labels,
                    title=f"nearest training images by {layer} distance (same class: {100 * same:.0f}%)",
                    overwrite=overwrite)
    return {"figure": str(out_png), "layer": layer, "same_class_fraction": same, "queries": len(q_idx), "k": k}
