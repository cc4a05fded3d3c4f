"""Image quality and rate metrics, named as the papers use them.

* ``psnr-rgb``: PSNR over all RGB channels, 8-bit peak, no border crop.
* ``psnr-y``: PSNR of the BT.601 luma (Y of YCbCr, 16-235 range), with ``crop``
  pixels removed from each border (the papers use crop = scale).
* ``ssim``: SSIM on the luma, Gaussian window 11 / sigma 1.5 (Wang et al. 2004).
* ``ms-ssim``: multi-scale SSIM over RGB (Wang et al. 2003; 5 scales, the usual weights), a
  structural metric that needs no learned weights, so it runs offline beside PSNR where
  LPIPS/DISTS cannot (their VGG/AlexNet backbones are downloaded at run time). Optional:
  ``pip install 'irc[metrics]'`` (the pytorch-msssim package, torch only).
* ``bpp``: bytes * 8 / original pixel count. ``irc encode`` reports it for the whole
  .irc file (``EncodeInfo.bpp``) and for the LR bitstream alone (``payload_bpp``);
  ``irc bench`` rates the LR bitstream alone, as the papers do.

Inputs are uint8 arrays (H, W, 3) or float tensors/arrays in [0, 1].
"""

from __future__ import annotations

import math

import numpy as np


def _as_float255(img) -> np.ndarray:
    arr = img.detach().cpu().numpy() if hasattr(img, "detach") else np.asarray(img)
    if arr.dtype == np.uint8:
        return arr.astype(np.float64)
    arr = arr.astype(np.float64)
    if arr.ndim == 3 and arr.shape[0] in (1, 3) and arr.shape[-1] not in (1, 3):
        arr = arr.transpose(1, 2, 0)  # CHW tensor -> HWC
    return np.clip(arr, 0, 1) * 255.0


def rgb_to_y(img255: np.ndarray) -> np.ndarray:
    """BT.601 luma in [16, 235] from RGB in [0, 255] (as MATLAB's rgb2ycbcr)."""
    r, g, b = img255[..., 0], img255[..., 1], img255[..., 2]
    return 16.0 + (65.481 * r + 128.553 * g + 24.966 * b) / 255.0


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a - b) ** 2))
    return math.inf if mse == 0 else 10.0 * math.log10(255.0**2 / mse)


def _crop(a: np.ndarray, crop: int) -> np.ndarray:
    return a[crop:-crop, crop:-crop] if crop > 0 else a


def _quantized(img) -> np.ndarray:
    """Round to 8-bit levels as a saved image would be."""
    return np.round(_as_float255(img))


def psnr_rgb(ref, test, crop: int = 0) -> float:
    return _psnr(_crop(_quantized(ref), crop), _crop(_quantized(test), crop))


def psnr_y(ref, test, crop: int = 0) -> float:
    return _psnr(_crop(rgb_to_y(_quantized(ref)), crop), _crop(rgb_to_y(_quantized(test)), crop))


def _gaussian_filter(img: np.ndarray, sigma: float = 1.5, size: int = 11) -> np.ndarray:
    """Separable Gaussian blur, 'valid' region only (no padding)."""
    import torch
    from torch.nn import functional as F

    ax = torch.arange(size, dtype=torch.float64) - size // 2
    k = torch.exp(-(ax**2) / (2 * sigma**2))
    k = k / k.sum()
    t = torch.from_numpy(np.ascontiguousarray(img, dtype=np.float64))[None, None]
    t = F.conv2d(t, k.view(1, 1, 1, -1))
    t = F.conv2d(t, k.view(1, 1, -1, 1))
    return t[0, 0].numpy()


def ssim(ref, test, crop: int = 0) -> float:
    """SSIM of the BT.601 luma (the usual SR convention)."""
    x = _crop(rgb_to_y(_quantized(ref)), crop)
    y = _crop(rgb_to_y(_quantized(test)), crop)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mx, my = _gaussian_filter(x), _gaussian_filter(y)
    sxx = _gaussian_filter(x * x) - mx * mx
    syy = _gaussian_filter(y * y) - my * my
    sxy = _gaussian_filter(x * y) - mx * my
    s = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2))
    return float(s.mean())


def ms_ssim(ref, test, crop: int = 0) -> float:
    """MS-SSIM of the RGB images (8-bit levels, data range 255), through the optional
    pytorch-msssim package; 5 scales need sides of at least 161 pixels after ``crop``."""
    try:
        from pytorch_msssim import ms_ssim as _ms_ssim
    except ModuleNotFoundError:
        raise ModuleNotFoundError("ms_ssim needs the optional package pytorch-msssim: "
                                  "pip install 'irc[metrics]' (or pip install pytorch-msssim)") from None
    import torch

    a, b = (_crop(_quantized(img), crop) for img in (ref, test))
    if min(a.shape[:2]) < 161:
        raise ValueError(f"ms_ssim needs images of at least 161x161 pixels (5 scales), got {a.shape[1]}x{a.shape[0]}")
    ta, tb = (torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))[None] for x in (a, b))
    return float(_ms_ssim(ta, tb, data_range=255.0, size_average=True))


def bpp(n_bytes: int, width: int, height: int) -> float:
    return n_bytes * 8.0 / (width * height)


def _mean_gap(anchor: list[tuple[float, float]], test: list[tuple[float, float]]) -> float | None:
    """Mean of test(x) - anchor(x) over the x range both cover, each fitted as a polynomial in x
    (cubic with 4+ points, lower with fewer) through its (x, y) points; None without overlap."""
    def fit(points):
        pts = sorted(set(points))
        x = np.array([p[0] for p in pts])
        return np.polyfit(x, [p[1] for p in pts], min(3, len(pts) - 1)), x.min(), x.max()

    if len(set(anchor)) < 2 or len(set(test)) < 2:
        return None
    pa, a_lo, a_hi = fit(anchor)
    pt, t_lo, t_hi = fit(test)
    lo, hi = max(a_lo, t_lo), min(a_hi, t_hi)
    if hi - lo <= 1e-6:
        return None
    ia, it = np.polyint(pa), np.polyint(pt)
    return float(((np.polyval(it, hi) - np.polyval(it, lo)) - (np.polyval(ia, hi) - np.polyval(ia, lo))) / (hi - lo))


def bd_rate(anchor: list[tuple[float, float]], test: list[tuple[float, float]]) -> float | None:
    """Bjøntegaard delta rate (%) of ``test`` against ``anchor``; points are (bpp, PSNR).

    log-rate is fitted as a polynomial in PSNR (cubic with 4+ points, lower
    with fewer) and integrated over the overlapping PSNR range. Negative: fewer
    bits for the same quality. None when the curves do not overlap.
    """
    if len(anchor) < 2 or len(test) < 2:
        return None
    avg = _mean_gap(*([(d, math.log10(r)) for r, d in pts] for pts in (anchor, test)))
    if avg is None:
        return None
    value = (10**avg - 1) * 100
    return float(value) if math.isfinite(value) else None


def bd_psnr(anchor: list[tuple[float, float]], test: list[tuple[float, float]]) -> float | None:
    """Bjøntegaard delta PSNR (dB) of ``test`` over ``anchor``; points are (bpp, PSNR): PSNR
    fitted as a polynomial in log-rate, the mean gap over the overlapping rates. None without overlap."""
    if len(anchor) < 2 or len(test) < 2:
        return None
    return _mean_gap(*([(math.log10(r), d) for r, d in pts] for pts in (anchor, test)))
