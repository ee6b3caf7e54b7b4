"""Export for other runtimes: ONNX, TorchScript, safetensors; ``check_export`` compares an export's logits."""
from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import os
import sys
import warnings
from pathlib import Path
from typing import Any

import torch

from ..checkpoint import Checkpoint, first_line
from ..choices import EXPORT_FORMATS
from ..errors import ConfigError
from ..model import ModelConfig
from ..utils import check_output, write_bytes_atomic
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


def onnx_opsets() -> tuple[int, int]:
    """The ONNX opsets the installed torch.onnx can write (its ``ONNX_MIN_OPSET`` .. ``ONNX_MAX_OPSET``)."""
    from torch.onnx import _constants

    return int(_constants.ONNX_MIN_OPSET), int(_constants.ONNX_MAX_OPSET)


def check_export_args(fmt: str, out: str | os.PathLike, opset: int | None = None, overwrite: bool = True) -> str:
    """Every export flag checked before anything is loaded or written: the format (lower-cased, returned), the
    output name and place, and the ONNX opset against the range the installed torch.onnx supports."""
    fmt = fmt.lower()
    if fmt not in EXPORT_FORMATS:
        raise ConfigError(f"export format must be one of {', '.join(EXPORT_FORMATS)}; got {fmt!r}")
    out = Path(out)
    if fmt == "safetensors" and out.suffix.lower() != ".safetensors":
        raise ConfigError(f"{out}: a safetensors export must end in .safetensors")
    if opset is not None:
        lo, hi = onnx_opsets()
        if fmt != "onnx":
            raise ConfigError(f"--opset {opset}: only ONNX exports have an opset (this export is {fmt})")
        if isinstance(opset, bool) or not isinstance(opset, int) or not lo <= opset <= hi:
            raise ConfigError(f"--opset {opset}: the installed torch.onnx writes opsets {lo}..{hi}")
    check_output(out, overwrite)
    return fmt


def export_model(checkpoint: str | os.PathLike, fmt: str, out: str | os.PathLike, *,
                 opset: int | None = None, overwrite: bool = True) -> Path:
    """Export a network (our .pt checkpoint or run folder, .safetensors, or a torchvision file) for other runtimes.

    ``onnx``: one input ``input`` (N x C x crop x crop float, preprocessed as the checkpoint's ``data`` says) and
    one output ``logits``, with a dynamic batch dimension; the checkpoint's config, classes and preprocessing are in
    the model's metadata (``metadata_props["alexnet"]``, JSON). A network trained with the paper's mean image
    carries it there (``data.mean_image``: base64 float32 [C, S, S], see ``alexnet.data.preprocessing``): subtract
    its crop at the input crop's place (its centre for a centre crop), mirrored for a mirrored crop.  Opsets >= 18
    (and the default) use the torch.export-based exporter (``dynamo=True``), falling back to the legacy TorchScript
    exporter if that fails; older opsets use the legacy exporter directly (the new one would write opset 18 where
    its down-conversion fails).  The file has exactly the opset asked for, or nothing is written.  LRN exports as
    plain Conv/Pow/Mul ops.
    ``torchscript``: a traced module (``torch.jit.load``); metadata in the extra file ``alexnet.json``.
    ``safetensors``: weights plus metadata (see ``write_safetensors``).
    Every format is serialized in memory and written by ``alexnet.utils`` (atomic; a full disk is a one-line
    OutputError); ``overwrite=False`` refuses an existing ``out`` before anything is loaded.
    """
    fmt = check_export_args(fmt, out, opset, overwrite)
    model, ckpt = load_model(checkpoint)
    model = model.float().eval()
    ckpt = dataclasses.replace(ckpt, state_dict=model.state_dict()).weights_only()
    out = Path(out)
    if fmt == "safetensors":
        return write_safetensors(out, ckpt, overwrite=overwrite)
    if fmt == "torchscript":
        data = _torchscript_bytes(model, ckpt)
    else:
        data = _onnx_bytes(model, ckpt, opset)
    return write_bytes_atomic(out, data, overwrite=overwrite)


def _torchscript_bytes(model: torch.nn.Module, ckpt: Checkpoint) -> bytes:
    """The traced module as the bytes of a ``torch.jit.save`` file (saved to memory: torch.jit.save to a path
    aborts the process from C++ on a full disk)."""
    x = _example_input(model)
    with warnings.catch_warnings():
        # torch.jit is deprecated in favour of torch.export but still the format most C++/mobile users load.
        warnings.simplefilter("ignore", category=FutureWarning)
        warnings.simplefilter("ignore", category=DeprecationWarning)
        warnings.simplefilter("ignore", category=torch.jit.TracerWarning)
        with torch.no_grad():
            traced = torch.jit.trace(model, x, check_trace=False)
        buf = io.BytesIO()
        torch.jit.save(traced, buf, _extra_files={"alexnet.json": _metadata_json(ckpt)})
    return buf.getvalue()


@contextlib.contextmanager
def _native_output_silenced():
    """File descriptors 1 and 2 to /dev/null for the block: the legacy exporter's C++ logger dumps the whole Torch IR
    graph to stdout when an op has no export at the opset asked for (its ``setup_onnx_logging`` turns logging on
    whatever ``verbose`` says: torch 2.14 tests the function ``_jit_is_onnx_log_enabled``, not its result), which
    would also break ``--json``.  The failure itself becomes a one-line ConfigError."""
    saved = {}
    try:
        for fd, stream in ((1, sys.stdout), (2, sys.stderr)):
            if stream is not None:
                stream.flush()
            saved[fd] = os.dup(fd)
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, fd)
            os.close(devnull)
        yield
    finally:
        for fd, copy in saved.items():
            os.dup2(copy, fd)
            os.close(copy)


_DYNAMO_MIN_OPSET = 18   # the torch.export-based exporter's own ops; below it, it converts down (or keeps 18)


def _onnx_proto(model: torch.nn.Module, x: torch.Tensor, opset: int | None):
    """(ONNX ModelProto, the exporter that made it: "dynamo" or the legacy "torchscript"), built in memory."""
    import onnx

    if opset is None or opset >= _DYNAMO_MIN_OPSET:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                batch = torch.export.Dim("batch", min=1)
                program = torch.onnx.export(model, (x,), None, input_names=["input"], output_names=["logits"],
                                            opset_version=opset, dynamo=True, external_data=False, verbose=False,
                                            dynamic_shapes={"x": {0: batch}})
            return program.model_proto, "dynamo"
        except Exception as e:  # noqa: BLE001 - any failure of the new exporter: try the legacy one
            warnings.warn(f"torch.onnx dynamo exporter failed ({first_line(e)}); using the legacy exporter",
                          stacklevel=3)
    buf = io.BytesIO()
    try:
        with warnings.catch_warnings(), _native_output_silenced():
            warnings.simplefilter("ignore")
            torch.onnx.export(model, (x,), buf, input_names=["input"], output_names=["logits"],
                              opset_version=opset or 17, dynamo=False,
                              dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
    except Exception as e:  # noqa: BLE001 - the exporter's own errors (an op missing at this opset, ...)
        raise ConfigError(f"ONNX export at opset {opset or 17} failed: {first_line(e)}") from None
    return onnx.load_from_string(buf.getvalue()), "torchscript"


def _onnx_bytes(model: torch.nn.Module, ckpt: Checkpoint, opset: int | None) -> bytes:
    try:
        import onnx  # noqa: F401 - the exporters need it
    except ImportError:
        raise ConfigError("ONNX export needs the onnx and onnxscript packages: pip install onnx onnxscript") from None
    proto, exporter = _onnx_proto(model, _example_input(model), opset)
    written = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), None)
    if opset is not None and written != opset:
        raise ConfigError(f"--opset {opset}: the exporter could only write opset {written}; nothing written")
    for key, value in (("alexnet", _metadata_json(ckpt)), ("alexnet_exporter", exporter)):
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    return proto.SerializeToString()


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
