"""The embedded synthetic dataset: shapes on clutter, written as a real ImageFolder of JPEGs (the main job's data).

Each image shows one large shape whose *outline* is the class: circle, triangle, square, pentagon, hexagon, star,
cross, ring, crescent, arrow (the default 10), then heart and L-shape (up to 12).  Everything else is random and
independent of the class, so only spatial structure identifies it:

- colour: shape and background colours are drawn independently (with a minimum contrast); both are filled with a
  random texture (background: flat, gradient, faint stripes or smooth noise; shape: flat, gradient or smooth noise);
- position: anywhere that keeps the shape inside the frame (with a margin for 128-of-144 crops);
- scale: every shape is scaled to the same *area* (the area of a circle of radius 19-32% of the image), so neither
  the size nor the number of foreground pixels says anything about the class; a mild stretch, a rotation of up to
  30 degrees either way and jittered vertices vary the outline itself;
- clutter: smooth colour fields, thin random lines (some across the shape), small ellipses, pixel noise, blur and
  JPEG compression.

Confusable outlines (pentagon/hexagon/circle/square, arrow/crescent/star) keep it from being trivial, while the
shapes stay ~50-90 px across after the demo's 256 -> 144 px resize.  Difficulty was tuned with a small CNN (4 conv
layers, Adam, 64-px crops of 72-px images, 10 classes x 300 images): 77% validation accuracy after 6 epochs, 87%
after 10 (train 89%), the remaining errors mostly hexagon/pentagon/circle; with full rotations and smaller, more
textured shapes the same net was at 53% after 6 and 65% after 10, too slow for the main job's few-minute budget.
Deterministic from the seed: image i of class c in a split depends on (seed, split, c, i)
only, so any subset can be regenerated identically in any order.

Layout: ``OUT/train/<class>/<class>_00000.jpg``, ``OUT/val/<class>/...``, ``OUT/manifest.json``.  The folder is built
beside OUT under a temporary name and renamed into place when complete, so OUT is never half-written; ``generate``
returns at once when OUT already holds a complete set made with the same parameters.
"""
from __future__ import annotations

import functools
import io
import json
import math
import os
import shutil
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from ..errors import ConfigError, DataError
from ..utils import check_writable, output_error, prepare_output_dir, publish_dir

SHAPES = ("circle", "triangle", "square", "pentagon", "hexagon", "star", "cross", "ring", "crescent", "arrow",
          "heart", "lshape")
MANIFEST = "manifest.json"
GENERATOR = "alexnet-synthetic"
VERSION = 2                  # bump whenever the rendering changes: older sets are regenerated
DEFAULTS = {"classes": 10, "train_per_class": 300, "val_per_class": 50, "size": 256}
SUPERSAMPLE = 2


# ---------------------------------------------------------------------------------------------------- shapes ----
# Each shape: a list of (polygon [K, 2] in unit coordinates, fill 1 or 0), drawn in order (0 cuts holes).

def _regular(k: int, phase: float = math.pi / 2) -> np.ndarray:
    a = phase + 2 * math.pi * np.arange(k) / k
    return np.stack([np.cos(a), np.sin(a)], 1)


def _circle(n: int = 72) -> np.ndarray:
    return _regular(n, 0.0)


def _shape(name: str, rng: np.random.Generator) -> list[tuple[np.ndarray, int]]:
    jit = lambda p, s=0.035: p + rng.normal(0, s, p.shape)  # noqa: E731
    if name == "circle":
        return [(_circle(), 1)]
    if name in ("triangle", "square", "pentagon", "hexagon"):
        k = {"triangle": 3, "square": 4, "pentagon": 5, "hexagon": 6}[name]
        return [(jit(_regular(k)), 1)]
    if name == "star":
        inner = rng.uniform(0.38, 0.5)
        pts = _regular(10)
        pts[1::2] *= inner
        return [(jit(pts, 0.025), 1)]
    if name == "cross":
        w = rng.uniform(0.3, 0.42)
        pts = np.array([(-w, 1), (w, 1), (w, w), (1, w), (1, -w), (w, -w), (w, -1), (-w, -1), (-w, -w), (-1, -w),
                        (-1, w), (-w, w)], float)
        return [(jit(pts, 0.025), 1)]
    if name == "ring":
        q = rng.uniform(0.5, 0.68)
        return [(_circle(), 1), (_circle() * q + rng.normal(0, 0.03, 2), 0)]
    if name == "crescent":
        d, q = rng.uniform(0.4, 0.6), rng.uniform(0.8, 0.95)
        x0 = (1 + d * d - q * q) / (2 * d)
        y0 = math.sqrt(max(1e-6, 1 - x0 * x0))
        phi0, psi0 = math.atan2(y0, x0), math.atan2(y0, x0 - d)
        outer = np.linspace(phi0, 2 * math.pi - phi0, 48)
        inner = np.linspace(2 * math.pi - psi0, psi0, 40)
        pts = np.concatenate([np.stack([np.cos(outer), np.sin(outer)], 1),
                              np.stack([d + q * np.cos(inner), q * np.sin(inner)], 1)])
        return [(pts, 1)]
    if name == "arrow":
        sw, hw, hl = rng.uniform(0.16, 0.26), rng.uniform(0.5, 0.65), rng.uniform(0.5, 0.7)
        pts = np.array([(-1, -sw), (1 - hl, -sw), (1 - hl, -hw), (1, 0), (1 - hl, hw), (1 - hl, sw), (-1, sw)], float)
        return [(jit(pts, 0.02), 1)]
    if name == "heart":
        t = np.linspace(0, 2 * math.pi, 72, endpoint=False)
        x = 16 * np.sin(t) ** 3
        y = 13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t)
        pts = np.stack([x, -y], 1) / 16.0
        return [(pts - pts.mean(0), 1)]
    if name == "lshape":
        w = rng.uniform(0.35, 0.5)
        pts = np.array([(-1, -1), (-1 + w * 2, -1), (-1 + w * 2, 1 - 2 * w), (1, 1 - 2 * w), (1, 1), (-1, 1)], float)
        return [(jit(pts, 0.025), 1)]
    raise ValueError(name)


def _area(pts: np.ndarray) -> float:
    x, y = pts[:, 0], pts[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


# --------------------------------------------------------------------------------------------------- textures ---

@functools.lru_cache(maxsize=4)
def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    return yy, xx


@functools.lru_cache(maxsize=1)
def _noise_bank() -> np.ndarray:
    return np.random.default_rng(12345).standard_normal((1024 + 256, 1024 + 256, 3), dtype=np.float32)


def _random_colour(rng) -> np.ndarray:
    return rng.uniform(0, 255, 3)


def _contrasting(rng, other: np.ndarray, min_dist: float) -> np.ndarray:
    for _ in range(50):
        c = _random_colour(rng)
        if np.linalg.norm(c - other) >= min_dist:
            return c
    return 255.0 - other


def _smooth_field(rng, size: int, cells: int, amp: float) -> np.ndarray:
    small = rng.normal(0, 1, (cells, cells, 3)).astype(np.float32)
    lo, hi = small.min(), small.max()
    img = Image.fromarray(((small - lo) / max(hi - lo, 1e-6) * 255).astype(np.uint8), "RGB")
    big = np.asarray(img.resize((size, size), Image.BICUBIC), dtype=np.float32)
    return (big / 255.0 * (hi - lo) + lo) * amp


MAX_ROTATION = 30.0                       # degrees either way (flips add the mirror images)
BG_TEXTURES = (0.4, 0.25, 0.1, 0.25)     # flat, gradient, stripes, smooth noise
FG_TEXTURES = (0.5, 0.3, 0.0, 0.2)


def _texture(rng, size: int, colour: np.ndarray, grid, probs) -> np.ndarray:
    """A size x size x 3 float image: flat, gradient, stripes or smooth noise around ``colour``."""
    kind = rng.choice(4, p=probs)
    out = np.empty((size, size, 3), np.float32)
    out[:] = colour
    yy, xx = grid
    if kind == 1:      # linear gradient towards a second colour
        a = rng.uniform(0, 2 * math.pi)
        t = ((xx * math.cos(a) + yy * math.sin(a)) / size + 0.75) / 1.5
        out += t[..., None] * (rng.uniform(-90, 90, 3)).astype(np.float32)
    elif kind == 2:    # stripes of a random period and angle
        a = rng.uniform(0, math.pi)
        period = rng.uniform(6, 18) * size / 256
        s = np.sin((xx * math.cos(a) + yy * math.sin(a)) * (2 * math.pi / period))
        out += (s[..., None] * rng.uniform(8, 25)).astype(np.float32)
    elif kind == 3:    # smooth coloured noise
        out += _smooth_field(rng, size, int(rng.integers(5, 12)), rng.uniform(10, 30))
    return out


# --------------------------------------------------------------------------------------------------- images -----

def render(cls_name: str, rng: np.random.Generator, size: int = 256) -> Image.Image:
    """One RGB image of class ``cls_name`` (see module docstring)."""
    grid = _grid(size)
    bg_colour = _random_colour(rng)
    bg = _texture(rng, size, bg_colour, grid, BG_TEXTURES)
    bg += _smooth_field(rng, size, 4, rng.uniform(5, 20))

    # clutter under the shape: small ellipses and thin lines
    canvas = Image.fromarray(np.clip(bg, 0, 255).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(canvas)
    for _ in range(int(rng.integers(0, 3))):
        r = rng.uniform(0.02, 0.05) * size
        cx, cy = rng.uniform(0, size, 2)
        draw.ellipse([cx - r, cy - r * rng.uniform(0.5, 1), cx + r, cy + r],
                     fill=tuple(_random_colour(rng).astype(int)))
    for _ in range(int(rng.integers(0, 4))):
        x0, y0, x1, y1 = rng.uniform(-0.1, 1.1, 4) * size
        draw.line([x0, y0, x1, y1], fill=tuple(_random_colour(rng).astype(int)), width=int(rng.integers(1, 3)))
    bg = np.asarray(canvas, dtype=np.float32)

    # the shape: equal area for every class, random rotation / stretch / position
    parts = _shape(cls_name, rng)
    area = sum(_area(p) if f else -_area(p) for p, f in parts)
    radius = rng.uniform(0.19, 0.32) * size                 # the equal-area circle's radius
    scale = radius * math.sqrt(math.pi / max(area, 1e-6))
    theta = math.radians(rng.uniform(-MAX_ROTATION, MAX_ROTATION))
    stretch = rng.uniform(0.85, 1.18)
    rot = np.array([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]])
    parts = [((p * [stretch, 1 / stretch]) @ rot.T * scale, f) for p, f in parts]
    extent = max(float(np.abs(p).max()) for p, _ in parts)
    margin = 0.07 * size
    if extent > size / 2 - margin:                          # too big for the frame: shrink
        shrink = (size / 2 - margin) / extent
        parts = [(p * shrink, f) for p, f in parts]
        extent *= shrink
    lo, hi = extent + margin, size - extent - margin
    centre = rng.uniform(lo, hi, 2) if hi > lo else np.array([size / 2, size / 2])
    ss = SUPERSAMPLE
    mask_img = Image.new("L", (size * ss, size * ss), 0)
    md = ImageDraw.Draw(mask_img)
    for p, f in parts:
        md.polygon([tuple(v) for v in ((p + centre) * ss)], fill=255 * f)
    mask = np.asarray(mask_img.resize((size, size), Image.BOX), dtype=np.float32)[..., None] / 255.0

    fg_colour = _contrasting(rng, bg_colour, rng.uniform(90, 160))
    fg = _texture(rng, size, fg_colour, grid, FG_TEXTURES)
    fg -= bg
    fg *= mask
    fg += bg
    img = fg

    # clutter over the shape, then camera-like degradations
    out = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(out)
    for _ in range(int(rng.integers(0, 2))):
        x0, y0, x1, y1 = rng.uniform(0, 1, 4) * size
        draw.line([x0, y0, x1, y1], fill=tuple(_random_colour(rng).astype(int)), width=int(rng.integers(1, 3)))
    if rng.random() < 0.2:
        out = out.filter(ImageFilter.GaussianBlur(rng.uniform(0.5, 1.5) * size / 256))
    arr = np.asarray(out, dtype=np.float32)
    sigma = rng.uniform(0, 7)
    if sigma > 1:   # a window of a fixed noise bank (drawing fresh normals costs more than the whole rest)
        bank = _noise_bank()
        y0, x0 = rng.integers(0, bank.shape[0] - size + 1, 2)
        arr = arr + bank[y0:y0 + size, x0:x0 + size] * np.float32(sigma)
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB")


def _image_rng(seed: int, split: str, cls: int, index: int) -> np.random.Generator:
    return np.random.default_rng([int(seed), 0 if split == "train" else 1, int(cls), int(index)])


def _task(args) -> None:
    out_dir, split, cls, name, index, size, seed = args
    rng = _image_rng(seed, split, cls, index)
    img = render(name, rng, size)
    quality = int(rng.integers(80, 96))
    # Encoded in memory, written by Python: PIL's JPEG writer to a path drops a failed write (a full disk, a
    # file-size limit) and leaves a truncated image without an error; f.write raises it.
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=quality)
    with open(os.path.join(out_dir, split, name, f"{name}_{index:05d}.jpg"), "wb") as f:
        f.write(buf.getvalue())


def _params(classes, train_per_class, val_per_class, size, seed) -> dict:
    return {"generator": GENERATOR, "version": VERSION, "classes": list(SHAPES[:classes]),
            "train_per_class": int(train_per_class), "val_per_class": int(val_per_class), "size": int(size),
            "seed": int(seed)}


def is_complete(out_dir: str | os.PathLike, params: dict) -> bool:
    """True when ``out_dir`` holds a finished set made with ``params`` (manifest and file counts agree)."""
    out = Path(out_dir)
    try:
        manifest = json.loads((out / MANIFEST).read_text())
    except (OSError, ValueError):
        return False
    if {k: manifest.get(k) for k in params} != params:
        return False
    for split, per in (("train", params["train_per_class"]), ("val", params["val_per_class"])):
        for name in params["classes"]:
            folder = out / split / name
            try:
                n = sum(1 for e in os.scandir(folder) if e.name.endswith(".jpg"))
            except OSError:
                return False
            if n != per:
                return False
    return True


def _is_ours_or_empty(out: Path) -> bool:
    if not out.exists():
        return True
    if not out.is_dir():
        return False
    if (out / MANIFEST).is_file():
        try:
            return json.loads((out / MANIFEST).read_text()).get("generator") == GENERATOR
        except (OSError, ValueError):
            return False
    return not any(out.iterdir())


def generate(out_dir: str | os.PathLike, *, classes: int = DEFAULTS["classes"],
             train_per_class: int = DEFAULTS["train_per_class"], val_per_class: int = DEFAULTS["val_per_class"],
             size: int = DEFAULTS["size"], seed: int = 0, progress: bool = True, workers: int | None = None) -> Path:
    """Write the synthetic ImageFolder to ``out_dir`` (see module docstring) and return its path.

    Reuses a complete folder made with the same parameters at once; replaces a different or incomplete one made by
    this generator; refuses (DataError) to replace a non-empty folder it did not write.
    """
    if not 2 <= classes <= len(SHAPES):
        raise ConfigError(f"classes must be in 2..{len(SHAPES)}; got {classes}")
    if train_per_class < 1 or val_per_class < 1:
        raise ConfigError("train_per_class and val_per_class must be >= 1")
    if not 16 <= size <= 1024:
        raise ConfigError(f"size must be in 16..1024; got {size}")
    out = Path(out_dir).expanduser()
    params = _params(classes, train_per_class, val_per_class, size, seed)
    if is_complete(out, params):
        return out
    check_writable(out, folder=True)   # a file in the way, a read-only place: one line, before any work
    if not _is_ours_or_empty(out):
        raise DataError(f"{out}: exists and was not written by `alexnet data synth` (no {MANIFEST} of ours); "
                        f"choose another folder or remove it")
    prepare_output_dir(out.parent)
    for stale in out.parent.glob(f".{out.name}.partial-*"):   # left by a killed run
        shutil.rmtree(stale, ignore_errors=True)
    tmp = out.parent / f".{out.name}.partial-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    names = params["classes"]
    tasks = []
    t0 = time.perf_counter()
    try:
        for split, per in (("train", train_per_class), ("val", val_per_class)):
            for c, name in enumerate(names):
                (tmp / split / name).mkdir(parents=True, exist_ok=True)
                tasks.extend((str(tmp), split, c, name, i, size, seed) for i in range(per))
        _run_tasks(tasks, progress, workers)
        manifest = dict(params, images={"train": train_per_class * classes, "val": val_per_class * classes},
                        seconds=round(time.perf_counter() - t0, 2))
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        publish_dir(tmp, out)
    except OSError as e:   # a full disk, ...: one line naming the folder, no half-written dataset left
        shutil.rmtree(tmp, ignore_errors=True)
        raise output_error(out, e) from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _run_tasks(tasks: list, progress: bool, workers: int | None) -> None:
    from ..progress import progress_bar
    from .loader import available_cpus

    n = workers if workers is not None else available_cpus()
    bar = progress_bar(total=len(tasks), desc="synthetic images", unit="img", disable=not progress, leave=False)
    _noise_bank(), _grid(tasks[0][5] if tasks else 256)   # made once, shared by the forked workers
    try:
        if n <= 1 or len(tasks) < 64:
            for t in tasks:
                _task(t)
                bar.update(1)
            return
        import multiprocessing as mp

        ctx = mp.get_context("fork") if "fork" in mp.get_all_start_methods() else mp.get_context()
        with ctx.Pool(n) as pool:
            for _ in pool.imap_unordered(_task, tasks, chunksize=16):
                bar.update(1)
    finally:
        bar.close()


__all__ = ["DEFAULTS", "SHAPES", "generate", "is_complete", "render"]
