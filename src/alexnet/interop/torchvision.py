"""torchvision's AlexNet weights (``alexnet-owt-7be5be79.pth``) as our ``owt`` network.

torchvision's module names (``features.0``, ``classifier.6``, ...) are the ``owt`` network's state_dict keys, so
its weights load unchanged; the record adds torchvision's preprocessing and ImageNet's class names.
"""
from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from ..checkpoint import FORMAT, Checkpoint, safe_torch_load
from ..errors import CheckpointError
from ..model import make_config
from .classes import classes_for

# torchvision's ImageNet preprocessing (transforms.Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])
# on [0, 1] pixels), in our 0-255 units; Resize(256) of the shorter side, CenterCrop(224).
IMAGENET_MEAN_RGB = tuple(round(m * 255, 6) for m in (0.485, 0.456, 0.406))
IMAGENET_STD_RGB = tuple(round(s * 255, 6) for s in (0.229, 0.224, 0.225))
_TORCHVISION_PREFIXES = ("features.", "classifier.")


def torchvision_preprocessing() -> dict:
    """The preprocessing matching torchvision's ImageNet weights (RGB, 0-255 units)."""
    return {"mean": list(IMAGENET_MEAN_RGB), "std": list(IMAGENET_STD_RGB), "resize": 256, "crop": 224,
            "channels": 3, "channel_order": "RGB", "normalize": "standard"}


def is_torchvision_state_dict(obj: Any) -> bool:
    """Whether ``obj`` is a dict of tensors with torchvision AlexNet's key names only."""
    return (isinstance(obj, Mapping) and len(obj) > 0 and all(isinstance(k, str) for k in obj)
            and all(k.startswith(_TORCHVISION_PREFIXES) for k in obj)
            and all(isinstance(v, torch.Tensor) for v in obj.values()))


def strip_module_prefix(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Checkpoints saved from DistributedDataParallel / DataParallel prefix every key with ``module.``."""
    if state and all(k.startswith("module.") for k in state):
        return {k[len("module."):]: v for k, v in state.items()}
    return dict(state)


def holds_torchvision_weights(obj: Any) -> bool:
    """A torchvision state_dict, bare or wrapped as reference-script checkpoints do ({"model": state_dict})."""
    if not isinstance(obj, Mapping):
        return False
    inner = obj.get("model")
    return is_torchvision_state_dict(strip_module_prefix(obj)) or (
        isinstance(inner, Mapping) and is_torchvision_state_dict(strip_module_prefix(inner)))


def describe_object(obj: Any) -> str:
    """What a loaded object looks like, for error messages."""
    if isinstance(obj, Mapping):
        if obj.get("format") == FORMAT:
            try:
                return f"an alexnet checkpoint of architecture {Checkpoint.from_payload(obj).arch!r}"
            except CheckpointError:
                return "an alexnet checkpoint"
        keys = [k for k in obj if isinstance(k, str)]
        if any(k.startswith(("conv1.", "fc6.")) for k in keys):
            return f"a state_dict of our 'paper'/'cifar' layout (keys {keys[:3]})"
        return f"a dict with keys {keys[:4]}"
    return f"a {type(obj).__name__}"


def torchvision_checkpoint(state: Mapping[str, torch.Tensor], origin: str, source: dict | None = None,
                           classes: Sequence[str] | None = None) -> Checkpoint:
    """Our weights-only record (not yet written) for a torchvision AlexNet state_dict."""
    state = strip_module_prefix(state)
    if not is_torchvision_state_dict(state):
        raise CheckpointError(f"{origin}: not a torchvision AlexNet state_dict (keys features.*, classifier.*); "
                              f"it is {describe_object(state)}")
    head = state.get("classifier.6.weight")
    if head is None or head.dim() != 2:
        raise CheckpointError(f"{origin}: torchvision AlexNet state_dict without a 2-D 'classifier.6.weight' "
                              f"(the last layer); keys: {sorted(state)[:4]}...")
    num_classes = int(head.shape[0])
    return Checkpoint(model_config=make_config("owt", num_classes=num_classes), state_dict=state,
                      classes=classes_for(num_classes, classes, origin), preprocessing=torchvision_preprocessing(),
                      source=source or {"kind": "torchvision"})


def unwrap_torchvision(obj: Any, origin: str) -> Mapping[str, torch.Tensor]:
    """torchvision files are bare state_dicts; reference-script checkpoints wrap it as {"model": state_dict, ...}."""
    if isinstance(obj, Mapping) and obj.get("format") == FORMAT:
        raise CheckpointError(f"{origin}: this is already {describe_object(obj)}, not a torchvision 'owt' "
                              "state_dict; use it directly (no conversion needed)")
    if isinstance(obj, Mapping) and "model" in obj and isinstance(obj["model"], Mapping) and \
            is_torchvision_state_dict(strip_module_prefix(obj["model"])):
        return obj["model"]
    if isinstance(obj, Mapping) and "state_dict" in obj and isinstance(obj["state_dict"], Mapping):
        return obj["state_dict"]
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"{origin}: expected a torchvision AlexNet state_dict, found {describe_object(obj)}")
    return obj


def load_torchvision_state_dict(path_or_dict: str | os.PathLike | Mapping[str, torch.Tensor]) -> torch.nn.Module:
    """A torchvision AlexNet state_dict (file or dict) as our ``owt`` network (strict load, eval mode).

    Gives the same logits as ``torchvision.models.alexnet()`` with those weights; feed it inputs prepared as
    ``torchvision_preprocessing()`` says (RGB, resize 256, centre crop 224, ImageNet mean/std).
    """
    if isinstance(path_or_dict, Mapping):
        origin = "state_dict"
        ckpt = torchvision_checkpoint(path_or_dict, origin)
    else:
        origin = str(path_or_dict)
        ckpt = torchvision_checkpoint(unwrap_torchvision(safe_torch_load(path_or_dict), origin), origin)
    return ckpt.build_model(origin, expect_arch="owt").eval()
