"""The statistics in the experiment tables: threshold crossings, ratios, mean and spread over seeds.

Pure Python (no torch), so they are cheap to test on hand-made curves.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Sequence


def first_crossing(values: Sequence[float | None], threshold: float,
                   epochs: Sequence[float] | None = None) -> float | None:
    """The first epoch whose value is <= ``threshold``; None when the curve never gets there.

    ``values[i]`` belongs to epoch ``epochs[i]`` (default: 1, 2, 3, ...).  Missing values (None) are skipped.
    """
    epochs = list(epochs) if epochs is not None else list(range(1, len(values) + 1))
    if len(epochs) != len(values):
        raise ValueError(f"first_crossing: {len(values)} values but {len(epochs)} epochs")
    for e, v in zip(epochs, values):
        if v is not None and v <= threshold:
            return e
    return None


def interpolated_crossing(values: Sequence[float | None], threshold: float,
                          epochs: Sequence[float] | None = None) -> float | None:
    """Like ``first_crossing``, but linearly interpolated between the last epoch above the threshold and the first
    at or below it, so that short runs still give a fractional number of epochs (e.g. 3.4).

    A curve already at or below the threshold at its first point gives that first epoch (there is nothing before it
    to interpolate from); a curve that never gets there gives None.
    """
    epochs = list(epochs) if epochs is not None else list(range(1, len(values) + 1))
    if len(epochs) != len(values):
        raise ValueError(f"interpolated_crossing: {len(values)} values but {len(epochs)} epochs")
    prev = None
    for e, v in zip(epochs, values):
        if v is None:
            continue
        if v <= threshold:
            if prev is None:
                return float(e)
            pe, pv = prev
            return float(pe + (e - pe) * (pv - threshold) / (pv - v))
        prev = (e, v)
    return None


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    """numerator / denominator; None when either is missing or the denominator is 0."""
    if numerator is None or denominator is None or denominator == 0:
        return None
    return numerator / denominator


def mean_std(values: Iterable[float | None]) -> tuple[float | None, float | None, int]:
    """(mean, sample standard deviation, n) over the values that are not None.

    The standard deviation is the sample one (n - 1 in the denominator) and None for fewer than two values;
    the mean is None for none.
    """
    xs = [float(v) for v in values if v is not None]
    n = len(xs)
    if n == 0:
        return None, None, 0
    m = sum(xs) / n
    if n < 2:
        return m, None, n
    return m, math.sqrt(sum((x - m) ** 2 for x in xs) / (n - 1)), n


def speedup(fast: float | None, slow: float | None, horizon: float) -> tuple[float | None, str]:
    """How many times fewer epochs ``fast`` needed than ``slow`` to reach a threshold.

    Returns (value, kind): kind "exact" when both reached it; "lower bound" when only ``fast`` did (``slow`` would
    need more than ``horizon`` epochs, so the ratio is at least horizon / fast); "none" when ``fast`` did not.
    """
    if fast is None or fast <= 0:
        return None, "none"
    if slow is None:
        return horizon / fast, "lower bound"
    return slow / fast, "exact"
