"""The paper's two-GPU model parallelism (section 3.2, Figure 2): one tower per device.

``TowerParallelAlexNet(model)`` splits a two-tower ``paper`` network (``PaperAlexNet`` with towers=2) across two
devices with the *same* weights: every layer's kernels/units are cut along their output dimension, tower t taking
the t-th half (conv1's 96 kernels -> 48 + 48; conv2/conv4/conv5's groups -> one ordinary conv per tower; conv3's
384 kernels -> 192 + 192; fc6/fc7/fc8's units -> halves).  Each tower normalises (LRN) and pools only its own maps,
and the towers exchange activations exactly where the paper's GPUs communicate:

    into conv3   each tower sends its pooled conv2 maps (128 x 13 x 13 at 224 px) to the other
    into fc6     each tower sends its pooled conv5 maps (128 x 6 x 6)
    into fc7     each tower sends its fc6 output (2048 units)
    into fc8     each tower sends its fc7 output (2048 units)

and nowhere else; tower 2's half of the logits is finally gathered on tower 1's device for the softmax.  Autograd
sends the gradients of these activations back along the same edges, so training moves the same bytes again in the
backward pass.  ``traffic_per_image()`` counts them.

Checkpoints stay in the grouped layout: ``state_dict()`` / ``load_state_dict()`` speak the grouped network's keys
and shapes (``conv2.weight`` is 256 x 48 x 5 x 5), so a checkpoint trained with towers on two devices loads into
the single-device ``paper`` network and back (``to_grouped_state_dict()``, ``from_grouped(model)``,
``to_grouped()``); ``tower_state_dict()`` is the native per-tower layout.
"""
from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import torch
from torch import nn

from .errors import ConfigError
from .layers import (
    LRN_ALPHA,
    LRN_BETA,
    LRN_CONVENTION_TABLE,
    LRN_SIZE,
    LocalResponseNorm,
    make_activation,
    make_max_pool,
)
from .model import PaperAlexNet, model_from_config

# The grouped network's parametrised layers; each is split along dim 0 (output kernels / units) between the towers.
LAYERS = ("conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7", "fc8")
# Where the towers exchange activations (the paper's GPU communication), in forward order.
EXCHANGES = ("conv3", "fc6", "fc7", "fc8")


def _halves(n: int) -> tuple[int, int]:
    """Split n output units between the towers: tower 1 takes the larger half when n is odd."""
    return (n + 1) // 2, n // 2


def parse_tower_devices(spec: str | Sequence) -> tuple[torch.device, torch.device]:
    """``"cuda:0,cuda:1"`` (the ``--tower-devices`` flag) -> two checked devices; ``"cpu,cpu"`` runs both on CPU."""
    from .runtime import resolve_device

    parts = [p.strip() for p in spec.split(",")] if isinstance(spec, str) else [str(p) for p in spec]
    if len(parts) != 2 or not all(parts):
        raise ConfigError(f"--tower-devices: expected two devices separated by a comma (e.g. cuda:0,cuda:1); "
                          f"got {spec!r}")
    if "auto" in parts:
        raise ConfigError(f"--tower-devices: name each device (cpu, cuda:N), not 'auto'; got {spec!r}")
    return resolve_device(parts[0]), resolve_device(parts[1])


def _move(x: torch.Tensor, device: torch.device) -> torch.Tensor:
    # Copies into a GPU are ordered on the streams by PyTorch, so they may overlap with compute (non_blocking).
    # A non-blocking copy *into host memory* could be read before it lands, so those stay synchronous.
    return x.to(device, non_blocking=device.type != "cpu")


class Tower(nn.Module):
    """One GPU's half of the paper network (Figure 2, top or bottom row)."""

    def __init__(self, cfg, index: int, pad1, fc_in: int, device):
        super().__init__()
        c1, c2, c3, c4, c5 = cfg.channels
        fc_out = _halves(cfg.fc_size)[index]
        classes = _halves(cfg.num_classes)[index]
        fc_full = cfg.fc_size
        kw = dict(device=device)

        def lrn():   # over this tower's own maps: the grouped network's LRN window stops at the tower boundary
            return LocalResponseNorm(LRN_SIZE, LRN_ALPHA, LRN_BETA, cfg.lrn_k, cfg.lrn_convention) if cfg.lrn \
                else nn.Identity()

        self.conv1 = nn.Conv2d(cfg.in_channels, c1 // 2, 11, stride=4, padding=pad1, **kw)  # 48 x 55 x 55
        self.relu1 = make_activation(cfg.activation)
        self.norm1 = lrn()
        self.pool1 = make_max_pool(cfg.overlap_pool)                                          # 48 x 27 x 27
        self.conv2 = nn.Conv2d(c1 // 2, c2 // 2, 5, padding=2, **kw)                          # 128 x 27 x 27
        self.relu2 = make_activation(cfg.activation)
        self.norm2 = lrn()
        self.pool2 = make_max_pool(cfg.overlap_pool)                                          # 128 x 13 x 13
        self.conv3 = nn.Conv2d(c2, c3 // 2, 3, padding=1, **kw)          # 192 x 13 x 13, reads both towers
        self.relu3 = make_activation(cfg.activation)
        self.conv4 = nn.Conv2d(c3 // 2, c4 // 2, 3, padding=1, **kw)                          # 192 x 13 x 13
        self.relu4 = make_activation(cfg.activation)
        self.conv5 = nn.Conv2d(c4 // 2, c5 // 2, 3, padding=1, **kw)                          # 128 x 13 x 13
        self.relu5 = make_activation(cfg.activation)
        self.pool5 = make_max_pool(cfg.overlap_pool)                                          # 128 x 6 x 6
        self.flatten = nn.Flatten()
        self.fc6 = nn.Linear(fc_in, fc_out, **kw)                         # 2048, reads both towers
        self.relu6 = make_activation(cfg.activation)
        self.drop6 = nn.Dropout(cfg.dropout)
        self.fc7 = nn.Linear(fc_full, fc_out, **kw)                       # 2048, reads both towers
        self.relu7 = make_activation(cfg.activation)
        self.drop7 = nn.Dropout(cfg.dropout)
        self.fc8 = nn.Linear(fc_full, classes, **kw)                      # 500 logits, reads both towers

    def stem(self, x: torch.Tensor) -> torch.Tensor:
        """conv1 -> conv2 (pooled), on this tower's maps only."""
        x = self.pool1(self.norm1(self.relu1(self.conv1(x))))
        return self.pool2(self.norm2(self.relu2(self.conv2(x))))

    def trunk(self, x: torch.Tensor) -> torch.Tensor:
        """conv3 (input: both towers' conv2 maps) -> conv5 (pooled), flattened."""
        x = self.relu4(self.conv4(self.relu3(self.conv3(x))))
        return self.flatten(self.pool5(self.relu5(self.conv5(x))))


class TowerParallelAlexNet(nn.Module):
    """The two-tower ``paper`` network with tower 1 on ``devices[0]`` and tower 2 on ``devices[1]``.

    >>> grouped = alexnet.build_model("paper")
    >>> net = TowerParallelAlexNet(grouped, devices=("cuda:0", "cuda:1"))   # same weights, copied and split
    >>> logits = net(images)                                              # logits on cuda:0

    Inputs may live anywhere (each tower copies them to its device); the logits come back on ``devices[0]``.
    In train mode each tower draws its own dropout masks, so only eval mode (or dropout=0) reproduces the grouped
    network's outputs exactly.
    """

    def __init__(self, model: PaperAlexNet, devices: Sequence = ("cpu", "cpu")):
        super().__init__()
        cfg = getattr(model, "config", None)
        if not isinstance(model, PaperAlexNet) or cfg.towers != 2:
            raise ConfigError("tower parallelism splits the two-tower paper network (arch 'paper', towers=2); "
                              f"got {getattr(cfg, 'arch', type(model).__name__)!r} with "
                              f"towers={getattr(cfg, 'towers', None)}")
        if cfg.lrn and not LRN_CONVENTION_TABLE[cfg.lrn_convention].per_tower:
            raise ConfigError(f"tower parallelism needs a per-tower LRN (lrn_convention paper or cuda-convnet); "
                              f"'{cfg.lrn_convention}' normalises across both towers, which the paper's GPUs never "
                              "exchanged")
        if cfg.num_classes < 2 or cfg.fc_size < 2:
            raise ConfigError("tower parallelism needs at least 2 classes and fc_size >= 2 (split across towers)")
        devs = tuple(torch.device(d) for d in devices)
        if len(devs) != 2:
            raise ConfigError(f"tower parallelism needs exactly two devices; got {list(devices)}")
        self.config = cfg
        self.feature_size = model.feature_size
        # Build on the meta device (no init work), then take the grouped weights' halves.
        self.towers = nn.ModuleList(Tower(cfg, t, model.conv1.padding, model.fc6.in_features, "meta")
                                    for t in range(2))
        self._load_grouped(model.state_dict(), devs, assign=True)
        self.train(model.training)
        self.last_traffic: dict[str, int] = {}   # bytes exchanged by the last forward, per stage

    # ---- layout conversion -------------------------------------------------------------------------------------

    @classmethod
    def from_grouped(cls, model: PaperAlexNet, devices: Sequence = ("cpu", "cpu")) -> "TowerParallelAlexNet":
        """The grouped single-device network's weights, split across ``devices`` (same as the constructor)."""
        return cls(model, devices)

    @property
    def devices(self) -> tuple[torch.device, torch.device]:
        """Each tower's device (read from its weights, so ``.to()`` / ``.cuda()`` keep the bookkeeping right)."""
        return tuple(t.conv1.weight.device for t in self.towers)

    def _splits(self, name: str) -> tuple[int, int]:
        return tuple(getattr(t, name).weight.shape[0] for t in self.towers)

    def _load_grouped(self, state: dict, devices=None, assign: bool = False) -> None:
        devices = devices or self.devices
        expected = {f"{n}.{k}" for n in LAYERS for k in ("weight", "bias")}
        missing, unexpected = sorted(expected - set(state)), sorted(set(state) - expected)
        if missing or unexpected:
            raise RuntimeError(f"grouped state_dict: missing {missing[:3]}, unexpected {unexpected[:3]}")
        for name in LAYERS:
            n0, n1 = self._splits(name)
            for kind in ("weight", "bias"):
                full = state[f"{name}.{kind}"]
                want = (n0 + n1, *getattr(self.towers[0], name).weight.shape[1:]) if kind == "weight" else (n0 + n1,)
                if tuple(full.shape) != tuple(want):
                    raise RuntimeError(f"grouped state_dict: {name}.{kind} has shape {tuple(full.shape)}, "
                                       f"expected {tuple(want)}")
                for t, part in enumerate(torch.split(full.detach(), (n0, n1), dim=0)):
                    layer = getattr(self.towers[t], name)
                    if assign:
                        setattr(layer, kind, nn.Parameter(part.to(devices[t], copy=True).contiguous()))
                    else:
                        getattr(layer, kind).data.copy_(part)

    def _gather(self, get, device=None) -> "OrderedDict[str, torch.Tensor]":
        """Grouped-layout tensors built from per-tower ones (``get(layer, "weight"|"bias")``) on ``device``."""
        device = torch.device(device) if device is not None else self.devices[0]
        out = OrderedDict()
        for name in LAYERS:
            for kind in ("weight", "bias"):
                parts = [get(getattr(t, name), kind) for t in self.towers]
                if any(p is None for p in parts):
                    continue
                out[f"{name}.{kind}"] = torch.cat([p.detach().to(device) for p in parts], dim=0)
        return out

    def to_grouped_state_dict(self, device=None) -> "OrderedDict[str, torch.Tensor]":
        """The weights in the grouped single-device layout (``PaperAlexNet.state_dict()`` keys and shapes)."""
        return self._gather(lambda m, k: getattr(m, k), device)

    def grouped_grads(self, device=None) -> "OrderedDict[str, torch.Tensor]":
        """The parameters' ``.grad`` in the grouped layout (layers without gradients are left out)."""
        return self._gather(lambda m, k: getattr(m, k).grad, device)

    def to_grouped(self, device=None) -> PaperAlexNet:
        """A single-device ``PaperAlexNet`` holding these weights (on ``device``, default tower 1's)."""
        device = torch.device(device) if device is not None else self.devices[0]
        with torch.device("meta"):
            model = PaperAlexNet(self.config)
        model.load_state_dict(self.to_grouped_state_dict(device), assign=True)
        return model.train(self.training)

    def load_grouped_state_dict(self, state: dict) -> None:
        """Copy grouped-layout weights (e.g. a ``paper`` checkpoint's ``model``) into the towers, in place."""
        with torch.no_grad():
            self._load_grouped(state)

    def tower_state_dict(self, *args, **kwargs):
        """The native per-tower layout (``towers.0.conv1.weight``, ...)."""
        return super().state_dict(*args, **kwargs)

    # The grouped layout is this module's checkpoint format: the trainer's ``model.state_dict()`` and
    # ``load_state_dict(ckpt["model"])`` then read and write the same files as the single-device network.
    def state_dict(self, *args, destination=None, prefix: str = "", keep_vars: bool = False):
        if args:
            raise TypeError("TowerParallelAlexNet.state_dict takes keyword arguments only")
        out = destination if destination is not None else OrderedDict()
        for k, v in self.to_grouped_state_dict().items():
            out[prefix + k] = v
        return out

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        self.load_grouped_state_dict(state_dict)
        return nn.modules.module._IncompatibleKeys([], [])

    # ---- forward -----------------------------------------------------------------------------------------------

    def _exchange(self, stage: str, a0: torch.Tensor, a1: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Each tower receives the other's activations: the inputs of ``stage`` on tower 1 and tower 2."""
        d0, d1 = a0.device, a1.device
        self.last_traffic[stage] = a0.numel() * a0.element_size() + a1.numel() * a1.element_size()
        return torch.cat([a0, _move(a1, d0)], dim=1), torch.cat([_move(a0, d1), a1], dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t0, t1 = self.towers
        d0, d1 = self.devices
        self.last_traffic = {}
        # Both towers see the whole image (the paper's GPUs each read the input batch).
        a0, a1 = t0.stem(_move(x, d0)), t1.stem(_move(x, d1))
        a0, a1 = self._exchange("conv3", a0, a1)
        a0, a1 = t0.trunk(a0), t1.trunk(a1)
        a0, a1 = self._exchange("fc6", a0, a1)
        a0, a1 = t0.drop6(t0.relu6(t0.fc6(a0))), t1.drop6(t1.relu6(t1.fc6(a1)))
        a0, a1 = self._exchange("fc7", a0, a1)
        a0, a1 = t0.drop7(t0.relu7(t0.fc7(a0))), t1.drop7(t1.relu7(t1.fc7(a1)))
        a0, a1 = self._exchange("fc8", a0, a1)
        z0, z1 = t0.fc8(a0), t1.fc8(a1)
        self.last_traffic["logits"] = z1.numel() * z1.element_size()
        return torch.cat([z0, _move(z1, d0)], dim=1)


def traffic_per_image(model_or_config=None, dtype: torch.dtype = torch.float32) -> dict:
    """Bytes the two towers exchange per image (``dtype`` activations), from a shape-only pass on the meta device.

    Returns ``{"exchanges": {stage: bytes, ...}, "forward": bytes, "logits": bytes, "backward": bytes,
    "train_step": bytes, "input": bytes}``: ``exchanges`` sums both directions at each of conv3/fc6/fc7/fc8;
    ``logits`` is tower 2's half of fc8 gathered on tower 1; ``backward`` is the gradients of all of these sent
    back; ``input`` is the image each tower reads (from the host, not between the devices; not in the sums).
    """
    from dataclasses import replace

    from .model import make_config

    if model_or_config is None:
        cfg = make_config("paper")
    elif isinstance(model_or_config, nn.Module):
        cfg = model_or_config.config
    else:
        cfg = model_or_config
    with torch.device("meta"):
        grouped = model_from_config(replace(cfg, init="default"))
    net = TowerParallelAlexNet(grouped, devices=("meta", "meta")).eval()
    x = torch.empty(1, cfg.in_channels, cfg.input_size, cfg.input_size, device="meta", dtype=dtype)
    with torch.no_grad():
        net.to(dtype)(x)
    ex = {k: v for k, v in net.last_traffic.items() if k in EXCHANGES}
    fwd = sum(ex.values())
    logits = net.last_traffic["logits"]
    size = torch.tensor([], dtype=dtype).element_size()
    return {"exchanges": ex, "forward": fwd, "logits": logits, "backward": fwd + logits,
            "train_step": 2 * (fwd + logits), "input": 2 * x.numel() * size, "dtype": str(dtype)}


__all__ = ["TowerParallelAlexNet", "Tower", "parse_tower_devices", "traffic_per_image", "EXCHANGES", "LAYERS"]
