"""Shared helpers for the serve tests (tiny checkpoints, images of each kind, hostile uploads); no tests here."""
from __future__ import annotations

import io
import struct
import zlib

import numpy as np
from PIL import Image

from alexnet.checkpoint import Checkpoint, save_checkpoint
from alexnet.model import build_model

CLASSES = ["cat", "dog", "car", "tree", "boat"]
PREP = {"mean": [120.0, 115.0, 100.0], "std": [60.0, 60.0, 60.0], "resize": 72, "crop": 64, "channels": 3,
        "channel_order": "RGB"}


def tiny_checkpoint(path, arch: str = "paper", **switches):
    """A small trained-looking checkpoint (random weights) with preprocessing and class names."""
    kw = {"input_size": 64, "fc_size": 64}
    kw.update(switches)
    m = build_model(arch, num_classes=len(CLASSES), **kw)
    prep = dict(PREP)
    if m.config.in_channels == 1:
        prep.update(mean=[115.0], std=[60.0], channels=1)
    save_checkpoint(path, Checkpoint(model_config=m.config, state_dict=m.state_dict(), preprocessing=prep,
                                     classes=CLASSES, best_val_top1_error=0.25))
    return path


def picture(seed: int = 0, size=(96, 80), mode: str = "RGB") -> Image.Image:
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (6, 6, 3), dtype=np.uint8)
    img = Image.fromarray(small).resize(size, Image.BICUBIC)
    if mode == "RGBA":
        img = img.convert("RGBA")
        img.putalpha(Image.fromarray(rng.integers(0, 256, (size[1], size[0]), dtype=np.uint8)))
    elif mode != "RGB":
        img = img.convert(mode)
    return img


def encode(img: Image.Image, fmt: str) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    return buf.getvalue()


def image_bytes(kind: str, seed: int = 0) -> tuple[bytes, str]:
    """(bytes, media type) for 'jpeg', 'png', 'gray' (L-mode PNG), 'rgba' (PNG with alpha)."""
    if kind == "jpeg":
        return encode(picture(seed), "JPEG"), "image/jpeg"
    if kind == "png":
        return encode(picture(seed), "PNG"), "image/png"
    if kind == "gray":
        return encode(picture(seed, mode="L"), "PNG"), "image/png"
    if kind == "rgba":
        return encode(picture(seed, mode="RGBA"), "PNG"), "image/png"
    raise ValueError(kind)


def png_bomb(width: int = 30000, height: int = 30000) -> bytes:
    """A few hundred bytes claiming a width x height greyscale PNG (9e8 pixels > Pillow's bomb limit)."""
    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * (width + 1) * 4)   # a few rows; the guard must refuse before decoding
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
