"""Class names that travel with converted weights: ImageNet's 1000, or a names file (Caffe's synset_words.txt)."""
from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from ..errors import ConfigError

IMAGENET_CLASSES = 1000


def imagenet_classes() -> list[str] | None:
    """The 1000 ILSVRC-2012 classes, "nXXXXXXXX name", in the order of the 1000 outputs (sorted synset ids; the
    order of torchvision's and Caffe's ImageNet models).  None if the resource is missing."""
    from importlib import resources

    f = resources.files("alexnet") / "resources" / "imagenet_classes.txt"
    if not f.is_file():
        return None
    lines = [ln.strip() for ln in f.read_text().splitlines() if ln.strip()]
    return lines if len(lines) == IMAGENET_CLASSES else None


def classes_for(num_classes: int, classes: Sequence[str] | None, origin: str) -> list[str] | None:
    """The class names to record for a converted network: those given (one per output), else ImageNet's for a
    1000-output network, else None."""
    if classes is not None:
        classes = [str(c) for c in classes]
        if len(classes) != num_classes:
            raise ConfigError(f"{origin}: {len(classes)} class names given for a network with {num_classes} outputs")
        return classes
    return imagenet_classes() if num_classes == IMAGENET_CLASSES else None


def read_class_names(path: str | os.PathLike) -> list[str]:
    """One class name per line (e.g. Caffe's synset_words.txt); blank lines are skipped."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{p}: no such class-names file")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        line = p.read_bytes()[:e.start].count(b"\n") + 1
        raise ConfigError(f"{p}: class-names file is not UTF-8 text (line {line}, byte {e.start}); save it as "
                          "UTF-8, one name per line") from None
    except OSError as e:
        raise ConfigError(f"{p}: cannot read the class-names file: {e.strerror or e}") from None
    return [ln.strip() for ln in text.splitlines() if ln.strip()]
