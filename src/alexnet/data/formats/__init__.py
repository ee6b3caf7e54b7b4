"""Dataset formats, one module each, registered in ``registry`` (read its docstring to add one).

The names registered here are exactly ``alexnet.choices.DATASET_KINDS`` less "auto" (checked below, at import).
Registration order is the choices' order; auto-detection asks the formats by their ``priority``: packed, cifar10,
mnist / fashion-mnist, ilsvrc (a flat val folder), imagefolder.
"""
from ...choices import DATASET_KINDS

# each module registers its formats when imported; imported in the choices' order, which is registration order
# isort: off
from . import imagefolder  # noqa: F401
from . import ilsvrc  # noqa: F401
from . import cifar10  # noqa: F401
from . import mnist  # noqa: F401
from . import packed  # noqa: F401
# isort: on
from .registry import Format, check_names, detection_order, downloadable, format_names, get_format, register_format

check_names([k for k in DATASET_KINDS if k != "auto"])

__all__ = ["Format", "check_names", "detection_order", "downloadable", "format_names", "get_format",
           "register_format"]
