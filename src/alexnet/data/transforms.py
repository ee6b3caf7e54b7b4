"""The paper's augmentation and test-time crops as batched tensor ops (section 4.1), on the batch's device.

Inputs are uint8 batches [B, C, S, S] (``alexnet.data`` datasets); outputs float32 in the network's units:
``(x - mean) / std`` in 0-255 units, std per channel (std = 1: plain mean subtraction, the paper's scale), and the
mean either

- the paper's mean image (section 2: "subtracting the mean activity over the training set from each pixel"): a
  [C, S, S] image, cropped at the same place as each input crop and mirrored with it, as Caffe does with its
  ``mean_file`` (``mean_image=``; the training crops gather their mean crops with the images' own offsets;
  Krizhevsky's cuda-convnet data providers subtract the mean image's *centre* crop from every patch instead), or
- one mean per channel (``mean=``), a common simplification of it and a deviation from the paper.

PCA lighting ("altering the intensities of the RGB channels"): to every pixel of image b add
``eigvec @ (alpha_b * sqrt(eigval))`` with ``alpha_b ~ N(0, lighting_std)`` (three numbers per image, drawn each time
the image is used, i.e. once per epoch), before dividing by std.  ``eigval``/``eigvec`` are the eigenvalues and
eigenvectors of the 3x3 covariance of the training set's RGB pixels in 0-255 units (``DataStats``).

Scale of the eigenvalue term: the paper writes ``alpha_i * lambda_i`` with lambda_i the covariance eigenvalues,
whose units are pixel values *squared*: for 0-255 pixels lambda_1 is in the thousands (about 4,000-9,000 for
natural images), so ``0.1 * lambda_1`` would shift pixels by hundreds of grey levels and destroy the image, and the
same formula with 0-1 pixels gives a 255x smaller effect: it is not unit-free.  We use the square roots
``sqrt(lambda_i)``, the standard deviation of the data along each principal axis, as Krizhevsky's own
cuda-convnet2 does (its data provider draws the noise with ``color_stdevs`` along ``color_eig``): the shift is then
10% of the data's natural colour variation along each axis in any pixel unit (about 6 grey levels along the
brightness axis for ImageNet-like data), which is the size of illumination change the paper describes.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from ..errors import CheckpointError, ConfigError
from .preprocessing import as_mean_image, mean_image_of


def _per_channel(values, channels: int, name: str) -> list[float]:
    vals = [float(v) for v in (values if isinstance(values, (list, tuple)) else list(values))]
    if len(vals) == 1 and channels > 1:
        vals = vals * channels
    if len(vals) != channels:
        raise ConfigError(f"{name} has {len(vals)} values; the images have {channels} channel(s)")
    return vals


class _Normalizer:
    """(x - mean + shift) / std, with mean one value per channel or a mean image [C, S, S] (cropped by the caller)."""

    def __init__(self, mean: Sequence[float], std: Sequence[float], mean_image=None):
        self.mean = [float(m) for m in mean]
        self.std = [float(s) for s in std]
        if any(s <= 0 or not math.isfinite(s) for s in self.std):
            raise ConfigError(f"std must be positive; got {self.std}")
        try:
            self.mean_image = None if mean_image is None else as_mean_image(mean_image, "mean_image")
        except CheckpointError as e:
            raise ConfigError(str(e)) from None
        self._cache: dict = {}

    def _consts(self, device: torch.device, channels: int):
        """(per-channel mean, 1/std) on ``device``; the mean is zero when a mean image is subtracted instead."""
        key = (str(device), channels)
        if key not in self._cache:
            means = [0.0] * channels if self.mean_image is not None else _per_channel(self.mean, channels, "mean")
            mean = torch.tensor(means, dtype=torch.float32, device=device)
            scale = 1.0 / torch.tensor(_per_channel(self.std, channels, "std"), dtype=torch.float32, device=device)
            self._cache[key] = (mean, scale)
        return self._cache[key]

    def scaled_mean_image(self, x: torch.Tensor) -> torch.Tensor | None:
        """mean_image / std [C, S, S] on ``x``'s device (cached), checked against the batch ``x`` [B, C, S, S]."""
        if self.mean_image is None:
            return None
        c, h, w = x.shape[1:]
        key = ("image", str(x.device), c)
        if key not in self._cache:
            m = self.mean_image
            if m.shape[0] != c:
                raise ConfigError(f"the mean image has {m.shape[0]} channel(s); the images have {c}")
            _, scale = self._consts(x.device, c)
            self._cache[key] = m.to(x.device) * scale.view(c, 1, 1)
        m = self._cache[key]
        if tuple(m.shape[1:]) != (h, w):
            raise ConfigError(f"the mean image is {m.shape[1]}x{m.shape[2]}; the images are {h}x{w} (the mean image "
                              "must have the images' size S x S: --resize as in training)")
        return m

    def normalize(self, x: torch.Tensor, shift: torch.Tensor | None = None,
                  mean_crop: torch.Tensor | None = None) -> torch.Tensor:
        """uint8/float [B, C, H, W] -> float32 (x - mean + shift) / std; shift [B, C] or None; mean_crop: the
        mean image's matching crops already divided by std ([B or 1, C, H, W]), subtracted instead of the mean."""
        c = x.shape[1]
        mean, scale = self._consts(x.device, c)
        bias = -mean.view(1, c) if shift is None else shift - mean.view(1, c)
        bias = (bias * scale.view(1, c)).view(-1, c, 1, 1)
        out = x.to(torch.float32)
        out.mul_(scale.view(1, c, 1, 1)).add_(bias)
        if mean_crop is not None:
            out.sub_(mean_crop)
        return out


def _check_size(x: torch.Tensor, crop: int) -> None:
    if x.dim() != 4:
        raise ConfigError(f"expected a batch [B, C, S, S]; got shape {tuple(x.shape)}")
    if x.shape[-1] < crop or x.shape[-2] < crop:
        raise ConfigError(f"crop {crop} is larger than the images ({x.shape[-2]}x{x.shape[-1]}); use a smaller --crop "
                          f"or a larger --resize")


class TrainTransform:
    """Random crop + horizontal flip + PCA lighting + normalisation for a uint8 batch, on its device.

    ``generator`` (a CPU ``torch.Generator``) makes it reproducible: per batch it draws, in this order, the crop
    offsets (rows, columns), the flips, and the lighting coefficients.  random_crop=False takes the centre crop.
    ``mean_image`` ([C, S, S], 0-255 units): subtracted instead of ``mean``, cropped at each image's offsets and
    mirrored with it.
    """

    def __init__(self, crop: int, *, mean, std, flip: bool = True, random_crop: bool = True,
                 lighting=None, lighting_std: float = 0.1, mean_image=None):
        if crop < 1:
            raise ConfigError(f"crop must be >= 1; got {crop}")
        if lighting_std < 0:
            raise ConfigError(f"lighting_std must be >= 0; got {lighting_std}")
        self.crop = int(crop)
        self.flip = bool(flip)
        self.random_crop = bool(random_crop)
        self.lighting_std = float(lighting_std)
        self.norm = _Normalizer(mean, std, mean_image)
        self.lighting = lighting
        self._pca = None
        if lighting is not None:
            vec = torch.tensor(lighting.eigvec, dtype=torch.float32)
            val = torch.tensor(lighting.eigval, dtype=torch.float32)
            if vec.shape != (3, 3) or val.shape != (3,):
                raise ConfigError("PCA lighting needs 3-channel (RGB) statistics")
            self._pca = vec * val.clamp_min(0).sqrt().view(1, 3)   # columns: sqrt(lambda_i) * p_i
        self._pca_dev: dict = {}

    def lighting_shift(self, batch: int, generator: torch.Generator | None = None) -> torch.Tensor | None:
        """[B, 3] RGB offsets (0-255 units) for ``batch`` images: eigvec @ (alpha * sqrt(eigval)), alpha ~ N(0, std)."""
        if self._pca is None or self.lighting_std == 0:
            return None
        alpha = torch.randn(batch, 3, generator=generator, device=_gen_device(generator)) * self.lighting_std
        return alpha.cpu() @ self._pca.T

    def __call__(self, images_uint8: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        x = images_uint8
        _check_size(x, self.crop)
        b, c, h, w = x.shape
        crop, dev, gdev = self.crop, x.device, _gen_device(generator)
        if self.random_crop:
            top = torch.randint(0, h - crop + 1, (b,), generator=generator, device=gdev)
            left = torch.randint(0, w - crop + 1, (b,), generator=generator, device=gdev)
        else:
            top = torch.full((b,), (h - crop) // 2, dtype=torch.long)
            left = torch.full((b,), (w - crop) // 2, dtype=torch.long)
        flips = (torch.rand(b, generator=generator, device=gdev) < 0.5) if self.flip else None
        shift = self.lighting_shift(b, generator)
        if c != 3 and shift is not None:
            raise ConfigError(f"PCA lighting needs RGB images; these have {c} channel(s)")
        if dev.type == "cpu":   # numpy slices + whole-batch conversion: much faster than a gather on CPU
            return self._cpu(x, top.tolist(), left.tolist(), flips.tolist() if flips is not None else None, shift)
        return self._gather(x, top, left, flips, shift)

    def _gather(self, x, top, left, flips, shift) -> torch.Tensor:
        """The device path: the crops (and the mean image's crops at the same offsets) as single gathers."""
        dev, b = x.device, x.shape[0]
        top, left, flips = top.to(dev), left.to(dev), flips.to(dev) if flips is not None else None
        out = crop_batch(x, top, left, self.crop, flips)
        mean_img = self.norm.scaled_mean_image(x)
        # the mean image's crops: one gather with the images' offsets and flips (expand: no copy per image)
        mean_crop = (crop_batch(mean_img.expand(b, -1, -1, -1), top, left, self.crop, flips)
                     if mean_img is not None else None)
        return self.norm.normalize(out, shift.to(dev) if shift is not None else None, mean_crop)

    def _cpu(self, x, top, left, flips, shift) -> torch.Tensor:
        # Per image, one numpy pass from the uint8 window (mirrored by a negative stride, free) to scaled float32,
        # then the bias added while it is in cache.  Single-threaded on purpose: a gather, or torch ops per image,
        # go through the OpenMP pool (whose spinning threads also take CPU from the loader workers); measured on
        # 2 shared cores this is ~1.5x faster than whole-batch torch ops and ~5x faster than a gather.
        b, c = x.shape[:2]
        k = self.crop
        mean, scale = self.norm._consts(x.device, c)
        bias = -mean.view(1, c) if shift is None else shift.to(torch.float32) - mean.view(1, c)
        bias = (bias * scale.view(1, c)).view(-1, c, 1, 1).numpy()
        scale = scale.view(c, 1, 1).numpy()
        mean_img = self.norm.scaled_mean_image(x)
        mn = mean_img.numpy() if mean_img is not None else None
        xn = x.detach().numpy()
        out = torch.empty((b, c, k, k), dtype=torch.float32)
        on = out.numpy()
        for i in range(b):
            v = xn[i, :, top[i]:top[i] + k, left[i]:left[i] + k]
            m = mn[:, top[i]:top[i] + k, left[i]:left[i] + k] if mn is not None else None
            if flips is not None and flips[i]:
                v = v[..., ::-1]
                m = m[..., ::-1] if m is not None else None
            o = on[i]
            np.multiply(v, scale, out=o)
            if m is not None:   # the mean image's crop at this image's offsets, mirrored with it (Caffe's mean_file)
                np.subtract(o, m, out=o)
            np.add(o, bias[i if bias.shape[0] > 1 else 0], out=o)
        return out


def _gen_device(generator: torch.Generator | None):
    return generator.device if generator is not None else "cpu"


def crop_batch(x: torch.Tensor, top: torch.Tensor, left: torch.Tensor, crop: int,
               flips: torch.Tensor | None = None) -> torch.Tensor:
    """Per-image crops x[b, :, top_b:top_b+crop, left_b:left_b+crop] (mirrored where flips_b) as one gather."""
    b, c = x.shape[:2]
    ar = torch.arange(crop, device=x.device)
    rows = top.view(b, 1) + ar.view(1, crop)
    cols_ar = ar.view(1, crop).expand(b, crop)
    if flips is not None:
        cols_ar = torch.where(flips.view(b, 1), (crop - 1) - cols_ar, cols_ar)
    cols = left.view(b, 1) + cols_ar
    bi = torch.arange(b, device=x.device).view(b, 1, 1, 1)
    ci = torch.arange(c, device=x.device).view(1, c, 1, 1)
    return x[bi, ci, rows.view(b, 1, crop, 1), cols.view(b, 1, 1, crop)]


class EvalTransform:
    """Centre crop (or the paper's ten patches) + normalisation for a uint8 batch.

    ten_crop=True returns [B, 10, C, crop, crop]: the four corner patches (top-left, top-right, bottom-left,
    bottom-right), the centre patch, then the horizontal reflections of those five in the same order.  With a
    ``mean_image`` each patch has the mean image's patch at the same place subtracted (mirrored for the
    reflections), as Caffe's test-time crops do.  ``EvalTransform.from_prep`` builds it from a checkpoint's
    preprocessing record.
    """

    def __init__(self, crop: int, *, mean, std, ten_crop: bool = False, mean_image=None):
        if crop < 1:
            raise ConfigError(f"crop must be >= 1; got {crop}")
        self.crop = int(crop)
        self.ten_crop = bool(ten_crop)
        self.norm = _Normalizer(mean, std, mean_image)

    @classmethod
    def from_prep(cls, prep, *, ten_crop: bool = False) -> "EvalTransform":
        """The transform a preprocessing record (a checkpoint's ``data`` entry) asks for, mean image included."""
        return cls(prep["crop"], mean=prep["mean"], std=prep["std"], ten_crop=ten_crop,
                   mean_image=mean_image_of(prep))

    def __call__(self, images_uint8: torch.Tensor) -> torch.Tensor:
        x = images_uint8
        _check_size(x, self.crop)
        h, w = x.shape[-2:]
        k = self.crop
        t, l = (h - k) // 2, (w - k) // 2
        mean_img = self.norm.scaled_mean_image(x)

        def patch(r: int, q: int) -> torch.Tensor:
            m = mean_img[None, :, r:r + k, q:q + k] if mean_img is not None else None
            return self.norm.normalize(x[:, :, r:r + k, q:q + k], mean_crop=m)

        if not self.ten_crop:
            return patch(t, l)
        patches = [patch(r, q) for r, q in ((0, 0), (0, w - k), (h - k, 0), (h - k, w - k), (t, l))]
        patches += [p.flip(-1) for p in patches]                 # mirror of (x - m) = mirror(x) - mirror(m)
        return torch.stack(patches, dim=1)                       # [B, 10, C, k, k]


__all__ = ["EvalTransform", "TrainTransform", "crop_batch"]
