"""Pretrained weights by name (alexnet.weights): the registry, hub-style downloads from a loopback server, the cache,
``--weights`` on the verbs, and training started from weights (last layer replaced, provenance recorded)."""
from __future__ import annotations

import hashlib
import http.server
import socket
import threading
from pathlib import Path

import pytest
import torch

import alexnet
from alexnet import choices, weights
from alexnet.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from alexnet.cli import main
from alexnet.errors import CheckpointError, ConfigError
from alexnet.interop import load_model
from alexnet.weights import WEIGHTS_REGISTRY, WeightsEntry, resolve_weights
from test_interop import alexnet_layers, encode_net, small_caffe_blobs

# ---------------------------------------------------------------------------------------------------------------
# a loopback HTTP server serving generated files in the real formats
# ---------------------------------------------------------------------------------------------------------------


class _Handler(http.server.BaseHTTPRequestHandler):
    routes: dict = {}

    def do_GET(self):   # noqa: N802 - http.server's name
        self.server.hits.append(self.path)
        route = self.server.routes.get(self.path)
        if route is None:
            self.send_error(404)
            return
        body, mode = route
        if mode == "500":
            self.send_error(500, "Internal Server Error")
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if mode == "cut":   # the connection drops half-way through the file
            self.wfile.write(body[:len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)

    def log_message(self, *args):   # no stray lines on stderr
        pass


class Server:
    def __init__(self):
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.httpd.routes, self.httpd.hits = {}, []
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()
        self.running = True

    def serve(self, path: str, body: bytes, mode: str = "ok") -> str:
        self.httpd.routes[path] = (body, mode)
        return self.url + path

    @property
    def hits(self):
        return self.httpd.hits

    def stop(self):
        if self.running:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.running = False


@pytest.fixture
def server():
    s = Server()
    yield s
    s.stop()


@pytest.fixture
def torch_home(tmp_path, monkeypatch):
    """A fresh $TORCH_HOME per test: the cache must end up exactly there."""
    home = tmp_path / "torch_home"
    monkeypatch.setenv("TORCH_HOME", str(home))
    return home


def _cache_files(torch_home: Path) -> list[str]:
    folder = torch_home / "hub" / "checkpoints"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def _caffemodel_bytes(classes=10, seed=0) -> bytes:
    return encode_net(alexnet_layers(small_caffe_blobs(classes=classes, seed=seed)))


def _entry(name, url, body: bytes, *, algo="sha1", digest=None, arch="paper", fmt="caffemodel") -> WeightsEntry:
    return WeightsEntry(name=name, url=url, checksum=(algo, digest or hashlib.new(algo, body).hexdigest()),
                        size=len(body), arch=arch, file_format=fmt, preprocessing="test", classes="test",
                        accuracy={"top1": 57.1, "top5": 80.2, "crops": 1, "split": "ILSVRC-2012 val"},
                        citation="test")


@pytest.fixture
def register(monkeypatch):
    """Register a test entry for the duration of one test."""
    def add(entry: WeightsEntry) -> WeightsEntry:
        monkeypatch.setitem(WEIGHTS_REGISTRY, entry.name, entry)
        return entry
    return add


# ---------------------------------------------------------------------------------------------------------------
# the registry holds the publishers' values
# ---------------------------------------------------------------------------------------------------------------

def test_registry_holds_torchvisions_published_values():
    from torchvision.models import AlexNet_Weights
    from torchvision.models._meta import _IMAGENET_CATEGORIES

    from alexnet.interop import imagenet_classes

    assert weights.list_weights() == choices.WEIGHTS == ("torchvision", "bvlc")
    tv, ref = WEIGHTS_REGISTRY["torchvision"], AlexNet_Weights.IMAGENET1K_V1
    assert tv.url == ref.url == "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth"
    assert tv.checksum[0] == "sha256" and tv.checksum[1].startswith("7be5be79") and len(tv.checksum[1]) == 64
    assert (tv.accuracy["top1"], tv.accuracy["top5"]) == (ref.meta["_metrics"]["ImageNet-1K"]["acc@1"],
                                                          ref.meta["_metrics"]["ImageNet-1K"]["acc@5"])
    assert round(tv.size / 2**20, 3) == ref.meta["_file_size"]
    assert tv.arch == "owt" and tv.filename == "alexnet-owt-7be5be79.pth"
    # the class names converted torchvision weights carry are torchvision's, in its order
    assert [c.split(" ", 1)[1] for c in imagenet_classes()] == list(_IMAGENET_CATEGORIES)
    bvlc = WEIGHTS_REGISTRY["bvlc"]
    assert bvlc.url == "http://dl.caffe.berkeleyvision.org/bvlc_alexnet.caffemodel"
    assert bvlc.checksum == ("sha1", "9116a64c0fbe4459d18f4bb6b56d647b63920377")
    assert (bvlc.accuracy["top1"], bvlc.accuracy["top5"], bvlc.arch) == (57.1, 80.2, "paper")


def test_register_refuses_duplicates_and_bad_checksums(register):
    e = _entry("twice", "http://x/y.caffemodel", b"abc")
    register(e)
    with pytest.raises(RuntimeError, match="registered twice"):
        weights.register_weights(e)
    with pytest.raises(RuntimeError, match="not \\(algorithm, hex\\)"):
        weights.register_weights(WeightsEntry(**{**e.__dict__, "name": "bad", "checksum": ("md7", "zz")}))


def test_unknown_name_or_missing_file_is_one_line():
    with pytest.raises(CheckpointError, match=r"^nope\.pt: no such weight file, and not a registered weights name "
                                              r"\(torchvision, bvlc\) or an http\(s\) URL$"):
        resolve_weights("nope.pt")
    with pytest.raises(ConfigError, match="exactly one"):
        weights.model_path(None, None)


# ---------------------------------------------------------------------------------------------------------------
# downloads: progress, cache, checksum, failures leave nothing
# ---------------------------------------------------------------------------------------------------------------

def test_named_download_converts_once_and_is_reused_offline(server, torch_home, register, capsys):
    body = _caffemodel_bytes()
    entry = register(_entry("test-caffe", server.serve("/bvlc_small.caffemodel", body), body))
    path = resolve_weights("test-caffe")
    assert path == torch_home / "hub" / "checkpoints" / "bvlc_small.alexnet.safetensors"   # TORCH_HOME honoured
    assert _cache_files(torch_home) == ["bvlc_small.alexnet.safetensors", "bvlc_small.caffemodel"]   # no temp file
    assert (torch_home / "hub" / "checkpoints" / "bvlc_small.caffemodel").read_bytes() == body
    assert "downloading bvlc_small.caffemodel" in capsys.readouterr().err   # the progress bar, on stderr
    model, ckpt = load_model(path)
    assert ckpt.arch == "paper" and ckpt.preprocessing["channel_order"] == "BGR"
    src = ckpt.source
    assert (src["weights"], src["url"], src["sha1"]) == ("test-caffe", entry.url, entry.checksum[1])
    assert src["sha256"] == hashlib.sha256(body).hexdigest()
    assert src["publisher_accuracy"] == {"top1": 57.1, "top5": 80.2, "crops": 1, "split": "ILSVRC-2012 val"}
    stamp = path.stat().st_mtime_ns
    server.stop()                                       # offline from now on
    assert resolve_weights("test-caffe") == path and path.stat().st_mtime_ns == stamp   # not converted again
    net = weights.pretrained("test-caffe")
    assert not net.training and net.config.arch == "paper"
    torch.testing.assert_close(net.state_dict()["conv1.weight"], model.state_dict()["conv1.weight"], rtol=0, atol=0)
    assert len(server.hits) == 1


def test_a_file_already_in_the_cache_is_checked_not_downloaded(server, torch_home, register):
    """torchvision (or a person) may have put the file there: used after its checksum is checked."""
    body = _caffemodel_bytes()
    register(_entry("test-caffe", server.url + "/by_hand.caffemodel", body))   # the server does not have it
    folder = torch_home / "hub" / "checkpoints"
    folder.mkdir(parents=True)
    (folder / "by_hand.caffemodel").write_bytes(body[:-1] + b"\x00")
    with pytest.raises(CheckpointError, match=r"by_hand\.caffemodel: sha1 [0-9a-f]{40} differs from the published"):
        resolve_weights("test-caffe")
    (folder / "by_hand.caffemodel").write_bytes(body)
    assert resolve_weights("test-caffe").name == "by_hand.alexnet.safetensors"
    assert server.hits == []


def test_checksum_mismatch_leaves_nothing(server, torch_home, register):
    body = _caffemodel_bytes()
    register(_entry("test-bad", server.serve("/bad.caffemodel", body), body, digest="0" * 40))
    with pytest.raises(CheckpointError, match=r"bad\.caffemodel: sha1 [0-9a-f]{40} differs from the published 0{40}: "
                                              "a corrupt or modified download; nothing was saved$"):
        resolve_weights("test-bad", progress=False)
    assert _cache_files(torch_home) == []


@pytest.mark.parametrize("mode, message", [("500", r"HTTP 500 Internal Server Error; nothing was saved$"),
                                           ("cut", r"broke off after \d+ (of \d+ )?bytes.*nothing was saved")])
def test_failed_download_leaves_nothing(server, torch_home, register, mode, message):
    body = _caffemodel_bytes()
    register(_entry("test-fail", server.serve("/f.caffemodel", body, mode), body))
    with pytest.raises(CheckpointError, match=message):
        resolve_weights("test-fail", progress=False)
    assert _cache_files(torch_home) == []


def test_interrupted_download_leaves_nothing(server, torch_home, register, monkeypatch):
    body = _caffemodel_bytes()
    register(_entry("test-int", server.serve("/i.caffemodel", body), body))

    class CtrlC:
        def __init__(self, *a, **k):
            pass

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def update(self, n):
            raise KeyboardInterrupt

    monkeypatch.setattr(weights, "_progress_bar", CtrlC)
    with pytest.raises(KeyboardInterrupt):
        resolve_weights("test-int")
    assert _cache_files(torch_home) == []


def test_a_killed_downloads_temporary_file_is_swept_by_the_next(server, torch_home, register):
    """SIGKILL cannot be caught: its temporary file (named as every alexnet temporary) goes at the next download."""
    import subprocess
    import sys

    body = _caffemodel_bytes()
    register(_entry("test-caffe", server.serve("/k.caffemodel", body), body))
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    folder = torch_home / "hub" / "checkpoints"
    folder.mkdir(parents=True)
    stale = folder / f".k.caffemodel.{dead.stdout.strip()}.abc123.alexnet-tmp.caffemodel"
    stale.write_bytes(body[:100])
    resolve_weights("test-caffe", progress=False)
    assert _cache_files(torch_home) == ["k.alexnet.safetensors", "k.caffemodel"]


def test_offline_message_names_the_url_and_where_to_put_the_file(torch_home, register):
    with socket.socket() as s:   # a port nobody listens on: connection refused, as without a network
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/models/offline.caffemodel"
    register(_entry("test-offline", url, b"x"))
    with pytest.raises(CheckpointError) as e:
        resolve_weights("test-offline")
    dest = torch_home / "hub" / "checkpoints" / "offline.caffemodel"
    assert str(e.value) == (f"cannot download {url} ([Errno 111] Connection refused); without network, fetch that "
                            f"file elsewhere and put it at {dest}")
    assert "\n" not in str(e.value) and _cache_files(torch_home) == []
    assert main(["predict", "x.jpg", "--weights", "test-offline"]) == 1


def _small_paper_checkpoint(path: Path, classes=10, seed=0) -> Checkpoint:
    torch.manual_seed(seed)
    model = alexnet.build_model("paper", num_classes=classes, input_size=64, fc_size=64,
                                channels=(16, 32, 32, 32, 32))
    ckpt = Checkpoint(model_config=model.config, state_dict=model.state_dict(),
                      classes=[f"c{i}" for i in range(classes)],
                      preprocessing={"mean": [120.0, 115.0, 100.0], "std": [60.0, 60.0, 60.0], "resize": 72,
                                     "crop": 64, "channels": 3, "channel_order": "RGB", "normalize": "standard"})
    save_checkpoint(path, ckpt)
    return ckpt


def test_url_downloads_are_checked_against_the_hash_in_their_name(server, torch_home, tmp_path):
    """torch.hub's rule: NAME-<sha256 prefix>.EXT must hash to that prefix; the file then loads as any weight file."""
    _small_paper_checkpoint(tmp_path / "w.pt")
    body = (tmp_path / "w.pt").read_bytes()
    prefix = hashlib.sha256(body).hexdigest()[:8]
    good = server.serve(f"/small-{prefix}.pt", body)
    path = resolve_weights(good, progress=False)
    assert path == torch_home / "hub" / "checkpoints" / f"small-{prefix}.pt"
    assert load_model(path).checkpoint.arch == "paper"
    bad = server.serve("/small-deadbeef.pt", body)
    with pytest.raises(CheckpointError, match=r"sha256 [0-9a-f]{16}\.\.\. does not start with 'deadbeef' as its file "
                                              "name says"):
        resolve_weights(bad, progress=False)
    assert _cache_files(torch_home) == [f"small-{prefix}.pt"]
    # a local file named like that is checked too
    (tmp_path / "local-deadbeef.pt").write_bytes(body)
    with pytest.raises(CheckpointError, match="does not start with 'deadbeef'"):
        resolve_weights(tmp_path / "local-deadbeef.pt")
    assert resolve_weights(tmp_path / "w.pt") == tmp_path / "w.pt"


# ---------------------------------------------------------------------------------------------------------------
# torchvision's format end to end (the full-size owt network: built once, no training)
# ---------------------------------------------------------------------------------------------------------------

def test_torchvision_format_entry_gives_torchvisions_logits(server, torch_home, register, tmp_path, capsys):
    import io

    import torchvision

    torch.manual_seed(0)
    tv = torchvision.models.alexnet(weights=None, num_classes=10).eval()
    buf = io.BytesIO()
    torch.save(tv.state_dict(), buf)
    body = buf.getvalue()
    prefix = hashlib.sha256(body).hexdigest()[:8]
    entry = register(_entry("test-tv", server.serve(f"/alexnet-owt-{prefix}.pth", body), body, algo="sha256",
                            arch="owt", fmt="torchvision"))
    net = weights.pretrained("test-tv", progress=False)
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        torch.testing.assert_close(net(x), tv(x), rtol=1e-5, atol=1e-5)
    assert _cache_files(torch_home) == [f"alexnet-owt-{prefix}.alexnet.safetensors", f"alexnet-owt-{prefix}.pth"]
    server.stop()
    ckpt = load_model(resolve_weights(entry.url)).checkpoint   # its URL resolves to the entry, offline
    assert ckpt.source["weights"] == "test-tv" and ckpt.source["sha256"] == entry.checksum[1]
    assert ckpt.preprocessing["crop"] == 224 and ckpt.preprocessing["channel_order"] == "RGB"


# ---------------------------------------------------------------------------------------------------------------
# --weights on the verbs
# ---------------------------------------------------------------------------------------------------------------

def test_predict_eval_features_export_viz_take_weights(server, torch_home, register, tiny_data, tmp_path, capsys):
    body = _caffemodel_bytes(classes=3)
    register(_entry("test-caffe", server.serve("/c3.caffemodel", body), body))
    image = next(iter(sorted((tiny_data / "val").rglob("*.jp*g"))))
    assert main(["predict", str(image), "--weights", "test-caffe", "--topk", "2", "--device", "cpu"]) == 0
    out = capsys.readouterr()
    assert out.out.splitlines()[0] == str(image) and len(out.out.splitlines()) == 3
    assert "downloading c3.caffemodel" in out.err
    server.stop()   # everything below runs from the cache
    assert main(["eval", "--weights", "test-caffe", "--data", str(tiny_data), "--device", "cpu", "--json"]) == 0
    import json
    r = json.loads(capsys.readouterr().out)
    assert r["publisher_accuracy"] == {"weights": "test-caffe", "top1": 57.1, "top5": 80.2, "crops": 1,
                                       "split": "ILSVRC-2012 val"}
    assert main(["eval", "--weights", "test-caffe", "--data", str(tiny_data), "--device", "cpu"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1] == (f"measured top-1 / top-5 accuracy {100 * r['top1_accuracy']:.2f}% / "
                        f"{100 * r['top5_accuracy']:.2f}% (1-crop); published by test-caffe: 57.10% / 80.20% "
                        "(1-crop, ILSVRC-2012 val)")
    assert main(["features", str(image), "--weights", "test-caffe", "--layer", "fc7", "-o",
                 str(tmp_path / "f.npz"), "--device", "cpu", "--json"]) == 0
    assert main(["export", "--weights", "test-caffe", "-o", str(tmp_path / "w.safetensors")]) == 0
    assert main(["viz", "filters", "--weights", "test-caffe", "-o", str(tmp_path / "f.png")]) == 0
    assert (tmp_path / "f.npz").is_file() and (tmp_path / "w.safetensors").is_file() and (tmp_path / "f.png").is_file()
    capsys.readouterr()
    assert main(["predict", str(image)]) == 1
    assert capsys.readouterr().err.strip() == ("alexnet predict: error: give either a checkpoint or --weights "
                                               "NAME|FILE|URL (exactly one)")
    assert main(["export", "x.pt", "--weights", "test-caffe", "-o", str(tmp_path / "y.onnx")]) == 1


def test_imagenet_folders_match_converted_class_names():
    from types import SimpleNamespace

    from alexnet.evaluate import same_classes

    ck = ["n01440764 tench", "n01443537 goldfish"]
    assert same_classes(SimpleNamespace(classes=["tench, Tinca tinca", "goldfish"],
                                        class_ids=["n01440764", "n01443537"]), ck)
    assert same_classes(SimpleNamespace(classes=ck), ck)
    assert not same_classes(SimpleNamespace(classes=["a", "b"], class_ids=["n01443537", "n01440764"]), ck)
    assert not same_classes(SimpleNamespace(classes=["a", "b"]), ck)


# ---------------------------------------------------------------------------------------------------------------
# train --weights: every layer but the last kept, provenance recorded
# ---------------------------------------------------------------------------------------------------------------

def test_start_from_weights_keeps_all_but_the_last_layer(tmp_path):
    from alexnet.weights import finetune_config, load_start_weights, start_from_weights

    src = _small_paper_checkpoint(tmp_path / "src.pt")
    start = load_start_weights(tmp_path / "src.pt")
    torch.manual_seed(5)
    model = alexnet.model_from_config(finetune_config(start.record.model_config, num_classes=3, input_size=64,
                                                      in_channels=3))
    fresh_fc8 = model.state_dict()["fc8.weight"].clone()
    info = start_from_weights(model, start, ["a", "b", "c"])
    state = model.state_dict()
    assert info["replaced"] == ["fc8.weight", "fc8.bias"] and info["kept"] == len(state) - 2
    assert info["sha256"] == hashlib.sha256((tmp_path / "src.pt").read_bytes()).hexdigest()
    for k, v in state.items():
        if not k.startswith("fc8."):
            assert torch.equal(v, src.state_dict[k]), k
    assert state["fc8.weight"].shape == (3, 64) and torch.equal(state["fc8.weight"], fresh_fc8)
    # the same classes: the last layer is kept as well
    same = alexnet.model_from_config(src.model_config)
    assert start_from_weights(same, start, src.classes)["replaced"] == []
    assert torch.equal(same.state_dict()["fc8.weight"], src.state_dict["fc8.weight"])
    # another layout is refused, naming the tensor
    other = alexnet.model_from_config(finetune_config(start.record.model_config, num_classes=3, input_size=96,
                                                      in_channels=3))
    with pytest.raises(ConfigError, match=r"tensor 'fc6.weight' has shape \(64, 32\) in the weights, \(64, 128\) "
                                          r"in this network \(input 96 px"):
        start_from_weights(other, start, ["a", "b", "c"])


def test_train_from_weights_file_replaces_the_head_and_records_provenance(tmp_path, tiny_data, capsys):
    src = _small_paper_checkpoint(tmp_path / "src.pt")
    out = tmp_path / "run"
    args = ["train", "--weights", str(tmp_path / "src.pt"), "--data", str(tiny_data), "--out", str(out),
            "--epochs", "1", "--steps-per-epoch", "1", "--batch-size", "4", "--val-batches", "1", "--device", "cpu",
            "--lr", "1e-20", "--weight-decay", "0", "--no-progress"]
    assert main(args) == 0
    said = capsys.readouterr().out
    assert f"started from --weights {tmp_path / 'src.pt'} (paper, {tmp_path / 'src.pt'}): kept 14 tensors, new last " \
           "layer for 3 classes: fc8.weight, fc8.bias" in said
    ckpt = load_checkpoint(out / "last.pt")
    assert ckpt.model_config.num_classes == 3 and ckpt.model_config.input_size == 64
    assert ckpt.model_config.channels == (16, 32, 32, 32, 32) and ckpt.model_config.fc_size == 64
    for k, v in ckpt.state_dict.items():   # one step at lr 1e-20 moves nothing measurably
        if not k.startswith("fc8."):
            torch.testing.assert_close(v, src.state_dict[k], rtol=0, atol=1e-12)
    assert ckpt.state_dict["fc8.weight"].shape == (3, 64)
    f = ckpt.started_from
    assert f["spec"] == str(tmp_path / "src.pt") and f["replaced"] == ["fc8.weight", "fc8.bias"]
    assert f["sha256"] == hashlib.sha256((tmp_path / "src.pt").read_bytes()).hexdigest() and f["arch"] == "paper"
    # the run normalises as the weights expect (their mean/std), and the provenance survives a weights-only export
    assert ckpt.preprocessing["mean"] == [120.0, 115.0, 100.0] and ckpt.preprocessing["std"] == [60.0, 60.0, 60.0]
    assert ckpt.train_config["weights"] == str(tmp_path / "src.pt") and ckpt.train_config["arch"] == "paper"
    assert ckpt.weights_only().started_from == f
    exported = alexnet.export_model(out / "last.pt", "safetensors", tmp_path / "ft.safetensors")
    assert load_model(exported).checkpoint.started_from == f
    # resuming must name the same weights
    assert main(["train", "--data", str(tiny_data), "--out", str(out), "--resume", str(out), "--epochs", "2",
                 "--device", "cpu", "--no-progress", "--batch-size", "4", "--arch", "paper"]) == 1
    assert "weights was" in capsys.readouterr().err


def test_train_from_caffe_weights_uses_bgr_and_their_crop(server, torch_home, register, tmp_path, tiny_data, capsys):
    body = _caffemodel_bytes(classes=10)
    register(_entry("test-caffe", server.serve("/t.caffemodel", body), body))
    out = tmp_path / "run"
    assert main(["train", "--weights", "test-caffe", "--data", str(tiny_data), "--out", str(out), "--resize", "240",
                 "--epochs", "1", "--steps-per-epoch", "1", "--batch-size", "2", "--val-batches", "1",
                 "--device", "cpu", "--no-progress", "--no-lighting"]) == 0
    ckpt = load_checkpoint(out / "best.pt")
    assert ckpt.arch == "paper" and ckpt.model_config.input_size == 227 and ckpt.model_config.lrn_convention == "caffe"
    assert ckpt.preprocessing["channel_order"] == "BGR" and ckpt.preprocessing["crop"] == 227
    assert ckpt.preprocessing["mean"] == [104.0, 117.0, 123.0]
    assert ckpt.started_from["source"]["weights"] == "test-caffe" and ckpt.started_from["spec"] == "test-caffe"
    with pytest.raises(ConfigError, match="--arch owt but --weights test-caffe are weights of arch 'paper'"):
        from alexnet.config import TrainConfig
        from alexnet.train import Trainer
        Trainer(TrainConfig(data=str(tiny_data), out=str(tmp_path / "r2"), arch="owt", weights="test-caffe",
                            device="cpu")).setup()


def test_bgr_training_transform_flips_after_normalising(tiny_data):
    """Lighting works on RGB: the transform normalises with the RGB-ordered mean, then reverses the channels."""
    from alexnet.config import TrainConfig
    from alexnet.train_data import ToBGR, prepare_data

    cfg = TrainConfig(data=str(tiny_data), out="unused", flip=False, random_crop=False, lighting=False)
    prep = {"mean": [10.0, 20.0, 30.0], "std": [1.0, 2.0, 4.0], "channel_order": "BGR", "normalize": "paper"}
    data = prepare_data(cfg, prep)
    assert isinstance(data.transform, ToBGR) and data.prep["channel_order"] == "BGR"
    images = torch.randint(0, 256, (2, 3, data.resize, data.resize), dtype=torch.uint8)
    x = data.transform(images, generator=torch.Generator().manual_seed(0))
    o = (data.resize - data.crop) // 2
    rgb = images[:, :, o:o + data.crop, o:o + data.crop].float()
    bgr = rgb.flip(1)
    want = (bgr - torch.tensor([10.0, 20.0, 30.0]).view(1, 3, 1, 1)) / torch.tensor([1.0, 2.0, 4.0]).view(1, 3, 1, 1)
    torch.testing.assert_close(x, want)


def test_train_keeps_the_last_layer_when_the_classes_are_the_weights(tmp_path, tiny_data):
    from alexnet.config import TrainConfig
    from alexnet.data import open_dataset
    from alexnet.train import train

    classes = list(open_dataset(str(tiny_data), "train").classes)
    src = _small_paper_checkpoint(tmp_path / "src.pt", classes=len(classes))
    src.classes = classes
    save_checkpoint(tmp_path / "src.pt", src)
    cfg = TrainConfig(data=str(tiny_data), out=str(tmp_path / "run"), weights=str(tmp_path / "src.pt"), epochs=1,
                      steps_per_epoch=1, batch_size=4, val_every=0, device="cpu", progress=False, lr=1e-20,
                      weight_decay=0.0)
    train(cfg, printer=lambda s: None)
    ckpt = load_checkpoint(tmp_path / "run" / "last.pt")
    assert ckpt.started_from["replaced"] == [] and ckpt.classes == classes
    torch.testing.assert_close(ckpt.state_dict["fc8.weight"], src.state_dict["fc8.weight"], rtol=0, atol=1e-12)


def test_serve_takes_a_registered_name(server, torch_home, register):
    """`alexnet serve --weights NAME`: the page and the API serve the downloaded, converted network and its card
    names where the weights came from."""
    from fastapi.testclient import TestClient

    from alexnet.serve import load_served
    from alexnet.serve.app import create_app

    body = _caffemodel_bytes()
    register(_entry("test-caffe", server.serve("/bvlc_small.caffemodel", body), body))
    served, _ = load_served(None, "test-caffe")
    assert served.source.endswith("bvlc_small.alexnet.safetensors")
    with TestClient(create_app(served)) as client:
        card = client.get("/v1/model").json()
    assert card["architecture"] == "paper" and card["weights"]["weights"] == "test-caffe"
    assert card["accuracy"]["publisher"] == {"top1": 57.1, "top5": 80.2, "crops": 1, "split": "ILSVRC-2012 val"}
