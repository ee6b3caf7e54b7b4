"""Top-k error, the one metric implementation used by training, evaluation and experiments."""
from __future__ import annotations

import torch


def topk_correct(logits: torch.Tensor, targets: torch.Tensor, ks=(1, 5)) -> dict[int, torch.Tensor]:
    """Per-sample booleans: is the target among the top k classes?

    Ties are counted against the prediction: the target's rank is the number of classes whose score is strictly
    higher plus the number of *other* classes with an equal score, so a constant output is never "correct" by
    luck of index order.  k larger than the number of classes is clipped (top-5 of a 3-class problem = top-3).
    """
    if logits.dim() != 2 or targets.dim() != 1 or logits.shape[0] != targets.shape[0]:
        raise ValueError(f"topk_correct: logits {tuple(logits.shape)} and targets {tuple(targets.shape)} do not match")
    logits = logits.float()
    target_score = logits.gather(1, targets.view(-1, 1))
    higher = (logits > target_score).sum(1)
    ties = (logits == target_score).sum(1) - 1
    rank = higher + ties
    n_classes = logits.shape[1]
    return {k: rank < min(k, n_classes) for k in ks}


class TopKMeter:
    """Accumulates loss and top-1/top-5 counts (and per-class top-1) over batches."""

    def __init__(self, num_classes: int | None = None):
        self.n = 0
        self.loss_sum = 0.0
        self.correct = {1: 0, 5: 0}
        self.num_classes = num_classes
        self.class_total = torch.zeros(num_classes or 0, dtype=torch.long)
        self.class_correct = torch.zeros(num_classes or 0, dtype=torch.long)

    def update(self, logits: torch.Tensor, targets: torch.Tensor, loss: float | None = None) -> None:
        c = topk_correct(logits.detach(), targets)
        b = targets.shape[0]
        self.n += b
        if loss is not None:
            self.loss_sum += float(loss) * b
        for k in (1, 5):
            self.correct[k] += int(c[k].sum())
        if self.num_classes:
            t = targets.cpu()
            self.class_total += torch.bincount(t, minlength=self.num_classes)
            self.class_correct += torch.bincount(t[c[1].cpu()], minlength=self.num_classes)

    @property
    def loss(self) -> float:
        return self.loss_sum / max(self.n, 1)

    def error(self, k: int) -> float:
        return 1.0 - self.correct[k] / max(self.n, 1)

    def per_class_accuracy(self) -> list[float | None]:
        return [(int(c) / int(t)) if t else None for c, t in zip(self.class_correct, self.class_total)]

    def state(self) -> torch.Tensor:
        """The counters as one float64 tensor (for summing across processes)."""
        return torch.tensor([self.n, self.loss_sum, self.correct[1], self.correct[5]], dtype=torch.float64)

    def load_state(self, t: torch.Tensor) -> None:
        self.n, self.loss_sum = int(t[0]), float(t[1])
        self.correct = {1: int(t[2]), 5: int(t[3])}
