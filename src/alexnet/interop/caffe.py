"""Caffe's ``bvlc_alexnet`` layers -> a ``Checkpoint`` of our ``paper`` network (Caffe's LRN convention: alpha/n,
k=1; 227x227 crops; BGR input).  Reading the file is ``caffemodel``'s job; writing it is ``convert``'s."""
from __future__ import annotations

import math
import os
from collections.abc import Sequence

import numpy as np
import torch

from ..checkpoint import Checkpoint
from ..errors import CheckpointError, ConfigError
from ..model import make_config
from .caffemodel import CAFFE_MEAN_BGR, CaffeLayer, read_caffe_mean, read_caffe_mean_image
from .classes import classes_for

CAFFE_CROP = 227     # bvlc_alexnet's crop_size: conv1 unpadded, 55x55 maps
CAFFE_RESIZE = 256   # Caffe warps to 256x256; we resize the shorter side to 256 (see convert_caffe)

_CONVS = ("conv1", "conv2", "conv3", "conv4", "conv5")
_FCS = ("fc6", "fc7", "fc8")
_KERNELS = {"conv1": 11, "conv2": 5, "conv3": 3, "conv4": 3, "conv5": 3}
_PADS = {"conv1": 0, "conv2": 2, "conv3": 1, "conv4": 1, "conv5": 1}
_STRIDES = {"conv1": 4, "conv2": 1, "conv3": 1, "conv4": 1, "conv5": 1}
_POOLED = 6          # 227 -> conv1 55 -> pool 27 -> pool 13 -> pool5 6
_CAFFE_LRN_DEFAULTS = {"local_size": 5, "alpha": 1e-4, "beta": 0.75, "norm_region": 0, "k": 1.0}


class _LayoutError(Exception):
    """The net is not bvlc_alexnet's layout; ``caffe_checkpoint`` adds the file name."""


def caffe_preprocessing(mean_bgr: Sequence[float] = CAFFE_MEAN_BGR, crop: int = CAFFE_CROP) -> dict:
    """The preprocessing of Caffe-converted weights: BGR input, raw 0-255 pixels minus the BGR mean, no scaling."""
    return {"mean": [float(m) for m in mean_bgr], "std": [1.0] * len(mean_bgr), "resize": CAFFE_RESIZE, "crop": crop,
            "channels": len(mean_bgr), "channel_order": "BGR", "normalize": "paper"}


def _tensor(a: np.ndarray) -> torch.Tensor:
    """A float32 tensor owning its memory (blobs are read-only views of the file's bytes)."""
    return torch.from_numpy(np.array(a, dtype=np.float32, order="C", copy=True))


def _squeeze_leading(a: np.ndarray, ndim: int) -> np.ndarray:
    """V1 blobs are always 4-D (num, channels, height, width): an fc weight is 1x1xOUTxIN, a bias 1x1x1xOUT."""
    while a.ndim > ndim and a.shape[0] == 1:
        a = a[0]
    return a


def _weighted_layers(layers: Sequence[CaffeLayer]) -> tuple[list[CaffeLayer], list[CaffeLayer]]:
    """(the five convolutions, the three inner-product layers) with weights, in file order."""
    weighted = [l for l in layers if l.blobs]
    convs = [l for l in weighted if l.type == "convolution"]
    fcs = [l for l in weighted if l.type == "innerproduct"]
    if len(convs) != 5 or len(fcs) != 3 or len(weighted) != 8:
        raise _LayoutError(f"expected AlexNet's 5 convolution and 3 inner-product layers with weights; found "
                           f"{[f'{l.name} ({l.type})' for l in weighted]}")
    if [id(l) for l in weighted[:5]] != [id(l) for l in convs]:
        raise _LayoutError(f"the inner-product layers must follow the five convolutions; order: "
                           f"{[l.name for l in weighted]}")
    return convs, fcs


def _check_norm_pool_order(layers: Sequence[CaffeLayer], convs: list[CaffeLayer]) -> None:
    """Layer order after conv1 and conv2: bvlc_alexnet normalises then pools (as the paper); CaffeNet
    (bvlc_reference_caffenet) pools first."""
    idx = {id(l): i for i, l in enumerate(layers)}
    has_lrn = any(l.type == "lrn" for l in layers)
    for a, b in ((convs[0], convs[1]), (convs[1], convs[2])):
        between = layers[idx[id(a)] + 1:idx[id(b)]]
        pools = [l for l in between if l.type == "pooling"]
        norms = [l for l in between if l.type == "lrn"]
        if pools and norms and idx[id(pools[0])] < idx[id(norms[0])]:
            raise _LayoutError(f"{pools[0].name} comes before {norms[0].name}: this is CaffeNet's order "
                               "(bvlc_reference_caffenet pools, then normalises); our paper network normalises "
                               "then pools, as the paper and bvlc_alexnet")
        if has_lrn and len(norms) != 1:
            raise _LayoutError(f"expected one LRN layer between {a.name} and {b.name} (as bvlc_alexnet); found "
                               f"{len(norms)}")


def _lrn_k(layers: Sequence[CaffeLayer]) -> float:
    """Caffe's k of the two LRN layers (section 3.3's size 5, alpha 1e-4, beta 0.75 are checked); 1.0 if none."""
    lrns = [l for l in layers if l.type == "lrn"]
    if lrns and len(lrns) != 2:
        raise _LayoutError(f"expected LRN after conv1 and conv2 only; found LRN layers {[l.name for l in lrns]}")
    ks = []
    for l in lrns:
        p = l.params.get("lrn") or _CAFFE_LRN_DEFAULTS
        if (p["local_size"] != 5 or not math.isclose(p["alpha"], 1e-4, rel_tol=1e-5)
                or not math.isclose(p["beta"], 0.75, rel_tol=1e-6) or p["norm_region"] != 0):
            raise _LayoutError(f"LRN layer {l.name} has local_size={p['local_size']} alpha={p['alpha']:g} "
                               f"beta={p['beta']:g} norm_region={p['norm_region']}; our network has AlexNet's 5, "
                               "1e-4, 0.75 across channels")
        ks.append(float(p["k"]))
    if len(set(ks)) > 1:
        raise _LayoutError("the two LRN layers have different k")
    return ks[-1] if ks else 1.0


def _check_pooling(layers: Sequence[CaffeLayer]) -> None:
    for l in layers:
        p = l.params.get("pool")
        if l.type == "pooling" and p and (p["pool"] != 0 or p["kernel"] != 3 or p["stride"] != 2):
            raise _LayoutError(f"pooling layer {l.name} is pool={p['pool']} kernel={p['kernel']} "
                               f"stride={p['stride']}; AlexNet uses overlapping max-pooling 3x3, stride 2")


def _conv_weights(ours: str, l: CaffeLayer, in_ch: int | None) -> tuple[np.ndarray, np.ndarray, int]:
    """(weights, biases, groups) of one convolution, checked against bvlc_alexnet's kernel, pad and stride."""
    if len(l.blobs) != 2:
        raise _LayoutError(f"convolution {l.name} has {len(l.blobs)} blobs; expected weights and biases")
    w = _squeeze_leading(l.blobs[0], 4)
    b = l.blobs[1].reshape(-1)
    k = _KERNELS[ours]
    if w.ndim != 4 or w.shape[2:] != (k, k):
        raise _LayoutError(f"{l.name} weights have shape {tuple(w.shape)}; AlexNet's {ours} has {k}x{k} kernels")
    if b.size != w.shape[0]:
        raise _LayoutError(f"{l.name} has {w.shape[0]} kernels but {b.size} biases")
    g = 1 if in_ch is None else in_ch // w.shape[1]
    if in_ch is not None and g * w.shape[1] != in_ch:
        raise _LayoutError(f"{l.name} kernels see {w.shape[1]} channels, which does not divide the {in_ch} maps of "
                           "the layer below")
    p = l.params.get("conv")
    if p:
        for key, want in (("pad", _PADS[ours]), ("stride", _STRIDES[ours])):
            if p[key] != want:
                raise _LayoutError(f"{l.name} has {key} {p[key]}; bvlc_alexnet's {ours} has {key} {want} (227x227 "
                                   "layout)")
        if in_ch is not None and p["group"] != g:
            raise _LayoutError(f"{l.name} declares group {p['group']} but its {tuple(w.shape)} weights imply {g}")
    return w, b, g


def _conv_state(convs: list[CaffeLayer], state: dict[str, torch.Tensor]) -> tuple[list[int], int]:
    """Fill ``state`` with conv1..conv5; returns (output channels per layer, towers)."""
    out_ch, groups = [], []
    for ours, l in zip(_CONVS, convs):
        w, b, g = _conv_weights(ours, l, out_ch[-1] if out_ch else None)
        out_ch.append(int(w.shape[0]))
        groups.append(g)
        state[f"{ours}.weight"] = _tensor(w)
        state[f"{ours}.bias"] = _tensor(b)
    # groups[0] is conv1 (always 1); conv3 sees both towers (section 3.2).
    towers = groups[1]
    if groups[2] != 1 or groups[3] != towers or groups[4] != towers or towers not in (1, 2):
        raise _LayoutError(f"groups per conv layer {groups}: expected conv2/conv4/conv5 grouped alike (1 or 2 "
                           "towers) and conv3 ungrouped, as bvlc_alexnet")
    return out_ch, towers


def _fc_state(fcs: list[CaffeLayer], conv5_maps: int, state: dict[str, torch.Tensor]) -> tuple[int, int]:
    """Fill ``state`` with fc6..fc8; returns (fc6/fc7 width, number of classes)."""
    shapes = []
    for ours, l in zip(_FCS, fcs):
        if len(l.blobs) != 2:
            raise _LayoutError(f"inner-product layer {l.name} has {len(l.blobs)} blobs; expected weights and biases")
        w = _squeeze_leading(l.blobs[0], 2)
        if w.ndim != 2:
            raise _LayoutError(f"{l.name} weights have shape {l.blobs[0].shape}; expected OUT x IN")
        if (l.params.get("ip") or {}).get("transpose"):
            w = w.T
        b = l.blobs[1].reshape(-1)
        if b.size != w.shape[0]:
            raise _LayoutError(f"{l.name} has {w.shape[0]} outputs but {b.size} biases")
        shapes.append(tuple(w.shape))
        state[f"{ours}.weight"] = _tensor(w)
        state[f"{ours}.bias"] = _tensor(b)
    (f6, i6), (f7, i7), (n8, i8) = shapes
    if i6 != conv5_maps * _POOLED * _POOLED:
        raise _LayoutError(f"{fcs[0].name} takes {i6} inputs; conv5's {conv5_maps} maps of {_POOLED}x{_POOLED} "
                           f"(227x227 input, bvlc_alexnet's layout) give {conv5_maps * _POOLED * _POOLED}")
    if (f7, i7) != (f6, f6) or i8 != f7:
        raise _LayoutError(f"fc shapes {shapes}: expected fc6 and fc7 of the same width (fc7 square) and fc8 on fc7")
    return f6, n8


def _preprocessing(mean: str | os.PathLike | Sequence[float] | None, in_channels: int, rgb: bool,
                   state: dict[str, torch.Tensor]) -> dict:
    """The record's preprocessing: a mean file is kept as the image it is (Caffe's ``mean_file``, subtracted
    cropped at each input crop's place), per-channel numbers as they are."""
    mean_vals = read_caffe_mean(mean)
    image = read_caffe_mean_image(mean)
    if len(mean_vals) not in (1, in_channels):
        raise ConfigError(f"mean has {len(mean_vals)} values for a network with {in_channels} input channels")
    if len(mean_vals) == 1:
        mean_vals = mean_vals * in_channels
    data = caffe_preprocessing(mean_vals)
    if image is not None:
        if image.shape[0] != in_channels:
            raise ConfigError(f"--mean {mean}: a {image.shape[0]}-channel mean image for a network with "
                              f"{in_channels} input channels")
        if image.shape[1:] != (CAFFE_RESIZE, CAFFE_RESIZE):
            raise ConfigError(f"--mean {mean}: the mean image is {image.shape[1]}x{image.shape[2]}; Caffe's images "
                              f"(and ours) are {CAFFE_RESIZE}x{CAFFE_RESIZE} before the {CAFFE_CROP} crop (or give "
                              "B,G,R numbers)")
        data["mean_image"] = _tensor(image)
    if rgb:
        if in_channels != 3:
            raise ConfigError("rgb=True (--rgb) needs a 3-channel network")
        # Reverse conv1's input channels (and the mean) once, so the network takes RGB like everything else here.
        state["conv1.weight"] = state["conv1.weight"].flip(1).contiguous()
        data["mean"] = data["mean"][::-1]
        if image is not None:
            data["mean_image"] = data["mean_image"].flip(0).contiguous()
        data["channel_order"] = "RGB"
    return data


def caffe_checkpoint(layers: Sequence[CaffeLayer], origin: str = "caffemodel", *,
                     mean: str | os.PathLike | Sequence[float] | None = None, rgb: bool = False,
                     classes: Sequence[str] | None = None) -> Checkpoint:
    """Our weights-only record (``paper`` network, Caffe LRN convention) for the layers of a bvlc_alexnet-style net.

    The five weighted convolutions and three inner-product layers are taken in file order (conv1..conv5,
    fc6..fc8; a fine-tuned net may rename fc8).  Channel counts, fc sizes, the number of classes and the towers
    (from conv2's 48-channel kernels for 96 inputs: groups=2) come from the blob shapes, so scaled-down nets
    convert too.  The layout must be bvlc_alexnet's: 227 crops, conv1 11x11/4 unpadded, conv2 5x5 pad 2,
    conv3-5 3x3 pad 1, LRN (size 5, alpha 1e-4, beta 0.75) after the ReLU and *before* the pooling of conv1/conv2.
    """
    state: dict[str, torch.Tensor] = {}
    try:
        convs, fcs = _weighted_layers(layers)
        _check_norm_pool_order(layers, convs)
        lrn_k = _lrn_k(layers)
        _check_pooling(layers)
        out_ch, towers = _conv_state(convs, state)
        fc_size, num_classes = _fc_state(fcs, out_ch[4], state)
    except _LayoutError as e:
        raise CheckpointError(f"{origin}: {e}") from None
    in_channels = int(convs[0].blobs[0].shape[-3])
    data = _preprocessing(mean, in_channels, rgb, state)
    cfg = make_config("paper" if towers == 2 else "paper-1tower", num_classes=num_classes, input_size=CAFFE_CROP,
                      in_channels=in_channels, lrn=any(l.type == "lrn" for l in layers), lrn_convention="caffe",
                      lrn_k=lrn_k, channels=tuple(out_ch), fc_size=fc_size, towers=towers, init="caffe")
    return Checkpoint(model_config=cfg, state_dict=state, classes=classes_for(num_classes, classes, origin),
                      preprocessing=data, source={"kind": "caffe", "layers": [l.name for l in layers if l.blobs]})
