import math

import pytest
import torch

from alexnet.errors import ConfigError
from alexnet.optim import LRSchedule, PaperSGD, make_optimizer


def test_paper_update_matches_hand_computation():
    """Section 5: v <- 0.9 v - 0.0005 eps w - eps g ; w <- w + v, with an lr change in the middle."""
    w0 = torch.tensor([1.0, -2.0], dtype=torch.float64)
    p = torch.nn.Parameter(w0.clone())
    opt = PaperSGD([p], lr=0.1, momentum=0.9, weight_decay=0.0005)
    grads = [torch.tensor([0.5, 1.0]), torch.tensor([-1.0, 0.25]), torch.tensor([2.0, -0.5])]
    lrs = [0.1, 0.1, 0.01]
    w = [1.0, -2.0]
    v = [0.0, 0.0]
    for g, lr in zip(grads, lrs):
        for group in opt.param_groups:
            group["lr"] = lr
        p.grad = g.double()
        opt.step()
        for i in range(2):
            v[i] = 0.9 * v[i] - 0.0005 * lr * w[i] - lr * float(g[i])
            w[i] = w[i] + v[i]
        assert p.detach().tolist() == pytest.approx(w, rel=1e-12, abs=1e-15)


def test_paper_update_differs_from_torch_sgd_only_after_lr_change():
    torch.manual_seed(0)
    a = torch.nn.Parameter(torch.randn(5, dtype=torch.float64))
    b = torch.nn.Parameter(a.detach().clone())
    pa = PaperSGD([a], lr=0.1)
    pb = torch.optim.SGD([b], lr=0.1, momentum=0.9, weight_decay=0.0005)
    grads = [torch.randn(5, dtype=torch.float64) for _ in range(4)]
    for g in grads[:2]:
        a.grad, b.grad = g.clone(), g.clone()
        pa.step(), pb.step()
    torch.testing.assert_close(a, b)   # constant lr: identical
    for opt in (pa, pb):
        opt.param_groups[0]["lr"] = 0.01
    a.grad, b.grad = grads[2].clone(), grads[2].clone()
    pa.step(), pb.step()
    assert not torch.allclose(a, b)    # the velocity keeps the old lr only in PaperSGD


def test_adamw_is_decoupled_adam_with_the_momentum_as_beta1():
    # Hand-written first step of AdamW (Loshchilov & Hutter, Algorithm 2): the bias-corrected moments are g and g^2,
    # so the step is lr * g / (|g| + eps), after the decoupled decay p * (1 - lr * wd).
    p = torch.nn.Parameter(torch.tensor([1.0, -2.0, 0.5]))
    g = torch.tensor([0.3, -0.01, 0.0])
    opt = make_optimizer([p], "adamw", lr=0.1, momentum=0.8, weight_decay=0.05)
    assert isinstance(opt, torch.optim.AdamW) and opt.param_groups[0]["betas"] == (0.8, 0.999)
    before = p.detach().clone()
    p.grad = g.clone()
    opt.step()
    expect = before * (1 - 0.1 * 0.05) - 0.1 * g / (g.abs() + 1e-8)
    torch.testing.assert_close(p.detach(), expect)


def test_make_optimizer_rejects_unknown():
    with pytest.raises(ConfigError, match="optimizer"):
        make_optimizer([torch.nn.Parameter(torch.zeros(1))], "adam", lr=0.1, momentum=0.9, weight_decay=0)


def _opt():
    return PaperSGD([torch.nn.Parameter(torch.zeros(1))], lr=0.01)


def test_plateau_divides_by_ten_at_most_three_times():
    s = LRSchedule(_opt(), "plateau", base_lr=0.01, epochs=100, patience=2, max_reductions=3)
    errors = [0.9, 0.8, 0.8, 0.8] + [0.8] * 20
    lrs = []
    for e, err in enumerate(errors):
        s.epoch_end(e, err)
        lrs.append(s.lr)
    assert lrs[1] == 0.01 and lrs[2] == 0.01   # one bad epoch: not yet
    assert lrs[3] == pytest.approx(0.001)      # two bad epochs: /10
    assert min(lrs) == pytest.approx(1e-5) and s.reductions == 3
    assert s.optimizer.param_groups[0]["lr"] == pytest.approx(1e-5)


def test_schedule_state_roundtrip_and_others():
    s = LRSchedule(_opt(), "plateau", base_lr=0.01, epochs=10, patience=1)
    s.epoch_end(0, 0.5), s.epoch_end(1, 0.6)
    t = LRSchedule(_opt(), "plateau", base_lr=0.01, epochs=10, patience=1)
    t.load_state_dict(s.state_dict())
    assert t.lr == s.lr == pytest.approx(0.001) and t.optimizer.param_groups[0]["lr"] == pytest.approx(0.001)
    step = LRSchedule(_opt(), "step", base_lr=0.01, epochs=90, step_size=30)
    for e in range(30):
        step.epoch_end(e, None)
    assert step.lr == pytest.approx(0.001)
    cos = LRSchedule(_opt(), "cosine", base_lr=0.01, epochs=4)
    cos.epoch_end(1, None)
    assert cos.lr == pytest.approx(0.5 * 0.01 * (1 + math.cos(math.pi * 2 / 4)))
    with pytest.raises(ConfigError):
        LRSchedule(_opt(), "linear", base_lr=0.01, epochs=1)
