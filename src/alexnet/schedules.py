"""Learning-rate schedules: a registry of epoch-level rules, one small class each. Importable without torch.

A rule sees the end of each epoch (0-based index, the validation top-1 error or None) and returns the learning rate
for the next epoch; it keeps whatever state it needs in ``state_dict()`` so a resumed run continues exactly.
``alexnet.optim.LRSchedule`` applies a rule to an optimizer.

To add a schedule: a class here decorated with ``@register_schedule("name")`` (its ``next_lr``), the name in
``alexnet.choices.SCHEDULES``, and a test in ``tests/test_optim.py``. The CLI and TrainConfig pick it up from there.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from . import choices
from .errors import ConfigError

SCHEDULE_REGISTRY: dict[str, type["Schedule"]] = {}


def register_schedule(name: str):
    """Class decorator: make a schedule available as ``--schedule NAME``."""
    def deco(cls):
        if name not in choices.SCHEDULES:
            raise ValueError(f"schedule {name!r} is not named in alexnet.choices.SCHEDULES")
        cls.kind = name
        SCHEDULE_REGISTRY[name] = cls
        return cls
    return deco


@dataclass
class Schedule:
    """Base: the parameters every rule is built from, and the current learning rate."""

    base_lr: float
    epochs: int
    factor: float = 0.1
    patience: int = 3
    max_reductions: int = 3
    step_size: int = 30
    threshold: float = 1e-4
    lr: float | None = None
    kind = "base"

    def __post_init__(self):
        if self.lr is None:
            self.lr = self.base_lr

    def next_lr(self, epoch: int, val_error: float | None) -> float:
        raise NotImplementedError

    def epoch_end(self, epoch: int, val_error: float | None) -> bool:
        """Call after epoch ``epoch`` (0-based) finished; returns True if the learning rate changed."""
        old = self.lr
        self.lr = self.next_lr(epoch, val_error)
        return self.lr != old

    def state_dict(self) -> dict:
        return {"kind": self.kind, **asdict(self)}

    def load_state_dict(self, state: dict) -> None:
        for k, v in state.items():
            if k != "kind":
                setattr(self, k, v)


@register_schedule("plateau")
@dataclass
class Plateau(Schedule):
    """The paper (section 5): divide by 10 when the validation error stopped improving for ``patience`` epochs,
    at most ``max_reductions`` (three) times."""

    best: float = math.inf
    bad_epochs: int = 0
    reductions: int = 0

    def next_lr(self, epoch: int, val_error: float | None) -> float:
        if val_error is None:
            return self.lr
        if val_error < self.best - self.threshold:
            self.best, self.bad_epochs = val_error, 0
            return self.lr
        self.bad_epochs += 1
        if self.bad_epochs >= self.patience and self.reductions < self.max_reductions:
            self.reductions += 1
            self.bad_epochs = 0
            return self.lr * self.factor
        return self.lr


@register_schedule("step")
@dataclass
class Step(Schedule):
    """torchvision's recipe: divide by 10 every ``step_size`` epochs."""

    def next_lr(self, epoch: int, val_error: float | None) -> float:
        return self.base_lr * self.factor ** ((epoch + 1) // self.step_size)


@register_schedule("cosine")
@dataclass
class Cosine(Schedule):
    """Cosine decay from the base learning rate to 0 over ``epochs``."""

    def next_lr(self, epoch: int, val_error: float | None) -> float:
        return 0.5 * self.base_lr * (1 + math.cos(math.pi * min(epoch + 1, self.epochs) / self.epochs))


@register_schedule("constant")
@dataclass
class Constant(Schedule):
    """The base learning rate throughout."""

    def next_lr(self, epoch: int, val_error: float | None) -> float:
        return self.lr


def make_schedule(kind: str, **params) -> Schedule:
    """The registered rule ``kind`` built from ``params`` (base_lr, epochs, factor, patience, ...)."""
    if kind not in SCHEDULE_REGISTRY:
        raise ConfigError(f"--schedule must be one of {', '.join(SCHEDULE_REGISTRY)}; got {kind!r}")
    return SCHEDULE_REGISTRY[kind](**params)


if tuple(SCHEDULE_REGISTRY) != choices.SCHEDULES:   # pragma: no cover - a registration was forgotten
    raise ImportError(f"registered schedules {tuple(SCHEDULE_REGISTRY)} != choices.SCHEDULES {choices.SCHEDULES}")

__all__ = ["SCHEDULE_REGISTRY", "Schedule", "register_schedule", "make_schedule", "Plateau", "Step", "Cosine",
           "Constant"]
