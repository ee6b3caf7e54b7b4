"""The paper's two-device tower parallelism (section 3.2): same function and gradients as the grouped network."""
import pytest
import torch
import torch.nn.functional as F

from alexnet import build_model
from alexnet.checkpoint import load_state_dict_checked
from alexnet.errors import ConfigError
from alexnet.optim import PaperSGD
from alexnet.parallel import EXCHANGES, TowerParallelAlexNet, parse_tower_devices, traffic_per_image

SMALL = dict(num_classes=7, input_size=67, channels=(16, 32, 48, 48, 32), fc_size=64)


def small_grouped(dtype=torch.float64, **switches):
    torch.manual_seed(0)
    model = build_model("paper", **{**SMALL, **switches}).to(dtype)
    with torch.no_grad():   # larger weights than the paper's N(0, 0.01), so that every layer matters numerically
        for p in model.parameters():
            p.normal_(0.0, 0.1)
    return model


def loss_and_grads(model, x, y):
    model.zero_grad(set_to_none=True)
    out = model(x)
    F.cross_entropy(out, y).backward()
    return out.detach()


@pytest.mark.parametrize("mode,dropout,dtype,tol", [("eval", 0.5, torch.float64, 1e-10),
                                                    ("train", 0.0, torch.float64, 1e-10),
                                                    ("train", 0.0, torch.float32, 1e-4)])
def test_same_outputs_and_gradients_as_the_grouped_network(mode, dropout, dtype, tol):
    grouped = small_grouped(dtype, dropout=dropout).train(mode == "train")
    net = TowerParallelAlexNet(grouped, devices=("cpu", "cpu"))
    assert net.training == (mode == "train")
    x = torch.randn(5, 3, 67, 67, dtype=dtype)
    y = torch.randint(0, 7, (5,))
    ref = loss_and_grads(grouped, x, y)
    out = loss_and_grads(net, x, y)
    assert out.shape == (5, 7) and out.dtype == dtype
    torch.testing.assert_close(out, ref, rtol=tol, atol=tol)
    grads = net.grouped_grads()
    assert list(grads) == [n for n, _ in grouped.named_parameters()]
    for name, p in grouped.named_parameters():
        torch.testing.assert_close(grads[name], p.grad, rtol=tol, atol=tol * p.grad.abs().max().item(),
                                   msg=lambda m, name=name: f"{name}: {m}")


def test_one_sgd_step_matches_the_grouped_network():
    grouped = small_grouped(dropout=0.0)
    net = TowerParallelAlexNet(grouped)
    x, y = torch.randn(4, 3, 67, 67, dtype=torch.float64), torch.randint(0, 7, (4,))
    for model in (grouped, net):
        opt = PaperSGD(model.parameters(), lr=0.01)
        for _ in range(2):      # two steps: the velocity (optimizer state) is per tower, and must act the same
            loss_and_grads(model, x, y)
            opt.step()
    after = net.to_grouped_state_dict()
    for name, w in grouped.state_dict().items():
        torch.testing.assert_close(after[name], w, rtol=1e-10, atol=1e-12)


def test_standard_224_network_forward_matches():
    grouped = build_model("paper", init="default").eval()      # the full 60,965,224-parameter network
    net = TowerParallelAlexNet(grouped)
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(net(x), grouped(x), rtol=1e-4, atol=1e-5)
    assert sum(p.numel() for p in net.parameters()) == 60_965_224


@pytest.mark.parametrize("switches", [dict(input_size=227), dict(lrn=False, overlap_pool=False, activation="tanh")])
def test_other_layouts_match(switches):
    """Caffe's 227 layout (conv1 unpadded) and the ablation switches split the same way."""
    grouped = small_grouped(torch.float32, **{**dict(channels=(8, 16, 16, 16, 16), fc_size=16), **switches}).eval()
    net = TowerParallelAlexNet(grouped)
    x = torch.randn(2, 3, grouped.config.input_size, grouped.config.input_size)
    with torch.no_grad():
        torch.testing.assert_close(net(x), grouped(x), rtol=1e-4, atol=1e-5)


def test_weights_convert_both_ways():
    grouped = small_grouped()
    net = TowerParallelAlexNet.from_grouped(grouped, devices=("cpu", "cpu"))
    # the towers' own weights are halves of the grouped ones, cut along the output kernels/units
    assert net.towers[1].conv2.weight.shape == (16, 8, 5, 5)         # grouped: 32 x 8 x 5 x 5
    torch.testing.assert_close(net.towers[1].conv2.weight, grouped.conv2.weight[16:])
    torch.testing.assert_close(net.towers[0].fc8.weight, grouped.fc8.weight[:4])   # 7 classes -> 4 + 3
    sd = net.to_grouped_state_dict()
    assert list(sd) == list(grouped.state_dict())
    for k, v in grouped.state_dict().items():
        assert torch.equal(sd[k], v), k
    assert net.state_dict().keys() == sd.keys()          # checkpoints are in the grouped layout
    back = net.to_grouped()
    assert type(back) is type(grouped) and back.config == grouped.config
    # a grouped checkpoint loads into the towers, and a tower checkpoint into the grouped network
    other = small_grouped()
    with torch.no_grad():
        for p in other.parameters():
            p.add_(1.0)
    load_state_dict_checked(net, other.state_dict())
    torch.testing.assert_close(net.towers[0].conv3.weight, other.conv3.weight[:24])
    fresh = small_grouped()
    load_state_dict_checked(fresh, net.state_dict())
    for k, v in other.state_dict().items():
        assert torch.equal(fresh.state_dict()[k], v), k
    assert "towers.1.fc6.weight" in net.tower_state_dict()


def test_towers_exchange_only_into_conv3_and_the_fc_layers():
    grouped = small_grouped(dtype=torch.float32)
    net = TowerParallelAlexNet(grouped).eval()
    c1, c2, c3, c4, _ = SMALL["channels"]
    for tower in net.towers:                # conv2, conv4, conv5 read only their own tower's maps
        assert tower.conv1.out_channels == c1 // 2
        assert tower.conv2.in_channels == c1 // 2
        assert tower.conv3.in_channels == c2        # both towers
        assert tower.conv4.in_channels == c3 // 2
        assert tower.conv5.in_channels == c4 // 2
        assert tower.fc6.in_features == grouped.fc6.in_features and tower.fc7.in_features == SMALL["fc_size"]
        assert tower.norm1.groups == 1       # LRN over the tower's own maps
    with torch.no_grad():
        net(torch.randn(3, 3, 67, 67))
    assert tuple(k for k in net.last_traffic if k != "logits") == EXCHANGES
    s = grouped.feature_size
    assert net.last_traffic == {"conv3": 3 * c2 * 3 * 3 * 4, "fc6": 3 * 32 * s * s * 4, "fc7": 3 * 64 * 4,
                                "fc8": 3 * 64 * 4, "logits": 3 * 3 * 4}


def test_traffic_of_the_standard_network():
    t = traffic_per_image()
    fp32 = 4
    # each tower sends its half to the other: 128 x 13 x 13 pooled conv2 maps, 128 x 6 x 6 pooled conv5 maps,
    # 2048 fc6 units, 2048 fc7 units
    assert t["exchanges"] == {"conv3": 2 * 128 * 13 * 13 * fp32, "fc6": 2 * 128 * 6 * 6 * fp32,
                              "fc7": 2 * 2048 * fp32, "fc8": 2 * 2048 * fp32}
    assert t["forward"] == 242_688 and t["logits"] == 500 * fp32
    assert t["train_step"] == 2 * (242_688 + 2_000)
    assert traffic_per_image(dtype=torch.bfloat16)["forward"] == 242_688 // 2


def test_towers_live_on_their_devices():
    grouped = build_model("paper", **SMALL)
    net = TowerParallelAlexNet(grouped, devices=("cpu", "meta"))   # meta: a second "device" without memory
    assert net.devices == (torch.device("cpu"), torch.device("meta"))
    assert all(p.device.type == "cpu" for p in net.towers[0].parameters())
    assert all(p.device.type == "meta" for p in net.towers[1].parameters())


def test_user_errors():
    with pytest.raises(ConfigError, match="two-tower"):
        TowerParallelAlexNet(build_model("paper-1tower", **SMALL))
    with pytest.raises(ConfigError, match="caffe"):
        TowerParallelAlexNet(build_model("paper", lrn_convention="caffe", **SMALL))
    with pytest.raises(ConfigError, match="--tower-devices"):
        parse_tower_devices("cuda:0")
    with pytest.raises(ConfigError, match="--tower-devices"):
        parse_tower_devices("auto,auto")
    assert parse_tower_devices("cpu, cpu") == (torch.device("cpu"), torch.device("cpu"))
    if torch.cuda.device_count() < 2:
        with pytest.raises(ConfigError, match="cuda"):
            parse_tower_devices("cuda:0,cuda:1")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_across_devices_on_gpu():
    devices = ("cuda:0", "cuda:1") if torch.cuda.device_count() > 1 else ("cuda:0", "cpu")
    grouped = small_grouped(torch.float32, dropout=0.0)
    net = TowerParallelAlexNet(grouped, devices=devices)
    x, y = torch.randn(4, 3, 67, 67), torch.randint(0, 7, (4,))
    ref = loss_and_grads(grouped, x, y)
    out = loss_and_grads(net, x.to(devices[1]), y.to(devices[0]))
    assert out.device == torch.device(devices[0])
    torch.testing.assert_close(out.cpu(), ref, rtol=1e-3, atol=1e-4)
    grads = net.grouped_grads(device="cpu")
    for name, p in grouped.named_parameters():
        torch.testing.assert_close(grads[name], p.grad, rtol=1e-3, atol=1e-3 * p.grad.abs().max().item())


def test_trainer_with_tower_devices_matches_the_grouped_run(tmp_path, make_synth):
    from alexnet.checkpoint import load_checkpoint
    from alexnet.cli import build_parser
    from alexnet.cli.train import config_from_args
    from alexnet.interop import load_model
    from alexnet.train import train

    data = make_synth(classes=3, train_per_class=4, val_per_class=1, size=72, seed=1)
    flags = ["--data", str(data), "--arch", "paper", "--fc-size", "32", "--init", "kaiming", "--dropout", "0",
             "--resize", "72", "--crop", "64", "--batch-size", "4", "--epochs", "1", "--deterministic",
             "--workers", "0", "--device", "cpu", "--precision", "fp32", "--no-progress"]
    parse = build_parser().parse_args
    cfg = config_from_args(parse(["train", *flags, "--out", str(tmp_path / "t"), "--tower-devices", "cpu,cpu"]))
    assert cfg.tower_devices == "cpu,cpu"
    quiet = lambda s: None  # noqa: E731
    train(cfg, printer=quiet)
    train(config_from_args(parse(["train", *flags, "--out", str(tmp_path / "g")])), printer=quiet)
    towers, grouped = load_checkpoint(tmp_path / "t" / "last.pt"), load_checkpoint(tmp_path / "g" / "last.pt")
    assert towers.step == grouped.step == 3
    for k, w in grouped.state_dict.items():     # the checkpoint is in the grouped layout
        torch.testing.assert_close(towers.state_dict[k], w, rtol=1e-4, atol=1e-5 * w.abs().max().item())
    model, _ = load_model(tmp_path / "t")
    assert type(model).__name__ == "PaperAlexNet"
    with pytest.raises(ConfigError, match="tower-devices"):   # the optimizer state has the towers' layout
        train(config_from_args(parse(["train", *flags, "--out", str(tmp_path / "t"), "--epochs", "2"])),
              resume=tmp_path / "t", printer=quiet)
