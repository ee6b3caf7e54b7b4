"""Training-set statistics: the PCA against numpy on known data, caching, read-only data folders."""
import json
import os

import numpy as np
import pytest
import torch

from alexnet.data import DataStats, dataset_stats, open_dataset
from alexnet.data.stats import STATS_FILE, compute_stats, stats_from_moments
from test_data_datasets import make_folder


class ArrayImages(torch.utils.data.Dataset):
    """A minimal dataset of given uint8 images (what the loader and stats need)."""

    def __init__(self, x, root):
        self.x, self.root, self.split, self.image_size = x, root, "train", x.shape[-1]
        self.targets = [0] * len(x)

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return self.x[i], 0


def test_pca_matches_numpy_on_known_data(tmp_path):
    rng = np.random.default_rng(0)
    mix = np.array([[40.0, 5.0, 0.0], [20.0, 15.0, 3.0], [10.0, -10.0, 6.0]])
    pix = 128 + rng.normal(size=(16 * 8 * 8, 3)) @ mix.T          # correlated RGB pixels
    x = torch.from_numpy(np.clip(np.rint(pix), 0, 255).astype(np.uint8).reshape(16, 8, 8, 3)).permute(0, 3, 1, 2)
    st = compute_stats(ArrayImages(x.contiguous(), tmp_path), max_images=0, num_workers=0)
    flat = x.permute(0, 2, 3, 1).reshape(-1, 3).double().numpy()
    cov = np.cov(flat, rowvar=False, bias=True)
    val, vec = np.linalg.eigh(cov)
    val, vec = val[::-1], vec[:, ::-1]
    assert np.allclose(st.mean, flat.mean(0)) and np.allclose(st.std, flat.std(0))
    assert np.allclose(st.eigval, val, rtol=1e-6)
    got = np.array(st.eigvec)
    for i in range(3):                                            # columns are the components (up to sign)
        assert abs(abs(got[:, i] @ vec[:, i]) - 1) < 1e-6
        assert got[np.argmax(np.abs(got[:, i])), i] > 0
    assert np.allclose(got @ np.diag(st.eigval) @ got.T, cov)
    assert st.eigval[0] >= st.eigval[1] >= st.eigval[2]


def test_moments_formula_and_roundtrip():
    data = np.array([[0.0, 0, 0], [2, 2, 0], [4, 4, 0], [6, 6, 3]])
    st = stats_from_moments(data.sum(0), data.T @ data, len(data), images=1, image_size=2)
    assert np.allclose(st.mean, [3, 3, 0.75])
    back = DataStats.from_dict(json.loads(json.dumps(st.to_dict())))
    assert back == st


def test_stats_are_cached_beside_the_data_and_invalidated(tmp_path):
    root = make_folder(tmp_path / "d", per=3, size=(20, 16))
    ds = open_dataset(root, "train", image_size=12)
    a = dataset_stats(ds, max_images=10)
    assert (root / STATS_FILE).is_file()
    entries = json.loads((root / STATS_FILE).read_text())["entries"]
    assert len(entries) == 1
    key = next(iter(entries))
    entries[key]["mean"] = [1.0, 2.0, 3.0]                       # the cache is what is read back
    (root / STATS_FILE).write_text(json.dumps({"version": 1, "entries": entries}))
    assert dataset_stats(ds, max_images=10).mean == (1.0, 2.0, 3.0)
    assert dataset_stats(open_dataset(root, "train", image_size=10), max_images=10).mean != (1.0, 2.0, 3.0)
    (root / "train" / "cat" / "cat_0.jpg").unlink()               # other contents, other key
    b = dataset_stats(open_dataset(root, "train", image_size=12), max_images=10)
    assert b.mean != (1.0, 2.0, 3.0) and b.images == 5 and a.images == 6


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write to read-only folders")
def test_read_only_data_folder_uses_cache_dir(tmp_path):
    root = make_folder(tmp_path / "d", per=2, size=(20, 16))
    ds = open_dataset(root, "train", image_size=12)
    os.chmod(root, 0o555)
    try:
        dataset_stats(ds, cache_dir=tmp_path / "cache")
    finally:
        os.chmod(root, 0o755)
    assert not (root / STATS_FILE).exists() and list((tmp_path / "cache").glob("*.json"))


def test_unwritable_data_folder_falls_back(tmp_path, monkeypatch):
    root = make_folder(tmp_path / "d", per=2, size=(20, 16))
    ds = open_dataset(root, "train", image_size=12)
    import alexnet.data.stats as stats_mod
    monkeypatch.setattr(stats_mod, "_writable", lambda folder: False)
    st = dataset_stats(ds, cache_dir=tmp_path / "cache")
    assert not (root / STATS_FILE).exists()
    files = list((tmp_path / "cache").glob("*.json"))
    assert len(files) == 1
    assert dataset_stats(ds, cache_dir=tmp_path / "cache") == st
