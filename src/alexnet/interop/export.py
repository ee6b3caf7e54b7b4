"""Export for other runtimes: ONNX, TorchScript, safetensors; ``check_export`` compares an export's logits."""
from __future__ import annotations

import dataclasses
import json
import os
import warnings
from pathlib import Path
from typing import Any

import torch

from ..checkpoint import Checkpoint, first_line
from ..choices import EXPORT_FORMATS
from ..errors import ConfigError
from ..model import ModelConfig
from ..utils import atomic_output
from .load import load_model
from .safetensors import record_metadata, write_safetensors

_SUFFIX_FORMATS = {".onnx": "onnx", ".safetensors": "safetensors", ".ts": "torchscript", ".torchscript": "torchscript",
                   ".jit": "torchscript"}


def format_from_suffix(path: str | os.PathLike) -> str | None:
    """The export format an output file name implies (.onnx, .ts/.torchscript/.jit, .safetensors), else None."""
    return _SUFFIX_FORMATS.get(Path(path).suffix.lower())


def _metadata_json(ckpt: Checkpoint) -> str:
    return json.dumps(record_metadata(ckpt))


def _example_input(model: torch.nn.Module, batch: int = 2) -> torch.Tensor:
    cfg: ModelConfig = model.config
    g = torch.Generator().manual_seed(0)
    return torch.randn(batch, cfg.in_channels, cfg.input_size, cfg.input_size, generator=g) * 50


def export_model(checkpoint: str | os.PathLike, fmt: str, out: str | os.PathLike, *,
                 opset: int | None = None) -> Path:
    """Export a network (our .pt checkpoint or run folder, .safetensors, or a torchvision file) for other runtimes.

    ``onnx``: one input ``input`` (N x C x crop x crop float, preprocessed as the checkpoint's ``data`` says) and
    one output ``logits``, with a dynamic batch dimension; the checkpoint's config, classes and preprocessing are in
    the model's metadata (``metadata_props["alexnet"]``, JSON). A network trained with the paper's mean image
    carries it there (``data.mean_image``: base64 float32 [C, S, S], see ``alexnet.data.preprocessing``): subtract
    its crop at the input crop's place (its centre for a centre crop), mirrored for a mirrored crop. Uses the
    torch.export-based exporter (``dynamo=True``), falling back to the legacy TorchScript exporter if that fails.
    LRN exports as plain Conv/Pow/Mul ops.
    ``torchscript``: a traced module (``torch.jit.load``); metadata in the extra file ``alexnet.json``.
    ``safetensors``: weights plus metadata (see ``write_safetensors``).
    """
    fmt = fmt.lower()
    if fmt not in EXPORT_FORMATS:
        raise ConfigError(f"export format must be one of {', '.join(EXPORT_FORMATS)}; got {fmt!r}")
    model, ckpt = load_model(checkpoint)
    model = model.float().eval()
    ckpt = dataclasses.replace(ckpt, state_dict=model.state_dict()).weights_only()
    out = Path(out)
    if fmt == "safetensors":
        if out.suffix.lower() != ".safetensors":
            raise ConfigError(f"{out}: a safetensors export must end in .safetensors")
        return write_safetensors(out, ckpt)
    if fmt == "torchscript":
        return _export_torchscript(model, ckpt, out)
    return _export_onnx(model, ckpt, out, opset)


def _export_torchscript(model: torch.nn.Module, ckpt: Checkpoint, out: Path) -> Path:
    x = _example_input(model)
    with warnings.catch_warnings():
        # torch.jit is deprecated in favour of torch.export but still the format most C++/mobile users load.
        warnings.simplefilter("ignore", category=FutureWarning)
        warnings.simplefilter("ignore", category=DeprecationWarning)
        warnings.simplefilter("ignore", category=torch.jit.TracerWarning)
        with torch.no_grad():
            traced = torch.jit.trace(model, x, check_trace=False)
        with atomic_output(out) as tmp:
            torch.jit.save(traced, str(tmp), _extra_files={"alexnet.json": _metadata_json(ckpt)})
    return out


def _onnx_export(model: torch.nn.Module, x: torch.Tensor, tmp: Path, opset: int | None) -> str:
    """Write the ONNX file; returns the exporter that managed it ("dynamo" or the legacy "torchscript")."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            batch = torch.export.Dim("batch", min=1)
            torch.onnx.export(model, (x,), str(tmp), input_names=["input"], output_names=["logits"],
                              opset_version=opset, dynamo=True, external_data=False, verbose=False,
                              dynamic_shapes={"x": {0: batch}})
        return "dynamo"
    except Exception as e:  # noqa: BLE001 - any failure of the new exporter: try the legacy one
        warnings.warn(f"torch.onnx dynamo exporter failed ({first_line(e)}); using the legacy exporter", stacklevel=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (x,), str(tmp), input_names=["input"], output_names=["logits"],
                          opset_version=opset or 17, dynamo=False,
                          dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
    return "torchscript"


def _export_onnx(model: torch.nn.Module, ckpt: Checkpoint, out: Path, opset: int | None) -> Path:
    try:
        import onnx
    except ImportError:
        raise ConfigError("ONNX export needs the onnx and onnxscript packages: pip install onnx onnxscript") from None
    x = _example_input(model)
    with atomic_output(out, suffix=".tmp.onnx") as tmp:
        exporter = _onnx_export(model, x, tmp, opset)
        proto = onnx.load(str(tmp))
        for key, value in (("alexnet", _metadata_json(ckpt)), ("alexnet_exporter", exporter)):
            entry = proto.metadata_props.add()
            entry.key, entry.value = key, value
        onnx.save(proto, str(tmp))
    return out


def _run_export(exported: Path, fmt: str, x: torch.Tensor) -> torch.Tensor:
    """The logits of an exported file for ``x``, run by the runtime its users would run it with."""
    if fmt == "onnx":
        try:
            import onnxruntime as ort
        except ImportError:
            raise ConfigError("checking an ONNX export needs onnxruntime: pip install onnxruntime") from None
        sess = ort.InferenceSession(str(exported), providers=["CPUExecutionProvider"])
        return torch.from_numpy(sess.run(None, {sess.get_inputs()[0].name: x.numpy()})[0])
    if fmt == "torchscript":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ts = torch.jit.load(str(exported), map_location="cpu")
        with torch.no_grad():
            return ts(x)
    if fmt == "safetensors":
        with torch.no_grad():
            return load_model(exported).model(x)
    raise ConfigError(f"{exported}: cannot tell the export format; pass one of {', '.join(EXPORT_FORMATS)}")


def check_export(exported: str | os.PathLike, checkpoint: str | os.PathLike, fmt: str | None = None,
                 batch: int = 3) -> float:
    """Largest absolute logit difference between an exported file and the checkpoint's network (random input)."""
    exported = Path(exported)
    fmt = (fmt or format_from_suffix(exported) or "").lower()
    model = load_model(checkpoint).model
    x = _example_input(model, batch)
    with torch.no_grad():
        ref = model.float().eval()(x)
    got = _run_export(exported, fmt, x)
    return float((got.float() - ref.float()).abs().max())


def describe_weights(ckpt: Checkpoint) -> dict[str, Any]:
    """A short JSON-able summary of converted weights (for the CLI)."""
    cfg = ckpt.model_config
    prep = ckpt.preprocessing or {}
    return {"arch": cfg.arch, "num_classes": cfg.num_classes, "input_size": cfg.input_size, "towers": cfg.towers,
            "lrn": cfg.lrn, "lrn_convention": cfg.lrn_convention, "lrn_k": cfg.lrn_k, "channels": list(cfg.channels),
            "fc_size": cfg.fc_size, "classes": len(ckpt.classes or []) or None,
            "preprocessing": {k: prep.get(k) for k in ("channel_order", "mean", "std", "resize", "crop")}
            | ({"mean_image": {"shape": list(prep["mean_image"].shape)}} if prep.get("mean_image") is not None
               else {})}
