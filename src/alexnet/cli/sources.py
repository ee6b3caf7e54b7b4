"""Where a verb's network comes from: ``--checkpoint`` (a file or run folder) or ``--weights NAME|FILE|URL``."""
from __future__ import annotations

from ..choices import WEIGHTS

WEIGHTS_HELP = (f"pretrained weights instead of a checkpoint: a registered name ({', '.join(WEIGHTS)}), a weight file "
                "or an http(s) URL; downloaded once into $TORCH_HOME/hub/checkpoints (default ~/.cache/torch/hub/"
                "checkpoints), checksum-verified, and reused offline")


def add_model_source(p, *, positional: bool = False, checkpoint_help: str = "checkpoint file or run folder") -> None:
    """``--checkpoint`` (or a positional CHECKPOINT) and ``--weights``: exactly one of them is needed."""
    if positional:
        p.add_argument("checkpoint", nargs="?", default=None, help=f"{checkpoint_help} (or give --weights)")
    else:
        p.add_argument("--checkpoint", default=None, help=f"{checkpoint_help} (or give --weights)")
    p.add_argument("--weights", default=None, metavar="NAME|FILE|URL", help=WEIGHTS_HELP)


def model_source(args, progress: bool = True) -> str:
    """The local file or folder to load: the checkpoint as given, or the weights resolved (downloaded if needed)."""
    from ..weights import model_path

    return model_path(args.checkpoint, args.weights, progress=progress)
