"""alexnet: a faithful, fast PyTorch implementation of AlexNet (Krizhevsky, Sutskever & Hinton, NIPS 2012).

Public Python API (re-exported names only)::

    import alexnet
    model = alexnet.build_model("paper", num_classes=1000)          # the two-tower ILSVRC network
    lrn = alexnet.LocalResponseNorm(size=5, alpha=1e-4, beta=0.75, k=2.0, convention="paper")
"""
from .errors import AlexNetError, CheckpointError, ConfigError, DataError, TrainingDiverged
from .init import initialize
from .layers import LocalResponseNorm, SpatialResponseNorm, lrn_reference
from .model import ARCHS, ModelConfig, build_model, count_parameters, describe, make_config, model_from_config

__version__ = "0.1.0"

__all__ = [
    "__version__", "AlexNetError", "CheckpointError", "ConfigError", "DataError", "TrainingDiverged",
    "initialize", "LocalResponseNorm", "SpatialResponseNorm", "lrn_reference",
    "ARCHS", "ModelConfig", "build_model", "count_parameters", "describe", "make_config", "model_from_config",
]
