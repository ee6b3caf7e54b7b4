"""The dataset-format registry: every registered format, on a tiny sample written in its real file format, is
detected, lists and opens both splits with the right shapes and labels (in the spirit of timm's tests over every
registered model).  A new format needs its entry in SAMPLES."""
import pytest
import torch

from alexnet.choices import DATASET_KINDS
from alexnet.cli import build_parser
from alexnet.data import available_splits, open_dataset
from alexnet.data.datasets import detect_kind, download_dataset
from alexnet.data.formats import Format, check_names, detection_order, format_names, get_format, register_format
from alexnet.errors import DataError
from test_data_datasets import make_folder, make_ilsvrc, write_cifar, write_mnist


def _folder(tmp_path):
    root = make_folder(tmp_path / "d", classes=("cat", "dog"), per=2)
    labels = [0, 0, 1, 1]
    return root, {"train": ("imagefolder", 3, 256, labels), "val": ("imagefolder", 3, 256, labels)}


def _ilsvrc_sample(tmp_path):
    root, wnids, truth = make_ilsvrc(tmp_path)
    rows = "".join(f"ILSVRC2012_val_{k + 1:08d},{w} 1 2 3 4\n" for k, w in enumerate(truth))
    (root / "LOC_val_solution.csv").write_text("ImageId,PredictionString\n" + rows)
    return root, {"train": ("imagefolder", 3, 256, [0, 1, 2]),       # the train split is an image folder
                  "val": ("ilsvrc", 3, 256, [wnids.index(w) for w in truth])}


def _cifar(tmp_path):
    test = write_cifar(tmp_path / "c" / "cifar-10-batches-py", n_train=3, n_test=4, batches=2)
    return tmp_path / "c", {"train": ("cifar10", 3, 32, None), "val": ("cifar10", 3, 32, list(test[b"labels"]))}


def _mnist(tmp_path):
    write_mnist(tmp_path / "m" / "MNIST" / "raw", n=5)
    return tmp_path / "m", {"train": ("mnist", 1, 28, None), "val": ("mnist", 1, 28, None)}


def _fashion(tmp_path):
    write_mnist(tmp_path / "f" / "FashionMNIST" / "raw", n=5, gz=False)
    return tmp_path / "f", {"train": ("fashion-mnist", 1, 28, None), "val": ("fashion-mnist", 1, 28, None)}


def _packed(tmp_path):
    from alexnet.data.pack import pack_folder

    src, _ = _folder(tmp_path)
    out = pack_folder(src, tmp_path / "p", size=20, progress=False, workers=0)
    labels = [0, 0, 1, 1]
    return out, {"train": ("packed", 3, 20, labels), "val": ("packed", 3, 20, labels)}


SAMPLES = {"imagefolder": _folder, "ilsvrc": _ilsvrc_sample, "cifar10": _cifar, "mnist": _mnist,
           "fashion-mnist": _fashion, "packed": _packed}
SIZES = {"train": {"cifar10": 6, "mnist": 5, "fashion-mnist": 5}, "val": {"cifar10": 4, "mnist": 3,
                                                                          "fashion-mnist": 3}}


def test_registered_formats_are_the_choices_and_each_has_a_sample():
    assert format_names() == [k for k in DATASET_KINDS if k != "auto"]
    assert set(SAMPLES) == set(format_names())


def test_detection_order_puts_specific_layouts_first():
    # a packed folder / CIFAR batches / IDX files may sit beside image folders; ILSVRC's flat val is a folder too
    assert [f.name for f in detection_order()] == ["packed", "cifar10", "mnist", "fashion-mnist", "ilsvrc",
                                                   "imagefolder"]


@pytest.mark.parametrize("name", format_names())
def test_every_format_detects_lists_and_opens_its_sample(tmp_path, name):
    fmt = get_format(name)
    root, expected = SAMPLES[name](tmp_path)
    assert fmt.detect(root) and detect_kind(root) == name
    assert fmt.splits(root) == available_splits(root) == available_splits(root, name) == ["train", "val"]
    for split, (kind, channels, size, labels) in expected.items():
        for how in ("auto", name):
            ds = open_dataset(root, split, kind=how)
            assert ds.kind == kind and ds.split == split and ds.channels == channels and ds.image_size == size
            n = len(labels) if labels is not None else SIZES[split][name]
            assert len(ds) == n and len(ds.targets) == n and ds.bad_files == []
            if labels is not None:
                assert ds.targets == labels
            assert all(0 <= t < len(ds.classes) for t in ds.targets)
            x, y = ds[n - 1]
            assert x.dtype == torch.uint8 and x.shape == (channels, size, size) and y == ds.targets[n - 1]
        assert open_dataset(root, split, kind=name, image_size=12)[0][0].shape == (channels, 12, 12)
        assert ds.fingerprint() == open_dataset(root, split).fingerprint()      # stable: the stats cache key


@pytest.mark.parametrize("name", format_names())
def test_no_other_format_claims_an_empty_folder(tmp_path, name):
    assert not get_format(name).detect(tmp_path)
    with pytest.raises(DataError, match="cannot tell what dataset"):
        detect_kind(tmp_path)


def test_registry_refuses_duplicates_and_checks_the_choices():
    fmt = get_format("cifar10")
    with pytest.raises(ValueError, match="registered twice"):
        register_format(Format(name="cifar10", priority=0, detect=fmt.detect, open=fmt.open, splits=fmt.splits))
    check_names([k for k in DATASET_KINDS if k != "auto"])
    with pytest.raises(RuntimeError, match=r"not registered \['svhn'\]"):
        check_names([k for k in DATASET_KINDS if k != "auto"] + ["svhn"])


def test_download_names_the_formats_it_can_fetch(tmp_path):
    with pytest.raises(DataError, match="--download works for cifar10, mnist and fashion-mnist"):
        download_dataset(tmp_path, "imagefolder")
    with pytest.raises(DataError, match=r"--dataset cifar10, mnist or fashion-mnist"):
        open_dataset(tmp_path / "none", download=True)


def test_data_cli_takes_its_dataset_choices_from_choices(capsys):
    parser = build_parser()
    for verb, args in (("pack", ["src", "out"]), ("info", ["dir"]), ("stats", ["dir"])):
        for kind in DATASET_KINDS:
            assert parser.parse_args(["data", verb, *args, "--dataset", kind]).kind == kind
        with pytest.raises(SystemExit):
            parser.parse_args(["data", verb, *args, "--dataset", "svhn"])
        assert "choose from " + ", ".join(f"'{k}'" for k in DATASET_KINDS) in capsys.readouterr().err
