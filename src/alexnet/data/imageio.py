"""Decoding one image file to the paper's preprocessing: shorter side S, centre crop S x S, uint8 [C, S, S].

The one decoding path of the package (training, packing, prediction, features).  JPEGs use Pillow's draft mode
(libjpeg DCT-domain downscaling by 1/2, 1/4 or 1/8 while decoding, never below S), then one antialiased bilinear
resize of the centre square straight to S x S (resize-then-crop in a single pass).

Every failure is a :class:`DataError` whose message starts with the file's path: unreadable, zero bytes, not an
image, truncated/corrupt, or a decompression bomb (Pillow's DecompressionBombWarning is treated as an error too:
an image over ``Image.MAX_IMAGE_PIXELS`` pixels is not decoded).

Mode conversion to RGB (C = 3): grayscale (L, 1) is replicated; palette images go through RGBA; RGBA/LA/PA are
composited over white (transparent pixels often carry arbitrary colour, usually black); CMYK and YCbCr use Pillow's
conversion; 16-bit and 32-bit integer images (I;16, I) are scaled by 1/257 (65535 -> 255), float images (F) in
[0, 1] by 255.  ``channels=1`` gives luminance (ITU-R 601-2, Pillow's "L").
"""
from __future__ import annotations

import errno
import os
import warnings

import numpy as np
import torch
from PIL import Image

from ..errors import DataError

#: file name endings accepted as images in folders (compared case-insensitively)
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".ppm", ".pgm", ".gif")

# Leading bytes of the accepted formats: a cheap up-front test that a file is an image at all.
_MAGIC = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"BM", b"GIF87a", b"GIF89a", b"II*\x00", b"MM\x00*",
          b"P5", b"P6", b"P2", b"P3")


def os_reason(e: OSError, path: str | os.PathLike | None = None) -> str:
    """An OSError met reading an input, in words: symlink loop, no such file (or broken symlink), permission
    denied, ... (the strerror for the rest)."""
    if e.errno == errno.ELOOP:
        return "symlink loop (too many levels of symbolic links)"
    if e.errno == errno.ENOENT:
        if path is not None and os.path.islink(path):
            return f"broken symlink (points to {os.readlink(path)}, which does not exist)"
        return "no such file"
    if e.errno in (errno.EACCES, errno.EPERM):
        return "permission denied"
    if e.errno == errno.EISDIR:
        return "a folder, not a file"
    return f"cannot read file ({e.strerror or e})"


def sniff(path: str | os.PathLike) -> str | None:
    """A cheap check: the reason the file is certainly bad, ``"suspect"`` when it may be truncated (a JPEG without
    its end marker, a PNG without IEND), or None when it looks fine.

    Reads at most 32 bytes from each end, then the image header through Pillow on the same open file (no pixels
    decoded) for the size guard: an image over ``Image.MAX_IMAGE_PIXELS`` pixels is a decompression bomb, refused
    here as it would be when decoded.  (Pillow warns between 1x and 2x the limit: callers running many sniffs in
    threads silence DecompressionBombWarning around them, as ``check_files`` does.)
    """
    try:
        size = os.path.getsize(path)
        if size == 0:
            return "zero-byte file"
        with open(path, "rb") as f:
            head = f.read(32)
            if size > 64:
                f.seek(-32, os.SEEK_END)
            tail = f.read(32) if size > 64 else head
            is_webp = head[:4] == b"RIFF" and head[8:12] == b"WEBP"
            if not (is_webp or any(head.startswith(m) for m in _MAGIC)):
                return "not an image (unknown file signature)"
            bomb = _size_guard(f)
    except OSError as e:
        return os_reason(e, path)
    if bomb is not None:
        return bomb
    if head.startswith(b"\xff\xd8\xff") and b"\xff\xd9" not in tail:
        return "suspect"
    if head.startswith(b"\x89PNG") and b"IEND" not in tail:
        return "suspect"
    return None


def _size_guard(f) -> str | None:
    """The decompression-bomb verdict from the header of the open file ``f`` (None: within the limit, or a header
    Pillow cannot parse, which the decode check then judges)."""
    limit = Image.MAX_IMAGE_PIXELS
    f.seek(0)
    try:
        with Image.open(f) as img:
            w, h = img.size
    except Image.DecompressionBombError as e:
        return f"decompression bomb refused ({e})"
    except Exception:   # noqa: BLE001 - any header Pillow cannot parse: left to the decode that follows
        return None
    if limit and w * h > limit:
        return (f"decompression bomb refused (Image size ({w * h} pixels) exceeds limit of {limit} pixels, "
                f"could be decompression bomb DOS attack.)")
    return None


def _to_rgb(img: Image.Image) -> Image.Image:
    mode = img.mode
    if mode == "RGB":
        return img
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        a = np.asarray(img, dtype=np.float32)
        if mode == "F":
            a = a * 255.0 if (a.size and float(a.max()) <= 1.0) else a
        elif mode.startswith("I;16") or (a.size and float(a.max()) > 255):
            a = a / 257.0
        img = Image.fromarray(np.clip(np.rint(a), 0, 255).astype(np.uint8), "L")
        return img.convert("RGB")
    if mode == "P":
        img = img.convert("RGBA") if "transparency" in img.info else img.convert("RGB")
        mode = img.mode
    if mode in ("RGBA", "LA", "PA", "La", "RGBa"):
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return img.convert("RGB")


def decode_pil(path: str | os.PathLike, size: int | None) -> Image.Image:
    """Open, fully decode and convert ``path`` to RGB; with ``size`` JPEG decoding is drafted to >= size."""
    try:
        fh = open(path, "rb")   # opened here so that a missing file, a symlink loop, ... are named as such
    except OSError as e:
        raise DataError(f"{path}: {os_reason(e, path)}") from None
    try:
        with fh, warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(fh) as img:
                if size and img.format == "JPEG":
                    img.draft("RGB", (size, size))
                img.load()
                return _to_rgb(img)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise DataError(f"{path}: decompression bomb refused ({e})") from None
    except Image.UnidentifiedImageError:
        reason = "zero-byte file" if _size(path) == 0 else "not an image Pillow can read"
        raise DataError(f"{path}: {reason}") from None
    except (OSError, SyntaxError, ValueError, EOFError) as e:   # truncated, corrupt, bad headers
        raise DataError(f"{path}: corrupt or truncated image ({e})") from None


def _size(path) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return -1


def resize_center(img: Image.Image, size: int) -> Image.Image:
    """Shorter side -> ``size``, then the centre ``size`` x ``size`` square, in one antialiased resize."""
    w, h = img.size
    if (w, h) == (size, size):
        return img
    side = min(w, h)
    left, top = (w - side) / 2.0, (h - side) / 2.0
    return img.resize((size, size), Image.BILINEAR, box=(left, top, left + side, top + side))


def read_image(path: str | os.PathLike, size: int, *, channels: int = 3) -> torch.Tensor:
    """Decode ``path`` to a uint8 tensor [channels, size, size]: shorter side to ``size``, centre crop (paper,
    section 2).  Raises DataError naming the file for anything unreadable."""
    img = resize_center(decode_pil(path, size), size)
    if channels == 1:
        return torch.from_numpy(np.array(img.convert("L"))[None])
    # HWC -> CHW in numpy (single-threaded; a torch permute+copy would enter the thread pool for every image)
    return torch.from_numpy(np.ascontiguousarray(np.asarray(img).transpose(2, 0, 1)))


def is_image_name(name: str) -> bool:
    return name.lower().endswith(IMAGE_EXTENSIONS)


def resize_tensor(x: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 [C, H, W] -> [C, size, size]: shorter side to ``size`` (antialiased bilinear), centre crop."""
    c, h, w = x.shape
    if (h, w) == (size, size):
        return x
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    sq = x[:, top:top + side, left:left + side].unsqueeze(0).float()
    out = torch.nn.functional.interpolate(sq, size=(size, size), mode="bilinear", align_corners=False,
                                          antialias=side > size)
    return out.round_().clamp_(0, 255).to(torch.uint8)[0]


__all__ = ["IMAGE_EXTENSIONS", "decode_pil", "is_image_name", "os_reason", "read_image", "resize_center",
           "resize_tensor", "sniff"]
