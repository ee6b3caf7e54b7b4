"""The paper's SGD update (section 5), the optimizer factory, and the learning-rate schedule driver.

Section 5:  v <- 0.9 v - 0.0005 * eps * w - eps * dL/dw ;  w <- w + v
The learning rate eps sits *inside* the velocity.  PyTorch's SGD keeps it outside
(v <- mu v + g + wd w ; w <- w - eps v), which is the same update while eps is constant but differs right after
every learning-rate change (PyTorch's velocity, accumulated at the old eps, is applied at the new eps).
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


def make_optimizer(params, name: str = "paper", *, lr: float, momentum: float, weight_decay: float):
    if name == "paper":
        return PaperSGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    raise ConfigError(f"--optimizer must be one of {', '.join(OPTIMIZERS)}; got {name!r}")


class LRSchedule:
    """A learning-rate rule from ``alexnet.schedules`` applied to an optimizer's parameter groups, with a
    state_dict for exact resume. ``kind`` names the rule (plateau: the paper's; step; cosine; constant)."""

    def __init__(self, optimizer, kind: str = "plateau", *, base_lr: float, epochs: int, **params):
        self.optimizer = optimizer
        self.rule = make_schedule(kind, base_lr=base_lr, epochs=epochs, **params)
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

    def _apply(self) -> None:
        for g in self.optimizer.param_groups:
            g["lr"] = self.rule.lr

    def epoch_end(self, epoch: int, val_error: float | None) -> bool:
        """Call after epoch ``epoch`` (0-based) finished; returns True if the lr changed."""
        changed = self.rule.epoch_end(epoch, val_error)
        self._apply()
        return changed

    def state_dict(self) -> dict:
        return self.rule.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.rule.load_state_dict(state)
        self._apply()
