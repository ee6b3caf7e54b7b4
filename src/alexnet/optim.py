"""The paper's SGD update (section 5), the optimizer factory, and the learning-rate schedule driver.

Section 5:  v <- 0.9 v - 0.0005 * eps * w - eps * dL/dw ;  w <- w + v
The learning rate eps sits *inside* the velocity.  PyTorch's SGD keeps it outside
(v <- mu v + g + wd w ; w <- w - eps v), which is the same update while eps is constant but differs right after
every learning-rate change (PyTorch's velocity, accumulated at the old eps, is applied at the new eps).

Biases: the paper writes its rule for the weights ``w``; Krizhevsky's cuda-convnet gives biases no decay (``wc=0``
on every bias) and Caffe's ``bvlc_alexnet`` neither (``decay_mult: 0``).  ``bias_decay=False`` does the same (a
second parameter group with weight_decay 0); ``True`` (the default) decays every parameter, as before.
"""
from __future__ import annotations

import torch

from .choices import OPTIMIZERS, SCHEDULES  # noqa: F401 - re-exported names
from .errors import ConfigError
from .schedules import make_schedule


class PaperSGD(torch.optim.Optimizer):
    """SGD with momentum and weight decay exactly as written in section 5 of the paper."""

    def __init__(self, params, lr: float = 0.01, momentum: float = 0.9, weight_decay: float = 5e-4):
        if lr <= 0 or momentum < 0 or weight_decay < 0:
            raise ConfigError(f"PaperSGD: need lr > 0, momentum >= 0, weight_decay >= 0; got {lr}, {momentum}, "
                              f"{weight_decay}")
        super().__init__(params, dict(lr=lr, momentum=momentum, weight_decay=weight_decay))

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            eps, mu, wd = group["lr"], group["momentum"], group["weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if "velocity" not in state:
                    state["velocity"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                v = state["velocity"]
                # v = mu * v - wd * eps * w - eps * grad
                v.mul_(mu).add_(p, alpha=-wd * eps).add_(p.grad, alpha=-eps)
                p.add_(v)
        return loss


def is_bias(name: str) -> bool:
    """A parameter name's last part is ``bias`` (conv1.bias, fc8.bias, tower2.conv5.bias, ...)."""
    return name.rsplit(".", 1)[-1] == "bias"


def param_groups(named_params, *, bias_decay: bool = True) -> list:
    """Parameters for an optimizer: all of them in one group (``bias_decay``), or the weights in one group and the
    biases in a second with weight_decay 0 (cuda-convnet's ``wc=0``, Caffe's ``decay_mult: 0``)."""
    named = list(named_params)
    if bias_decay:
        return [p for _, p in named]
    weights = [p for n, p in named if not is_bias(n)]
    biases = [p for n, p in named if is_bias(n)]
    return [g for g in ({"params": weights}, {"params": biases, "weight_decay": 0.0}) if g["params"]]


def trainable_groups(model, *, freeze: str | None = None, pretrained_lr_mult: float = 1.0,
                     bias_decay: bool = True) -> list:
    """The optimizer's parameter groups: the model's parameters without the frozen layers (``freeze``: conv1 up to
    and including that layer lose ``requires_grad`` and stay out of the optimizer), the layers below the head (the
    last layer, fc8) at ``pretrained_lr_mult`` times the lr (``lr_mult``), each split by ``param_groups`` when
    ``bias_decay`` is off.  What ``param_groups`` gives when every trained layer has the same lr."""
    names = getattr(model, "layer_names", None)
    if not names:
        raise ConfigError(f"{type(model).__name__} has no named layers (conv1 .. fc8) to freeze or to give their own "
                          "learning rate")
    if freeze is not None:
        if freeze not in names or freeze == names[-1]:
            raise ConfigError(f"--freeze {freeze}: not a layer below the head of {model.config.arch}; one of "
                              f"{', '.join(names[:-1])}")
        for name in names[:names.index(freeze) + 1]:
            model.layer(name).requires_grad_(False)
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    if pretrained_lr_mult == 1.0:
        return param_groups(named, bias_decay=bias_decay)
    head = {id(p) for p in model.layer(names[-1]).parameters()}
    groups = []
    for label, mult, members in (("pretrained", pretrained_lr_mult, [(n, p) for n, p in named if id(p) not in head]),
                                 ("head", 1.0, [(n, p) for n, p in named if id(p) in head])):
        if not members:   # --freeze fc7: nothing pretrained left to train
            continue
        split = param_groups(members, bias_decay=bias_decay)
        for g in ([{"params": split}] if bias_decay else split):
            groups.append({**g, "lr_mult": mult, "name": label})
    return groups


def make_optimizer(params, name: str = "paper", *, lr: float, momentum: float, weight_decay: float,
                   bias_decay: bool = True):
    """The optimizer ``name`` over ``params``: parameters, or ``(name, parameter)`` pairs (``named_parameters()``),
    which ``bias_decay=False`` needs to tell the biases."""
    params = list(params)
    if params and isinstance(params[0], tuple):
        params = param_groups(params, bias_decay=bias_decay)
    elif not bias_decay and not (params and isinstance(params[0], dict)):   # groups: already split
        raise ConfigError("bias_decay=False needs named parameters (model.named_parameters()) to find the biases")
    if name == "paper":
        return PaperSGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    if name == "adamw":   # Loshchilov & Hutter: decoupled decay; the momentum is Adam's beta1
        return torch.optim.AdamW(params, lr=lr, betas=(momentum, 0.999), weight_decay=weight_decay)
    raise ConfigError(f"--optimizer must be one of {', '.join(OPTIMIZERS)}; got {name!r}")


class LRSchedule:
    """A learning-rate rule from ``alexnet.schedules`` applied to an optimizer's parameter groups, with a
    state_dict for exact resume. ``kind`` names the rule (plateau: the paper's; step; cosine; constant).

    Each group trains at the rule's lr times its ``lr_mult`` (``param_groups``: the pretrained layers of a fine-tuned
    network below the new head).  warmup_steps: the first steps ramp linearly up to the rule's lr (``before_step``,
    a pure function of the global step, so a resumed run warms up exactly as the original)."""

    def __init__(self, optimizer, kind: str = "plateau", *, base_lr: float, epochs: int, warmup_steps: int = 0,
                 **params):
        self.optimizer = optimizer
        self.rule = make_schedule(kind, base_lr=base_lr, epochs=epochs, **params)
        self.warmup_steps = max(0, int(warmup_steps))
        self._apply()

    @property
    def kind(self) -> str:
        return self.rule.kind

    @property
    def lr(self) -> float:
        return self.rule.lr

    @property
    def reductions(self) -> int:
        return getattr(self.rule, "reductions", 0)

    def _apply(self, scale: float = 1.0) -> None:
        for g in self.optimizer.param_groups:
            g["lr"] = self.rule.lr * g.get("lr_mult", 1.0) * scale

    def warmup_scale(self, step: int) -> float:
        """The warm-up factor for global step ``step`` (0-based): (step + 1) / warmup_steps, then 1."""
        return min(1.0, (step + 1) / self.warmup_steps) if self.warmup_steps else 1.0

    def before_step(self, step: int) -> None:
        """Set the lr of global step ``step`` (0-based); changes nothing after the warm-up."""
        if step <= self.warmup_steps and self.warmup_steps:
            self._apply(self.warmup_scale(step))

    def epoch_end(self, epoch: int, val_error: float | None) -> bool:
        """Call after epoch ``epoch`` (0-based) finished; returns True if the lr changed."""
        changed = self.rule.epoch_end(epoch, val_error)
        self._apply()
        return changed

    def state_dict(self) -> dict:
        return self.rule.state_dict()

    def load_state_dict(self, state: dict) -> None:
        """The saved rule's state, but this run's number of epochs: ``--resume RUN --epochs 8`` extends a 4-epoch run
        (a cosine is then spread over the 8), where the saved 4 would keep the lr at its final value."""
        epochs = self.rule.epochs
        self.rule.load_state_dict(state)
        self.rule.epochs = epochs
        self._apply()
