"""Pictures for the page as PNG data URLs: input crops, activation maps (strongest channels per tower), fc units."""
from __future__ import annotations

import base64
import io

import numpy as np
import torch
from PIL import Image

# A perceptually uniform map (matplotlib's viridis, sampled at 256 points once) so that activation strength reads
# the same in every layer; matplotlib is imported lazily and only for this table.
_LUT: np.ndarray | None = None


def _lut() -> np.ndarray:
    global _LUT
    if _LUT is None:
        from matplotlib import colormaps

        _LUT = (colormaps["viridis"](np.linspace(0, 1, 256))[:, :3] * 255).astype(np.uint8)
    return _LUT


def png_data_url(rgb: np.ndarray) -> str:
    """uint8 H x W x 3 (or H x W) -> ``data:image/png;base64,...``."""
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG", optimize=False, compress_level=1)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def image_url(chw_uint8: torch.Tensor) -> str:
    """uint8 [C, H, W] (C = 1 or 3, RGB) -> data URL."""
    a = chw_uint8.numpy()
    return png_data_url(a[0] if a.shape[0] == 1 else np.ascontiguousarray(a.transpose(1, 2, 0)))


def _upscale(a: np.ndarray, target: int) -> np.ndarray:
    f = max(1, target // max(a.shape[:2]))
    return a.repeat(f, 0).repeat(f, 1) if f > 1 else a


def channel_strength(act: torch.Tensor) -> torch.Tensor:
    """Mean activation of each channel of a [C, H, W] map: how strongly the image drives that kernel."""
    return act.float().mean(dim=(1, 2))


def activation_mosaic(act: torch.Tensor, channels: list[int], *, cols: int = 4, cell: int = 56) -> str:
    """The maps of ``channels`` (each scaled to its own 0..max, as in the paper's visualisations) in a grid."""
    rows = -(-len(channels) // cols)
    tiles = []
    for c in channels:
        m = act[c].float().numpy()
        lo, hi = float(m.min()), float(m.max())
        idx = np.zeros_like(m, dtype=np.uint8) if hi - lo < 1e-12 else ((m - lo) / (hi - lo) * 255).astype(np.uint8)
        tiles.append(_upscale(_lut()[idx], cell))
    th, tw = tiles[0].shape[:2]
    pad = 2
    grid = np.full((rows * (th + pad) - pad, cols * (tw + pad) - pad, 3), 255, dtype=np.uint8)
    for i, t in enumerate(tiles):
        r, q = divmod(i, cols)
        grid[r * (th + pad):r * (th + pad) + th, q * (tw + pad):q * (tw + pad) + tw] = t
    return png_data_url(grid)


def conv_layer_view(name: str, act: torch.Tensor, towers: int, top: int = 8) -> dict:
    """A conv layer for the page: its shape and, per tower, the ``top`` channels that respond most strongly.

    Channel c of a two-tower layer belongs to tower c // (C / 2) (section 3.2: each GPU holds half the kernels).
    """
    c = act.shape[0]
    towers = towers if c % towers == 0 else 1
    per = c // towers
    strength = channel_strength(act)
    views = []
    for t in range(towers):
        s = strength[t * per:(t + 1) * per]
        k = min(top, per)
        order = (s.topk(k).indices + t * per).tolist()
        views.append({"tower": t + 1, "channels": order, "strength": [round(float(strength[i]), 4) for i in order],
                      "image": activation_mosaic(act, order, cols=4 if k >= 4 else k)})
    return {"name": name, "shape": list(act.shape), "towers": views}


def fc_layer_view(name: str, act: torch.Tensor, names: list[str] | None = None, top: int = 8) -> dict:
    """A fully connected layer for the page: its width and its ``top`` most active units (labels for the last)."""
    v = act.float().flatten()
    k = min(top, v.numel())
    vals, idx = v.topk(k)
    units = [{"unit": int(i), "value": round(float(a), 4), **({"label": names[int(i)]} if names else {})}
             for a, i in zip(vals.tolist(), idx.tolist())]
    return {"name": name, "shape": list(act.shape), "units": units, "max": round(float(v.max()), 4)}


__all__ = ["activation_mosaic", "channel_strength", "conv_layer_view", "fc_layer_view", "image_url",
           "png_data_url"]
