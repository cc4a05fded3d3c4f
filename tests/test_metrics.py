import math

import numpy as np
import pytest

from irc.metrics import bpp, psnr_rgb, psnr_y, rgb_to_y, ssim


def test_psnr_known_values():
    a = np.full((8, 8, 3), 100, np.uint8)
    b = a.copy()
    b[..., 0] += 10  # one channel off by 10: mse = 100/3
    assert psnr_rgb(a, b) == pytest.approx(10 * math.log10(255**2 / (100 / 3)))
    assert psnr_rgb(a, a) == math.inf


def test_psnr_y_uses_bt601_and_border_crop():
    assert rgb_to_y(np.array([[255.0, 255.0, 255.0]]))[0] == pytest.approx(235.0)
    assert rgb_to_y(np.array([[0.0, 0.0, 0.0]]))[0] == pytest.approx(16.0)
    a = np.zeros((10, 10, 3), np.uint8)
    b = a.copy()
    b[0, :] = 255  # damage only the border row
    assert psnr_y(a, b, crop=1) == math.inf
    assert psnr_y(a, b, crop=0) < 30


def test_float_tensor_inputs_match_uint8():
    import torch

    rng = np.random.default_rng(1)
    a = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    b = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    ta = torch.from_numpy(a).permute(2, 0, 1).float() / 255
    assert psnr_rgb(ta, b) == pytest.approx(psnr_rgb(a, b))


def test_ssim_bounds_and_bpp():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    assert ssim(a, a) == pytest.approx(1.0)
    noisy = np.clip(a + rng.normal(0, 40, a.shape), 0, 255).astype(np.uint8)
    assert 0 < ssim(a, noisy) < 0.9
    assert bpp(1000, 100, 80) == pytest.approx(1.0)


def test_ms_ssim_offline_when_the_extra_is_installed():
    pytest.importorskip("pytorch_msssim")
    from irc.metrics import ms_ssim

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:176, 0:200]
    a = np.stack([128 + 60 * np.sin(xx / 7), 128 + 60 * np.cos(yy / 5), (xx + yy) * 0.6], -1).astype(np.uint8)
    noisy = np.clip(a + rng.normal(0, 12, a.shape), 0, 255).astype(np.uint8)
    assert ms_ssim(a, a) == pytest.approx(1.0)
    assert ms_ssim(a, a.astype(np.float32) / 255) == pytest.approx(1.0)  # float input in [0, 1]
    assert 0.5 < ms_ssim(a, noisy) < 0.99
    with pytest.raises(ValueError, match="161"):
        ms_ssim(a, noisy, crop=10)  # 156 x 180 left: too small for 5 scales


def test_ms_ssim_without_the_extra_says_what_to_install(monkeypatch):
    import sys

    from irc.metrics import ms_ssim

    monkeypatch.setitem(sys.modules, "pytorch_msssim", None)  # as if not installed
    with pytest.raises(ModuleNotFoundError, match=r"irc\[metrics\]"):
        ms_ssim(np.zeros((200, 200, 3), np.uint8), np.zeros((200, 200, 3), np.uint8))
