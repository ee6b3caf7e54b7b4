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

from typing import Iterable

from torch import nn

from .errors import ConfigError

INITS = ("paper", "caffe", "kaiming", "default")


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


def initialize(model: nn.Module, scheme: str = "paper", *, activation: str = "relu",
               bias_one: Iterable[str] = ("conv2", "conv4", "conv5", "fc6", "fc7"),
               weight_std: dict[str, float] | None = None) -> nn.Module:
    """Initialise ``model`` in place with ``scheme`` and return it.

    bias_one: the layers whose bias the paper sets to 1 (0.1 under ``caffe``).
    weight_std: per-layer standard deviations overriding 0.01 (``paper`` / ``caffe`` only).
    """
    if scheme not in INITS:
        raise ConfigError(f"init must be one of {', '.join(INITS)}; got {scheme!r}")
    if scheme == "default":
        return model
    bias_one = set(bias_one)
    layers = list(_named_layers(model))
    last = layers[-1][0] if layers else None
    for name, layer in layers:
        if scheme == "kaiming":
            if name == last:
                nn.init.normal_(layer.weight, 0.0, 0.01)
            else:
                nonlinearity = "tanh" if activation == "tanh" else "relu"
                nn.init.kaiming_normal_(layer.weight, mode="fan_in", nonlinearity=nonlinearity)
            nn.init.zeros_(layer.bias)
            continue
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
    return model
