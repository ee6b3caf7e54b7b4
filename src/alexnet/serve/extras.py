"""What the page shows besides one image's pass: the nearest training images (Figure 4), conv1's filters per tower
(Figure 3) and the training curves, each made by the library's own functions."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from ..data import read_image
from ..errors import ConfigError, DataError
from .render import image_url

NEIGHBOUR_LAYER = "fc7"   # Figure 4: "the Euclidean distance between their feature activation vectors in the last,
                          # 4096-dimensional hidden layer"


class NeighbourIndex:
    """Training images' fc7 vectors from ``alexnet features ... --layer fc7 -o index.npz``."""

    def __init__(self, path: str | os.PathLike):
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as z:
                if NEIGHBOUR_LAYER not in z.files or "paths" not in z.files:
                    raise ConfigError(f"--index {path}: no '{NEIGHBOUR_LAYER}' and 'paths' arrays (make it with "
                                      f"`alexnet features IMAGES --layer fc7 -o {path.name}`)")
                feats, paths = z[NEIGHBOUR_LAYER], z["paths"]
        except (OSError, ValueError) as e:
            raise ConfigError(f"--index {path}: not a .npz written by `alexnet features` ({e})") from None
        if feats.ndim != 2 or len(feats) != len(paths) or len(feats) == 0:
            raise ConfigError(f"--index {path}: expected fc7 as N x D with one path per row; got {feats.shape}")
        self.path = path
        self.features = torch.from_numpy(np.ascontiguousarray(feats, dtype=np.float32))
        self.paths = [str(p) for p in paths]

    def check_width(self, width: int) -> None:
        if self.features.shape[1] != width:
            raise ConfigError(f"--index {self.path}: fc7 vectors have {self.features.shape[1]} values; this model's "
                              f"fc7 has {width} (was the index made with another model?)")

    def nearest(self, query: torch.Tensor, k: int = 6, thumb: int = 96) -> list[dict]:
        """The ``k`` indexed images nearest to ``query`` (fc7) by Euclidean distance, with thumbnails."""
        d = torch.cdist(query.float().view(1, -1), self.features)[0]
        dist, idx = d.topk(min(k, len(d)), largest=False)
        out = []
        for di, i in zip(dist.tolist(), idx.tolist()):
            entry = {"path": self.paths[i], "distance": round(di, 4)}
            try:
                entry["image"] = image_url(read_image(self.paths[i], thumb))
            except DataError:
                entry["image"] = None   # the file moved since the index was made: the row still says which
            out.append(entry)
        return out


def render_figures(model: torch.nn.Module, run_dir: Path | None, folder: Path) -> dict[str, Path]:
    """conv1's filter grid (``viz.plot_filters``) and the run's curves (``viz.plot_curves``) as PNGs in ``folder``."""
    from ..viz import plot_curves, plot_filters, read_metrics

    out = {"filters": plot_filters(model, folder / "filters.png")}
    if run_dir is not None:
        try:
            rows = read_metrics(run_dir)
            if rows:
                out["curves"] = plot_curves(rows, folder / "curves.png", title=run_dir.name)
        except (ConfigError, KeyError, ValueError):
            pass   # a run folder without readable metrics: the page says there are no curves
    return out


__all__ = ["NeighbourIndex", "NEIGHBOUR_LAYER", "render_figures"]
