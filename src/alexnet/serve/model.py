"""The served network: one loaded model, its preprocessing, and the forward passes the page and the API need.

Every number goes through the library's own path, so the server answers what ``alexnet predict`` answers: the
upload is decoded by ``alexnet.data.read_image`` (shorter side to ``resize``, centre square), then
``EvalTransform`` takes the centre crop or the paper's ten patches (section 4.1), and the softmax is averaged over
the patches.  The weights loader is imported here and nowhere else in ``alexnet.serve``.
"""
from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..checkpoint import Checkpoint
from ..data import EvalTransform, read_image
from ..data.preprocessing import for_json
from ..errors import ConfigError, DataError
from ..features import LayerTap, batch_features, hooked_module_name
from ..interop import load_model  # the one place serve/ names the loader
from ..model import count_parameters, describe
from ..predict import class_names

WEIGHT_SUFFIXES = (".pt", ".pth", ".safetensors")


def resolve_source(checkpoint: str | None, weights: str | None) -> str:
    """The file or run folder to load from ``--checkpoint`` or ``--weights NAME|FILE|URL`` (exactly one; a registered
    name or URL is downloaded once into the hub cache)."""
    from ..weights import model_path

    return model_path(checkpoint or None, weights or None)


def to_network_order(x: torch.Tensor, prep: dict) -> torch.Tensor:
    """RGB uint8 batch -> the network's channel order (Caffe-converted networks expect BGR)."""
    return x.flip(1) if prep.get("channel_order", "RGB") == "BGR" and x.shape[1] == 3 else x


@dataclass
class ServedModel:
    """A network in eval mode with what describes it; ``forward_lock`` serialises forward passes."""

    model: torch.nn.Module
    ckpt: Checkpoint
    source: str
    prep: dict
    names: list[str]
    forward_lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def load(cls, source: str) -> "ServedModel":
        model, ckpt = load_model(source)
        prep = ckpt.inference_preprocessing(source)   # the same check as eval/predict/features
        return cls(model.eval(), ckpt, str(source), prep, class_names(ckpt, model.config.num_classes))

    # -- what the model is ------------------------------------------------------------------------------------
    @property
    def channels(self) -> int:
        return int(self.prep.get("channels", self.model.config.in_channels))

    @property
    def towers(self) -> int:
        return int(getattr(self.model.config, "towers", 1) or 1)

    @property
    def layer_names(self) -> list[str]:
        return list(self.model.layer_names)

    def conv_layers(self) -> list[str]:
        return [n for n in self.layer_names if n.startswith("conv")]

    def fc_layers(self) -> list[str]:
        return [n for n in self.layer_names if not n.startswith("conv")]

    def run_dir(self) -> Path | None:
        """The run folder the checkpoint came from (it holds metrics.csv), if any."""
        p = Path(self.source)
        folder = p if p.is_dir() else p.parent
        return folder if (folder / "metrics.csv").is_file() else None

    def card(self) -> dict:
        """The model's card: architecture, switches, parameters, preprocessing, provenance, measured accuracy."""
        cfg = self.model.config
        accuracy = {}
        best = self.ckpt.best_val_top1_error
        if best is not None and best == best and best != float("inf"):
            accuracy["val_top1_error"] = float(best)
        metrics = self.ckpt.metrics or {}
        for key in ("val_top1_error", "val_top5_error", "top1_error", "top5_error", "epoch"):
            if isinstance(metrics.get(key), (int, float)) and key not in accuracy:
                accuracy[key] = metrics[key]
        prep = {k: v for k, v in for_json(self.prep, full=False).items() if k != "stats"}
        src = self.ckpt.source or {"kind": "alexnet checkpoint"}
        if isinstance(src.get("publisher_accuracy"), dict):       # named weights: what their publisher measured
            accuracy["publisher"] = src["publisher_accuracy"]
        return {"architecture": cfg.arch, "switches": cfg.to_dict(), "parameters": count_parameters(self.model),
                "layers": [{"layer": r["layer"], "output": list(r["output"]), "parameters": r["parameters"]}
                           for r in describe(self.model)],
                "num_classes": cfg.num_classes, "classes": self.names, "preprocessing": prep,
                "weights": {"path": os.path.abspath(self.source), **{k: v for k, v in src.items()
                                                                      if isinstance(v, (str, int, float))}},
                "accuracy": accuracy or None, "run_dir": str(self.run_dir()) if self.run_dir() else None}

    # -- images -----------------------------------------------------------------------------------------------
    def decode(self, path: str | os.PathLike) -> torch.Tensor:
        """An uploaded file -> uint8 [C, S, S] by the package's one decoding path; DataError without the temp path."""
        try:
            return read_image(path, self.prep["resize"], channels=self.channels)
        except DataError as e:
            msg = str(e)
            prefix = f"{path}: "
            raise DataError(msg[len(prefix):] if msg.startswith(prefix) else msg) from None

    # -- forward passes (call with forward_lock held, or through the Batcher) ---------------------------------
    @torch.no_grad()
    def probabilities(self, images: list[torch.Tensor], crops: list[int]) -> list[torch.Tensor]:
        """Softmax per image ([num_classes] each); crops[i] = 1 (centre) or 10 (the paper's ten patches, averaged).

        Images asking for the same crops go through the network as one batch.
        """
        out: list[torch.Tensor | None] = [None] * len(images)
        p = self.prep
        for n in sorted(set(crops)):
            idx = [i for i, c in enumerate(crops) if c == n]
            x = to_network_order(torch.stack([images[i] for i in idx]), p)
            x = EvalTransform.from_prep(p, ten_crop=n == 10)(x)
            if n == 10:
                probs = self.model(x.flatten(0, 1)).float().softmax(-1).view(len(idx), 10, -1).mean(1)
            else:
                probs = self.model(x).float().softmax(-1)
            for j, i in enumerate(idx):
                out[i] = probs[j]
        return out

    def check_layer(self, layer: str) -> str:
        try:
            hooked_module_name(self.model, layer)
        except ConfigError as e:
            raise ConfigError(str(e).replace("--layer ", "layer ", 1)) from None
        return layer

    @torch.no_grad()
    def features(self, image: torch.Tensor, layer: str, pool: str = "none") -> torch.Tensor:
        """One layer's activations for one image (centre crop), as ``alexnet features`` computes them."""
        self.check_layer(layer)
        return batch_features(self.model, image[None], self.prep, [layer], pool)[layer][0]

    @torch.no_grad()
    def activations(self, image: torch.Tensor) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """Every named layer's output (post-ReLU for conv/fc6/fc7, logits last) for the centre crop."""
        tap = LayerTap(self.model, self.layer_names)
        try:
            p = self.prep
            x = EvalTransform.from_prep(p)(to_network_order(image[None], p))
            logits = self.model(x)
            return {k: v[0] for k, v in tap.captured.items()}, logits[0].float()
        finally:
            tap.close()

    def crop_pixels(self, image: torch.Tensor) -> list[torch.Tensor]:
        """The ten uint8 patches (in EvalTransform's order: 4 corners, centre, then their mirrors) for display."""
        k = int(self.prep["crop"])
        h, w = image.shape[-2:]
        t, l = (h - k) // 2, (w - k) // 2
        patches = [image[:, r:r + k, q:q + k] for r, q in ((0, 0), (0, w - k), (h - k, 0), (h - k, w - k), (t, l))]
        return patches + [q.flip(-1) for q in patches]


__all__ = ["ServedModel", "resolve_source", "to_network_order", "WEIGHT_SUFFIXES"]
