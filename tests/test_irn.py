import pytest
import torch

from irc.models.irn import IRN, Haar, count_parameters, quantize


def _randomise(model, std=0.02):
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, std)
    return model


def test_haar_is_exactly_invertible_and_low_pass_first():
    x = torch.rand(2, 3, 8, 10)
    h = Haar()
    y = h(x)
    assert y.shape == (2, 12, 4, 5)
    torch.testing.assert_close(y[:, :3], torch.nn.functional.avg_pool2d(x, 2))
    torch.testing.assert_close(h.inverse(y), x, atol=1e-6, rtol=0)


@pytest.mark.parametrize("scale,kw", [(2, {}), (4, {}), (8, {}), (4, {"haar_first": True, "blocks_per_module": 4})])
def test_inverse_of_forward_is_identity_with_true_z(scale, kw):
    torch.manual_seed(0)
    model = _randomise(IRN(scale, **{"blocks_per_module": 2, **kw}))
    x = torch.rand(1, 3, 32, 40)
    y, z = model(x)
    assert y.shape == (1, 3, 32 // scale, 40 // scale)
    assert z.shape[1] == 3 * scale * scale - 3
    torch.testing.assert_close(model.inverse(y, z), x, atol=1e-4, rtol=0)


@pytest.mark.parametrize("scale,kw", [(2, {}), (8, {}), (4, {"haar_first": True, "blocks_per_module": 4}),
                                      (3, {"downsampling": "learned"})])
def test_channels_last_gives_the_same_passes(scale, kw):
    torch.manual_seed(0)
    ref = _randomise(IRN(scale, **{"blocks_per_module": 2, **kw})).eval()
    fast = IRN(scale, **{"blocks_per_module": 2, **kw}).eval()
    fast.load_state_dict(ref.state_dict())
    fast.channels_last()
    x = torch.rand(1, 3, 48, 48)
    with torch.no_grad():
        y, z = ref(x)
        y2, z2 = fast(x)
        torch.testing.assert_close(y2, y, atol=1e-5, rtol=0)
        torch.testing.assert_close(z2, z, atol=1e-5, rtol=0)
        torch.testing.assert_close(fast.inverse(y2, z2), x, atol=1e-4, rtol=0)
        torch.testing.assert_close(fast.inverse(y), ref.inverse(y), atol=1e-5, rtol=0)
    assert all(p.is_contiguous(memory_format=torch.channels_last) for p in fast.parameters() if p.dim() == 4)


def test_parameter_counts_match_the_paper():
    assert round(count_parameters(IRN(2)) / 1e6, 2) == 1.67  # paper: 1.66M
    assert round(count_parameters(IRN(4)) / 1e6, 2) == 4.36  # paper: 4.35M
    assert round(count_parameters(IRN(8)) / 1e6, 1) == 11.1
    assert round(count_parameters(IRN(4, blocks_per_module=16, haar_first=True)) / 1e6, 2) == 5.37


def test_quantize_rounds_to_8_bits_with_straight_through_gradient():
    y = torch.tensor([0.1234, -0.2, 1.3, 0.5], requires_grad=True)
    q = quantize(y)
    assert torch.allclose(q * 255, (q * 255).round(), atol=1e-4)
    assert q.min() >= 0 and q.max() <= 1
    q.sum().backward()
    assert torch.equal(y.grad[:1], torch.ones(1))  # gradient passes through rounding


def test_fresh_irn_starts_as_haar_box_downscale():
    x = torch.rand(1, 3, 16, 16)
    y, _ = IRN(2)(x)
    torch.testing.assert_close(y, torch.nn.functional.avg_pool2d(x, 2))


def test_bad_scale_rejected():
    with pytest.raises(ValueError):
        IRN(3)
