import math

import pytest
import torch
from torch.nn import functional as F

from irc.models.fgrn import DEFAULTS, FGRN, build
from irc.models.rescaler import count_parameters
from irc.tiling import run_tiled

TINY = {"nf": 8, "down_blocks": 1, "up_blocks": 1, "flow_cells": 2}


pytestmark = pytest.mark.usefixtures("one_thread")


def _randomise(model, std=0.05, seed=0):
    """Perturb every parameter (a fresh flow is exactly the identity)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * std)
    return model


def _smooth(h, w, seed=0):
    gen = torch.Generator().manual_seed(seed)
    small = torch.rand(1, 3, h // 8, w // 8, generator=gen)
    return F.interpolate(small, size=(h, w), mode="bilinear", align_corners=False)


@pytest.mark.parametrize("cells", [1, 2, 4])
def test_flow_inverse_of_forward_is_identity(cells):
    torch.manual_seed(0)
    model = _randomise(FGRN(2, **{**TINY, "flow_cells": cells}))
    x = torch.rand(2, 3, 12, 10)
    with torch.no_grad():
        y = model.flow(x)
        assert 0.1 < (y - x).abs().max() < 10  # far from the identity, values still O(1)
        torch.testing.assert_close(model.flow_inverse(y), x, atol=1e-5, rtol=0)


@pytest.mark.parametrize("scale", [2, 3, 4, 8])
def test_shapes_and_8_bit_lr(scale):
    torch.manual_seed(0)
    model = _randomise(FGRN(scale, **TINY))
    x = torch.rand(2, 3, 12 * scale, 8 * scale)
    with torch.no_grad():
        lr = model.downscale(x)
        assert lr.shape == (2, 3, 12, 8)
        assert lr.min() >= 0 and lr.max() <= 1
        torch.testing.assert_close(lr * 255, (lr * 255).round(), atol=1e-4, rtol=0)
        rep = model.represent(x)
        torch.testing.assert_close(rep * 255, (rep * 255).round(), atol=1e-4, rtol=0)
        torch.testing.assert_close(model.flow_inverse(model.encode_lr(x)), rep, atol=1e-5, rtol=0)
        hr = model.upscale(lr)
        assert hr.shape == x.shape
        # no latent: temperature and generator are ignored
        torch.testing.assert_close(model.upscale(lr, 0.8, torch.Generator().manual_seed(1)), hr)


def test_paper_size_defaults():
    assert count_parameters(build(2)) == pytest.approx(1.33e6, rel=0.03)
    assert count_parameters(build(4)) == pytest.approx(3.35e6, rel=0.03)
    assert build(4, up_blocks=1).u_body.__len__() == 1  # params override DEFAULTS
    assert set(DEFAULTS) >= {2, 4, 8}


def test_x8_starts_from_the_x4_weights_in_all_but_three_tensors():
    """x8 keeps the x4 sizes: only the squeeze head (8x8x3 channels in) and the third PixelShuffle
    stage are new, so a x8 run initialised from fgrn-x4 (`--init-from`) copies everything else."""
    x4, x8 = build(4).state_dict(), build(8).state_dict()
    new = sorted(k for k in x8 if k not in x4 or x4[k].shape != x8[k].shape)
    assert new == ["d_head.weight", "u_stages.2.bias", "u_stages.2.weight"]


@pytest.mark.parametrize("scale", [1, 0, 2.5])
def test_bad_scale_rejected(scale):
    with pytest.raises(ValueError):
        FGRN(scale, **TINY)


def test_logdet_matches_brute_force_jacobian():
    torch.manual_seed(0)
    model = _randomise(FGRN(2, **{**TINY, "flow_cells": 3}), std=0.1).double()
    x = torch.rand(1, 3, 2, 2, dtype=torch.float64)
    _, logdet = model.flow(x, with_logdet=True)
    jac = torch.autograd.functional.jacobian(lambda t: model.flow(t.view(1, 3, 2, 2)).flatten(),
                                             x.flatten())
    sign, brute = torch.linalg.slogdet(jac)
    assert sign > 0
    assert abs(logdet.item()) > 1e-2  # non-trivial
    torch.testing.assert_close(logdet, brute.view(1), atol=1e-8, rtol=1e-8)
    # and it is the sum of the cells' log-scales
    xb = torch.rand(2, 3, 5, 4, dtype=torch.float64)
    _, lds = model.flow(xb, with_logdet=True)
    total, h = torch.zeros(2, dtype=torch.float64), xb
    for k, cell in enumerate(model.cells):
        l1, l2 = model._split(h, k)
        l1 = l1 + cell.alpha(l2)
        total += cell.log_scale(l1).sum(dim=(1, 2, 3))
        h = model._merge(*cell(*model._split(h, k))[:2], k)
    torch.testing.assert_close(lds, total)


def _psnr(a, b):
    return 10 * math.log10(1 / F.mse_loss(a, b).item())


@pytest.mark.parametrize("scale", [2, 4])
def test_untrained_model_is_a_plain_down_up(scale):
    model = FGRN(scale, **TINY)
    x = _smooth(64, 64)
    with torch.no_grad():
        lr = model.downscale(x)
        plain_lr = F.avg_pool2d(x, scale)
        assert (lr - plain_lr).abs().max() <= 0.5 / 255 + 1e-6
        hr = model.upscale(lr)
    plain = F.interpolate(plain_lr, scale_factor=scale, mode="bilinear", align_corners=False)
    assert _psnr(hr, plain) > 40
    assert _psnr(hr, x) > 20


def test_channels_last_gives_the_same_passes():
    torch.manual_seed(0)
    ref = _randomise(FGRN(2, **{**TINY, "flow_cells": 3})).eval()
    fast = FGRN(2, **{**TINY, "flow_cells": 3}).eval()
    fast.load_state_dict(ref.state_dict())
    fast.channels_last()
    x = torch.rand(1, 3, 32, 24)
    with torch.no_grad():
        torch.testing.assert_close(fast.g_d(x), ref.g_d(x), atol=1e-4, rtol=0)
        rep = ref.represent(x)
        lr, ld = ref.flow(rep, with_logdet=True)
        lr2, ld2 = fast.flow(rep, with_logdet=True)
        torch.testing.assert_close(lr2, lr, atol=1e-4, rtol=0)
        torch.testing.assert_close(ld2, ld, atol=1e-4, rtol=1e-5)
        y = ref.downscale(x)
        torch.testing.assert_close(fast.flow_inverse(y), ref.flow_inverse(y), atol=1e-4, rtol=0)
        out = fast.upscale(y)
        torch.testing.assert_close(out, ref.upscale(y), atol=1e-4, rtol=0)
    assert out.is_contiguous(memory_format=torch.channels_last)
    assert all(p.is_contiguous(memory_format=torch.channels_last) for p in fast.parameters() if p.dim() == 4)


def _grads(module):
    return [p.grad for p in module.parameters()]


def test_training_outputs_route_gradients_per_objective():
    torch.manual_seed(0)
    model = _randomise(FGRN(2, **TINY), std=0.02)
    x = torch.rand(2, 3, 16, 16)
    out = model.training_outputs(x)
    assert out["rep"].shape == out["lr"].shape == (2, 3, 8, 8)
    assert out["hr"].shape == x.shape and out["logdet"].shape == (2,)
    rec = F.l1_loss(out["hr"], x)
    guide = F.l1_loss(out["lr"], F.avg_pool2d(x, 2)) - 1e-3 * out["logdet"].mean()
    guide.backward(retain_graph=True)
    assert all(g is None for g in _grads(model.d_head) + _grads(model.u_head))  # F only
    assert all(g is not None and g.abs().sum() > 0 for g in _grads(model.cells))
    model.zero_grad(set_to_none=True)
    rec.backward()
    assert all(g is None for g in _grads(model.cells))  # G_d and G_u only
    for part in (model.d_head, model.d_tail, model.u_head, model.u_tail):
        assert all(g is not None and g.abs().sum() > 0 for g in _grads(part))


def test_tiled_upscale_agrees_with_whole_image():
    torch.manual_seed(0)
    model = _randomise(FGRN(2, **TINY), std=0.02).eval()
    y = _smooth(64, 64, seed=1)
    with torch.no_grad():
        whole = model.upscale(y)
        tiled = run_tiled(model.upscale, y, 64, 64, 1, 2, 32, 8)
        single = run_tiled(model.upscale, y, 64, 64, 1, 2, 64, 8)
    assert tiled.shape == whole.shape == (1, 3, 128, 128)
    assert (tiled - whole).abs().mean() < 1e-2
    assert torch.equal(single, whole)
