"""Weight initialisations.

- ``paper``  (section 5): every weight N(0, 0.01); biases 1 in conv2, conv4, conv5, fc6, fc7, 0 elsewhere.
  The bias of 1 "accelerates the early stages of learning by providing the ReLUs with positive inputs",
  but many users (and Caffe's bvlc_alexnet readme) report a flat loss at ln(classes) with it: the
  trainer detects such a plateau and suggests ``caffe`` or ``kaiming``.
- ``caffe``  (bvlc_alexnet train_val.prototxt): N(0, 0.01), fc6/fc7 N(0, 0.005); biases 0.1 where the
  paper has 1.
- ``kaiming``: He-normal (fan_in, gain of the activation) weights, zero biases, fc8 N(0, 0.01):
  what modern training uses.
- ``default``: PyTorch's own layer initialisation (what torchvision's AlexNet gets).
"""
from __future__ import annotations

from collections.abc import Callable, Iterable

from torch import nn

from .choices import INITS
from .errors import ConfigError


def _named_layers(model: nn.Module):
    """(literature name, layer) for every conv/linear layer."""
    names = getattr(model, "layer_names", None)
    if names:
        modules = dict(model.named_modules())
        for name in names:
            layer = modules[name]
            if isinstance(layer, (nn.Conv2d, nn.Linear)):
                yield name, layer
    else:  # pragma: no cover - every project model has layer_names
        for name, layer in model.named_modules():
            if isinstance(layer, (nn.Conv2d, nn.Linear)):
                yield name, layer


def _gaussian(layers: list, *, scheme: str, bias_one: set, weight_std: dict | None, **_) -> None:
    """``paper`` and ``caffe``: N(0, std) weights layer by layer, constant biases."""
    for name, layer in layers:
        std = 0.01
        if scheme == "caffe" and name in ("fc6", "fc7"):
            std = 0.005
        if weight_std and name in weight_std:
            std = weight_std[name]
        nn.init.normal_(layer.weight, 0.0, std)
        if name in bias_one:
            nn.init.constant_(layer.bias, 1.0 if scheme == "paper" else 0.1)
        else:
            nn.init.zeros_(layer.bias)


def _kaiming(layers: list, *, activation: str, **_) -> None:
    last = layers[-1][0] if layers else None
    for name, layer in layers:
        if name == last:
            nn.init.normal_(layer.weight, 0.0, 0.01)
        else:
            nonlinearity = "tanh" if activation == "tanh" else "relu"
            nn.init.kaiming_normal_(layer.weight, mode="fan_in", nonlinearity=nonlinearity)
        nn.init.zeros_(layer.bias)


def _default(layers: list, **_) -> None:
    """PyTorch initialised the layers when it built them: nothing to do."""


# scheme name -> function(layers, *, scheme, activation, bias_one, weight_std); the names are choices.INITS.
INIT_SCHEMES: dict[str, Callable[..., None]] = {"paper": _gaussian, "caffe": _gaussian, "kaiming": _kaiming,
                                                "default": _default}
if tuple(INIT_SCHEMES) != INITS:
    raise RuntimeError(f"init schemes {tuple(INIT_SCHEMES)} differ from alexnet.choices.INITS {INITS}")


def initialize(model: nn.Module, scheme: str = "paper", *, activation: str = "relu",
               bias_one: Iterable[str] = ("conv2", "conv4", "conv5", "fc6", "fc7"),
               weight_std: dict[str, float] | None = None) -> nn.Module:
    """Initialise ``model`` in place with ``scheme`` and return it.

    bias_one: the layers whose bias the paper sets to 1 (0.1 under ``caffe``).
    weight_std: per-layer standard deviations overriding 0.01 (``paper`` / ``caffe`` only).
    """
    if scheme not in INIT_SCHEMES:
        raise ConfigError(f"init must be one of {', '.join(INITS)}; got {scheme!r}")
    INIT_SCHEMES[scheme](list(_named_layers(model)), scheme=scheme, activation=activation, bias_one=set(bias_one),
                         weight_std=weight_std)
    return model
