"""The dataset-format registry: one ``Format`` record per on-disk layout ``open_dataset`` understands.

A format is a name plus three functions: ``detect(root)`` (does this folder hold this format? used by kind "auto"),
``open(root, split, image_size=, strict=, check=)`` (one split as an ``ImageDataset``) and ``splits(root)`` (the
splits present, without opening them).  Kind "auto" asks the detectors in ``priority`` order (lowest first, ties in
registration order) and takes the first that says yes, so a format whose layout contains another's must come first
(a packed folder or CIFAR batches before image folders; ILSVRC's flat validation folder before plain image folders).

Adding a dataset format:

1. write ``alexnet/data/formats/<name>.py`` with its ``detect``/``open``/``splits`` functions ending in
   ``register_format(Format(name="<name>", priority=..., detect=..., open=..., splits=...))``
   (``torchvision_class`` and ``present`` too if ``--download`` can fetch it);
2. import it in ``alexnet/data/formats/__init__.py`` and add ``"<name>"`` to ``alexnet.choices.DATASET_KINDS``
   (the CLI's ``--dataset`` choices come from there; the registry checks at import that both name the same set);
3. give it a tiny generator of the real file format in ``tests/test_data_formats.py`` (``SAMPLES``): the test
   parametrized over the registry then checks detection, both splits, shapes and labels.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Format:
    """One dataset format.

    name: its ``--dataset`` name.  priority: position in auto-detection (lower is asked first).
    detect(root) -> bool.  open(root, split, *, image_size, strict, check) -> ImageDataset (image_size None: the
    format's default size; check: the up-front file checks of image folders).  splits(root) -> ["train", "val"]
    or a part of it.  torchvision_class: the ``torchvision.datasets`` class that downloads it (None: no download).
    present(root) -> bool: whether the files a download would fetch are already there.
    """

    name: str
    priority: int
    detect: Callable[[Path], bool]
    open: Callable[..., object]
    splits: Callable[[Path], list]
    torchvision_class: str | None = None
    present: Callable[[Path], bool] | None = None


_FORMATS: dict[str, Format] = {}


def register_format(fmt: Format) -> Format:
    """Add ``fmt`` to the registry (a name registered twice is a programming error)."""
    if fmt.name in _FORMATS:
        raise ValueError(f"dataset format {fmt.name!r} is registered twice")
    _FORMATS[fmt.name] = fmt
    return fmt


def get_format(name: str) -> Format:
    """The registered format called ``name`` (KeyError if none: callers check names against the choices)."""
    return _FORMATS[name]


def format_names() -> list[str]:
    """The registered names, in registration order."""
    return list(_FORMATS)


def detection_order() -> list[Format]:
    """The formats in the order kind "auto" asks their detectors."""
    order = {name: k for k, name in enumerate(_FORMATS)}
    return sorted(_FORMATS.values(), key=lambda f: (f.priority, order[f.name]))


def downloadable() -> list[str]:
    """Names of the formats ``--download`` can fetch, in registration order."""
    return [f.name for f in _FORMATS.values() if f.torchvision_class]


def check_names(expected) -> None:
    """Raise RuntimeError unless the registered names are exactly ``expected`` (the choices' list, less "auto")."""
    missing, extra = sorted(set(expected) - set(_FORMATS)), sorted(set(_FORMATS) - set(expected))
    if missing or extra:
        raise RuntimeError(f"dataset formats registered in alexnet.data.formats differ from "
                           f"alexnet.choices.DATASET_KINDS: not registered {missing}, not in choices {extra}")


__all__ = ["Format", "check_names", "detection_order", "downloadable", "format_names", "get_format",
           "register_format"]
