"""The Boundary-aware Mask (BAM) and Boundary-aware Weight (BAW) of BDFlow, in torch.

Algorithm 1 of the BDFlow paper ("Boundary-aware Decoupled Flow Networks"), batched and on any
device, with no OpenCV or SciPy: a Canny-like edge map whose last step keeps a few magnitude
levels instead of a binary edge/no-edge decision.

1. luma of the image (BT.601) when it has 3 channels, on the 0-255 scale;
2. Gaussian blur with ``sigma`` (separable kernel, replicate padding);
3. Sobel gradients G_x, G_y (replicate padding);
4. magnitude M: the 2-norm sqrt(G_x^2 + G_y^2) (the paper's choice, Table 4) or the 1-norm;
5. non-maximum suppression along the gradient direction, quantised to 0/45/90/135 degrees: M' = M
   where M is a local maximum across the edge, else 0 (thin, one-pixel boundaries);
6. sparsification with the threshold T: B_s = M' where M' >= T, else 0 (T = 50 in the paper, on
   the 0-255 scale of the magnitudes);
7. quantisation of B_s to ``bits`` bits: B_q in {0, 1/L, ..., 1} with L = 2**bits - 1 (level 0:
   no boundary). B_s is normalised by the fixed :data:`FULL_SCALE` and rounded *up*, so that every
   boundary kept by the threshold lands on level 1 or above; 1 bit gives the Canny-like binary map
   (1 where B_s > 0).

:func:`to_lr_grid` max-pools B_q by the scale: the ground truth that the network's boundary channel
B (one channel at LR resolution) learns, "a boundary somewhere in this s x s block" at its
strongest level. :func:`baw_weight` is Eq. 4's second case, the per-pixel weight of the HR loss.
"""

from __future__ import annotations

import math

import torch
from torch.nn import functional as F

LUMA = (0.299, 0.587, 0.114)  # BT.601
# Normaliser of B_s for the multi-bit levels: the Sobel magnitude (either norm) of a sharp
# half-contrast step (4 * 127.5). A full-contrast step blurred with sigma = 1 peaks near 640, so strong
# edges reach the top level; anything above saturates there.
FULL_SCALE = 510.0
SOBEL_X = ((-1.0, 0.0, 1.0), (-2.0, 0.0, 2.0), (-1.0, 0.0, 1.0))
# (dy, dx) of the neighbour along the gradient for the directions 0, 45, 90, 135 degrees
# (image coordinates: x to the right, y downwards, angle = atan2(G_y, G_x))
_NMS_OFFSETS = ((0, 1), (1, 1), (1, 0), (1, -1))


def _check_image(img: torch.Tensor) -> None:
    if img.dim() != 4 or img.shape[1] not in (1, 3):
        raise ValueError(f"BAM takes (B, 3, H, W) or (B, 1, H, W) images, got shape {tuple(img.shape)}")


def _luma255(img: torch.Tensor) -> torch.Tensor:
    """(B, 3|1, H, W) in [0, 1] -> (B, 1, H, W) float32 luma on the 0-255 scale (step 1 of the list above)."""
    img = img.float()
    if img.shape[1] == 3:
        w = torch.tensor(LUMA, dtype=img.dtype, device=img.device).view(1, 3, 1, 1)
        img = (img * w).sum(1, keepdim=True)
    return img * 255.0


def gaussian_blur(img: torch.Tensor, sigma: float) -> torch.Tensor:
    """Algorithm 1 line 1, GaussBlur(I, sigma): a separable, normalised Gaussian kernel of radius
    ceil(3 sigma) applied along x then y, replicate padding. sigma <= 0: the image unchanged."""
    if sigma <= 0:
        return img
    radius = max(1, math.ceil(3 * sigma))
    t = torch.arange(-radius, radius + 1, dtype=img.dtype, device=img.device)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    k = k / k.sum()
    c = img.shape[1]
    out = F.conv2d(F.pad(img, (radius, radius, 0, 0), mode="replicate"), k.view(1, 1, 1, -1).repeat(c, 1, 1, 1),
                   groups=c)
    return F.conv2d(F.pad(out, (0, 0, radius, radius), mode="replicate"), k.view(1, 1, -1, 1).repeat(c, 1, 1, 1),
                    groups=c)


def sobel(img: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Algorithm 1 line 2, Gradient(I_g): the 3x3 Sobel responses (G_x, G_y) of a (B, 1, H, W) image,
    replicate padding. G_x grows to the right, G_y downwards."""
    kx = torch.tensor(SOBEL_X, dtype=img.dtype, device=img.device)
    kernels = torch.stack([kx, kx.t()]).unsqueeze(1)  # (2, 1, 3, 3)
    g = F.conv2d(F.pad(img, (1, 1, 1, 1), mode="replicate"), kernels)
    return g[:, :1], g[:, 1:]


def non_maximum_suppression(mag: torch.Tensor, gx: torch.Tensor, gy: torch.Tensor) -> torch.Tensor:
    """Algorithm 1 line 4: keep M where it is a maximum along the gradient direction, else 0.

    The direction atan2(G_y, G_x) modulo 180 degrees is quantised to 0, 45, 90 or 135; M is compared
    with its two neighbours along it (outside the image: 0). Ties: a pixel must be strictly above the
    neighbour ahead (along +direction) and at least the one behind, so a two-pixel plateau (a step
    edge between two pixels) keeps one pixel, not both.
    """
    angle = torch.rad2deg(torch.atan2(gy, gx)) % 180.0
    sector = torch.round(angle / 45.0).long() % 4  # 0: 0 deg, 1: 45, 2: 90, 3: 135 (and 180 -> 0)
    h, w = mag.shape[-2:]
    padded = F.pad(mag, (1, 1, 1, 1))
    keep = torch.zeros_like(mag, dtype=torch.bool)
    for i, (dy, dx) in enumerate(_NMS_OFFSETS):
        ahead = padded[..., 1 + dy:1 + dy + h, 1 + dx:1 + dx + w]
        behind = padded[..., 1 - dy:1 - dy + h, 1 - dx:1 - dx + w]
        keep |= (sector == i) & (mag > ahead) & (mag >= behind)
    return torch.where(keep, mag, torch.zeros_like(mag))


@torch.no_grad()
def boundary_strength(img: torch.Tensor, sigma: float = 1.0, threshold: float = 50.0, norm: int = 2) -> torch.Tensor:
    """B_s of Algorithm 1 (lines 1-5): the sparsified boundary map, (B, 1, H, W) float32.

    ``img``: (B, 3, H, W) RGB or (B, 1, H, W) gray in [0, 1]. The magnitudes are on the 0-255 scale
    of the luma; ``threshold`` (T) is in the same units; ``norm`` 2 (sqrt(G_x^2 + G_y^2)) or 1
    (|G_x| + |G_y|). Zero everywhere but on thin boundaries whose magnitude is at least T. Computed
    in float32 outside any autocast (a bf16 Sobel would move the threshold).
    """
    _check_image(img)
    if norm not in (1, 2):
        raise ValueError(f"BAM magnitude norm must be 1 or 2, got {norm}")
    with torch.autocast(img.device.type, enabled=False):
        gx, gy = sobel(gaussian_blur(_luma255(img), sigma))
        mag = torch.sqrt(gx * gx + gy * gy) if norm == 2 else gx.abs() + gy.abs()
        thin = non_maximum_suppression(mag, gx, gy)
        return torch.where(thin >= threshold, thin, torch.zeros_like(thin))


def _levels(bits: int) -> int:
    if bits not in (1, 2, 3):
        raise ValueError(f"BAM quantisation takes 1 to 3 bits, got {bits}")
    return 2**bits - 1


def quantize_levels(b: torch.Tensor, bits: int) -> torch.Tensor:
    """Algorithm 1 line 6 on a map already in [0, 1]: clamp, then round to the nearest of the 2**bits
    values k / (2**bits - 1). Straight-through: where ``b`` requires grad, the gradient passes the
    rounding as if it were the identity (inside [0, 1])."""
    levels = _levels(bits)
    b = b.clamp(0, 1)
    q = torch.round(b * levels) / levels
    return b + (q - b).detach() if b.requires_grad else q


def strength_to_levels(b_s: torch.Tensor, bits: int, full_scale: float = FULL_SCALE) -> torch.Tensor:
    """B_s -> B_q: B_s / ``full_scale`` in L = 2**bits - 1 equal bins, rounded up, so level 0 holds
    exactly the pixels with B_s = 0 and anything above ``full_scale`` is level L. 1 bit: 1 where
    B_s > 0 (the Canny special case the paper names)."""
    levels = _levels(bits)
    q = torch.ceil(b_s.float() / full_scale * levels).clamp(0, levels) / levels
    return quantize_levels(q, bits)  # exact already; keeps the values bit-identical to the network's


@torch.no_grad()
def boundary_mask(img: torch.Tensor, bits: int = 1, sigma: float = 1.0, threshold: float = 50.0,
                  norm: int = 2) -> torch.Tensor:
    """Algorithm 1: the Boundary-aware Mask B_q of an image, (B, 1, H, W) in [0, 1] at the image's
    resolution, with 2**bits values (see :func:`boundary_strength` and :func:`strength_to_levels`)."""
    return strength_to_levels(boundary_strength(img, sigma, threshold, norm), bits)


def to_lr_grid(mask: torch.Tensor, scale: int) -> torch.Tensor:
    """HR mask (B, 1, H, W) -> LR grid (B, 1, H/s, W/s) by max-pooling s x s blocks: a block holds a
    boundary (at that level) when any of its HR pixels does. The supervision of the network's B."""
    return F.max_pool2d(mask, scale) if scale > 1 else mask


def baw_weight(b_s: torch.Tensor, lambda2: float) -> torch.Tensor:
    """Eq. 4, second case: lambda_BAW = lambda2 + (B_s - min B_s) / (max B_s - min B_s), per image
    (min and max over each image's pixels), so the weight of the HR L1 loss goes from lambda2 on flat
    areas to lambda2 + 1 on the strongest boundary. An image with max == min (no boundary) gets
    lambda2 everywhere."""
    b_s = b_s.float()
    flat = b_s.flatten(1)
    lo = flat.min(1).values.view(-1, *([1] * (b_s.dim() - 1)))
    hi = flat.max(1).values.view(-1, *([1] * (b_s.dim() - 1)))
    span = hi - lo
    norm = torch.where(span > 0, (b_s - lo) / span.clamp_min(1e-12), torch.zeros_like(b_s))
    return lambda2 + norm
