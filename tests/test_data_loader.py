"""Loading order (a pure function of seed and epoch), data-parallel shards, mid-epoch skipping, batch types."""
import pickle

import pytest
import torch

from alexnet.data import EpochSampler, make_loader, open_dataset
from alexnet.data.pack import pack_folder
from alexnet.errors import ConfigError
from test_data_datasets import make_folder, write_cifar


def test_order_is_a_pure_function_of_seed_and_epoch():
    a = EpochSampler(50, shuffle=True, seed=1, epoch=3).indices()
    assert a == EpochSampler(50, shuffle=True, seed=1, epoch=3).indices()
    assert sorted(a) == list(range(50))
    assert a != EpochSampler(50, shuffle=True, seed=1, epoch=4).indices()
    assert a != EpochSampler(50, shuffle=True, seed=2, epoch=3).indices()
    torch.manual_seed(123)                                      # the global RNG plays no part
    assert a == EpochSampler(50, shuffle=True, seed=1, epoch=3).indices()
    assert EpochSampler(5, shuffle=False).indices() == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("n,ws", [(10, 3), (12, 4), (7, 2), (2, 4)])
def test_shards_cover_every_sample(n, ws):
    ev = [EpochSampler(n, shuffle=False, rank=r, world_size=ws).indices() for r in range(ws)]
    assert sorted(sum(ev, [])) == list(range(n))                 # evaluation: exactly once
    tr = [EpochSampler(n, shuffle=True, seed=5, rank=r, world_size=ws) for r in range(ws)]
    lists = [s.indices() for s in tr]
    assert set(sum(lists, [])) == set(range(n))                  # training: at least once, equal shard sizes
    assert len({len(x) for x in lists}) == 1 and all(len(s) == len(x) for s, x in zip(tr, lists))
    dl = [EpochSampler(n, shuffle=True, seed=5, rank=r, world_size=ws, drop_last=True).indices() for r in range(ws)]
    flat = sum(dl, [])
    assert len(flat) == len(set(flat)) == (n // ws) * ws


def test_skip_resumes_mid_epoch():
    full = EpochSampler(40, shuffle=True, seed=0, epoch=2, rank=1, world_size=2)
    part = EpochSampler(40, shuffle=True, seed=0, epoch=2, rank=1, world_size=2, skip=8)
    assert part.indices() == full.indices()[8:] and len(part) == len(full) - 8
    with pytest.raises(ConfigError):
        EpochSampler(4, shuffle=False, rank=2, world_size=2)


def test_make_loader_batches_and_resume(tmp_path):
    root = make_folder(tmp_path / "d", classes=("a", "b", "c"), per=4, size=(20, 16))
    ds = open_dataset(root, "train", image_size=12)
    loader = make_loader(ds, 5, shuffle=True, seed=3, epoch=1, num_workers=0)
    batches = list(loader)
    assert len(loader) == 3 and [len(b[1]) for b in batches] == [5, 5, 2]
    images, labels = batches[0]
    assert images.dtype == torch.uint8 and images.shape == (5, 3, 12, 12) and labels.dtype == torch.int64
    resumed = list(make_loader(ds, 5, shuffle=True, seed=3, epoch=1, num_workers=0, skip_batches=1))
    assert len(resumed) == 2
    for (xa, ya), (xb, yb) in zip(batches[1:], resumed):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
    with_workers = list(make_loader(ds, 5, shuffle=True, seed=3, epoch=1, num_workers=2))
    for (xa, ya), (xb, yb) in zip(batches, with_workers):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
    dropped = make_loader(ds, 5, shuffle=True, drop_last=True, num_workers=0)
    assert len(dropped) == 2 and all(len(b[1]) == 5 for b in dropped)


def test_array_datasets_hand_over_whole_batches(tmp_path):
    write_cifar(tmp_path / "c")
    ds = open_dataset(tmp_path / "c", "train")
    items = ds.__getitems__([3, 0, 5])
    assert torch.equal(items.images[1], ds[0][0]) and items.labels.tolist() == [ds.targets[i] for i in (3, 0, 5)]
    x, y = next(iter(make_loader(ds, 4, shuffle=False, num_workers=0)))
    assert x.shape == (4, 3, 32, 32) and torch.equal(x[2], ds[2][0]) and y.tolist() == ds.targets[:4]
    # a plain DataLoader (default collate) also works with them
    plain = next(iter(torch.utils.data.DataLoader(ds, batch_size=4)))
    assert torch.equal(plain[0], x)


def test_packed_dataset_pickles_without_its_images(tmp_path):
    root = make_folder(tmp_path / "d", per=3, size=(20, 16))
    out = pack_folder(root, tmp_path / "p", size=12, progress=False, workers=0)
    ds = open_dataset(out, "train")
    ds[0]                                                        # opens the memmap
    blob = pickle.dumps(ds)
    assert len(blob) < 5000
    again = pickle.loads(blob)
    assert torch.equal(again[4][0], ds[4][0])
    x, y = next(iter(make_loader(ds, 6, shuffle=True, seed=0, num_workers=1)))
    assert x.shape == (6, 3, 12, 12) and sorted(y.tolist()) == [0, 0, 0, 1, 1, 1]
