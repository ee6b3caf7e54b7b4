"""The AlexNet family.  ``PaperAlexNet`` reads like the paper's section 3.5 / Figure 2.

Architectures (``build_model(arch, ...)``; ``list_archs()``):

``paper``          the ILSVRC network: two towers, LRN, overlapping pooling, dropout on fc6/fc7 outputs.
``paper-1tower``   the same layers without grouping (one GPU holding every kernel).
``owt``            torchvision's "one weird trick" AlexNet (64-192-384-256-256, no LRN), same state_dict keys.
``cifar``          Krizhevsky's four-layer cuda-convnet CIFAR-10 net (``layers-18pct``), used for Figure 1.

The 224 vs 227 trap: the paper says 224x224 inputs, but conv1 (11x11, stride 4, no padding) only gives the
paper's 55x55 maps for 227 inputs ((227 - 11) / 4 + 1 = 55).  We keep the paper's 224 crops and pad conv1 by 2
(floor((224 + 4 - 11) / 4) + 1 = 55), as torchvision does; ``input_size=227`` selects Caffe's layout
(227 crops, conv1 unpadded).  Both give 55-27-13-13-13 maps and 6x6x256 into fc6, and identical parameter
counts.  Other input sizes keep every kernel and stride and size fc6 from the resulting conv5 map
(e.g. 128 px -> 3x3x256 into fc6): that is our "scaled" paper network for small images.

Adding an architecture (the registry is the only place that knows the names):

1. write its ``nn.Module`` here (layer names ``conv1..``, ``fc..``; ``layer_names``; ``config``; shape comments),
2. register a builder under its name, with the switches whose defaults differ from ``ModelConfig``'s and a check
   of the switches it cannot take::

       @register_arch("mine", defaults=dict(towers=1, lrn=False), validate=_check_mine)
       def build_mine(cfg: ModelConfig) -> nn.Module:
           return MyNet(cfg)

3. name it in ``alexnet.choices.ARCHS`` (the CLI's ``--arch`` choices; checked against the registry at import),
4. give its parameter count in ``tests/test_model.py``'s ``EXPECTED_PARAMETERS``: the tests parametrized over
   the registry (build, forward shape, parameters, state_dict round trip, ``describe``) then cover it.
"""
from __future__ import annotations

import math
import types
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass

import torch
from torch import nn

from .choices import ACTIVATIONS, ARCHS, INITS, LRN_CONVENTIONS, TOWERS
from .errors import ConfigError
from .init import initialize
from .layers import (
    LRN_ALPHA,
    LRN_BETA,
    LRN_CONVENTION_TABLE,
    LRN_SIZE,
    LocalResponseNorm,
    SpatialResponseNorm,
    lrn_max_pool2d,
    make_activation,
    make_avg_pool,
    make_max_pool,
)

# The paper's layer table (section 3.5): kernels per conv layer, and units per fully connected layer.
PAPER_CHANNELS = (96, 256, 384, 384, 256)
PAPER_FC = 4096
# Layers whose input the two towers share (the GPUs communicate only here).
CROSS_TOWER = ("conv3", "fc6", "fc7", "fc8")
PAPER_DROPOUT = 0.5
# torchvision's one-weird-trick kernels per conv layer (Krizhevsky 2014).
OWT_CHANNELS = (64, 192, 384, 256, 256)


@dataclass(frozen=True)
class ModelConfig:
    """Everything that defines a network: each paper technique is a switch."""

    arch: str = "paper"
    num_classes: int = 1000
    input_size: int = 224
    in_channels: int = 3
    activation: str = "relu"           # section 3.1: relu | tanh
    lrn: bool = True                   # section 3.3
    lrn_convention: str = "paper"      # paper | cuda-convnet | caffe (layers.LRN_CONVENTION_TABLE)
    lrn_k: float | None = None         # None: the convention's k (paper, cuda-convnet: 2; caffe: 1)
    overlap_pool: bool = True          # section 3.4: 3x3/2 (True) or 2x2/2 (False)
    dropout: float = PAPER_DROPOUT     # section 4.2: on fc6 and fc7 outputs
    towers: int = 2                    # section 3.2
    channels: tuple = PAPER_CHANNELS   # conv1..conv5 kernels
    fc_size: int = PAPER_FC            # fc6 and fc7 units
    init: str = "paper"

    def __post_init__(self):
        if self.lrn_k is None and self.lrn_convention in LRN_CONVENTION_TABLE:   # record the k actually used
            object.__setattr__(self, "lrn_k", LRN_CONVENTION_TABLE[self.lrn_convention].k)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["channels"] = list(self.channels)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        known = {f for f in cls.__dataclass_fields__}
        unknown = set(d) - known
        if unknown:
            raise ConfigError(f"model config: unknown field(s) {sorted(unknown)}; expected some of {sorted(known)}")
        d = dict(d)
        if "channels" in d:
            d["channels"] = tuple(d["channels"])
        return cls(**d)


# --- the architecture registry -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class ArchEntry:
    """One registered architecture: its builder, the switches whose defaults differ from ``ModelConfig``'s, and a
    check of a ModelConfig for it (raises ConfigError)."""

    name: str
    builder: Callable[[ModelConfig], nn.Module]
    defaults: Mapping
    validate: Callable[[ModelConfig], None] | None = None
    min_input: int = 1                               # the smallest input size it takes (at its default switches)


ARCH_REGISTRY: dict[str, ArchEntry] = {}
IMAGENET_MIN_INPUT = 63   # the ImageNet nets' smallest input (conv1 11x11/4 padded by 2, 3x3/2 pools): pool5 1 x 1


def register_arch(name: str, *, defaults: Mapping | None = None,
                  validate: Callable[[ModelConfig], None] | None = None, min_input: int = 1):
    """Decorator registering ``builder(cfg) -> nn.Module`` as architecture ``name`` (named in choices.ARCHS)."""
    fields = set(ModelConfig.__dataclass_fields__) - {"arch"}
    defaults = dict(defaults or {})
    if name not in ARCHS:
        raise RuntimeError(f"register_arch: {name!r} is not in alexnet.choices.ARCHS; name it there first")
    if name in ARCH_REGISTRY:
        raise RuntimeError(f"register_arch: {name!r} is registered twice")
    if set(defaults) - fields:
        raise RuntimeError(f"register_arch({name!r}): defaults {sorted(set(defaults) - fields)} are not "
                           "ModelConfig fields")

    def decorator(builder: Callable[[ModelConfig], nn.Module]):
        ARCH_REGISTRY[name] = ArchEntry(name, builder, types.MappingProxyType(defaults), validate, min_input)
        return builder

    return decorator


def list_archs() -> tuple[str, ...]:
    """The registered architecture names, in ``choices.ARCHS`` order."""
    return tuple(ARCH_REGISTRY)


def get_arch(name: str) -> ArchEntry:
    if name not in ARCH_REGISTRY:
        raise ConfigError(f"unknown architecture {name!r}; choose one of {', '.join(ARCH_REGISTRY)}")
    return ARCH_REGISTRY[name]


def _conv_out(size: int, kernel: int, stride: int = 1, pad: int = 0) -> int:
    return (size + 2 * pad - kernel) // stride + 1


def _pool_out(size: int, overlap: bool, ceil_mode: bool = False) -> int:
    k = 3 if overlap else 2
    if ceil_mode:
        return math.ceil((size - k) / 2) + 1
    return (size - k) // 2 + 1


class _Named(nn.Module):
    """Models that expose the literature's layer names (conv1..conv5, fc6..fc8)."""

    layer_names: tuple = ()
    config: ModelConfig

    def layer(self, name: str) -> nn.Module:
        modules = dict(self.named_modules())
        if name not in modules:
            raise ConfigError(f"no layer {name!r} in {self.config.arch}; layers: {', '.join(self.layer_names)}")
        return modules[name]


class PaperAlexNet(_Named):
    """The paper's network (section 3.5), with towers=2 (``paper``) or towers=1 (``paper-1tower``).

    Channel c of conv1's 96 output maps belongs to tower c // 48: conv2, conv4, conv5 are grouped
    convolutions (each tower sees only its own maps), conv3 and the FC layers see both towers.
    """

    layer_names = ("conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7", "fc8")

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.config = cfg
        c1, c2, c3, c4, c5 = cfg.channels
        t = cfg.towers
        for name, c in zip(("conv1", "conv2", "conv3", "conv4", "conv5"), cfg.channels):
            if c % t:
                raise ConfigError(f"{name} has {c} kernels, not divisible by towers={t}")
        # 224 input: pad conv1 by 2 so that its maps are 55x55 as in Figure 2; 227 (Caffe): no padding.
        pad1 = 0 if cfg.input_size == 227 else 2
        convention = LRN_CONVENTION_TABLE[cfg.lrn_convention]
        lrn_groups = t if convention.per_tower else 1   # paper, cuda-convnet: each GPU normalises its own maps

        def lrn():
            return LocalResponseNorm(LRN_SIZE, LRN_ALPHA, LRN_BETA, cfg.lrn_k, cfg.lrn_convention, lrn_groups)

        s = cfg.input_size
        self.conv1 = nn.Conv2d(cfg.in_channels, c1, 11, stride=4, padding=pad1)   # 96 x 55 x 55
        self.relu1 = make_activation(cfg.activation)
        self.norm1 = lrn() if cfg.lrn else nn.Identity()
        self.pool1 = make_max_pool(cfg.overlap_pool)                              # 96 x 27 x 27
        s = _pool_out(_conv_out(s, 11, 4, pad1), cfg.overlap_pool)
        self.conv2 = nn.Conv2d(c1, c2, 5, padding=2, groups=t)                    # 256 x 27 x 27
        self.relu2 = make_activation(cfg.activation)
        self.norm2 = lrn() if cfg.lrn else nn.Identity()
        self.pool2 = make_max_pool(cfg.overlap_pool)                              # 256 x 13 x 13
        s = _pool_out(s, cfg.overlap_pool)
        self.conv3 = nn.Conv2d(c2, c3, 3, padding=1)                              # 384 x 13 x 13 (both towers)
        self.relu3 = make_activation(cfg.activation)
        self.conv4 = nn.Conv2d(c3, c4, 3, padding=1, groups=t)                    # 384 x 13 x 13
        self.relu4 = make_activation(cfg.activation)
        self.conv5 = nn.Conv2d(c4, c5, 3, padding=1, groups=t)                    # 256 x 13 x 13
        self.relu5 = make_activation(cfg.activation)
        self.pool5 = make_max_pool(cfg.overlap_pool)                              # 256 x 6 x 6
        s = _pool_out(s, cfg.overlap_pool)
        if s < 1:
            raise ConfigError(f"input_size={cfg.input_size} is too small for the paper network "
                              f"(conv5's pooled map would be empty); use at least {IMAGENET_MIN_INPUT}")
        self.feature_size = s
        self.flatten = nn.Flatten()
        self.fc6 = nn.Linear(c5 * s * s, cfg.fc_size)                             # 4096 (both towers)
        self.relu6 = make_activation(cfg.activation)
        self.drop6 = nn.Dropout(cfg.dropout)   # on fc6's output, as the paper (torchvision: on its input)
        self.fc7 = nn.Linear(cfg.fc_size, cfg.fc_size)                            # 4096
        self.relu7 = make_activation(cfg.activation)
        self.drop7 = nn.Dropout(cfg.dropout)
        self.fc8 = nn.Linear(cfg.fc_size, cfg.num_classes)                        # 1000-way softmax (logits)
        initialize(self, cfg.init, activation=cfg.activation)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        # pool(norm(.)), fused in training steps so the LRN's output is not kept for backward (-214 MB at batch 128;
        # falls back to the two modules whenever hooks, no-grad, export or compile could tell the difference)
        x = lrn_max_pool2d(self.relu1(self.conv1(x)), self.norm1, self.pool1)
        x = lrn_max_pool2d(self.relu2(self.conv2(x)), self.norm2, self.pool2)
        x = self.relu3(self.conv3(x))
        x = self.relu4(self.conv4(x))
        return self.pool5(self.relu5(self.conv5(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.flatten(self.forward_features(x))
        x = self.drop6(self.relu6(self.fc6(x)))
        x = self.drop7(self.relu7(self.fc7(x)))
        return self.fc8(x)


def _check_paper(cfg: ModelConfig) -> None:
    if cfg.towers not in TOWERS:
        raise ConfigError(f"towers must be 1 or 2; got {cfg.towers}")
    if len(cfg.channels) != 5 or min(cfg.channels) < 1:
        raise ConfigError(f"channels must be 5 positive kernel counts (conv1..conv5); got {cfg.channels}")
    if cfg.fc_size < 1:
        raise ConfigError(f"fc_size must be >= 1; got {cfg.fc_size}")


def _check_paper_1tower(cfg: ModelConfig) -> None:
    if cfg.towers != 1:
        raise ConfigError("paper-1tower has towers=1 by definition; use arch 'paper' for two towers")
    _check_paper(cfg)


@register_arch("paper", defaults=dict(towers=2), validate=_check_paper, min_input=IMAGENET_MIN_INPUT)
def build_paper(cfg: ModelConfig) -> nn.Module:
    """The ILSVRC network of section 3.5: two towers (or one with ``towers=1``)."""
    return PaperAlexNet(cfg)


@register_arch("paper-1tower", defaults=dict(towers=1), validate=_check_paper_1tower, min_input=IMAGENET_MIN_INPUT)
def build_paper_1tower(cfg: ModelConfig) -> nn.Module:
    """The same layers without grouping: one GPU holding every kernel."""
    return PaperAlexNet(cfg)


class OwtAlexNet(_Named):
    """torchvision's AlexNet ("One weird trick", Krizhevsky 2014): identical module tree and state_dict keys
    (``features.0`` ... ``classifier.6``), so torchvision checkpoints load with ``strict=True``.
    The literature names are aliases: ``dict(model.named_modules())["conv3"] is model.features[6]``.
    """

    layer_names = ("conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7", "fc8")
    _aliases = {"conv1": "features.0", "conv2": "features.3", "conv3": "features.6", "conv4": "features.8",
                "conv5": "features.10", "fc6": "classifier.1", "fc7": "classifier.4", "fc8": "classifier.6",
                "relu1": "features.1", "pool1": "features.2", "relu2": "features.4", "pool2": "features.5",
                "relu3": "features.7", "relu4": "features.9", "relu5": "features.11", "pool5": "features.12",
                "drop6": "classifier.0", "relu6": "classifier.2", "drop7": "classifier.3",
                "relu7": "classifier.5"}

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.config = cfg
        act = cfg.activation
        self.features = nn.Sequential(
            nn.Conv2d(cfg.in_channels, 64, kernel_size=11, stride=4, padding=2), make_activation(act),
            make_max_pool(cfg.overlap_pool),
            nn.Conv2d(64, 192, kernel_size=5, padding=2), make_activation(act), make_max_pool(cfg.overlap_pool),
            nn.Conv2d(192, 384, kernel_size=3, padding=1), make_activation(act),
            nn.Conv2d(384, 256, kernel_size=3, padding=1), make_activation(act),
            nn.Conv2d(256, 256, kernel_size=3, padding=1), make_activation(act), make_max_pool(cfg.overlap_pool),
        )
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        self.classifier = nn.Sequential(
            nn.Dropout(p=cfg.dropout), nn.Linear(256 * 6 * 6, 4096), make_activation(act),
            nn.Dropout(p=cfg.dropout), nn.Linear(4096, 4096), make_activation(act),
            nn.Linear(4096, cfg.num_classes),
        )
        initialize(self, cfg.init, activation=act)

    def named_modules(self, memo=None, prefix: str = "", remove_duplicate: bool = True) -> Iterator:
        yield from super().named_modules(memo, prefix, remove_duplicate)
        if prefix == "" and memo is None:
            base = dict(super().named_modules())
            for alias, path in self._aliases.items():
                yield alias, base[path]

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.avgpool(self.features(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.forward_features(x), 1))


def _check_owt(cfg: ModelConfig) -> None:
    if cfg.lrn:
        raise ConfigError("owt (torchvision's AlexNet) has no LRN; use arch 'paper' for LRN")
    if cfg.towers != 1:
        raise ConfigError("owt (torchvision's AlexNet) has one tower; use arch 'paper' for two towers")
    if cfg.channels != OWT_CHANNELS:
        raise ConfigError("owt's channels are fixed at 64-192-384-256-256 (torchvision's layout)")
    if cfg.input_size < IMAGENET_MIN_INPUT:   # pool5 would be empty (torch's own error comes only at the first batch)
        raise ConfigError(f"input_size={cfg.input_size} is too small for owt; use at least {IMAGENET_MIN_INPUT}")


@register_arch("owt", defaults=dict(towers=1, lrn=False, init="default", channels=OWT_CHANNELS),
               validate=_check_owt, min_input=IMAGENET_MIN_INPUT)
def build_owt(cfg: ModelConfig) -> nn.Module:
    """torchvision's AlexNet ("one weird trick"), with its state_dict keys."""
    return OwtAlexNet(cfg)


class CifarNet(_Named):
    """Krizhevsky's four-layer CIFAR-10 network (cuda-convnet ``layers-18pct``), the net of Figure 1.

    conv1 5x5x32 -> max-pool 3/2 -> rnorm1 -> conv2 5x5x32 -> avg-pool 3/2 -> rnorm2 -> conv3 5x5x64 ->
    avg-pool 3/2 -> fc10: each block pools first, then normalises (``layers-18pct.cfg``: ``[rnorm2]
    inputs=pool2``; Caffe's ``cifar10_full``: ``norm2`` on ``pool2``).  cuda-convnet pools with ceil rounding
    (32 -> 16 -> 8 -> 4).  Its response normalisation (``rnorm``) is over 3x3 neighbourhoods within a map
    (scale 5e-5 / 9, power 0.75); with ``lrn=False`` these layers are identities.  ``init="paper"`` uses the
    cfg's stds (1e-4 for conv1, 1e-2 elsewhere) and zero biases.
    """

    layer_names = ("conv1", "conv2", "conv3", "fc10")

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.config = cfg
        act = cfg.activation
        ov = cfg.overlap_pool
        s = cfg.input_size
        self.conv1 = nn.Conv2d(cfg.in_channels, 32, 5, padding=2)
        self.relu1 = make_activation(act)
        self.pool1 = make_max_pool(ov, ceil_mode=True)
        self.norm1 = SpatialResponseNorm() if cfg.lrn else nn.Identity()
        s = _pool_out(s, ov, True)
        self.conv2 = nn.Conv2d(32, 32, 5, padding=2)
        self.relu2 = make_activation(act)
        self.pool2 = make_avg_pool(ov, ceil_mode=True)
        self.norm2 = SpatialResponseNorm() if cfg.lrn else nn.Identity()   # on pool2: [rnorm2] inputs=pool2
        s = _pool_out(s, ov, True)
        self.conv3 = nn.Conv2d(32, 64, 5, padding=2)
        self.relu3 = make_activation(act)
        self.pool3 = make_avg_pool(ov, ceil_mode=True)
        s = _pool_out(s, ov, True)
        if s < 1:
            raise ConfigError(f"input_size={cfg.input_size} is too small for the cifar network; use at least 8")
        self.feature_size = s
        self.flatten = nn.Flatten()
        self.drop = nn.Dropout(cfg.dropout)
        self.fc10 = nn.Linear(64 * s * s, cfg.num_classes)
        if cfg.init == "paper":
            initialize(self, "paper", activation=act, bias_one=(),
                       weight_std={"conv1": 1e-4, "conv2": 1e-2, "conv3": 1e-2, "fc10": 1e-2})
        else:
            initialize(self, cfg.init, activation=act, bias_one=())

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm1(self.pool1(self.relu1(self.conv1(x))))
        x = self.norm2(self.pool2(self.relu2(self.conv2(x))))   # pool first, then normalise (as in block 1)
        return self.pool3(self.relu3(self.conv3(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc10(self.drop(self.flatten(self.forward_features(x))))


def _check_cifar(cfg: ModelConfig) -> None:
    if cfg.towers != 1:
        raise ConfigError("the cifar network has one tower")


# cuda-convnet's CIFAR-10 net: 32 px, 10 classes, no dropout; channels/fc_size record its fixed 32-32-64 layout.
@register_arch("cifar", defaults=dict(towers=1, num_classes=10, input_size=32, dropout=0.0,
                                      channels=(32, 32, 64, 0, 0), fc_size=0), validate=_check_cifar, min_input=8)
def build_cifar(cfg: ModelConfig) -> nn.Module:
    """Krizhevsky's four-layer CIFAR-10 network of Figure 1."""
    return CifarNet(cfg)


def _check_registry() -> None:
    # The CLI's --arch choices come from choices.ARCHS: every name there must build, and nothing else may.
    if list_archs() != ARCHS:
        raise RuntimeError(f"registered architectures {list_archs()} differ from alexnet.choices.ARCHS {ARCHS}")


_check_registry()


def _check_switches(cfg: ModelConfig) -> None:
    """The checks every architecture shares."""
    if cfg.activation not in ACTIVATIONS:
        raise ConfigError(f"activation must be one of {', '.join(ACTIVATIONS)}; got {cfg.activation!r}")
    if cfg.init not in INITS:
        raise ConfigError(f"init must be one of {', '.join(INITS)}; got {cfg.init!r}")
    if not 0.0 <= cfg.dropout < 1.0:
        raise ConfigError(f"dropout must be in [0, 1); got {cfg.dropout}")
    if cfg.num_classes < 1:
        raise ConfigError(f"num_classes must be >= 1; got {cfg.num_classes}")
    if cfg.lrn_convention not in LRN_CONVENTIONS:
        raise ConfigError(f"lrn_convention must be one of {', '.join(LRN_CONVENTIONS)}; got {cfg.lrn_convention!r}")


def make_config(arch: str = "paper", **switches) -> ModelConfig:
    """Validate ``switches`` for ``arch`` and return the frozen ModelConfig (None = the architecture's default)."""
    entry = get_arch(arch)
    known = set(ModelConfig.__dataclass_fields__) - {"arch"}
    unknown = set(switches) - known
    if unknown:
        raise ConfigError(f"unknown model switch(es) {sorted(unknown)}; expected some of {sorted(known)}")
    values = {**entry.defaults, **{k: v for k, v in switches.items() if v is not None}}
    if "channels" in values:
        values["channels"] = tuple(int(c) for c in values["channels"])
    cfg = ModelConfig(arch=arch, **values)
    _check_switches(cfg)
    if entry.validate is not None:
        entry.validate(cfg)
    if cfg.input_size < 1:
        raise ConfigError(f"input_size must be positive; got {cfg.input_size}")
    return cfg


def model_from_config(cfg: ModelConfig) -> nn.Module:
    """The network ``cfg`` describes, built by its architecture's registered builder."""
    return get_arch(cfg.arch).builder(cfg)


def build_model(arch: str = "paper", num_classes: int | None = None, **switches) -> nn.Module:
    """Build a network by name with the paper's techniques as keyword switches.

    >>> m = build_model("paper", num_classes=10, input_size=128, lrn=False, towers=1)
    num_classes: None gives the architecture's default (1000; cifar: 10).
    Switches: activation ("relu"|"tanh"), lrn (bool), lrn_convention ("paper"|"cuda-convnet"|"caffe"),
    overlap_pool (bool), dropout (float), towers (1|2), init ("paper"|"caffe"|"kaiming"|"default"),
    input_size, in_channels, channels (5 kernel counts), fc_size.
    """
    return model_from_config(make_config(arch, num_classes=num_classes, **switches))


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def describe(model: nn.Module) -> list[dict]:
    """Per-layer rows (name, output shape for one image, parameters), for ``alexnet model``."""
    cfg: ModelConfig = model.config
    rows, hooks = [], []
    modules = dict(model.named_modules())
    for name in model.layer_names:
        def hook(mod, inp, out, name=name):
            rows.append({"layer": name, "output": tuple(out.shape[1:]),
                         "parameters": sum(p.numel() for p in mod.parameters())})
        hooks.append(modules[name].register_forward_hook(hook))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(1, cfg.in_channels, cfg.input_size, cfg.input_size))
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    return rows


__all__ = ["ARCHS", "ARCH_REGISTRY", "ArchEntry", "ModelConfig", "PaperAlexNet", "OwtAlexNet", "CifarNet",
           "build_model", "make_config", "model_from_config", "register_arch", "list_archs", "get_arch",
           "count_parameters", "describe", "CROSS_TOWER"]
