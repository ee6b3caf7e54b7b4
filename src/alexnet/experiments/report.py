"""``alexnet experiment report``: EXPERIMENTS.md assembled from the tables the experiments wrote.

The prose (the paper's claims, what the numbers mean, why they differ) lives in a template; every number comes from
an experiment's own ``OUT/NAME.md``, pasted where the template says ``<!-- experiment: NAME -->``, so no number is
typed by hand.  The pictures those tables show are copied next to the report (``docs/experiments/``) and the links
rewritten to point there.
"""
from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from ..errors import ConfigError
from ..utils import write_text_atomic
from .records import DEFAULT_ROOT

PLACEHOLDER = re.compile(r"<!--\s*experiment:\s*([\w-]+)\s*-->")
COMMENT = re.compile(r"<!--.*?-->", re.S)
IMAGE = re.compile(r"!\[([^\]]*)\]\(([^)\s]+\.png)\)")


def result_folder(root: Path, name: str) -> Path:
    """Where ``alexnet experiment NAME`` writes by default under ``root`` (filters and neighbours share one)."""
    from . import get_experiment

    exp = get_experiment(name)
    return root / (exp.folder or exp.name)


def build_report(root: str | os.PathLike = DEFAULT_ROOT,
                 template: str | os.PathLike = "docs/experiments/EXPERIMENTS.template.md",
                 output: str | os.PathLike = "EXPERIMENTS.md",
                 figures: str | os.PathLike = "docs/experiments") -> dict:
    """Fill ``template``'s placeholders with ``root/<folder>/NAME.md``, copy the PNGs they show into ``figures``,
    write ``output``.  Returns {"output", "included": [names], "missing": [names], "figures": [paths]}."""
    root, template, output, figures = Path(root), Path(template), Path(output), Path(figures)
    if not template.is_file():
        raise ConfigError(f"{template}: no such report template")
    text = template.read_text()
    included, missing, copied = [], [], []

    def fill(m: re.Match) -> str:
        name = m.group(1)
        folder = result_folder(root, name)
        md_file = folder / f"{name}.md"
        if not md_file.is_file():
            missing.append(name)
            return f"_Not run yet: `alexnet experiment {name}` writes {md_file}._"
        included.append(name)
        md = md_file.read_text().strip()

        def relink(im: re.Match) -> str:
            src = folder / im.group(2)
            if not src.is_file():
                return im.group(0)
            figures.mkdir(parents=True, exist_ok=True)
            dst = figures / src.name
            _copy_small(src, dst)
            copied.append(str(dst))
            return f"![{im.group(1)}]({Path(os.path.relpath(dst, output.parent or Path('.'))).as_posix()})"

        # the experiment's own "###" title becomes a sub-heading of the template's section
        return IMAGE.sub(relink, md)

    text = PLACEHOLDER.sub(fill, text)
    text = COMMENT.sub("", text)                       # the template's notes to its editors
    text = re.sub(r"\n{3,}", "\n\n", text)
    write_text_atomic(output, text.rstrip() + "\n")
    return {"output": str(output), "included": included, "missing": missing, "figures": copied}


MAX_FIGURE_BYTES = 300_000      # figures meant to be committed: larger ones (photo grids) are shrunk
MAX_FIGURE_WIDTH = 800


def _copy_small(src: Path, dst: Path) -> None:
    """Copy a PNG; one over MAX_FIGURE_BYTES is scaled to MAX_FIGURE_WIDTH and stored with a 256-colour palette."""
    if src.stat().st_size <= MAX_FIGURE_BYTES:
        shutil.copyfile(src, dst)
        return
    from PIL import Image

    with Image.open(src) as im:
        im = im.convert("RGB")
        if im.width > MAX_FIGURE_WIDTH:
            im = im.resize((MAX_FIGURE_WIDTH, round(im.height * MAX_FIGURE_WIDTH / im.width)), Image.LANCZOS)
        im.quantize(256).save(dst, optimize=True)
