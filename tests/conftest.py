"""Shared fixtures: the tiny real-format datasets, built once per test run (session scope) and read-only to tests."""
import pytest


@pytest.fixture(scope="session")
def make_synth(tmp_path_factory):
    """``make_synth(classes=3, train_per_class=8, val_per_class=3, size=64, seed=1)``: the embedded synthetic dataset
    (JPEG class folders, train/ and val/) with these settings, generated on first request and shared afterwards.
    Tests must not write into it."""
    from alexnet.data import synthetic

    cache = {}

    def make(classes=3, train_per_class=8, val_per_class=3, size=64, seed=1):
        key = (classes, train_per_class, val_per_class, size, seed)
        if key not in cache:
            root = tmp_path_factory.mktemp("synth-" + "-".join(map(str, key))) / "d"
            synthetic.generate(root, classes=classes, train_per_class=train_per_class, val_per_class=val_per_class,
                               size=size, seed=seed, progress=False)
            cache[key] = root
        return cache[key]

    return make


@pytest.fixture(scope="session")
def tiny_data(make_synth):
    """3 classes, 8 training and 3 validation images each, 64 px: what most training tests run on."""
    return make_synth()


@pytest.fixture
def ctrl_c_at_batch(monkeypatch):
    """``with ctrl_c_at_batch(n): train(...)``: the n-th training batch of the run (counted from 1; validation
    batches not counted) raises KeyboardInterrupt, as Ctrl-C would, and the block must end with it; the loss
    function is restored afterwards."""
    import contextlib

    import torch

    import alexnet.train as train_mod

    @contextlib.contextmanager
    def arm(n: int):
        calls = {"n": 0}
        real = train_mod.F.cross_entropy

        def crashing(*a, **k):
            calls["n"] += torch.is_grad_enabled()
            if calls["n"] == n:
                raise KeyboardInterrupt
            return real(*a, **k)

        monkeypatch.setattr(train_mod.F, "cross_entropy", crashing)
        try:
            with pytest.raises(KeyboardInterrupt):
                yield
        finally:
            monkeypatch.setattr(train_mod.F, "cross_entropy", real)

    return arm
