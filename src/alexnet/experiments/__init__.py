"""The paper's experiments, one function each: a result table (CSV + markdown) and a picture per experiment.

    from alexnet.experiments import ExperimentConfig, run_experiment
    result = run_experiment("lrn", ExperimentConfig(data="data/synth-exp10", out="runs/exp/lrn", seeds=(0, 1)))
    result.rows      # one dict per variant and seed, each with its seed and config

``alexnet experiment list`` shows them; ``alexnet experiment NAME --out DIR`` runs one (EXPERIMENTS.md: what each
measured here, against the paper's claim).
"""
from __future__ import annotations

from .augment import EXPERIMENT as _augment
from .dropout import EXPERIMENT as _dropout
from .figures import FILTERS as _filters
from .figures import NEIGHBOURS as _neighbours
from .lrn import EXPERIMENT as _lrn
from .overlap_pool import EXPERIMENT as _overlap_pool
from .records import Experiment, ExperimentConfig, Result, Variant
from .relu_vs_tanh import EXPERIMENT as _relu_vs_tanh
from .towers import EXPERIMENT as _towers

EXPERIMENTS: dict[str, Experiment] = {e.name: e for e in (
    _relu_vs_tanh, _lrn, _overlap_pool, _towers, _dropout, _augment, _filters, _neighbours)}


def get_experiment(name: str) -> Experiment:
    from ..errors import ConfigError

    if name not in EXPERIMENTS:
        raise ConfigError(f"unknown experiment {name!r}; choose one of {', '.join(EXPERIMENTS)}")
    return EXPERIMENTS[name]


def run_experiment(name: str, cfg: ExperimentConfig, printer=print) -> Result:
    """Run experiment ``name`` with ``cfg`` (fields left at None take the experiment's defaults)."""
    return get_experiment(name).run(cfg, printer)


__all__ = ["EXPERIMENTS", "Experiment", "ExperimentConfig", "Result", "Variant", "get_experiment", "run_experiment"]
