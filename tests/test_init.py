import pytest
import torch

from alexnet import build_model, initialize
from alexnet.errors import ConfigError

BIAS_ONE = ("conv2", "conv4", "conv5", "fc6", "fc7")


@pytest.fixture(scope="module")
def paper():
    torch.manual_seed(0)
    return build_model("paper")


def test_paper_init_statistics(paper):
    for name in paper.layer_names:
        layer = paper.layer(name)
        w = layer.weight.detach()
        assert abs(w.mean().item()) < 2e-3, name
        assert w.std().item() == pytest.approx(0.01, rel=0.05 if w.numel() > 1e5 else 0.15), name
        expected_bias = 1.0 if name in BIAS_ONE else 0.0
        assert torch.all(layer.bias == expected_bias), name


def test_caffe_init():
    torch.manual_seed(0)
    m = build_model("paper", init="caffe", num_classes=10, input_size=96, fc_size=512)
    assert m.fc6.weight.std().item() == pytest.approx(0.005, rel=0.05)
    assert m.conv1.weight.std().item() == pytest.approx(0.01, rel=0.1)
    assert torch.all(m.conv2.bias == 0.1) and torch.all(m.conv3.bias == 0)


def test_kaiming_init():
    torch.manual_seed(0)
    m = build_model("paper", init="kaiming")
    fan_in = 3 * 11 * 11
    assert m.conv1.weight.std().item() == pytest.approx((2 / fan_in) ** 0.5, rel=0.05)
    fan_in = 48 * 5 * 5  # grouped: each kernel sees its tower's 48 maps
    assert m.conv2.weight.std().item() == pytest.approx((2 / fan_in) ** 0.5, rel=0.05)
    assert m.fc8.weight.std().item() == pytest.approx(0.01, rel=0.05)
    assert all(torch.all(m.layer(n).bias == 0) for n in m.layer_names)


def test_unknown_init():
    with pytest.raises(ConfigError, match="init"):
        initialize(build_model("cifar"), "xavier")
