import math

import pytest
import torch

from alexnet import LocalResponseNorm, lrn_reference
from alexnet.errors import ConfigError
from alexnet.layers import SpatialResponseNorm, lrn_window_matrix


def loop_lrn(a, n=5, alpha=1e-4, beta=0.75, k=2.0, divide_by_n=False):
    """The paper's formula written element by element (independent of lrn_reference)."""
    N, C, H, W = a.shape
    out = torch.empty_like(a)
    for b in range(N):
        for i in range(C):
            lo, hi = max(0, i - n // 2), min(C - 1, i + n // 2)
            for y in range(H):
                for x in range(W):
                    s = sum(float(a[b, j, y, x]) ** 2 for j in range(lo, hi + 1))
                    scale = alpha / n if divide_by_n else alpha
                    out[b, i, y, x] = a[b, i, y, x] / (k + scale * s) ** beta
    return out


def test_lrn_matches_hand_loop_paper_convention():
    torch.manual_seed(0)
    a = torch.randn(2, 7, 3, 2, dtype=torch.float64) * 30
    out = LocalResponseNorm()(a)
    torch.testing.assert_close(out, loop_lrn(a), rtol=1e-6, atol=1e-9)
    torch.testing.assert_close(lrn_reference(a), loop_lrn(a))


def test_lrn_single_value_by_hand():
    a = torch.zeros(1, 5, 1, 1, dtype=torch.float64)
    a[0, :, 0, 0] = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0]) * 10
    out = LocalResponseNorm()(a)
    # channel 0: window {0,1,2}: 100+400+900 = 1400 -> 10 / (2 + 1e-4*1400)^0.75
    assert out[0, 0, 0, 0].item() == pytest.approx(10 / (2 + 0.14) ** 0.75, rel=1e-12)
    # channel 2: window {0..4}: sum = 100*(1+4+9+16+25) = 5500
    assert out[0, 2, 0, 0].item() == pytest.approx(30 / (2 + 0.55) ** 0.75, rel=1e-12)


def test_caffe_convention_equals_torch_lrn():
    torch.manual_seed(1)
    a = torch.randn(2, 16, 5, 5) * 10
    ours = LocalResponseNorm(5, 1e-4, 0.75, 1.0, convention="caffe")(a)
    ref = torch.nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=1.0)(a)
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-6)
    # and the paper's layer equals torch's with alpha multiplied by n
    paper = LocalResponseNorm()(a)
    torch.testing.assert_close(paper, torch.nn.LocalResponseNorm(5, alpha=5e-4, beta=0.75, k=2.0)(a),
                               rtol=1e-5, atol=1e-6)


def test_lrn_gradcheck_float64():
    torch.manual_seed(2)
    a = (torch.randn(2, 9, 3, 3, dtype=torch.float64) * 20).requires_grad_()
    lrn = LocalResponseNorm(alpha=1e-3)  # a larger alpha makes the cross terms matter
    assert torch.autograd.gradcheck(lrn, (a,), eps=1e-6, atol=1e-6)
    lrn2 = LocalResponseNorm(alpha=1e-3, groups=3)
    assert torch.autograd.gradcheck(lrn2, (a,), eps=1e-6, atol=1e-6)


def test_lrn_gradient_matches_reference_autograd():
    torch.manual_seed(3)
    a = (torch.randn(3, 12, 4, 4, dtype=torch.float64) * 20).requires_grad_()
    g = torch.randn(3, 12, 4, 4, dtype=torch.float64)
    (LocalResponseNorm(groups=2)(a) * g).sum().backward()
    fast = a.grad.clone()
    a.grad = None
    (lrn_reference(a, groups=2) * g).sum().backward()
    torch.testing.assert_close(fast, a.grad)


def test_lrn_groups_clip_at_tower_boundary():
    a = torch.zeros(1, 8, 1, 1)
    a[0, 3] = 100.0  # last channel of tower 0
    out = LocalResponseNorm(groups=2)(a)
    b = torch.zeros(1, 8, 1, 1)
    b[0, 4] = 1.0    # first channel of tower 1 must not see channel 3
    out_b = LocalResponseNorm(groups=2)(a + b)
    assert out_b[0, 4].item() == pytest.approx(1.0 / (2 + 1e-4) ** 0.75, rel=1e-6)
    assert out[0, 3].item() == pytest.approx(100 / (2 + 1e-4 * 1e4) ** 0.75, rel=1e-6)


def test_window_matrix():
    m = lrn_window_matrix(6, 5, groups=2)
    expected = torch.tensor([[1, 1, 1, 0, 0, 0], [1, 1, 1, 0, 0, 0], [1, 1, 1, 0, 0, 0],
                             [0, 0, 0, 1, 1, 1], [0, 0, 0, 1, 1, 1], [0, 0, 0, 1, 1, 1]], dtype=torch.float32)
    torch.testing.assert_close(m, expected)
    with pytest.raises(ConfigError):
        lrn_window_matrix(7, 5, groups=2)


def test_lrn_channels_last_and_bf16():
    torch.manual_seed(4)
    a = torch.randn(2, 16, 6, 6) * 10
    ref = LocalResponseNorm()(a)
    out_cl = LocalResponseNorm()(a.to(memory_format=torch.channels_last))
    torch.testing.assert_close(out_cl, ref)
    out_bf = LocalResponseNorm()(a.bfloat16())
    assert out_bf.dtype == torch.bfloat16
    torch.testing.assert_close(out_bf.float(), ref, rtol=2e-2, atol=2e-2)


def test_lrn_rejects_bad_convention():
    with pytest.raises(ConfigError, match="convention"):
        LocalResponseNorm(convention="torch")


def test_spatial_response_norm_formula():
    a = torch.zeros(1, 1, 3, 3)
    a[0, 0, 1, 1] = 100.0
    a[0, 0, 0, 0] = 10.0
    out = SpatialResponseNorm(size=3, alpha=5e-5, beta=0.75, k=1.0)(a)
    centre = 100 / (1 + 5e-5 * (10000 + 100) / 9) ** 0.75
    assert out[0, 0, 1, 1].item() == pytest.approx(centre, rel=1e-5)
    assert math.isclose(out[0, 0, 2, 2].item(), 0.0)


def test_functional_path_equals_autograd_function():
    from alexnet.layers import lrn_functional, lrn_window_matrix

    torch.manual_seed(5)
    a = (torch.randn(2, 12, 4, 4, dtype=torch.float64) * 20).requires_grad_()
    fast = LocalResponseNorm(groups=2)(a)
    plain = lrn_functional(a, lrn_window_matrix(12, 5, 2, dtype=torch.float64), 1e-4, 0.75, 2.0)
    torch.testing.assert_close(fast, plain)
    traced = torch.jit.trace(LocalResponseNorm(groups=2), torch.randn(1, 12, 3, 3))
    x = torch.randn(2, 12, 5, 5) * 10
    torch.testing.assert_close(traced(x), LocalResponseNorm(groups=2)(x))


def _lrn_and_grad(lrn, a, g):
    a = a.detach().clone().requires_grad_()
    out = lrn(a)
    out.backward(g)
    return out.detach(), a.grad


@pytest.mark.parametrize("size,groups,convention", [(5, 2, "paper"), (4, 2, "paper"), (3, 3, "caffe"), (6, 1, "paper")])
@pytest.mark.parametrize("shape,layout", [((3, 12, 5, 6), "contiguous"),           # small: shifted-slice window
                                          ((2, 24, 26, 27), "contiguous"),         # GEMM window, NCHW
                                          ((2, 24, 26, 27), "channels_last")])     # GEMM window, NHWC
def test_eager_lrn_forward_and_gradient_match_reference(size, groups, convention, shape, layout):
    """fp32 eager path against the float64 loop formula (forward and gradient); even sizes have an asymmetric window,
    so the backward must apply its transpose."""
    from alexnet.layers import set_lrn_backend

    torch.manual_seed(6)
    a = (torch.randn(*shape) * 30).relu()
    g = torch.randn(*shape)
    if layout == "channels_last":
        a, g = a.to(memory_format=torch.channels_last), g.to(memory_format=torch.channels_last)
    prev = set_lrn_backend("eager")
    try:
        out, grad = _lrn_and_grad(LocalResponseNorm(size, 1e-3, 0.75, 2.0, convention, groups), a, g)
    finally:
        set_lrn_backend(prev)
    ref_out, ref_grad = _lrn_and_grad(lambda t: lrn_reference(t, size, 1e-3, 0.75, 2.0, groups, convention),
                                      a.double(), g.double())
    torch.testing.assert_close(out.double(), ref_out, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(grad.double(), ref_grad, rtol=1e-5, atol=1e-6)


def test_lrn_gradcheck_even_size_and_other_beta():
    torch.manual_seed(7)
    a = (torch.randn(2, 8, 3, 3, dtype=torch.float64) * 20).requires_grad_()
    assert torch.autograd.gradcheck(LocalResponseNorm(size=4, alpha=1e-3, groups=2), (a,), eps=1e-6, atol=1e-6)
    assert torch.autograd.gradcheck(LocalResponseNorm(size=3, alpha=1e-3, beta=0.6), (a,), eps=1e-6, atol=1e-6)


def test_lrn_channels_last_gradient_equals_contiguous():
    torch.manual_seed(8)
    a = (torch.randn(2, 16, 6, 6) * 20).relu()
    g = torch.randn(2, 16, 6, 6)
    out, grad = _lrn_and_grad(LocalResponseNorm(groups=2), a, g)
    out_cl, grad_cl = _lrn_and_grad(LocalResponseNorm(groups=2), a.to(memory_format=torch.channels_last),
                                    g.to(memory_format=torch.channels_last))
    torch.testing.assert_close(out_cl, out)
    torch.testing.assert_close(grad_cl, grad)


def test_lrn_shifted_form_equals_functional_form():
    from alexnet.layers import lrn_functional, lrn_shifted

    torch.manual_seed(9)
    a = torch.randn(2, 12, 4, 4, dtype=torch.float64) * 20
    for size, groups in ((5, 2), (4, 3), (1, 1)):
        plain = lrn_functional(a, lrn_window_matrix(12, size, groups, dtype=torch.float64), 1e-3, 0.75, 2.0)
        torch.testing.assert_close(lrn_shifted(a, size, 1e-3, 0.75, 2.0, groups), plain)


def test_lrn_backend_switch_and_auto_stays_eager_for_small_maps():
    from alexnet import layers

    with pytest.raises(ConfigError, match="backend"):
        layers.set_lrn_backend("fast")
    assert layers.get_lrn_backend() in layers.LRN_BACKENDS
    prev = layers.set_lrn_backend("auto")
    try:
        before = layers.compiled_shapes()
        LocalResponseNorm(groups=2)(torch.randn(2, 8, 3, 3))          # far below COMPILE_MIN_NUMEL
        assert layers.compiled_shapes() == before
    finally:
        layers.set_lrn_backend(prev)


@pytest.mark.slow
def test_auto_compiles_smaller_maps_in_training_than_in_inference(monkeypatch):
    """A training step (input requiring grad) compiles from COMPILE_MIN_NUMEL elements, an inference call only from
    COMPILE_MIN_NUMEL_INFERENCE: the same map, between the two, is compiled in the one and not the other."""
    from alexnet import layers
    from alexnet.layers import kernels

    monkeypatch.setattr(kernels, "COMPILE_MIN_NUMEL", 500)
    monkeypatch.setattr(kernels, "COMPILE_MIN_NUMEL_INFERENCE", 5000)
    a = (torch.randn(3, 12, 5, 6) * 30).relu()                     # 1,080 elements: between the two
    norm = LocalResponseNorm(groups=2)
    prev = layers.set_lrn_backend("auto")
    try:
        before = layers.compiled_shapes()
        with torch.no_grad():
            norm(a)
        assert layers.compiled_shapes() == before
        norm(a.requires_grad_()).sum().backward()
        if layers.compile_failure() is not None:
            pytest.skip(f"torch.compile unavailable here: {layers.compile_failure()}")
        assert len(layers.compiled_shapes() - before) == 1
    finally:
        layers.set_lrn_backend(prev)


@pytest.mark.parametrize("before,after,groups", [(2, 2, 2), (1, 2, 1), (2, 1, 3), (0, 3, 2)])
def test_padded_window_sum_equals_shifted_sum_bit_for_bit(before, after, groups):
    import torch.nn.functional as F

    from alexnet.layers.formula import from_towers, padded_window_sum, shifted_sum, to_towers

    torch.manual_seed(14)
    t = torch.randn(3, 12, 4, 5).to(memory_format=torch.channels_last)
    towers = to_towers(t, groups)
    assert towers.shape == (3 * 4 * 5, groups, 12 // groups) and towers.data_ptr() == t.data_ptr()   # a view
    out = from_towers(padded_window_sum(F.pad(towers, (before, after)), before, after), t.shape)
    assert torch.equal(out, shifted_sum(t, groups, before, after))
    assert out.is_contiguous(memory_format=torch.channels_last)


@pytest.mark.slow
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])   # channels_last: the padded-tower kernels
def test_compiled_lrn_matches_reference(layout):
    """The inductor-fused backend (forward and both backward kernels) against the float64 formula; one small
    shape with an even window (asymmetric) and two towers.  Skipped where torch.compile cannot run."""
    from alexnet import layers
    from alexnet.layers.formula import channels_last_map

    torch.manual_seed(10)
    a = (torch.randn(2, 12, 5, 6) * 30).relu()
    g = torch.randn(2, 12, 5, 6)
    gp = torch.randn(2, 12, 2, 2)
    if layout == "channels_last":
        a, g, gp = (t.to(memory_format=torch.channels_last) for t in (a, g, gp))
        assert channels_last_map(a)
    norm, pool = LocalResponseNorm(4, 1e-3, 0.75, 2.0, "paper", 2), torch.nn.MaxPool2d(3, 2)
    prev = layers.set_lrn_backend("compiled")
    try:
        out, grad = _lrn_and_grad(norm, a, g)
        # the fused LRN + max-pool with the same kernels (its backward writes into the pool's gradient buffer)
        fused, fused_grad = _lrn_and_grad(lambda t: layers.lrn_max_pool2d(t, norm, pool), a, gp)
    except Exception as e:  # noqa: BLE001 - no C++ compiler etc.
        pytest.skip(f"torch.compile unavailable here: {type(e).__name__}: {e}")
    finally:
        layers.set_lrn_backend(prev)
    ref_out, ref_grad = _lrn_and_grad(lambda t: lrn_reference(t, 4, 1e-3, 0.75, 2.0, 2), a.double(), g.double())
    torch.testing.assert_close(out.double(), ref_out, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(grad.double(), ref_grad, rtol=1e-5, atol=1e-6)
    ref_fused, ref_fused_grad = _lrn_and_grad(lambda t: pool(lrn_reference(t, 4, 1e-3, 0.75, 2.0, 2)), a.double(),
                                              gp.double())
    torch.testing.assert_close(fused.double(), ref_fused, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(fused_grad.double(), ref_fused_grad, rtol=1e-5, atol=1e-6)


def test_lrn_computes_in_float32_inside_bf16_autocast():
    """autocast must not push the window sum (a GEMM) into bf16: the result equals the fp32 one."""
    torch.manual_seed(11)
    a = (torch.randn(2, 32, 24, 24) * 30).relu()           # large enough for the GEMM window
    ref = LocalResponseNorm(groups=2)(a)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = LocalResponseNorm(groups=2)(a)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, ref, rtol=1e-6, atol=1e-6)


# --- fused LRN + max-pool (the paper network's norm1/pool1 and norm2/pool2 in training steps) ---------------------
def _grad_fn_names(t):
    names, todo, seen = set(), [t.grad_fn], set()
    while todo:
        fn = todo.pop()
        if fn is None or fn in seen:
            continue
        seen.add(fn)
        names.add(type(fn).__name__)
        todo.extend(f for f, _ in fn.next_functions)
    return names


@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
@pytest.mark.parametrize("size,groups,ceil_mode", [(5, 2, False), (4, 1, True)])
def test_lrn_max_pool2d_equals_unfused_forward_and_gradient(layout, size, groups, ceil_mode):
    """The fused function (eager backend, fp32) against pool(norm(x)) in float64: values and gradient; an even window
    (asymmetric) with Caffe's ceil-mode pooling too; the GEMM window (large enough maps) in NCHW and NHWC."""
    from alexnet import layers

    torch.manual_seed(12)
    a = (torch.randn(2, 24, 27, 26) * 30).relu()
    if layout == "channels_last":
        a = a.to(memory_format=torch.channels_last)
    norm = LocalResponseNorm(size, 1e-3, 0.75, 2.0, "paper", groups)
    pool = torch.nn.MaxPool2d(3, 2, ceil_mode=ceil_mode)
    prev = layers.set_lrn_backend("eager")
    try:
        x = a.clone().requires_grad_()
        out = layers.lrn_max_pool2d(x, norm, pool)
        assert "_LRNMaxPoolFunctionBackward" in _grad_fn_names(out)     # the fused path was taken
        g = torch.randn_like(out)
        out.backward(g)
    finally:
        layers.set_lrn_backend(prev)
    xr = a.double().requires_grad_()
    ref = pool(lrn_reference(xr, size, 1e-3, 0.75, 2.0, groups))
    ref.backward(g.double())
    torch.testing.assert_close(out.double(), ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(x.grad.double(), xr.grad, rtol=1e-5, atol=1e-6)


def test_lrn_max_pool2d_bf16_matches_unfused():
    from alexnet import layers

    torch.manual_seed(13)
    a = ((torch.randn(2, 16, 13, 13) * 30).relu()).bfloat16()
    norm, pool = LocalResponseNorm(groups=2), torch.nn.MaxPool2d(3, 2)
    results = []
    for fused in (True, False):
        x = a.clone().requires_grad_()
        out = layers.lrn_max_pool2d(x, norm, pool) if fused else pool(norm(x))
        out.float().square().sum().backward()
        results.append((out, x.grad))
    assert results[0][0].dtype == torch.bfloat16 and results[0][1].dtype == torch.bfloat16
    torch.testing.assert_close(results[0][0], results[1][0])
    torch.testing.assert_close(results[0][1], results[1][1])


def test_lrn_max_pool2d_falls_back_where_fusing_could_be_observed():
    from alexnet import layers

    norm, pool = LocalResponseNorm(groups=2), torch.nn.MaxPool2d(3, 2)
    x = (torch.randn(1, 8, 7, 7) * 30).relu().requires_grad_()
    assert "_LRNMaxPoolFunctionBackward" in _grad_fn_names(layers.lrn_max_pool2d(x, norm, pool))
    seen = []
    h = norm.register_forward_hook(lambda m, i, o: seen.append(o.detach().clone()))
    try:                                              # a hook on the norm sees the LRN's output, as unfused
        out = layers.lrn_max_pool2d(x, norm, pool)
        assert "_LRNMaxPoolFunctionBackward" not in _grad_fn_names(out)
        torch.testing.assert_close(seen[0], norm(x).detach())
    finally:
        h.remove()
    with torch.no_grad():                             # inference: nothing to save, the modules as usual
        torch.testing.assert_close(layers.lrn_max_pool2d(x, norm, pool), pool(norm(x)))
    ident = layers.lrn_max_pool2d(x, torch.nn.Identity(), pool)   # --no-lrn
    torch.testing.assert_close(ident, pool(x))


@pytest.mark.parametrize("towers", [1, 2])
def test_paper_network_fused_training_step_equals_unfused(towers):
    """The network's forward (fused norm/pool in training) gives the unfused network's loss and gradients, for one
    and two towers; hooks on norm1/pool2 (``alexnet features``) still see every output."""
    from alexnet import build_model, layers

    torch.manual_seed(14)
    model = build_model("paper", num_classes=10, input_size=67, fc_size=32, towers=towers, dropout=0.0,
                        init="kaiming").double()
    x = torch.randn(3, 3, 67, 67, dtype=torch.float64)
    y = torch.tensor([1, 5, 7])

    def grads(hooked):
        model.zero_grad(set_to_none=True)
        seen, hooks = {}, []
        if hooked:
            for name in ("norm1", "pool2"):
                hooks.append(getattr(model, name).register_forward_hook(
                    lambda m, i, o, name=name: seen.__setitem__(name, o.detach().clone())))
        try:
            logits = model(x)
            names = _grad_fn_names(logits)
            torch.nn.functional.cross_entropy(logits, y).backward()
        finally:
            for h in hooks:
                h.remove()
        return logits.detach(), {n: p.grad.clone() for n, p in model.named_parameters()}, names, seen

    prev = layers.set_lrn_backend("eager")
    try:
        out_f, g_f, names_f, _ = grads(False)
        out_u, g_u, names_u, seen = grads(True)
    finally:
        layers.set_lrn_backend(prev)
    assert "_LRNMaxPoolFunctionBackward" in names_f and "_LRNMaxPoolFunctionBackward" not in names_u
    torch.testing.assert_close(out_f, out_u)
    for n in g_u:
        torch.testing.assert_close(g_f[n], g_u[n], msg=lambda m, n=n: f"{n}: {m}")
    assert set(seen) == {"norm1", "pool2"}
    with torch.no_grad():
        h1 = model.pool1(model.norm1(model.relu1(model.conv1(x))))
        torch.testing.assert_close(seen["pool2"], model.pool2(model.norm2(model.relu2(model.conv2(h1)))))


@pytest.mark.parametrize("convention, k, over_n, groups", [("paper", 2.0, False, 2), ("cuda-convnet", 2.0, True, 2),
                                                           ("caffe", 1.0, True, 1)])
def test_each_lrn_convention_is_complete(convention, k, over_n, groups):
    """Each convention carries its own k, alpha scaling and tower clipping into the network (--lrn-convention caffe
    used to keep the paper's k=2); an explicit lrn_k still wins (Caffe weights whose prototxt sets k)."""
    from alexnet import build_model

    m = build_model("paper", num_classes=4, input_size=64, fc_size=8, lrn_convention=convention)
    assert m.config.lrn_k == k and m.norm1.k == k and m.norm2.k == k
    assert m.norm1.groups == groups and m.norm1.scale == pytest.approx(1e-4 / 5 if over_n else 1e-4)
    x = torch.relu(torch.randn(2, 96, 9, 9)) * 30
    if convention == "paper":   # the paper's text = torch's module with alpha * n, per tower
        want = torch.cat([torch.nn.LocalResponseNorm(5, alpha=5e-4, beta=0.75, k=2)(h) for h in x.chunk(2, 1)], 1)
    elif convention == "cuda-convnet":   # minDiv 2 + scale/size: torch's own formula, per tower
        want = torch.cat([torch.nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2)(h) for h in x.chunk(2, 1)], 1)
    else:                        # Caffe: k=1, alpha/n, all 96 maps at once
        want = torch.nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=1)(x)
    torch.testing.assert_close(m.norm1(x), want, rtol=1e-5, atol=1e-6)
    assert build_model("paper", num_classes=4, input_size=64, fc_size=8, lrn_convention=convention,
                       lrn_k=3.0).norm1.k == 3.0
