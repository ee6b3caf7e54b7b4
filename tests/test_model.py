import pytest
import torch
from torch import nn

from alexnet import build_model, count_parameters, describe
from alexnet.choices import ARCHS
from alexnet.errors import ConfigError
from alexnet.layers import LocalResponseNorm
from alexnet.model import ARCH_REGISTRY, list_archs, make_config, model_from_config


def conv_params(out_c, in_c_per_group, k):
    return out_c * in_c_per_group * k * k + out_c


def fc_params(i, o):
    return i * o + o


# Hand-computed from the paper's layer table (section 3.5), independent of the model code.
PAPER_2TOWER = (conv_params(96, 3, 11) + conv_params(256, 48, 5) + conv_params(384, 256, 3)
                + conv_params(384, 192, 3) + conv_params(256, 192, 3)
                + fc_params(6 * 6 * 256, 4096) + fc_params(4096, 4096) + fc_params(4096, 1000))


def test_hand_counts_are_the_papers_numbers():
    assert PAPER_2TOWER == 60_965_224


# Every registered architecture's parameter count at its defaults (init="default"): adding an architecture adds
# its figure here, and the tests parametrized over the registry below then cover it.
EXPECTED_PARAMETERS = {
    "paper": 60_965_224,
    "paper-1tower": 62_378_344,
    "owt": 61_100_840,
    # cuda-convnet layers-18pct: 3->32 5x5, 32->32 5x5, 32->64 5x5, 64*4*4 -> 10
    "cifar": (3 * 25 * 32 + 32) + (32 * 25 * 32 + 32) + (32 * 25 * 64 + 64) + (64 * 16 * 10 + 10),
}


def test_registry_names_are_the_choices():
    assert list_archs() == ARCHS == tuple(ARCH_REGISTRY)
    assert set(EXPECTED_PARAMETERS) == set(list_archs())


@pytest.fixture(scope="module", params=list_archs())
def registered(request):
    """(arch, network at the architecture's defaults); built once per architecture."""
    torch.manual_seed(0)
    return request.param, build_model(request.param, init="default")


def test_parameter_counts(registered):
    arch, model = registered
    assert count_parameters(model) == EXPECTED_PARAMETERS[arch]


def test_every_arch_builds_with_its_defaults_and_forward_shape(registered):
    arch, model = registered
    cfg = model.config
    assert cfg == make_config(arch, init="default") and cfg.arch == arch
    for key, value in ARCH_REGISTRY[arch].defaults.items():
        assert getattr(cfg, key) == value, (arch, key)
    model.eval()
    with torch.no_grad():
        out = model(torch.randn(2, cfg.in_channels, cfg.input_size, cfg.input_size))
    assert out.shape == (2, cfg.num_classes) and torch.isfinite(out).all()


def test_every_arch_state_dict_round_trips(registered):
    arch, model = registered
    torch.manual_seed(1)
    other = model_from_config(model.config)
    assert type(other) is type(model) and list(other.state_dict()) == list(model.state_dict())
    other.load_state_dict(model.state_dict(), strict=True)
    for key, value in model.state_dict().items():
        assert torch.equal(other.state_dict()[key], value), (arch, key)


def test_every_arch_describes_its_layers(registered):
    arch, model = registered
    rows = describe(model)
    assert [r["layer"] for r in rows] == list(model.layer_names)
    assert rows[-1]["output"] == (model.config.num_classes,)
    assert sum(r["parameters"] for r in rows) == count_parameters(model)


@pytest.mark.parametrize("input_size", [224, 227])
def test_paper_shapes_follow_figure_2(input_size):
    m = build_model("paper", input_size=input_size, init="default")
    shapes = {r["layer"]: r["output"] for r in describe(m)}
    assert shapes["conv1"] == (96, 55, 55)
    assert shapes["conv2"] == (256, 27, 27)
    assert shapes["conv3"] == (384, 13, 13)
    assert shapes["conv4"] == (384, 13, 13)
    assert shapes["conv5"] == (256, 13, 13)
    assert m.fc6.in_features == 256 * 6 * 6
    assert shapes["fc8"] == (1000,)
    assert m.conv1.padding == ((2, 2) if input_size == 224 else (0, 0))


@pytest.mark.parametrize("arch,size,classes", [("paper", 224, 1000), ("paper-1tower", 128, 10),
                                               ("owt", 224, 7), ("cifar", 32, 10)])
def test_forward_output_shape(arch, size, classes):
    m = build_model(arch, num_classes=classes, input_size=size, fc_size=256 if arch != "owt" else None)
    m.eval()
    with torch.no_grad():
        out = m(torch.randn(2, 3, size, size))
    assert out.shape == (2, classes)
    assert torch.isfinite(out).all()


def test_cifar_default_classes_and_grayscale():
    assert build_model("cifar").fc10.out_features == 10
    m = build_model("cifar", in_channels=1, input_size=28)
    assert m(torch.randn(2, 1, 28, 28)).shape == (2, 10)


def test_scaled_paper_network_sizes_fc6_from_input():
    m = build_model("paper", input_size=128, num_classes=10, fc_size=512)
    assert m.feature_size == 3 and m.fc6.in_features == 256 * 3 * 3
    with pytest.raises(ConfigError, match="input_size"):
        build_model("paper", input_size=32)


def test_literature_layer_names():
    for arch in ("paper", "paper-1tower", "owt"):
        modules = dict(build_model(arch, init="default").named_modules())
        for name in ("conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7", "fc8"):
            assert name in modules, (arch, name)
        assert isinstance(modules["conv3"], nn.Conv2d) and isinstance(modules["fc6"], nn.Linear)
    owt = build_model("owt")
    assert dict(owt.named_modules())["conv3"] is owt.features[6]


def test_owt_state_dict_matches_torchvision():
    import torchvision

    tv = torchvision.models.alexnet(weights=None, num_classes=1000)
    ours = build_model("owt")
    tv_sd, our_sd = tv.state_dict(), ours.state_dict()
    assert list(tv_sd) == list(our_sd)
    assert all(tv_sd[k].shape == our_sd[k].shape for k in tv_sd)
    ours.load_state_dict(tv_sd, strict=True)
    ours.eval(), tv.eval()
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), tv(x))


def test_towers_are_separated():
    """A gradient from tower A's conv5 output never reaches tower B's conv4 (or conv2) weights."""
    torch.manual_seed(0)
    m = build_model("paper", input_size=96, num_classes=10, fc_size=64, init="kaiming")
    feats = {}
    m.conv5.register_forward_hook(lambda mod, i, o: feats.__setitem__("conv5", o))
    m(torch.randn(2, 3, 96, 96))
    feats["conv5"][:, :128].sum().backward()   # tower A = first 128 of conv5's 256 maps
    g4 = m.conv4.weight.grad                   # 384 kernels: tower A = 0..191, tower B = 192..383
    assert g4[:192].abs().sum() > 0
    assert torch.all(g4[192:] == 0)
    g5 = m.conv5.weight.grad
    assert g5[:128].abs().sum() > 0 and torch.all(g5[128:] == 0)
    # conv3 sees both towers: its tower-A kernels get gradient through maps of both towers
    g3 = m.conv3.weight.grad
    assert g3[:192, :128].abs().sum() > 0 and g3[:192, 128:].abs().sum() > 0


def test_one_tower_mixes_everything():
    torch.manual_seed(0)
    m = build_model("paper-1tower", input_size=96, num_classes=10, fc_size=64, init="kaiming")
    out = {}
    m.conv5.register_forward_hook(lambda mod, i, o: out.__setitem__("conv5", o))
    m(torch.randn(2, 3, 96, 96))
    out["conv5"][:, :128].sum().backward()
    assert m.conv4.weight.grad[192:].abs().sum() > 0


def test_switches_change_the_graph():
    base = build_model("paper", init="default")
    assert isinstance(base.norm1, LocalResponseNorm) and isinstance(base.norm2, LocalResponseNorm)
    assert base.norm1.groups == 2 and base.norm1.convention == "paper" and base.norm1.k == 2.0
    assert base.conv2.groups == base.conv4.groups == base.conv5.groups == 2
    assert base.conv3.groups == 1 and base.conv1.groups == 1
    assert isinstance(base.relu1, nn.ReLU)
    assert base.pool1.kernel_size == 3 and base.pool1.stride == 2
    assert base.drop6.p == 0.5 and base.drop7.p == 0.5

    m = build_model("paper", lrn=False, init="default")
    assert isinstance(m.norm1, nn.Identity) and isinstance(m.norm2, nn.Identity)
    m = build_model("paper", activation="tanh", init="default")
    assert all(isinstance(getattr(m, f"relu{i}"), nn.Tanh) for i in range(1, 8))
    m = build_model("paper", overlap_pool=False, init="default")
    assert all(getattr(m, p).kernel_size == 2 and getattr(m, p).stride == 2 for p in ("pool1", "pool2", "pool5"))
    assert describe(m)[0]["output"] == (96, 55, 55) and m.fc6.in_features == 9216
    m = build_model("paper", dropout=0.0, init="default")
    assert m.drop6.p == 0.0
    m = build_model("paper", towers=1, init="default")
    assert m.conv2.groups == m.conv4.groups == m.conv5.groups == 1 and m.norm1.groups == 1
    m = build_model("paper", lrn_convention="caffe", lrn_k=1.0, init="default")
    assert m.norm1.convention == "caffe" and m.norm1.groups == 1 and m.norm1.k == 1.0
    m = build_model("paper", channels=(48, 128, 192, 192, 256), towers=1, init="default")
    assert m.conv1.out_channels == 48 and m.conv5.out_channels == 256


def test_dropout_is_on_fc_outputs_in_paper_and_inputs_in_owt():
    m = build_model("paper", init="default")
    order = [n for n, _ in m.named_children()]
    assert order.index("drop6") == order.index("relu6") + 1 and order.index("fc7") == order.index("drop6") + 1
    owt = build_model("owt")
    assert isinstance(owt.classifier[0], nn.Dropout) and isinstance(owt.classifier[1], nn.Linear)


@pytest.mark.parametrize("kwargs,match", [
    (dict(arch="alexnet2"), "unknown architecture"),
    (dict(arch="paper", activation="sigmoid"), "activation"),
    (dict(arch="paper", dropout=1.5), "dropout"),
    (dict(arch="paper", towers=3), "towers"),
    (dict(arch="owt", lrn=True), "no LRN"),
    (dict(arch="paper", colour=True), "unknown model switch"),
    (dict(arch="paper", channels=(95, 256, 384, 384, 256)), "divisible"),
])
def test_bad_switches_raise_clear_errors(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        build_model(**kwargs)


def test_model_help_states_true_defaults(capsys):
    from alexnet.cli import main

    with pytest.raises(SystemExit):
        main(["model", "--help"])
    out = capsys.readouterr().out
    assert "(default: None)" not in out and "(default: True)" not in out


def test_registry_rejects_names_outside_the_choices_and_twice():
    from alexnet.model import register_arch

    with pytest.raises(RuntimeError, match="choices.ARCHS"):
        register_arch("alexnet2")
    with pytest.raises(RuntimeError, match="twice"):
        register_arch("paper")
    with pytest.raises(ConfigError, match="unknown architecture"):
        model_from_config(make_config("paper").__class__(arch="nope"))


def test_init_schemes_are_the_choices():
    from alexnet.choices import INITS
    from alexnet.init import INIT_SCHEMES

    assert tuple(INIT_SCHEMES) == INITS


def _rnorm_by_hand(a, size=3, scale=5e-5, power=0.75, k=1.0):
    """cuda-convnet's rnorm written out: a / (k + scale/size^2 * sum of a^2 over the size x size window)^power,
    zero outside the map."""
    n, c, h, w = a.shape
    out = torch.empty_like(a)
    r = size // 2
    for i in range(h):
        for j in range(w):
            win = a[:, :, max(0, i - r):i + r + 1, max(0, j - r):j + r + 1]
            s = win.pow(2).sum(dim=(2, 3))
            out[:, :, i, j] = a[:, :, i, j] / (k + scale / size ** 2 * s) ** power
    return out


def test_cifar_blocks_pool_then_normalise_as_the_cfg():
    """Krizhevsky's layers-18pct.cfg, layer by layer: conv1 -> relu -> pool1 (max 3/2) -> rnorm1 -> conv2 -> relu ->
    pool2 (avg 3/2) -> rnorm2 ([rnorm2] inputs=pool2) -> conv3 -> relu -> pool3 (avg 3/2) -> fc10. The reference
    below is built from that list with the network's own weights; Caffe's cifar10_full has the same order."""
    import torch.nn.functional as F

    torch.manual_seed(0)
    m = build_model("cifar", init="kaiming").double().eval()
    x = torch.randn(2, 3, 32, 32, dtype=torch.float64) * 40
    a = F.relu(F.conv2d(x, m.conv1.weight, m.conv1.bias, padding=2))
    a = _rnorm_by_hand(F.max_pool2d(a, 3, 2, ceil_mode=True))
    a = F.relu(F.conv2d(a, m.conv2.weight, m.conv2.bias, padding=2))
    a = _rnorm_by_hand(F.avg_pool2d(a, 3, 2, ceil_mode=True))
    a = F.relu(F.conv2d(a, m.conv3.weight, m.conv3.bias, padding=2))
    a = F.avg_pool2d(a, 3, 2, ceil_mode=True)
    want = F.linear(a.flatten(1), m.fc10.weight, m.fc10.bias)
    torch.testing.assert_close(m(x), want, rtol=1e-5, atol=1e-5)   # rnorm computes in float32
    order = [name for name, _ in m.named_children()]
    assert order.index("pool2") < order.index("norm2")
