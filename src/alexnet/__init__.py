"""alexnet: a faithful, fast PyTorch implementation of AlexNet (Krizhevsky, Sutskever & Hinton, NIPS 2012).

Public Python API (re-exported names only)::

    import alexnet
    model = alexnet.build_model("paper", num_classes=1000)          # the two-tower ILSVRC network
    lrn = alexnet.LocalResponseNorm(size=5, alpha=1e-4, beta=0.75, k=2.0, convention="paper")
    from alexnet.train import train; from alexnet.predict import predict
    summary = train(alexnet.TrainConfig(data="data/synth", out="runs/a", epochs=10))
    model, ckpt = alexnet.load_model("runs/a/best.pt")             # any weight file; ckpt: a Checkpoint record
    result = alexnet.evaluate_checkpoint("runs/a/best.pt", "data/synth", crops=10)
    preds = predict("runs/a/best.pt", ["cat.jpg"], topk=5)
    alexnet.save_features("runs/a/best.pt", ["images/"], ["conv5", "fc7"], "feats.npz")

The training, evaluation, inference and data names are imported on first use, so ``import alexnet`` stays light.
``train``, ``evaluate`` and ``predict`` are functions of the submodules of the same names (``alexnet.train`` is the
module), so import them from there.
"""
from .errors import AlexNetError, CheckpointError, ConfigError, DataError, TrainingDiverged
from .init import initialize
from .layers import LocalResponseNorm, SpatialResponseNorm, lrn_reference
from .model import ARCHS, ModelConfig, build_model, count_parameters, describe, make_config, model_from_config

__version__ = "0.1.0"

# name -> module, imported on first attribute access (PEP 562)
_LAZY = {
    "TrainConfig": "train", "evaluate_checkpoint": "evaluate",
    "Checkpoint": "checkpoint", "load_checkpoint": "checkpoint", "save_checkpoint": "checkpoint",
    "extract_features": "features", "save_features": "features",
    "load_model": "interop", "export_model": "interop",
    "open_dataset": "data", "TowerParallelAlexNet": "parallel",
}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'alexnet' has no attribute {name!r}")


__all__ = [*_LAZY, 
    "__version__", "AlexNetError", "CheckpointError", "ConfigError", "DataError", "TrainingDiverged",
    "initialize", "LocalResponseNorm", "SpatialResponseNorm", "lrn_reference",
    "ARCHS", "ModelConfig", "build_model", "count_parameters", "describe", "make_config", "model_from_config",
]
