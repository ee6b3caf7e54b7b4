"""The paper's mean image (section 2, ``--mean image``) and the bias-decay switch (``--no-bias-decay``).

Mean image: computed exactly over the training split; subtracted cropped at each input crop's place and mirrored
with it (training crops against a per-image hand loop, 10-crop against torchvision's TenCrop of image and mean);
kept by checkpoints, .safetensors and exports; Caffe's binaryproto mean imported as is; eval/predict/features use
it.  Bias decay: one PaperSGD step with zero gradient shrinks weights by lr * wd and leaves biases alone.
"""
from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

import alexnet
from alexnet.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from alexnet.cli import main
from alexnet.data import EvalTransform, TrainTransform, open_dataset
from alexnet.data.preprocessing import decode_mean_image, encode_mean_image, for_json
from alexnet.data.stats import compute_mean_image, dataset_mean_image
from alexnet.errors import CheckpointError, ConfigError
from alexnet.interop import convert_caffe, export_model
from alexnet.predict import predict
from test_interop import blob_v1  # the legacy BlobProto that compute_image_mean writes

V1 = Path(__file__).parent / "data" / "v1"


def _batch(b=7, s=20, seed=0):
    return torch.randint(0, 256, (b, 3, s, s), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))


def _mean(s=20, seed=1, c=3):
    return torch.rand(c, s, s, generator=torch.Generator().manual_seed(seed), dtype=torch.float64).float() * 255


# ---------------------------------------------------------------------------------------------------------------
# computing it
# ---------------------------------------------------------------------------------------------------------------

def test_mean_image_is_exact_and_cached_beside_the_data(make_synth, tmp_path):
    root = tmp_path / "d"
    shutil.copytree(make_synth(classes=2, train_per_class=5, val_per_class=1, size=40), root)
    train = open_dataset(root, "train", image_size=24)
    ref = np.stack([train[i][0].numpy().astype(np.float64) for i in range(len(train))]).mean(0)   # by hand
    got = compute_mean_image(train)
    assert got.shape == (3, 24, 24) and got.dtype == np.float32
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-4)       # exact up to the final float32 rounding
    assert np.array_equal(got, ref.astype(np.float32))
    # a seeded sample of 3 images is the mean of exactly those 3
    sample = compute_mean_image(train, max_images=3, seed=5)
    from alexnet.data.loader import epoch_permutation
    idx = sorted(epoch_permutation(len(train), 5, 0)[:3].tolist())
    np.testing.assert_allclose(sample, np.stack([train[i][0].numpy() for i in idx]).astype(np.float64).mean(0),
                               atol=1e-4)
    # cached beside the data; the second call reads the file (a planted value proves it)
    cached = dataset_mean_image(train, cache_dir=tmp_path / "cache")
    files = sorted(root.glob("alexnet_mean_image-*.npy"))
    assert len(files) == 1 and np.array_equal(cached, got)
    planted = np.full_like(got, 7.0)
    np.save(files[0], planted)
    assert np.array_equal(dataset_mean_image(train, cache_dir=tmp_path / "cache"), planted)
    # another S is another entry
    assert dataset_mean_image(open_dataset(root, "train", image_size=16), cache_dir=tmp_path / "c").shape == (3, 16,
                                                                                                             16)
    assert len(list(root.glob("alexnet_mean_image-*.npy"))) == 2


# ---------------------------------------------------------------------------------------------------------------
# subtracting it: the crops of the mean image go with the crops of the images
# ---------------------------------------------------------------------------------------------------------------

def _hand_train(x, mean_img, std, k, top, left, flips, shift):
    """Per image, by hand: (crop(x) - crop(mean image) + shift) / std, both mirrored where flipped (float64)."""
    out = []
    sd = torch.tensor(std, dtype=torch.float64).view(3, 1, 1)
    for i in range(x.shape[0]):
        t, l_ = int(top[i]), int(left[i])
        xi = x[i, :, t:t + k, l_:l_ + k].double()
        mi = mean_img[:, t:t + k, l_:l_ + k].double()
        if flips[i]:
            xi, mi = xi.flip(-1), mi.flip(-1)
        s = shift[i].double().view(3, 1, 1) if shift is not None else 0.0
        out.append((xi - mi + s) / sd)
    return torch.stack(out).float()


@pytest.mark.parametrize("lighting", [False, True])
def test_training_crops_subtract_the_mean_image_at_their_offsets_flipped_with_them(lighting):
    from alexnet.data import DataStats

    x, m, k, std = _batch(), _mean(), 13, [50.0, 60.0, 70.0]
    stats = DataStats(mean=(0.0,) * 3, std=(1.0,) * 3, eigval=(900.0, 100.0, 4.0),
                      eigvec=((0.6, 0.8, 0.0), (0.8, -0.6, 0.0), (0.0, 0.0, 1.0))) if lighting else None
    # the per-channel mean is ignored when a mean image is given: a wrong one must change nothing
    t = TrainTransform(k, mean=[999.0, -5.0, 3.0], std=std, mean_image=m, lighting=stats)
    g = torch.Generator().manual_seed(3)
    top = torch.randint(0, 8, (7,), generator=g)
    left = torch.randint(0, 8, (7,), generator=g)
    flips = torch.rand(7, generator=g) < 0.5
    shift = t.lighting_shift(7, g)
    assert flips.any() and not flips.all() and len(set(top.tolist())) > 2
    ref = _hand_train(x, m, std, k, top, left, flips, shift)
    got_cpu = t(x, torch.Generator().manual_seed(3))                          # the CPU path (numpy windows)
    got_gather = t._gather(x, top, left, flips, shift)                        # the device path (one gather)
    torch.testing.assert_close(got_cpu, ref, rtol=0, atol=2e-5)
    torch.testing.assert_close(got_gather, ref, rtol=0, atol=2e-5)
    if torch.cuda.is_available():
        got_cuda = t(x.cuda(), torch.Generator().manual_seed(3)).cpu()
        torch.testing.assert_close(got_cuda, ref, rtol=0, atol=2e-5)


def test_centre_crop_training_and_single_channel():
    x, m = _batch(b=3, s=10, seed=4)[:, :1], _mean(s=10, c=1)
    out = TrainTransform(6, mean=[0.0], std=[2.0], mean_image=m, random_crop=False, flip=False)(x)
    torch.testing.assert_close(out, (x[:, :, 2:8, 2:8].float() - m[None, :, 2:8, 2:8]) / 2)


def test_ten_crops_equal_torchvisions_ten_crop_of_image_and_mean():
    from torchvision.transforms.functional import ten_crop

    x, m, k, std = _batch(b=2, s=22), _mean(s=22), 14, [2.0, 4.0, 8.0]   # (22 - 14) / 2 whole: same centre as tv
    got = EvalTransform(k, mean=[1.0, 2.0, 3.0], std=std, mean_image=m, ten_crop=True)(x)
    sd = torch.tensor(std).view(1, 3, 1, 1)
    tv_x = ten_crop(x.float(), k)          # tl, tr, bl, br, centre, then those of the mirrored image
    tv_m = ten_crop(m[None], k)
    # torchvision crops the mirrored image: its top-left is the mirror of our top-right patch, and so on
    ours_of_tv = [0, 1, 2, 3, 4, 6, 5, 8, 7, 9]
    for j, i in enumerate(ours_of_tv):
        torch.testing.assert_close(got[:, i], (tv_x[j] - tv_m[j]) / sd, rtol=0, atol=1e-5)
    centre = EvalTransform(k, mean=[0, 0, 0], std=std, mean_image=m)(x)
    torch.testing.assert_close(centre, got[:, 4])


def test_mean_image_size_and_channels_must_fit():
    with pytest.raises(ConfigError, match=r"mean image is 20x20; the images are 18x18") as e:
        EvalTransform(8, mean=[0] * 3, std=[1] * 3, mean_image=_mean())(_batch(s=18))
    assert "\n" not in str(e.value)
    with pytest.raises(ConfigError, match="1 channel.*3"):
        TrainTransform(8, mean=[0] * 3, std=[1] * 3, mean_image=_mean(c=1))(_batch())
    with pytest.raises(ConfigError, match="shape"):
        EvalTransform(8, mean=[0] * 3, std=[1] * 3, mean_image=torch.zeros(3, 4))


# ---------------------------------------------------------------------------------------------------------------
# carrying it: checkpoints, safetensors, exports
# ---------------------------------------------------------------------------------------------------------------

def _net(input_size=64):
    torch.manual_seed(0)
    return alexnet.build_model("paper", num_classes=4, input_size=input_size, fc_size=32,   # kaiming: the logits
                               channels=(8, 16, 16, 16, 16), init="kaiming").eval()      # follow the input


def _mean_ckpt(path, s=72, crop=64):
    model = _net(crop)
    prep = {"mean": [0.0] * 3, "std": [1.0, 2.0, 4.0], "resize": s, "crop": crop, "channels": 3,
            "channel_order": "RGB", "normalize": "paper", "mean_image": _mean(s=s, seed=9)}
    prep["mean"] = prep["mean_image"].double().mean(dim=(1, 2)).tolist()
    save_checkpoint(path, Checkpoint(model_config=model.config, state_dict=model.state_dict(),
                                     classes=list("abcd"), preprocessing=prep))
    return model, prep


def test_checkpoint_and_safetensors_keep_the_mean_image(tmp_path):
    from safetensors import safe_open

    _, prep = _mean_ckpt(tmp_path / "m.pt")
    back = load_checkpoint(tmp_path / "m.pt")
    assert torch.equal(back.preprocessing["mean_image"], prep["mean_image"])
    out = export_model(tmp_path / "m.pt", "safetensors", tmp_path / "m.safetensors")
    with safe_open(str(out), "pt") as f:
        header = json.loads(f.metadata()["data"])
    assert header["mean_image"]["shape"] == [3, 72, 72] and header["mean_image"]["encoding"] == "base64"
    _, st = alexnet.load_model(out)
    assert torch.equal(st.preprocessing["mean_image"], prep["mean_image"])   # lossless
    # the JSON form by hand, and its errors
    enc = encode_mean_image(prep["mean_image"])
    raw = np.frombuffer(base64.b64decode(enc["data"]), "<f4").reshape(enc["shape"])
    assert np.array_equal(raw, prep["mean_image"].numpy())
    with pytest.raises(CheckpointError, match="malformed mean_image"):
        decode_mean_image(dict(enc, shape=[3, 72, 71]))
    assert for_json(prep, full=False)["mean_image"] == {"shape": [3, 72, 72], "values": "in the checkpoint"}


def test_version_1_files_still_load_with_the_channel_mean():
    ck = load_checkpoint(V1 / "last.pt")
    assert "mean_image" not in ck.preprocessing
    x = _batch(b=2, s=ck.preprocessing["resize"])
    got = EvalTransform.from_prep(ck.preprocessing)(x)
    k, t = ck.preprocessing["crop"], (ck.preprocessing["resize"] - ck.preprocessing["crop"]) // 2
    ref = (x[:, :, t:t + k, t:t + k].float() - torch.tensor(ck.preprocessing["mean"]).view(1, 3, 1, 1)) \
        / torch.tensor(ck.preprocessing["std"]).view(1, 3, 1, 1)
    torch.testing.assert_close(got, ref)


def test_onnx_export_carries_the_mean_image(tmp_path):
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    model, prep = _mean_ckpt(tmp_path / "m.pt")
    out = export_model(tmp_path / "m.pt", "onnx", tmp_path / "m.onnx")
    meta = json.loads({p.key: p.value for p in onnx.load(str(out)).metadata_props}["alexnet"])["data"]
    # a user of the ONNX file alone: decode the mean image, subtract its centre crop, divide by std
    mean_img = np.frombuffer(base64.b64decode(meta["mean_image"]["data"]), "<f4").reshape(meta["mean_image"]["shape"])
    img = _batch(b=2, s=72, seed=11)
    k, t = meta["crop"], (meta["resize"] - meta["crop"]) // 2
    x = (img.numpy()[:, :, t:t + k, t:t + k].astype(np.float32) - mean_img[None, :, t:t + k, t:t + k]) \
        / np.array(meta["std"], np.float32).reshape(1, 3, 1, 1)
    got = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
    with torch.no_grad():   # ours: the checkpoint's network and preprocessing
        ref = model(EvalTransform.from_prep(load_checkpoint(tmp_path / "m.pt").preprocessing)(img))
    np.testing.assert_allclose(got, ref.numpy(), rtol=1e-4, atol=1e-4)
    with torch.no_grad():   # the test can tell: the per-channel mean gives other logits
        other = model(EvalTransform(k, mean=meta["mean"], std=meta["std"])(img))
    assert (other - ref).abs().max() > 1e-2
    # TorchScript carries it the same way
    ts = export_model(tmp_path / "m.pt", "torchscript", tmp_path / "m.ts")
    extra = {"alexnet.json": ""}
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.load(str(ts), _extra_files=extra)
    assert torch.equal(decode_mean_image(json.loads(extra["alexnet.json"])["data"]["mean_image"]),
                       prep["mean_image"])


# ---------------------------------------------------------------------------------------------------------------
# Caffe's mean file: a BlobProto (num, channels, height, width, data), imported as is
# ---------------------------------------------------------------------------------------------------------------

def test_binaryproto_is_real_blobproto():
    """Google's protobuf runtime reads our bytes as caffe.proto's BlobProto (same field numbers and types)."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    F_ = descriptor_pb2.FieldDescriptorProto
    fd = descriptor_pb2.FileDescriptorProto(name="mean_blob.proto", package="meancaffe", syntax="proto2")
    m = fd.message_type.add(name="BlobProto")
    for name, num, tp, label in (("num", 1, F_.TYPE_INT32, F_.LABEL_OPTIONAL),
                                 ("channels", 2, F_.TYPE_INT32, F_.LABEL_OPTIONAL),
                                 ("height", 3, F_.TYPE_INT32, F_.LABEL_OPTIONAL),
                                 ("width", 4, F_.TYPE_INT32, F_.LABEL_OPTIONAL),
                                 ("data", 5, F_.TYPE_FLOAT, F_.LABEL_REPEATED)):
        f = m.field.add(name=name, number=num, type=tp, label=label)
        if name == "data":
            f.options.packed = True
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fd)
    Blob = message_factory.GetMessageClass(pool.FindMessageTypeByName("meancaffe.BlobProto"))
    a = np.arange(24, dtype=np.float32).reshape(1, 3, 2, 4) * 1.5
    for packed in (True, False):
        blob = Blob.FromString(blob_v1(a, packed))
        assert (blob.num, blob.channels, blob.height, blob.width) == (1, 3, 2, 4)
        np.testing.assert_array_equal(np.array(blob.data, np.float32), a.ravel())
    ours = Blob(num=1, channels=3, height=2, width=4)
    ours.data.extend(a.ravel().tolist())
    from alexnet.interop.caffemodel import read_blob
    np.testing.assert_array_equal(read_blob(memoryview(ours.SerializeToString())), a)


@pytest.mark.parametrize("rgb", [False, True])
def test_caffe_mean_binaryproto_imported_as_is(tmp_path, rgb):
    import test_interop as ti  # the test suite's caffemodel encoder (tests/ is on sys.path under pytest)

    blobs = ti.small_caffe_blobs()
    (tmp_path / "net.caffemodel").write_bytes(ti.encode_net(ti.alexnet_layers(blobs)))
    rng = np.random.default_rng(2)
    mean_bgr = (rng.random((1, 3, 256, 256)) * 255).astype(np.float32)   # imagenet_mean.binaryproto's layout
    (tmp_path / "imagenet_mean.binaryproto").write_bytes(blob_v1(mean_bgr, packed=True))
    out = convert_caffe(tmp_path / "net.caffemodel", tmp_path / "c.pt", rgb=rgb,
                                        mean=tmp_path / "imagenet_mean.binaryproto")
    model, ck = alexnet.load_model(out)
    prep = ck.preprocessing
    expect = torch.from_numpy(mean_bgr[0])
    assert torch.equal(prep["mean_image"], expect.flip(0) if rgb else expect)     # as is (RGB: channels reversed)
    assert prep["mean"] == pytest.approx(mean_bgr[0].astype(np.float64).reshape(3, -1).mean(1)[::-1 if rgb else 1])
    # Caffe's input by hand: BGR, minus the mean image's centre 227 crop, through Caffe's forward pass
    img = ti.rgb_images(n=1)
    pic = tmp_path / "pic.png"
    from PIL import Image
    Image.fromarray(img[0].permute(1, 2, 0).numpy()).save(pic)
    o = (256 - 227) // 2
    x = img.float()[:, [2, 1, 0], o:o + 227, o:o + 227] - expect[None, :, o:o + 227, o:o + 227]
    with torch.no_grad():
        ref = ti.caffe_reference(blobs, x)[0]
        ref_channel = ti.caffe_reference(blobs, img.float()[:, [2, 1, 0], o:o + 227, o:o + 227]
                                         - expect.mean(dim=(1, 2)).view(1, 3, 1, 1))[0]
    assert predict(str(out), [str(pic)], topk=1)[0]["predictions"][0]["index"] == int(ref.argmax())
    # the logits (fc8) through our features path: equal to Caffe's by hand, and not to the per-channel mean's
    from alexnet.features import save_features
    save_features(str(out), [str(pic)], ["fc8"], tmp_path / "f.npz", progress=False)
    with np.load(tmp_path / "f.npz") as f:
        got = torch.from_numpy(f["fc8"][0])
    scale = float(ref.abs().max())
    torch.testing.assert_close(got, ref, rtol=0, atol=1e-4 * scale)
    assert (ref_channel - ref).abs().max() > 1e-2 * scale
    # a mean image of another size is refused in one line
    (tmp_path / "small.binaryproto").write_bytes(blob_v1(mean_bgr[:, :, :200, :200]))
    with pytest.raises(ConfigError, match="200x200.*256x256") as e:
        convert_caffe(tmp_path / "net.caffemodel", tmp_path / "d.pt",
                                      mean=tmp_path / "small.binaryproto")
    assert "\n" not in str(e.value) and not (tmp_path / "d.pt").exists()


# ---------------------------------------------------------------------------------------------------------------
# bias decay
# ---------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["paper", "sgd", "adamw"])
@pytest.mark.parametrize("bias_decay", [True, False])
def test_zero_gradient_step_decays_weights_and_biases_only_when_asked(name, bias_decay):
    from alexnet.optim import make_optimizer

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.Linear(4, 2))
    with torch.no_grad():
        for p in model.parameters():
            p.uniform_(0.5, 1.5)   # no zero biases: a decay would show
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    lr, wd = 0.1, 0.01
    opt = make_optimizer(model.named_parameters(), name, lr=lr, momentum=0.9, weight_decay=wd,
                         bias_decay=bias_decay)
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    opt.step()
    for n, p in model.named_parameters():
        shrink = 1 - lr * wd if (bias_decay or not n.endswith("bias")) else 1.0
        torch.testing.assert_close(p.detach(), before[n] * shrink, rtol=1e-6, atol=0)
    assert len(opt.param_groups) == (1 if bias_decay else 2)
    with pytest.raises(ConfigError, match="named parameters"):
        make_optimizer(model.parameters(), name, lr=lr, momentum=0.9, weight_decay=wd, bias_decay=False)


def test_trainer_wires_bias_decay_and_resume_refuses_a_change(tiny_data, tmp_path):
    from alexnet.train import TrainConfig, Trainer, train

    base = dict(data=str(tiny_data), arch="paper", model={"fc_size": 16, "channels": [8, 16, 16, 16, 16]},
                epochs=1, batch_size=8, resize=72, crop=64, workers=0, progress=False, steps_per_epoch=1,
                val_every=0, device="cpu")
    cfg = TrainConfig(out=str(tmp_path / "r"), bias_decay=False, **base)
    train(cfg, printer=lambda s: None)
    ck = load_checkpoint(tmp_path / "r" / "last.pt")
    groups = ck.optimizer["param_groups"]
    assert [g["weight_decay"] for g in groups] == [0.0005, 0.0] and len(groups[1]["params"]) == 8   # 8 biases
    more = {k: v for k, v in base.items() if k != "epochs"}
    with pytest.raises(ConfigError, match="bias_decay was False in that run, now True"):
        Trainer(TrainConfig(out=str(tmp_path / "r"), epochs=2, bias_decay=True, **more)).fit(resume=tmp_path / "r")
    # left unset, a resumed run keeps its own setting (not the recipe's): the biases stay undecayed
    Trainer(TrainConfig(out=str(tmp_path / "r"), epochs=2, **more)).fit(resume=tmp_path / "r")
    ck = load_checkpoint(tmp_path / "r" / "last.pt")
    assert ck.epoch == 2 and ck.train_config["bias_decay"] is False
    assert [g["weight_decay"] for g in ck.optimizer["param_groups"]] == [0.0005, 0.0]


def test_the_paper_recipe_subtracts_the_mean_image_and_decays_no_biases():
    """Section 2's mean image and the authors' weights-only decay are the paper recipe's; small and finetune keep
    the per-channel mean and decay every parameter; a flag still wins."""
    from alexnet.recipes import resolve_recipe
    from alexnet.train import TrainConfig

    paper, _ = resolve_recipe(TrainConfig(data="d", out="o", recipe="paper"))
    assert (paper.mean, paper.bias_decay) == ("image", False)
    small, _ = resolve_recipe(TrainConfig(data="d", out="o", recipe="small"))
    assert (small.mean, small.bias_decay) == ("channel", True)
    mine, line = resolve_recipe(TrainConfig(data="d", out="o", recipe="paper", mean="channel", bias_decay=True))
    assert (mine.mean, mine.bias_decay) == ("channel", True) and "mean channel" in line


def test_a_run_from_before_these_switches_resumes_with_what_it_did(tiny_data, tmp_path):
    """The frozen version-1 checkpoint (channel mean, biases decayed, no recipe) resumes under today's paper
    recipe without a flag: the run's own values (and, for fields newer than it, the code's behaviour then)."""
    from alexnet.recipes import inherit_run_settings
    from alexnet.train import TrainConfig

    saved = load_checkpoint(Path(__file__).parent / "data" / "v1" / "last.pt").train_config
    assert "mean" not in saved and "bias_decay" not in saved
    cfg = inherit_run_settings(TrainConfig(data="d", out="o", recipe="paper"), saved)
    assert (cfg.mean, cfg.bias_decay, cfg.batch_size) == ("channel", True, saved["batch_size"])
    explicit = inherit_run_settings(TrainConfig(data="d", out="o", recipe="paper", mean="image"), saved)
    assert explicit.mean == "image"       # a flag is the user's: the resume check then refuses the change


# ---------------------------------------------------------------------------------------------------------------
# the command line, end to end
# ---------------------------------------------------------------------------------------------------------------

def test_cli_mean_image_train_then_eval_predict_features(make_synth, tmp_path, capsys):
    data = tmp_path / "d"
    shutil.copytree(make_synth(classes=2, train_per_class=6, val_per_class=2, size=48), data)
    run = tmp_path / "run"
    flags = ["--arch", "paper", "--channels", "8,16,16,16,16", "--fc-size", "16", "--resize", "72", "--crop", "64",
             "--epochs", "1", "--batch-size", "6", "--workers", "0", "--device", "cpu", "--no-progress",
             "--init", "kaiming", "--normalize", "paper"]
    assert main(["train", "--data", str(data), "--out", str(run), "--mean", "image", "--no-bias-decay", *flags,
                 "--json"]) == 0
    capsys.readouterr()
    ck = load_checkpoint(run / "best.pt")
    expect = torch.from_numpy(dataset_mean_image(open_dataset(data, "train", image_size=72)))
    assert torch.equal(ck.preprocessing["mean_image"], expect)
    assert ck.train_config["mean"] == "image" and ck.train_config["bias_decay"] is False
    config = json.loads((run / "config.json").read_text())
    assert config["data"]["mean_image"] == {"shape": [3, 72, 72], "values": "in the checkpoint"}

    assert main(["eval", "--checkpoint", str(run), "--data", str(data), "--crops", "10", "--json", "--workers", "0",
                 "--device", "cpu", "--precision", "fp32"]) == 0
    ev = json.loads(capsys.readouterr().out)
    model, _ = alexnet.load_model(run)
    val = open_dataset(data, "val", image_size=72)
    x = torch.stack([val[i][0] for i in range(len(val))])
    labels = torch.tensor([val[i][1] for i in range(len(val))])
    t = EvalTransform(64, mean=[0, 0, 0], std=[1, 1, 1], mean_image=expect, ten_crop=True)   # by hand
    with torch.no_grad():
        probs = model(t(x).flatten(0, 1)).softmax(-1).view(len(val), 10, -1).mean(1)
    assert ev["n"] == len(val) and ev["top1_error"] == pytest.approx(float((probs.argmax(1) != labels).float().mean()))
    loss = torch.nn.functional.nll_loss(probs.clamp_min(1e-12).log(), labels)
    assert ev["loss"] == pytest.approx(float(loss), rel=1e-4)

    pic = sorted((data / "val").rglob("*.jpg"))[0]
    assert main(["predict", str(pic), "--checkpoint", str(run), "--topk", "2", "--json", "--device", "cpu"]) == 0
    pred = json.loads(capsys.readouterr().out)[0]["predictions"]
    from alexnet.features import load_images
    img, _, _ = load_images([pic], ck.preprocessing)
    with torch.no_grad():
        logits = model(EvalTransform(64, mean=[0] * 3, std=[1] * 3, mean_image=expect)(img))[0]
    assert pred[0]["probability"] == pytest.approx(float(logits.softmax(-1).max()), rel=1e-5)
    with torch.no_grad():   # the test can tell: the per-channel mean gives other logits
        other = model(EvalTransform(64, mean=expect.mean(dim=(1, 2)).tolist(), std=[1] * 3)(img))[0]
    assert (other - logits).abs().max() > 1e-3

    assert main(["features", str(pic), "--checkpoint", str(run), "--layer", "fc8", "-o", str(tmp_path / "f.npz"),
                 "--device", "cpu", "--json"]) == 0
    capsys.readouterr()
    with np.load(tmp_path / "f.npz") as f:
        np.testing.assert_allclose(f["fc8"][0], logits.numpy(), rtol=1e-5, atol=1e-5)


def test_training_from_weights_uses_their_mean_image_in_their_channel_order(tiny_data, tmp_path):
    """Fine-tuning Caffe's weights (BGR, mean image): the training transform subtracts that mean image, flipped to
    the RGB the augmentation works in, and the run records it in the network's (BGR) order; a mean image of another
    size than --resize is refused before anything is written."""
    from alexnet.train import TrainConfig
    from alexnet.train_data import prepare_data

    cfg = TrainConfig(data=str(tiny_data), out=str(tmp_path / "run"), arch="paper", resize=64, crop=56,
                      flip=False, random_crop=False, lighting=False)
    bgr_mean = torch.rand(3, 64, 64, dtype=torch.float32) * 255
    prep = {"mean": [104.0, 117.0, 123.0], "std": [1.0, 1.0, 1.0], "channel_order": "BGR", "normalize": "mean",
            "mean_image": bgr_mean}
    data = prepare_data(cfg, weights_prep=prep)
    assert data.prep["channel_order"] == "BGR"
    torch.testing.assert_close(data.prep["mean_image"], bgr_mean, rtol=0, atol=0)
    images = torch.randint(0, 256, (2, 3, 64, 64), dtype=torch.uint8)
    out = data.transform(images)                       # centre crop, BGR out
    expected = (images.float().flip(1) - bgr_mean)[:, :, 4:60, 4:60]
    torch.testing.assert_close(out.float(), expected, rtol=0, atol=1e-3)
    with pytest.raises(ConfigError, match="32x32 mean image"):
        prepare_data(cfg, weights_prep={**prep, "mean_image": bgr_mean[:, :32, :32]})
    assert not (tmp_path / "run").exists()
