"""The paper's augmentation (section 4.1) as batched tensor ops: crops, flips, PCA lighting, 10-crop."""
import numpy as np
import pytest
import torch

from alexnet.data import DataStats, EvalTransform, TrainTransform
from alexnet.data.transforms import crop_batch
from alexnet.errors import ConfigError


def coords_batch(b=6, s=12):
    """uint8 images whose pixel values encode (row, col): R = row, G = col, B = image index."""
    rows = torch.arange(s).view(s, 1).expand(s, s)
    cols = torch.arange(s).view(1, s).expand(s, s)
    x = torch.stack([torch.stack([rows, cols, torch.full((s, s), i)]) for i in range(b)])
    return x.to(torch.uint8)


IDENT = dict(mean=[0.0, 0.0, 0.0], std=[1.0, 1.0, 1.0])


def test_random_crops_and_flips_are_valid_windows():
    x = coords_batch()
    out = TrainTransform(8, **IDENT)(x, torch.Generator().manual_seed(0))
    assert out.shape == (6, 3, 8, 8) and out.dtype == torch.float32
    seen_flip = seen_plain = False
    for i in range(6):
        r, c = out[i, 0], out[i, 1]
        top, left = int(r[0, 0]), int(c[0, :].min())
        assert torch.equal(r, (torch.arange(8).view(8, 1) + top).float().expand(8, 8))
        row = c[0]
        if row[0] > row[-1]:
            seen_flip = True
            assert torch.equal(row, torch.arange(left + 7, left - 1, -1).float())
        else:
            seen_plain = True
            assert torch.equal(row, torch.arange(left, left + 8).float())
        assert 0 <= top <= 4 and 0 <= left <= 4 and (out[i, 2] == i).all()
    assert seen_flip and seen_plain


def test_generator_makes_it_reproducible_and_centre_crop_option():
    x = torch.randint(0, 256, (5, 3, 20, 20), dtype=torch.uint8)
    t = TrainTransform(16, mean=[100, 110, 120], std=[50, 60, 70])
    a = t(x, torch.Generator().manual_seed(7))
    b = t(x, torch.Generator().manual_seed(7))
    c = t(x, torch.Generator().manual_seed(8))
    assert torch.equal(a, b) and not torch.equal(a, c)
    centre = TrainTransform(16, mean=[100, 110, 120], std=[50, 60, 70], random_crop=False, flip=False)(x)
    expect = (x[:, :, 2:18, 2:18].float() - torch.tensor([100., 110, 120]).view(1, 3, 1, 1)) \
        / torch.tensor([50., 60, 70]).view(1, 3, 1, 1)
    assert torch.allclose(centre, expect, atol=1e-5)


def test_cpu_path_equals_the_device_gather_path():
    x = torch.randint(0, 256, (9, 3, 24, 24), dtype=torch.uint8)
    stats = DataStats(mean=(1.0, 2.0, 3.0), std=(2.0, 3.0, 4.0), eigval=(900.0, 100.0, 4.0),
                      eigvec=((0.6, 0.8, 0.0), (0.8, -0.6, 0.0), (0.0, 0.0, 1.0)))
    t = TrainTransform(17, mean=stats.mean, std=stats.std, lighting=stats)
    got = t(x, torch.Generator().manual_seed(3))
    g = torch.Generator().manual_seed(3)
    top = torch.randint(0, 8, (9,), generator=g)
    left = torch.randint(0, 8, (9,), generator=g)
    flips = torch.rand(9, generator=g) < 0.5
    shift = t.lighting_shift(9, g)
    ref = t.norm.normalize(crop_batch(x, top, left, 17, flips), shift)
    assert torch.allclose(got, ref, atol=1e-5)


def test_pca_lighting_noise_statistics():
    # eigvec = identity, eigval = (400, 100, 25): alpha_i * sqrt(lambda_i) has std 0.1 * (20, 10, 5)
    stats = DataStats(mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0), eigval=(400.0, 100.0, 25.0),
                      eigvec=((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0)))
    x = torch.full((4000, 3, 4, 4), 128, dtype=torch.uint8)
    out = TrainTransform(4, **IDENT, flip=False, lighting=stats, lighting_std=0.1)(x, torch.Generator().manual_seed(0))
    shift = out - 128
    per_image = shift[:, :, 0, 0]
    assert torch.allclose(shift, per_image.view(-1, 3, 1, 1).expand_as(shift))   # one shift per image
    assert torch.allclose(per_image.std(0), torch.tensor([2.0, 1.0, 0.5]), rtol=0.06)
    assert per_image.mean(0).abs().max() < 0.1
    assert abs(np.corrcoef(per_image.T.numpy())[0, 1]) < 0.06                  # independent components
    # a rotated basis: the shift lies along eigvec columns scaled by sqrt(eigval)
    q = torch.linalg.qr(torch.randn(3, 3, generator=torch.Generator().manual_seed(1)))[0]
    rot = DataStats(mean=(0.0,) * 3, std=(1.0,) * 3, eigval=(400.0, 100.0, 25.0), eigvec=tuple(map(tuple, q.tolist())))
    s2 = TrainTransform(4, **IDENT, flip=False, lighting=rot)(x, torch.Generator().manual_seed(0))[:, :, 0, 0] - 128
    alpha = s2 @ q / torch.tensor([20.0, 10.0, 5.0])                          # back to alpha
    assert torch.allclose(alpha.std(0), torch.full((3,), 0.1), rtol=0.06)
    assert torch.allclose(alpha, per_image / torch.tensor([20.0, 10.0, 5.0]), atol=1e-4)   # same draws


def test_no_lighting_when_std_zero_and_errors():
    stats = DataStats(mean=(0.0,) * 3, std=(1.0,) * 3, eigval=(400.0, 100.0, 25.0),
                      eigvec=((1.0, 0, 0), (0, 1.0, 0), (0, 0, 1.0)))
    x = torch.full((3, 3, 8, 8), 7, dtype=torch.uint8)
    assert (TrainTransform(8, **IDENT, lighting=stats, lighting_std=0)(x) == 7).all()
    with pytest.raises(ConfigError, match="larger than the images"):
        TrainTransform(9, **IDENT)(x)
    with pytest.raises(ConfigError, match="1 channel"):
        TrainTransform(4, mean=[0], std=[1], lighting=stats)(torch.zeros(2, 1, 8, 8, dtype=torch.uint8))
    with pytest.raises(ConfigError, match="std must be positive"):
        TrainTransform(4, mean=[0, 0, 0], std=[1, 0, 1])


def test_single_channel_batches():
    x = torch.randint(0, 256, (4, 1, 28, 28), dtype=torch.uint8)
    out = TrainTransform(24, mean=[33.0], std=[78.0])(x)
    assert out.shape == (4, 1, 24, 24)
    ev = EvalTransform(24, mean=[33.0], std=[78.0], ten_crop=True)(x)
    assert ev.shape == (4, 10, 1, 24, 24)


def test_eval_centre_and_ten_crop():
    x = coords_batch(b=2, s=10)
    centre = EvalTransform(6, **IDENT)(x)
    assert centre.shape == (2, 3, 6, 6) and centre[0, 0, 0, 0] == 2 and centre[0, 1, 0, 0] == 2
    ten = EvalTransform(6, **IDENT, ten_crop=True)(x)
    assert ten.shape == (2, 10, 3, 6, 6)
    corners = [(0, 0), (0, 4), (4, 0), (4, 4), (2, 2)]
    for k, (r, c) in enumerate(corners):
        assert ten[1, k, 0, 0, 0] == r and ten[1, k, 1, 0, 0] == c
        assert torch.equal(ten[:, 5 + k], ten[:, k].flip(-1))                  # the mirrors, same order
    assert torch.equal(ten[:, 4], centre)
    norm = EvalTransform(6, mean=[1, 2, 3], std=[2, 2, 2])(x)
    assert torch.allclose(norm, (centre - torch.tensor([1., 2, 3]).view(1, 3, 1, 1)) / 2)
