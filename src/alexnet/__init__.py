"""alexnet: a faithful, fast PyTorch implementation of AlexNet (Krizhevsky, Sutskever & Hinton, NIPS 2012).

Public Python API (re-exported names only)::

    import alexnet
    model = alexnet.build_model("paper", num_classes=1000)          # the two-tower ILSVRC network
    lrn = alexnet.LocalResponseNorm(size=5, alpha=1e-4, beta=0.75, k=2.0, convention="paper")
    from alexnet.train import train; from alexnet.predict import predict
    summary = train(alexnet.TrainConfig(data="data/synth", out="runs/a", epochs=10))
    model, ckpt = alexnet.load_model("runs/a/best.pt")             # any weight file; ckpt: a Checkpoint record
    net = alexnet.pretrained("torchvision")                        # published weights by name (or "bvlc", a URL)
    result = alexnet.evaluate_checkpoint("runs/a/best.pt", "data/synth", crops=10)
    preds = predict("runs/a/best.pt", ["cat.jpg"], topk=5)
    alexnet.save_features("runs/a/best.pt", ["images/"], ["conv5", "fc7"], "feats.npz")

Every name is imported on first use, so ``import alexnet`` (and the command line's ``--help``) does not load torch.
``train``, ``evaluate`` and ``predict`` are functions of the submodules of the same names (``alexnet.train`` is the
module), so import them from there.
"""
from .choices import ARCHS
from .errors import AlexNetError, CheckpointError, ConfigError, DataError, TrainingDiverged

__version__ = "0.1.0"

# name -> module, imported on first attribute access (PEP 562)
_LAZY = {
    "initialize": "init", "LocalResponseNorm": "layers", "SpatialResponseNorm": "layers", "lrn_reference": "layers",
    "ModelConfig": "model", "build_model": "model", "count_parameters": "model", "describe": "model",
    "make_config": "model", "model_from_config": "model",
    "TrainConfig": "config", "Trainer": "train", "evaluate_checkpoint": "evaluate",
    "Checkpoint": "checkpoint", "load_checkpoint": "checkpoint", "save_checkpoint": "checkpoint",
    "extract_features": "features", "save_features": "features",
    "load_model": "interop", "export_model": "interop",
    "open_dataset": "data", "TowerParallelAlexNet": "parallel",
    "pretrained": "weights", "resolve_weights": "weights",
}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'alexnet' has no attribute {name!r}")


__all__ = [*_LAZY, "__version__", "ARCHS", "AlexNetError", "CheckpointError", "ConfigError", "DataError",
           "TrainingDiverged"]
