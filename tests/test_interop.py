"""Weights in and out: torchvision and Caffe weights, ONNX / TorchScript / safetensors export (alexnet.interop)."""
from __future__ import annotations

import json
import struct

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import alexnet
from alexnet.checkpoint import Checkpoint, save_checkpoint
from alexnet.cli import main
from alexnet.errors import CheckpointError, ConfigError
from alexnet.interop import (
    CAFFE_MEAN_BGR,
    IMAGENET_MEAN_RGB,
    IMAGENET_STD_RGB,
    check_export,
    convert_caffe,
    convert_torchvision,
    export_model,
    imagenet_classes,
    load_model,
    load_torchvision_state_dict,
    read_caffe_mean,
    read_caffemodel,
    read_safetensors,
    safetensors_metadata,
)

# ---------------------------------------------------------------------------------------------------------------
# torchvision
# ---------------------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def torchvision_file(tmp_path_factory):
    """Randomly initialised torchvision AlexNet, its state_dict saved as torchvision ships it."""
    import torchvision

    torch.manual_seed(0)
    tv = torchvision.models.alexnet(weights=None).eval()
    path = tmp_path_factory.mktemp("tv") / "alexnet-owt-random.pth"
    torch.save(tv.state_dict(), path)
    return path, tv


def _images(n=2, size=224, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, size, size, generator=g)


def test_torchvision_file_gives_torchvisions_logits(torchvision_file):
    path, tv = torchvision_file
    x = _images()
    with torch.no_grad():
        ref = tv(x)
        ours = load_torchvision_state_dict(path)
        assert ours.config.arch == "owt" and not ours.training
        torch.testing.assert_close(ours(x), ref, rtol=1e-5, atol=1e-5)
        from_dict = load_torchvision_state_dict(tv.state_dict())
        torch.testing.assert_close(from_dict(x), ref, rtol=1e-5, atol=1e-5)


def test_convert_torchvision_cli_writes_a_checkpoint_every_verb_uses(torchvision_file, tmp_path, capsys):
    path, tv = torchvision_file
    out = tmp_path / "owt.pt"
    assert main(["convert", "torchvision", str(path), "-o", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["arch"] == "owt" and summary["num_classes"] == 1000
    model, ckpt = load_model(out)                     # the project's one checkpoint loader
    data = ckpt.preprocessing
    assert data["mean"] == pytest.approx([0.485 * 255, 0.456 * 255, 0.406 * 255])
    assert data["std"] == pytest.approx([0.229 * 255, 0.224 * 255, 0.225 * 255])
    assert (data["resize"], data["crop"], data["channel_order"]) == (256, 224, "RGB")
    assert ckpt.classes == imagenet_classes() and len(ckpt.classes) == 1000
    assert ckpt.classes[0].startswith("n01440764 ") and "tench" in ckpt.classes[0]
    assert ckpt.source["kind"] == "torchvision" and len(ckpt.source["sha256"]) == 64
    x = _images()
    with torch.no_grad():
        torch.testing.assert_close(model(x), tv(x), rtol=1e-5, atol=1e-5)


def test_convert_torchvision_to_safetensors(torchvision_file, tmp_path):
    path, tv = torchvision_file
    out = convert_torchvision(path, tmp_path / "owt.safetensors")
    model, meta = load_model(out)
    assert meta.arch == "owt" and meta.preprocessing["crop"] == 224 and len(meta.classes) == 1000
    x = _images(1)
    with torch.no_grad():
        torch.testing.assert_close(model(x), tv(x), rtol=1e-5, atol=1e-5)
    # load_model also takes the raw torchvision file itself
    model2, meta2 = load_model(path)
    assert meta2.arch == "owt" and meta2.preprocessing["mean"] == list(IMAGENET_MEAN_RGB)


def test_torchvision_hash_in_file_name_is_checked(tmp_path):
    bad = tmp_path / "alexnet-owt-deadbeef.pth"
    torch.save({"features.0.weight": torch.zeros(64, 3, 11, 11)}, bad)
    with pytest.raises(CheckpointError, match="sha256") as e:
        convert_torchvision(bad, tmp_path / "x.pt")
    assert "\n" not in str(e.value)
    assert not (tmp_path / "x.pt").exists()


def test_torchvision_loader_refuses_other_architectures(tmp_path):
    paper = alexnet.build_model("paper", num_classes=10, input_size=96, fc_size=64, channels=(16, 32, 32, 32, 32))
    ck = save_checkpoint(tmp_path / "paper.pt", Checkpoint(model_config=paper.config, state_dict=paper.state_dict()))
    with pytest.raises(CheckpointError, match="'paper'.*'owt'|'owt'.*'paper'") as e:
        load_torchvision_state_dict(ck)
    assert "\n" not in str(e.value)
    raw = tmp_path / "paper_state.pth"
    torch.save(paper.state_dict(), raw)
    with pytest.raises(CheckpointError, match="not a torchvision AlexNet state_dict.*paper"):
        load_torchvision_state_dict(raw)


# ---------------------------------------------------------------------------------------------------------------
# Caffe: our own protobuf encoder, writing the real caffe.proto wire format
# ---------------------------------------------------------------------------------------------------------------

def _varint(n: int) -> bytes:
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | 0x80 if n else b)
        if not n:
            return bytes(out)


def _key(num, wt):
    return _varint(num << 3 | wt)


def f_int(num, v):
    return _key(num, 0) + _varint(v)


def f_bytes(num, b):
    return _key(num, 2) + _varint(len(b)) + b


def f_str(num, s):
    return f_bytes(num, s.encode())


def f_float(num, x):
    return _key(num, 5) + struct.pack("<f", x)


def f_packed_ints(num, vals):
    return f_bytes(num, b"".join(_varint(int(v)) for v in vals))


def blob_new(a: np.ndarray) -> bytes:
    """BlobProto with shape=7 (BlobShape, packed int64 dims) and packed data=5."""
    return f_bytes(7, f_packed_ints(1, a.shape)) + f_bytes(5, np.ascontiguousarray(a, "<f4").tobytes())


def blob_v1(a: np.ndarray, packed: bool = True) -> bytes:
    """Legacy BlobProto: num/channels/height/width = 1..4 (always 4-D), data packed or one fixed32 per value."""
    dims = (1,) * (4 - a.ndim) + tuple(a.shape)
    head = b"".join(f_int(i + 1, d) for i, d in enumerate(dims))
    if packed:
        return head + f_bytes(5, np.ascontiguousarray(a, "<f4").tobytes())
    return head + b"".join(f_float(5, float(v)) for v in a.ravel())


# bvlc_alexnet's layer sequence (train_val / deploy), with per-layer parameters.
_V1_ENUM = {"Data": 5, "Convolution": 4, "ReLU": 18, "LRN": 15, "Pooling": 17, "InnerProduct": 14, "Dropout": 6,
            "SoftmaxWithLoss": 21}
_CONV = {"conv1": dict(pad=0, k=11, stride=4, group=1), "conv2": dict(pad=2, k=5, stride=1, group=2),
         "conv3": dict(pad=1, k=3, stride=1, group=1), "conv4": dict(pad=1, k=3, stride=1, group=2),
         "conv5": dict(pad=1, k=3, stride=1, group=2)}


def alexnet_layers(blobs: dict, *, towers=2, caffenet_order=False, lrn_alpha=1e-4):
    """(name, type, blobs, param bytes by kind) in bvlc_alexnet's order."""
    seq = [("data", "Data")]
    for i in (1, 2):
        norm_pool = [(f"norm{i}", "LRN"), (f"pool{i}", "Pooling")]
        seq += [(f"conv{i}", "Convolution"), (f"relu{i}", "ReLU")]
        seq += norm_pool[::-1] if caffenet_order else norm_pool
    seq += [("conv3", "Convolution"), ("relu3", "ReLU"), ("conv4", "Convolution"), ("relu4", "ReLU"),
            ("conv5", "Convolution"), ("relu5", "ReLU"), ("pool5", "Pooling"),
            ("fc6", "InnerProduct"), ("relu6", "ReLU"), ("drop6", "Dropout"),
            ("fc7", "InnerProduct"), ("relu7", "ReLU"), ("drop7", "Dropout"), ("fc8", "InnerProduct"),
            ("loss", "SoftmaxWithLoss")]
    out = []
    for name, kind in seq:
        params = {}
        if kind == "Convolution":
            c = _CONV[name]
            group = c["group"] if towers == 2 else 1
            # pad/kernel_size/stride are repeated uint32 (unpacked in proto2), group optional
            params["conv"] = (f_int(1, blobs[name][0].shape[0]) + (f_int(3, c["pad"]) if c["pad"] else b"")
                              + f_int(4, c["k"]) + (f_int(5, group) if group > 1 else b"")
                              + (f_int(6, c["stride"]) if c["stride"] > 1 else b""))
        elif kind == "LRN":
            params["lrn"] = f_int(1, 5) + f_float(2, lrn_alpha) + f_float(3, 0.75)
        elif kind == "Pooling":
            params["pool"] = f_int(1, 0) + f_int(2, 3) + f_int(3, 2)
        elif kind == "InnerProduct":
            params["ip"] = f_int(1, blobs[name][0].shape[0])
        out.append((name, kind, blobs.get(name, []), params))
    return out


def encode_net(layers, fmt="new") -> bytes:
    net = f_str(1, "AlexNet")
    for name, kind, bl, params in layers:
        if fmt == "new":   # LayerParameter in NetParameter.layer (100)
            msg = f_str(1, name) + f_str(2, kind) + b"".join(f_bytes(7, blob_new(b)) for b in bl)
            tags = {"conv": 106, "lrn": 118, "pool": 121, "ip": 117}
            msg += b"".join(f_bytes(tags[k], v) for k, v in params.items())
            net += f_bytes(100, msg)
        else:              # V1LayerParameter in NetParameter.layers (2); biases unpacked, as old writers did
            msg = f_str(4, name) + f_int(5, _V1_ENUM[kind])
            msg += b"".join(f_bytes(6, blob_v1(b, packed=(j == 0))) for j, b in enumerate(bl))
            tags = {"conv": 10, "lrn": 18, "pool": 19, "ip": 17}
            msg += b"".join(f_bytes(tags[k], v) for k, v in params.items())
            net += f_bytes(2, msg)
    return net


def small_caffe_blobs(channels=(8, 16, 24, 24, 16), fc=64, classes=10, towers=2, seed=0):
    """A bvlc_alexnet with fewer kernels (same kernels, strides, groups and 227 input): Caffe blob shapes."""
    rng = np.random.default_rng(seed)
    c1, c2, c3, c4, c5 = channels
    shapes = {"conv1": (c1, 3, 11, 11), "conv2": (c2, c1 // towers, 5, 5), "conv3": (c3, c2, 3, 3),
              "conv4": (c4, c3 // towers, 3, 3), "conv5": (c5, c4 // towers, 3, 3),
              "fc6": (fc, c5 * 6 * 6), "fc7": (fc, fc), "fc8": (classes, fc)}
    blobs = {}
    for name, shape in shapes.items():
        fan_in = int(np.prod(shape[1:]))
        std = 0.05 if name == "conv1" else np.sqrt(2.0 / fan_in)   # conv1 large enough that LRN matters
        blobs[name] = [rng.normal(0, std, shape).astype(np.float32),
                       rng.normal(0, 0.1, shape[0]).astype(np.float32)]
    return blobs


def caffe_reference(blobs, x_bgr, towers=2, lrn="caffe"):
    """Caffe's forward pass written out with torch.nn.functional on the raw blobs (input: BGR minus mean)."""
    t = {k: [torch.from_numpy(b) for b in v] for k, v in blobs.items()}

    def norm(x):
        if lrn == "caffe":      # Caffe: k=1, alpha/n
            return F.local_response_norm(x, 5, alpha=1e-4, beta=0.75, k=1.0)
        return F.local_response_norm(x, 5, alpha=1e-4 * 5, beta=0.75, k=2.0)   # the paper's formula

    g = towers
    x = F.max_pool2d(norm(F.relu(F.conv2d(x_bgr, *t["conv1"], stride=4))), 3, 2, ceil_mode=True)
    x = F.max_pool2d(norm(F.relu(F.conv2d(x, *t["conv2"], padding=2, groups=g))), 3, 2, ceil_mode=True)
    x = F.relu(F.conv2d(x, *t["conv3"], padding=1))
    x = F.relu(F.conv2d(x, *t["conv4"], padding=1, groups=g))
    x = F.max_pool2d(F.relu(F.conv2d(x, *t["conv5"], padding=1, groups=g)), 3, 2, ceil_mode=True)
    x = F.relu(F.linear(x.flatten(1), *t["fc6"]))
    x = F.relu(F.linear(x, *t["fc7"]))
    return F.linear(x, *t["fc8"])


def rgb_images(n=2, seed=3):
    """uint8 RGB images, 256x256 (already at the checkpoint's resize), with very different channels."""
    g = torch.Generator().manual_seed(seed)
    img = torch.randint(0, 256, (n, 3, 256, 256), generator=g, dtype=torch.uint8)
    img[:, 0] = img[:, 0] // 4 + 190   # bright red, dim blue: BGR vs RGB matters
    img[:, 2] = img[:, 2] // 4
    return img


def centre(img, crop=227):
    o = (img.shape[-1] - crop) // 2
    return img[..., o:o + crop, o:o + crop]


def prepare(img_rgb, data):
    """What eval/predict/features do with a checkpoint's ``data``: channel order, then (x - mean) / std."""
    x = centre(img_rgb, data["crop"]).float()
    if data["channel_order"] == "BGR":
        x = x.flip(1)
    mean = torch.tensor(data["mean"]).view(1, -1, 1, 1)
    std = torch.tensor(data["std"]).view(1, -1, 1, 1)
    return (x - mean) / std


def hand_input(img_rgb):
    """Caffe's input written by hand: RGB -> BGR, minus Caffe's BGR mean (104, 117, 123), no scaling."""
    return centre(img_rgb).float()[:, [2, 1, 0]] - torch.tensor([104.0, 117.0, 123.0]).view(1, 3, 1, 1)


@pytest.mark.parametrize("fmt", ["new", "v1"])
def test_caffe_conversion_matches_a_hand_computed_forward_pass(tmp_path, fmt):
    blobs = small_caffe_blobs()
    model_file = tmp_path / "small_alexnet.caffemodel"
    model_file.write_bytes(encode_net(alexnet_layers(blobs), fmt))
    out = convert_caffe(model_file, tmp_path / "caffe.pt")
    model, ckpt = load_model(out)
    cfg = model.config
    assert (cfg.arch, cfg.towers, cfg.input_size, cfg.lrn_convention, cfg.lrn_k) == ("paper", 2, 227, "caffe", 1.0)
    assert cfg.channels == (8, 16, 24, 24, 16) and cfg.fc_size == 64 and cfg.num_classes == 10
    assert model.conv2.weight.shape == (16, 4, 5, 5) and model.conv2.groups == 2
    data = ckpt.preprocessing
    assert data["channel_order"] == "BGR" and data["mean"] == list(CAFFE_MEAN_BGR) and data["std"] == [1.0] * 3
    assert (data["crop"], data["resize"]) == (227, 256)
    assert ckpt.classes is None and ckpt.source["kind"] == "caffe"

    img = rgb_images()
    ref = caffe_reference(blobs, hand_input(img))
    with torch.no_grad():
        ours = model(prepare(img, data))
    torch.testing.assert_close(ours, ref, rtol=1e-4, atol=1e-4 * float(ref.abs().max()))
    # the test can tell the conventions apart: the paper's LRN, or RGB fed unflipped, give other logits
    assert not torch.allclose(caffe_reference(blobs, hand_input(img), lrn="paper"), ref, rtol=1e-2, atol=1e-2)
    wrong_order = centre(img).float() - torch.tensor([104.0, 117.0, 123.0]).view(1, 3, 1, 1)
    assert not torch.allclose(caffe_reference(blobs, wrong_order), ref, rtol=1e-2, atol=1e-2)


def test_caffe_checkpoint_through_predict_and_features(tmp_path):
    """The project's own image path (decode, channel order, crop, mean) on a converted BGR network gives Caffe's
    hand-computed outputs."""
    pytest.importorskip("alexnet.data")
    from PIL import Image

    from alexnet.features import save_features
    from alexnet.predict import predict

    blobs = small_caffe_blobs(seed=11)
    f = tmp_path / "m.caffemodel"
    f.write_bytes(encode_net(alexnet_layers(blobs)))
    ck = convert_caffe(f, tmp_path / "caffe.pt")
    img = rgb_images(2)
    paths = []
    for i in range(2):
        p = tmp_path / f"img{i}.png"
        Image.fromarray(img[i].permute(1, 2, 0).numpy()).save(p)
        paths.append(p)
    ref = caffe_reference(blobs, hand_input(img))
    got = predict(str(ck), [str(p) for p in paths], topk=3, device="cpu")
    for r, logits in zip(got, ref):
        probs = logits.softmax(-1)
        top = probs.topk(3)
        assert [pr["index"] for pr in r["predictions"]] == top.indices.tolist()
        assert [pr["probability"] for pr in r["predictions"]] == pytest.approx(top.values.tolist(), rel=1e-3,
                                                                                abs=1e-5)
    s = save_features(str(ck), [str(p) for p in paths], ["fc8"], tmp_path / "f.npz", device="cpu", progress=False)
    fc8 = np.load(s["output"])["fc8"]
    torch.testing.assert_close(torch.from_numpy(fc8), ref, rtol=1e-4, atol=1e-4 * float(ref.abs().max()))


def test_caffe_rgb_option_flips_conv1_once(tmp_path):
    blobs = small_caffe_blobs(seed=5)
    f = tmp_path / "m.caffemodel"
    f.write_bytes(encode_net(alexnet_layers(blobs)))
    model, ckpt = load_model(convert_caffe(f, tmp_path / "rgb.pt", rgb=True, mean=[100.0, 110.0, 120.0]))
    assert ckpt.preprocessing["channel_order"] == "RGB" and ckpt.preprocessing["mean"] == [120.0, 110.0, 100.0]
    img = rgb_images()
    x_bgr = centre(img).float()[:, [2, 1, 0]] - torch.tensor([100.0, 110.0, 120.0]).view(1, 3, 1, 1)
    with torch.no_grad():
        torch.testing.assert_close(model(prepare(img, ckpt.preprocessing)), caffe_reference(blobs, x_bgr),
                                   rtol=1e-4, atol=1e-3)


def test_caffe_one_tower_net_and_cli_to_safetensors(tmp_path, capsys):
    blobs = small_caffe_blobs(channels=(8, 16, 16, 16, 8), towers=1, classes=5)
    f = tmp_path / "one.caffemodel"
    f.write_bytes(encode_net(alexnet_layers(blobs, towers=1)))
    names = tmp_path / "names.txt"
    names.write_text("\n".join(f"class {i}" for i in range(5)) + "\n")
    out = tmp_path / "one.safetensors"
    assert main(["convert", "caffe", str(f), "-o", str(out), "--classes", str(names)]) == 0
    assert "wrote" in capsys.readouterr().out
    model, meta = load_model(out)
    assert meta.arch == "paper-1tower" and meta.classes[4] == "class 4"
    img = rgb_images(1)
    with torch.no_grad():
        torch.testing.assert_close(model(prepare(img, meta.preprocessing)), caffe_reference(blobs, hand_input(img), 1),
                                   rtol=1e-4, atol=1e-3)


def test_caffe_reader_agrees_with_the_protobuf_library(tmp_path):
    """Messages built and serialised by Google's protobuf runtime (caffe.proto's field numbers, packed fields)
    parse to the same layers, and the protobuf runtime parses our test encoder's bytes back."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    F_ = descriptor_pb2.FieldDescriptorProto
    fd = descriptor_pb2.FileDescriptorProto(name="mini_caffe.proto", package="minicaffe", syntax="proto2")

    def msg(name, fields):
        m = fd.message_type.add(name=name)
        for fname, num, ftype, label, type_name, packed in fields:
            f = m.field.add(name=fname, number=num, type=ftype, label=label)
            if type_name:
                f.type_name = f".minicaffe.{type_name}"
            if packed:
                f.options.packed = True

    OPT, REP = F_.LABEL_OPTIONAL, F_.LABEL_REPEATED
    msg("BlobShape", [("dim", 1, F_.TYPE_INT64, REP, None, True)])
    msg("BlobProto", [("shape", 7, F_.TYPE_MESSAGE, OPT, "BlobShape", False),
                      ("data", 5, F_.TYPE_FLOAT, REP, None, True),
                      ("num", 1, F_.TYPE_INT64, OPT, None, False), ("channels", 2, F_.TYPE_INT64, OPT, None, False),
                      ("height", 3, F_.TYPE_INT64, OPT, None, False), ("width", 4, F_.TYPE_INT64, OPT, None, False)])
    msg("ConvolutionParameter", [("num_output", 1, F_.TYPE_UINT32, OPT, None, False),
                                 ("pad", 3, F_.TYPE_UINT32, REP, None, False),
                                 ("kernel_size", 4, F_.TYPE_UINT32, REP, None, False),
                                 ("group", 5, F_.TYPE_UINT32, OPT, None, False),
                                 ("stride", 6, F_.TYPE_UINT32, REP, None, False)])
    msg("LRNParameter", [("local_size", 1, F_.TYPE_UINT32, OPT, None, False),
                         ("alpha", 2, F_.TYPE_FLOAT, OPT, None, False), ("beta", 3, F_.TYPE_FLOAT, OPT, None, False),
                         ("k", 5, F_.TYPE_FLOAT, OPT, None, False)])
    msg("LayerParameter", [("name", 1, F_.TYPE_STRING, OPT, None, False), ("type", 2, F_.TYPE_STRING, OPT, None, False),
                           ("blobs", 7, F_.TYPE_MESSAGE, REP, "BlobProto", False),
                           ("convolution_param", 106, F_.TYPE_MESSAGE, OPT, "ConvolutionParameter", False),
                           ("lrn_param", 118, F_.TYPE_MESSAGE, OPT, "LRNParameter", False)])
    msg("V1LayerParameter", [("name", 4, F_.TYPE_STRING, OPT, None, False),
                             ("type", 5, F_.TYPE_INT32, OPT, None, False),
                             ("blobs", 6, F_.TYPE_MESSAGE, REP, "BlobProto", False)])
    msg("NetParameter", [("name", 1, F_.TYPE_STRING, OPT, None, False),
                         ("layers", 2, F_.TYPE_MESSAGE, REP, "V1LayerParameter", False),
                         ("layer", 100, F_.TYPE_MESSAGE, REP, "LayerParameter", False)])
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fd)
    Net = message_factory.GetMessageClass(pool.FindMessageTypeByName("minicaffe.NetParameter"))

    rng = np.random.default_rng(0)
    w = rng.normal(size=(6, 2, 5, 5)).astype(np.float32)
    b = rng.normal(size=6).astype(np.float32)
    net = Net(name="x")
    conv = net.layer.add(name="conv2", type="Convolution")
    conv.convolution_param.num_output, conv.convolution_param.group = 6, 2
    conv.convolution_param.pad.append(2)
    conv.convolution_param.kernel_size.append(5)
    for arr in (w, b):
        blob = conv.blobs.add()
        blob.shape.dim.extend(arr.shape)
        blob.data.extend(arr.ravel().tolist())
    norm = net.layer.add(name="norm2", type="LRN")
    norm.lrn_param.local_size, norm.lrn_param.alpha, norm.lrn_param.beta = 5, 1e-4, 0.75
    old = net.layers.add(name="fc8", type=14)
    blob = old.blobs.add(num=1, channels=1, height=3, width=4)
    blob.data.extend(np.arange(12, dtype=np.float32).tolist())
    path = tmp_path / "pb.caffemodel"
    path.write_bytes(net.SerializeToString())

    layers = read_caffemodel(path)
    by_name = {l.name: l for l in layers}
    # protobuf writes fields in field-number order: NetParameter.layers (2) before .layer (100)
    assert [l.type for l in layers] == ["innerproduct", "convolution", "lrn"]
    np.testing.assert_array_equal(by_name["conv2"].blobs[0], w)
    np.testing.assert_array_equal(by_name["conv2"].blobs[1], b)
    assert by_name["conv2"].params["conv"] == {"num_output": 6, "pad": 2, "kernel": 5, "stride": 1, "group": 2}
    assert by_name["norm2"].params["lrn"]["alpha"] == pytest.approx(1e-4) and by_name["norm2"].params["lrn"]["k"] == 1
    np.testing.assert_array_equal(by_name["fc8"].blobs[0], np.arange(12, dtype=np.float32).reshape(1, 1, 3, 4))

    # ... and the protobuf runtime reads what our test encoder writes (so the tests above use the real format)
    blobs = small_caffe_blobs()
    parsed = Net.FromString(encode_net(alexnet_layers(blobs), "new"))
    conv1 = next(l for l in parsed.layer if l.name == "conv1")
    assert list(conv1.blobs[0].shape.dim) == [8, 3, 11, 11]
    np.testing.assert_array_equal(np.array(conv1.blobs[0].data, np.float32), blobs["conv1"][0].ravel())
    parsed_v1 = Net.FromString(encode_net(alexnet_layers(blobs), "v1"))
    fc6 = next(l for l in parsed_v1.layers if l.name == "fc6")
    assert (fc6.type, fc6.blobs[0].height, fc6.blobs[0].width) == (14, 64, 16 * 36)
    np.testing.assert_array_equal(np.array(fc6.blobs[1].data, np.float32), blobs["fc6"][1])


def test_caffe_mean_files(tmp_path):
    img = np.stack([np.full((8, 8), 100.0), np.full((8, 8), 110.0), np.full((8, 8), 120.0)])
    img[0, 0, 0] = 164.0   # a per-pixel mean: averaged per channel -> 101
    np.save(tmp_path / "mean.npy", img)
    assert read_caffe_mean(tmp_path / "mean.npy") == pytest.approx([101.0, 110.0, 120.0])
    (tmp_path / "mean.binaryproto").write_bytes(blob_v1(img[None].astype(np.float32)))
    assert read_caffe_mean(tmp_path / "mean.binaryproto") == pytest.approx([101.0, 110.0, 120.0])
    assert read_caffe_mean("104,117,123") == [104.0, 117.0, 123.0]
    assert read_caffe_mean(None) == list(CAFFE_MEAN_BGR)
    with pytest.raises(ConfigError, match="no such file"):
        read_caffe_mean(tmp_path / "missing.npy")


def test_caffe_conversion_errors_are_one_line(tmp_path):
    blobs = small_caffe_blobs()
    cases = {
        "caffenet": (encode_net(alexnet_layers(blobs, caffenet_order=True)), "CaffeNet"),
        "alpha": (encode_net(alexnet_layers(blobs, lrn_alpha=1e-3)), "alpha=0.001"),
        "nofc8": (encode_net([l for l in alexnet_layers(blobs) if l[0] != "fc8"]), "3 inner-product"),
        "garbage": (b"\x0a\xff\xff\xff\xff\x0f" + b"junk" * 10, "not a readable caffemodel"),
        "truncated": (encode_net(alexnet_layers(blobs))[:5000], "truncated"),
    }
    for name, (payload, pattern) in cases.items():
        f = tmp_path / f"{name}.caffemodel"
        f.write_bytes(payload)
        with pytest.raises(CheckpointError, match=pattern) as e:
            convert_caffe(f, tmp_path / f"{name}.pt")
        assert "\n" not in str(e.value), name
        assert not (tmp_path / f"{name}.pt").exists()
    bad_out = tmp_path / "ok.caffemodel"
    bad_out.write_bytes(encode_net(alexnet_layers(blobs)))
    with pytest.raises(ConfigError, match=r"\.pt .*\.safetensors"):
        convert_caffe(bad_out, tmp_path / "out.bin")
    assert main(["convert", "caffe", str(tmp_path / "caffenet.caffemodel"), "-o", str(tmp_path / "c.pt")]) == 1
    # the wrong converter for the file says which one to use
    with pytest.raises(CheckpointError, match="convert caffe"):
        convert_torchvision(bad_out, tmp_path / "tv.pt")
    pt = tmp_path / "torch.pt"
    torch.save({"features.0.weight": torch.zeros(2)}, pt)
    with pytest.raises(CheckpointError, match="convert torchvision"):
        convert_caffe(pt, tmp_path / "c2.pt")


# ---------------------------------------------------------------------------------------------------------------
# export
# ---------------------------------------------------------------------------------------------------------------

def _small_checkpoint(path, lrn_convention="paper", towers=2):
    torch.manual_seed(0)
    model = alexnet.build_model("paper", num_classes=10, input_size=96, fc_size=64, channels=(16, 32, 32, 32, 32),
                                lrn_convention=lrn_convention, towers=towers,
                                lrn_k=1.0 if lrn_convention == "caffe" else 2.0)
    data = {"mean": [120.0, 115.0, 100.0], "std": [1.0, 1.0, 1.0], "resize": 110, "crop": 96,
            "channel_order": "RGB", "channels": 3}
    save_checkpoint(path, Checkpoint(model_config=model.config, state_dict=model.state_dict(),
                                     classes=[f"c{i}" for i in range(10)], preprocessing=data))
    return model.eval()


def _x(n, size=96, seed=7):
    return torch.randn(n, 3, size, size, generator=torch.Generator().manual_seed(seed)) * 60


@pytest.mark.parametrize("lrn_convention", ["paper", "caffe"])
def test_onnx_export_matches_onnxruntime_with_dynamic_batch(tmp_path, lrn_convention):
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    model = _small_checkpoint(tmp_path / "m.pt", lrn_convention)
    out = export_model(tmp_path / "m.pt", "onnx", tmp_path / "m.onnx")
    proto = onnx.load(str(out))
    meta = {p.key: p.value for p in proto.metadata_props}
    info = json.loads(meta["alexnet"])
    assert info["model_config"]["lrn_convention"] == lrn_convention and info["classes"][3] == "c3"
    assert info["data"]["crop"] == 96
    assert proto.graph.input[0].type.tensor_type.shape.dim[0].dim_param   # symbolic batch dimension
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    for n in (1, 3):
        x = _x(n)
        with torch.no_grad():
            ref = model(x)
        got = torch.from_numpy(sess.run(None, {"input": x.numpy()})[0])
        assert got.shape == (n, 10)
        torch.testing.assert_close(got, ref, rtol=1e-4, atol=1e-4)
    assert not any(p.name.startswith(".m.onnx") for p in tmp_path.iterdir())   # no temp file left


def test_torchscript_export_reloads_with_the_same_logits(tmp_path):
    model = _small_checkpoint(tmp_path / "m.pt")
    out = export_model(tmp_path / "m.pt", "torchscript", tmp_path / "m.ts")
    extra = {"alexnet.json": ""}
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ts = torch.jit.load(str(out), _extra_files=extra)
    assert json.loads(extra["alexnet.json"])["model_config"]["arch"] == "paper"
    x = _x(3)
    with torch.no_grad():
        torch.testing.assert_close(ts(x), model(x), rtol=1e-5, atol=1e-5)


def test_safetensors_export_round_trip_and_metadata(tmp_path):
    from safetensors import safe_open

    model = _small_checkpoint(tmp_path / "m.pt")
    out = export_model(tmp_path / "m.pt", "safetensors", tmp_path / "m.safetensors")
    with safe_open(str(out), "pt") as f:
        header = f.metadata()
    assert header["format"] == "alexnet-checkpoint"
    assert json.loads(header["model_config"])["fc_size"] == 64 and json.loads(header["data"])["crop"] == 96
    loaded, meta = load_model(out)
    assert meta.classes[9] == "c9" and not meta.resumable
    own = loaded.state_dict()   # the record holds the network's own tensors, not a second copy of the weights
    assert all(meta.state_dict[k].data_ptr() == v.data_ptr() for k, v in own.items())
    x = _x(2)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model(x))
    assert check_export(out, tmp_path / "m.pt") == 0.0
    # an exported file exports again
    assert export_model(out, "safetensors", tmp_path / "again.safetensors").is_file()


def test_safetensors_loading_names_the_wrong_tensor(tmp_path):
    from safetensors.torch import save_file

    _small_checkpoint(tmp_path / "m.pt")
    out = export_model(tmp_path / "m.pt", "safetensors", tmp_path / "m.safetensors")
    ckpt = read_safetensors(out)
    meta = safetensors_metadata(ckpt)

    bad = dict(ckpt.state_dict)
    bad["fc6.weight"] = torch.zeros(64, 100)
    save_file(bad, str(tmp_path / "shape.safetensors"), metadata=meta)
    with pytest.raises(CheckpointError, match=r"'fc6.weight'.*\(64, 100\).*'paper'.*\(64, 128\)") as e:
        load_model(tmp_path / "shape.safetensors")
    assert "\n" not in str(e.value)

    missing = {k: v for k, v in ckpt.state_dict.items() if k != "conv3.bias"}
    save_file(missing, str(tmp_path / "missing.safetensors"), metadata=meta)
    with pytest.raises(CheckpointError, match="conv3.bias"):
        load_model(tmp_path / "missing.safetensors")

    data = out.read_bytes()
    (tmp_path / "trunc.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupt") as e:
        load_model(tmp_path / "trunc.safetensors")
    assert "\n" not in str(e.value)

    save_file({"w": torch.zeros(2)}, str(tmp_path / "foreign.safetensors"))
    with pytest.raises(CheckpointError, match="without alexnet metadata"):
        load_model(tmp_path / "foreign.safetensors")


def test_export_cli_with_check(tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    _small_checkpoint(tmp_path / "m.pt", "caffe")
    for fmt, name in (("onnx", "m.onnx"), ("torchscript", "m.ts"), ("safetensors", "m.safetensors")):
        assert main(["export", str(tmp_path / "m.pt"), "--format", fmt, "-o", str(tmp_path / name),
                     "--check", "--json"]) == 0
        summary = json.loads(capsys.readouterr().out)
        assert summary["format"] == fmt and summary["max_abs_diff"] < 1e-3
    # the format follows from the extension when --format is not given
    assert main(["export", str(tmp_path / "m.pt"), "-o", str(tmp_path / "n.safetensors")]) == 0
    assert "wrote" in capsys.readouterr().out
    assert main(["export", str(tmp_path / "m.pt"), "-o", str(tmp_path / "n.bin")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--format" in err[0]


def test_imagenet_class_resource():
    names = imagenet_classes()
    assert names is not None and len(names) == 1000 and len(set(names)) == 1000
    wnids = [n.split(" ", 1)[0] for n in names]
    assert wnids == sorted(wnids) and all(w.startswith("n") and len(w) == 9 for w in wnids)
    assert names[0] == "n01440764 tench" and names[-1] == "n15075141 toilet tissue"
    assert IMAGENET_STD_RGB[0] == pytest.approx(58.395)
