"""Pretrained weights by name: a registry of published AlexNet weights, downloaded the way ``torch.hub`` does.

    alexnet.pretrained("torchvision")          # torchvision's IMAGENET1K_V1 as our ``owt`` network (eval mode)
    path = resolve_weights("bvlc")             # BVLC's bvlc_alexnet.caffemodel, converted once: a local file that
    model, ckpt = alexnet.load_model(path)     # the one loader reads (with its preprocessing and class names)

A *spec* is a registered name (``choices.WEIGHTS``), a URL or a file.  Downloads go into the hub cache
(``$TORCH_HOME/hub/checkpoints``, as ``torch.hub.load_state_dict_from_url``; a file torchvision already downloaded
there is reused), with a progress bar, through a temporary file in that folder that is renamed only when complete and
verified: a registry entry against its full checksum, a URL whose file name ends in ``-<hex>.<ext>`` against that
sha256 prefix (torch.hub's rule).  An HTTP error, a connection cut mid-file, a checksum mismatch or Ctrl-C leaves
nothing in the cache.  A downloaded (or Caffe) file is converted once into an alexnet ``.safetensors`` kept next to
it (``<name>.alexnet.safetensors``: weights, preprocessing, class names and where it came from) and reused offline
afterwards.  Without a network the error is one line naming the URL and where to put the file by hand.

Adding published weights is one ``register_weights(WeightsEntry(...))`` below, its name in ``choices.WEIGHTS`` and
its test (``tests/test_weights.py``).  Fine-tuning from weights (``alexnet train --weights``) is
``load_start_weights`` + ``start_from_weights``: every layer but the classifier's last is kept.
"""
from __future__ import annotations

import hashlib
import http.client
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .choices import WEIGHTS
from .errors import CheckpointError, ConfigError
from .utils import atomic_output, file_digest

CONVERTED_SUFFIX = ".alexnet.safetensors"
# torch.hub.HASH_REGEX: a downloaded file named NAME-<hex>.EXT must have a sha256 starting with <hex>.
HUB_HASH_REGEX = re.compile(r"-([a-f0-9]*)\.")
# A local file is checked only when its name carries a real hash (>= 6 hex digits, as `alexnet convert torchvision`):
# "run-3.pt" is not a hash.
_FILE_HASH_REGEX = re.compile(r"-([a-f0-9]{6,})\.[^.]+$")
_CHUNK = 1 << 20
FILE_FORMATS = ("torchvision", "caffemodel")


@dataclass(frozen=True)
class WeightsEntry:
    """Published weights: where to get them, how to check them, what they are and how well they do."""

    name: str
    url: str
    checksum: tuple[str, str]        # (hashlib algorithm, full hex digest), checked before the file is used
    size: int | None                 # bytes (None: not published); the progress bar's total without Content-Length
    arch: str                        # the network the converted file builds (choices.ARCHS)
    file_format: str                 # "torchvision" (a state_dict .pth) | "caffemodel"
    preprocessing: str               # what the converter records, in words (the record holds the numbers)
    classes: str                     # where the class names come from
    accuracy: Mapping[str, Any]      # the publisher's: top1, top5 (percent), crops, split
    citation: str
    notes: str = ""

    @property
    def filename(self) -> str:
        return url_filename(self.url)


WEIGHTS_REGISTRY: dict[str, WeightsEntry] = {}


def register_weights(entry: WeightsEntry, *, replace: bool = False) -> WeightsEntry:
    """Add ``entry`` to the registry (its name in ``choices.WEIGHTS`` for the built-in ones)."""
    if entry.file_format not in FILE_FORMATS:
        raise RuntimeError(f"register_weights({entry.name!r}): file_format must be one of {FILE_FORMATS}")
    algo, digest = entry.checksum
    if algo not in hashlib.algorithms_guaranteed or not re.fullmatch(r"[0-9a-f]+", digest):
        raise RuntimeError(f"register_weights({entry.name!r}): checksum {entry.checksum!r} is not (algorithm, hex)")
    if entry.name in WEIGHTS_REGISTRY and not replace:
        raise RuntimeError(f"register_weights: {entry.name!r} is registered twice")
    WEIGHTS_REGISTRY[entry.name] = entry
    return entry


def list_weights() -> tuple[str, ...]:
    return tuple(WEIGHTS_REGISTRY)


def get_weights(name: str) -> WeightsEntry:
    if name not in WEIGHTS_REGISTRY:
        raise ConfigError(f"unknown weights {name!r}; registered: {', '.join(WEIGHTS_REGISTRY)} (or give a file or "
                          "an http(s) URL)")
    return WEIGHTS_REGISTRY[name]


# torchvision.models.AlexNet_Weights.IMAGENET1K_V1 (torchvision 0.29: url, _metrics acc@1 56.522 / acc@5 79.066,
# _file_size 233.087 MiB, transforms ImageClassification(crop_size=224): resize 256, centre crop 224, ImageNet
# mean/std; categories = _IMAGENET_CATEGORIES, the sorted-wnid order of our imagenet_classes.txt).  torchvision
# publishes only the sha256 prefix (in the file name); the full sha256 and the byte count (244408911 bytes =
# 233.087 MiB, agreeing with _file_size) are those recorded for this file by several independent public projects.
register_weights(WeightsEntry(
    name="torchvision",
    url="https://download.pytorch.org/models/alexnet-owt-7be5be79.pth",
    checksum=("sha256", "7be5be791159472b1fbf3c69796f7cb30dca7ad8466c2df70058c37116cdee02"),
    size=244_408_911,
    arch="owt",
    file_format="torchvision",
    preprocessing="RGB; resize the shorter side to 256, centre crop 224; ImageNet mean/std",
    classes="the 1000 ILSVRC-2012 classes (torchvision's _IMAGENET_CATEGORIES order: sorted wnids)",
    accuracy={"top1": 56.522, "top5": 79.066, "crops": 1, "split": "ILSVRC-2012 val"},
    citation="torchvision AlexNet_Weights.IMAGENET1K_V1; Krizhevsky, 'One weird trick for parallelizing "
             "convolutional neural networks', arXiv:1404.5997 (2014)",
    notes="the one-weird-trick network: 64-192-384-256-256 kernels, one tower, no LRN",
))

# BVLC/caffe models/bvlc_alexnet/readme.md: caffemodel_url, sha1 9116a64c0fbe4459d18f4bb6b56d647b63920377, "top-1
# accuracy 57.1% and a top-5 accuracy 80.2% on the validation set, using just the center crop".  BVLC publishes no
# byte count (OpenCV's samples list it as "232 MB"): the size stays unknown and is not checked.  Caffe's input: BGR,
# raw 0-255 pixels minus the ILSVRC-2012 mean (104, 117, 123 per channel), 256x256 warp and 227 crops.
register_weights(WeightsEntry(
    name="bvlc",
    url="http://dl.caffe.berkeleyvision.org/bvlc_alexnet.caffemodel",
    checksum=("sha1", "9116a64c0fbe4459d18f4bb6b56d647b63920377"),
    size=None,
    arch="paper",
    file_format="caffemodel",
    preprocessing="BGR; raw 0-255 pixels minus Caffe's ILSVRC-2012 mean (104, 117, 123); resize 256, crop 227",
    classes="the 1000 ILSVRC-2012 classes (Caffe's synset_words.txt order: sorted wnids)",
    accuracy={"top1": 57.1, "top5": 80.2, "crops": 1, "split": "ILSVRC-2012 val"},
    citation="BVLC Caffe model zoo, bvlc_alexnet (trained by Evan Shelhamer); Krizhevsky, Sutskever & Hinton, "
             "NIPS 2012",
    notes="two towers, Caffe's LRN (alpha/n, k=1), biases 0.1 where the paper has 1, no PCA lighting",
))

if tuple(WEIGHTS_REGISTRY) != WEIGHTS:
    raise RuntimeError(f"registered weights {tuple(WEIGHTS_REGISTRY)} differ from alexnet.choices.WEIGHTS {WEIGHTS}")


# --- the cache --------------------------------------------------------------------------------------------------
def hub_dir() -> Path:
    """torch.hub's folder: ``torch.hub.set_dir``'s, else ``$TORCH_HOME/hub`` (default ``~/.cache/torch/hub``)."""
    import torch.hub

    return Path(torch.hub.get_dir())


def cache_dir() -> Path:
    """Where downloaded weights live: ``<hub_dir>/checkpoints``, as torch.hub.load_state_dict_from_url."""
    return hub_dir() / "checkpoints"


def url_filename(url: str) -> str:
    name = os.path.basename(urllib.parse.urlparse(url).path)
    if not name:
        raise ConfigError(f"{url}: the URL names no file (expected .../NAME.pth, .pt, .safetensors or .caffemodel)")
    return name


def converted_path(raw: Path) -> Path:
    """The alexnet .safetensors kept next to a downloaded file."""
    return raw.with_name(raw.stem + CONVERTED_SUFFIX)


def _is_url(spec: str) -> bool:
    return spec.startswith(("http://", "https://", "file://"))


# --- downloading --------------------------------------------------------------------------------------------------
def _progress_bar(total: int | None, name: str, enabled: bool):
    from .progress import progress_bar

    return progress_bar(total=total, desc=f"downloading {name}", unit="B", unit_scale=True, unit_divisor=1024,
                        disable=not enabled)


def _offline(url: str, dest: Path, reason: object) -> CheckpointError:
    return CheckpointError(f"cannot download {url} ({reason}); without network, fetch that file elsewhere and put "
                           f"it at {dest}")


def download(url: str, dest: str | os.PathLike, *, checksum: tuple[str, str] | None = None,
             hash_prefix: str | None = None, size: int | None = None, progress: bool = True,
             timeout: float = 60.0) -> Path:
    """Download ``url`` to ``dest`` through a temporary file in ``dest``'s folder, hashed while it is written.

    The file appears at ``dest`` only when complete (as many bytes as the server announced) and verified: against
    ``checksum`` (algorithm, full hex digest) and/or a sha256 ``hash_prefix``.  Any failure (HTTP error, a connection
    cut mid-file, a mismatch, Ctrl-C) removes the temporary file and raises; nothing is left behind.
    """
    dest = Path(dest)
    algo, expected = checksum if checksum else ("sha256", None)
    hashers = {algo: hashlib.new(algo)}
    if hash_prefix:
        hashers.setdefault("sha256", hashlib.sha256())
    try:
        response = urllib.request.urlopen(urllib.request.Request(url, headers={"User-Agent": "alexnet"}),
                                          timeout=timeout)
    except urllib.error.HTTPError as e:
        raise CheckpointError(f"cannot download {url}: HTTP {e.code} {e.reason}; nothing was saved") from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as e:
        raise _offline(url, dest, getattr(e, "reason", None) or e) from None
    with response, atomic_output(dest) as tmp:
        announced = int(response.headers.get("Content-Length") or 0) or None
        got = 0
        with open(tmp, "wb") as f, _progress_bar(announced or size, dest.name, progress) as bar:
            while True:
                try:
                    chunk = response.read(_CHUNK)
                except (OSError, http.client.HTTPException) as e:   # reset, timeout, IncompleteRead
                    raise CheckpointError(f"download of {url} broke off after {got} bytes ({type(e).__name__}); "
                                          "nothing was saved; try again") from None
                if not chunk:
                    break
                f.write(chunk)
                for h in hashers.values():
                    h.update(chunk)
                got += len(chunk)
                bar.update(len(chunk))
        if announced is not None and got != announced:
            raise CheckpointError(f"download of {url} broke off after {got} of {announced} bytes; nothing was saved; "
                                  "try again")
        _verify(url, hashers, algo, expected, hash_prefix)
    return dest


def _verify(url: str, hashers: Mapping[str, Any], algo: str, expected: str | None, hash_prefix: str | None) -> None:
    if expected is not None:
        digest = hashers[algo].hexdigest()
        if digest != expected.lower():
            raise CheckpointError(f"{url}: {algo} {digest} differs from the published {expected}: a corrupt or "
                                  "modified download; nothing was saved")
    if hash_prefix:
        digest = hashers["sha256"].hexdigest()
        if not digest.startswith(hash_prefix):
            raise CheckpointError(f"{url}: sha256 {digest[:16]}... does not start with {hash_prefix!r} as its file "
                                  "name says: a corrupt or modified download; nothing was saved")


# --- conversion (once) ------------------------------------------------------------------------------------------
def _convert(raw: Path, out: Path, file_format: str, source: Mapping[str, Any]) -> Path:
    """``raw`` (torchvision state_dict or .caffemodel) -> an alexnet .safetensors at ``out``."""
    from .interop import convert_caffe, convert_torchvision

    if file_format == "caffemodel":
        return convert_caffe(raw, out, source=source)
    return convert_torchvision(raw, out, check_hash=False, source=source)   # the caller checked the hash


def _entry_source(entry: WeightsEntry, raw: Path) -> dict[str, Any]:
    algo, digest = entry.checksum
    return {"weights": entry.name, "url": entry.url, algo: digest, "file": raw.name,
            "publisher_accuracy": dict(entry.accuracy), "citation": entry.citation}


def _resolve_entry(entry: WeightsEntry, progress: bool) -> Path:
    raw = cache_dir() / entry.filename
    out = converted_path(raw)
    if out.is_file():
        return out
    if raw.is_file():   # downloaded before (by us, by torchvision, or put there by hand): check it once
        algo, expected = entry.checksum
        digest = file_digest(raw, algo)
        if digest != expected:
            raise CheckpointError(f"{raw}: {algo} {digest} differs from the published {expected} of {entry.url}: a "
                                  "corrupt or different file; remove it and try again")
    else:
        download(entry.url, raw, checksum=entry.checksum, size=entry.size, progress=progress)
    converted = _convert(raw, out, entry.file_format, _entry_source(entry, raw))
    return converted


def _resolve_url(url: str, progress: bool) -> Path:
    for entry in WEIGHTS_REGISTRY.values():
        if entry.url == url:
            return _resolve_entry(entry, progress)
    name = url_filename(url)
    raw = cache_dir() / name
    if not raw.is_file():
        m = HUB_HASH_REGEX.search(name)
        download(url, raw, hash_prefix=(m.group(1) or None) if m else None, progress=progress)
    if raw.suffix.lower() == ".caffemodel":
        out = converted_path(raw)
        return out if out.is_file() else _convert(raw, out, "caffemodel", {"url": url, "file": name})
    return raw


def _resolve_file(path: Path) -> Path:
    if path.is_dir():
        return path   # a run folder: the loader takes its best.pt
    if not path.is_file():
        raise CheckpointError(f"{path}: no such weight file, and not a registered weights name "
                              f"({', '.join(WEIGHTS_REGISTRY)}) or an http(s) URL")
    m = _FILE_HASH_REGEX.search(path.name)
    if m:
        digest = file_digest(path)
        if not digest.startswith(m.group(1)):
            raise CheckpointError(f"{path}: sha256 {digest[:16]}... does not start with {m.group(1)!r} as its file "
                                  "name says: a corrupt or modified file")
    if path.suffix.lower() == ".caffemodel":   # converted once into the cache, keyed by content
        out = cache_dir() / f"{path.stem}-{file_digest(path)[:8]}{CONVERTED_SUFFIX}"
        return out if out.is_file() else _convert(path, out, "caffemodel", {"file": path.name})
    return path


def resolve_weights(spec: str | os.PathLike, *, progress: bool = True) -> Path:
    """A local file ``alexnet.load_model`` reads, for a registered name, a URL or a file.

    name: downloaded into the hub cache (once), checked against the registry's checksum, converted once to an
    alexnet .safetensors kept there.  URL: downloaded into the hub cache (once), checked against the sha256 prefix
    in its file name if it has one.  File: itself (checked against a sha256 prefix in its name, if any).  A Caffe
    .caffemodel (URL or file) is converted once into the cache.
    """
    text = os.fspath(spec)
    if not text:
        raise ConfigError("--weights: empty; give a registered name "
                          f"({', '.join(WEIGHTS_REGISTRY)}), a file or a URL")
    if text in WEIGHTS_REGISTRY:
        return _resolve_entry(WEIGHTS_REGISTRY[text], progress)
    if _is_url(text):
        return _resolve_url(text, progress)
    return _resolve_file(Path(text))


def model_path(checkpoint: str | os.PathLike | None, weights: str | None, *, progress: bool = True) -> str:
    """What the verbs load: ``--checkpoint`` as given, or ``--weights`` resolved to a local file."""
    if (checkpoint is None) == (weights is None):
        raise ConfigError("give either a checkpoint or --weights NAME|FILE|URL (exactly one)")
    return str(checkpoint) if weights is None else str(resolve_weights(weights, progress=progress))


def pretrained(spec: str = "torchvision", *, progress: bool = True, map_location: str = "cpu"):
    """The network of registered weights (``"torchvision"``, ``"bvlc"``), a URL or a file, in eval mode, with its
    weights loaded.  Its record (preprocessing, classes, source) is ``alexnet.load_model(resolve_weights(spec))``."""
    from .interop import load_model

    return load_model(resolve_weights(spec, progress=progress), map_location=map_location).model


# --- starting a training run from weights ---------------------------------------------------------------------------
@dataclass
class StartWeights:
    """Weights a training run starts from: the loaded record and where it came from."""

    spec: str
    path: Path
    record: Any                                           # alexnet.checkpoint.Checkpoint
    provenance: dict[str, Any] = field(default_factory=dict)


def load_start_weights(spec: str | os.PathLike, *, progress: bool = True) -> StartWeights:
    """Resolve and read ``spec`` (name, file or URL) for ``alexnet train --weights``: the record and its provenance
    (the spec, the file, its sha256 and the record's own ``source``)."""
    from .interop import load_model

    path = resolve_weights(spec, progress=progress)
    _, record = load_model(path)
    file = path if path.is_file() else None
    provenance = {"spec": os.fspath(spec), "file": str(path), "arch": record.arch,
                  "sha256": file_digest(file) if file is not None else None,
                  "num_classes": record.model_config.num_classes}
    if record.source:
        provenance["source"] = dict(record.source)
    return StartWeights(os.fspath(spec), path, record, provenance)


def last_layer_keys(model) -> list[str]:
    """The state_dict keys of the classifier's last layer (``fc8``; ``classifier.6`` in ``owt``; ``fc10``)."""
    last = model.layer(model.layer_names[-1])
    own = {id(p) for p in last.parameters()}
    return [k for k, p in model.named_parameters() if id(p) in own]


def start_from_weights(model, weights: StartWeights | str | os.PathLike, classes: list[str] | None = None, *,
                       keep_head: bool | None = None, progress: bool = True) -> dict[str, Any]:
    """Copy ``weights`` into ``model`` (built with the weights' architecture and layout): every tensor but the
    classifier's last layer, which keeps ``model``'s own initialisation and its number of classes.  The last layer is
    kept too when ``keep_head`` (default: when ``classes`` are exactly the weights' classes).  Returns the provenance a
    checkpoint records (spec, file, sha256, source, ``replaced`` keys).  A tensor of another shape is a one-line
    ConfigError naming it."""
    import torch

    start = weights if isinstance(weights, StartWeights) else load_start_weights(weights, progress=progress)
    record = start.record
    arch = model.config.arch
    if record.arch != arch:
        raise ConfigError(f"--weights {start.spec}: weights of architecture {record.arch!r}, the network is {arch!r}")
    if keep_head is None:
        keep_head = classes is not None and record.classes is not None and list(record.classes) == list(classes)
    head = [] if keep_head else last_layer_keys(model)
    own = model.state_dict()
    for k, v in own.items():
        if k in head:
            continue
        if k not in record.state_dict:
            raise ConfigError(f"--weights {start.spec}: no tensor {k!r} in the weights for this {arch!r} network")
        src = record.state_dict[k]
        if tuple(src.shape) != tuple(v.shape):
            raise ConfigError(f"--weights {start.spec}: tensor {k!r} has shape {tuple(src.shape)} in the weights, "
                              f"{tuple(v.shape)} in this network (input {model.config.input_size} px, "
                              f"{model.config.in_channels} channels); train with the weights' layout (--crop "
                              f"{record.model_config.input_size}, {record.model_config.in_channels}-channel images)")
    with torch.no_grad():
        for k, v in own.items():
            if k not in head:
                v.copy_(record.state_dict[k])
    return {**start.provenance, "replaced": head, "kept": len(own) - len(head)}


def finetune_config(record_config, *, num_classes: int, input_size: int, in_channels: int,
                    switches: Mapping[str, Any] | None = None):
    """The ModelConfig of a network started from weights: the weights' layout with the data's classes, input size
    and channels, and any model switches given (dropout, init of the new last layer, ...)."""
    from .model import ModelConfig, make_config

    d = record_config.to_dict() if isinstance(record_config, ModelConfig) else dict(record_config)
    arch = d.pop("arch")
    switches = dict(switches or {})
    d.update(switches)
    d.update(num_classes=num_classes, input_size=input_size, in_channels=in_channels)
    if "lrn_convention" in switches and "lrn_k" not in switches:
        d["lrn_k"] = None   # the new convention's own k
    return make_config(arch, **d)


def fixed_input(arch: str) -> bool:
    """Whether the network's fc6 depends on the input size (all but ``owt``, which pools adaptively to 6x6)."""
    return arch != "owt"


__all__ = ["WeightsEntry", "WEIGHTS_REGISTRY", "register_weights", "list_weights", "get_weights", "hub_dir",
           "cache_dir", "download", "resolve_weights", "model_path", "pretrained", "StartWeights",
           "load_start_weights", "start_from_weights", "finetune_config", "last_layer_keys", "fixed_input",
           "converted_path", "file_digest"]
