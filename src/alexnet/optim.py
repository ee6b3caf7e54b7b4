"""The paper's SGD update (section 5) and the learning-rate schedules.

Section 5:  v <- 0.9 v - 0.0005 * eps * w - eps * dL/dw ;  w <- w + v
The learning rate eps sits *inside* the velocity.  PyTorch's SGD keeps it outside
(v <- mu v + g + wd w ; w <- w - eps v), which is the same update while eps is constant but differs right after
every learning-rate change (PyTorch's velocity, accumulated at the old eps, is applied at the new eps).
"""
from __future__ import annotations

import math

import torch

from .errors import ConfigError

OPTIMIZERS = ("paper", "sgd")
SCHEDULES = ("plateau", "step", "cosine", "constant")


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
    """Epoch-level learning-rate schedule with a state_dict, for exact resume.

    plateau  (the paper): divide by ``factor`` (10) when the validation error has not improved for ``patience``
             epochs, at most ``max_reductions`` (3) times.
    step     (torchvision's recipe): divide by ``factor`` every ``step_size`` epochs.
    cosine:  cosine decay from the base lr to 0 over ``epochs``.
    constant.
    """

    def __init__(self, optimizer, kind: str = "plateau", *, base_lr: float, epochs: int, factor: float = 0.1,
                 patience: int = 3, max_reductions: int = 3, step_size: int = 30, threshold: float = 1e-4):
        if kind not in SCHEDULES:
            raise ConfigError(f"--schedule must be one of {', '.join(SCHEDULES)}; got {kind!r}")
        self.optimizer, self.kind, self.base_lr, self.epochs = optimizer, kind, base_lr, epochs
        self.factor, self.patience, self.max_reductions = factor, patience, max_reductions
        self.step_size, self.threshold = step_size, threshold
        self.best = math.inf
        self.bad_epochs = 0
        self.reductions = 0
        self.lr = base_lr
        self._apply()

    def _apply(self) -> None:
        for g in self.optimizer.param_groups:
            g["lr"] = self.lr

    def epoch_end(self, epoch: int, val_error: float | None) -> bool:
        """Call after epoch ``epoch`` (0-based) finished; returns True if the lr changed."""
        old = self.lr
        if self.kind == "plateau":
            if val_error is not None:
                if val_error < self.best - self.threshold:
                    self.best, self.bad_epochs = val_error, 0
                else:
                    self.bad_epochs += 1
                    if self.bad_epochs >= self.patience and self.reductions < self.max_reductions:
                        self.lr *= self.factor
                        self.reductions += 1
                        self.bad_epochs = 0
        elif self.kind == "step":
            self.lr = self.base_lr * self.factor ** ((epoch + 1) // self.step_size)
        elif self.kind == "cosine":
            self.lr = 0.5 * self.base_lr * (1 + math.cos(math.pi * min(epoch + 1, self.epochs) / self.epochs))
        self._apply()
        return self.lr != old

    def state_dict(self) -> dict:
        return {k: getattr(self, k) for k in ("kind", "base_lr", "epochs", "factor", "patience", "max_reductions",
                                              "step_size", "threshold", "best", "bad_epochs", "reductions", "lr")}

    def load_state_dict(self, state: dict) -> None:
        for k, v in state.items():
            setattr(self, k, v)
        self._apply()
