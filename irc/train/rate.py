"""A differentiable estimate of what JPEG spends on an image: the rate term of robust IRN training.

Training IRN with the real codec in the loop (straight-through) makes its LR
survive JPEG, but it learns to do so by putting more detail into the LR, which
JPEG then pays for in bytes. This module gives the forward pass a price for those
bytes, so the training minimises distortion + lambda * rate, as a codec should.

The estimate follows JPEG's own steps: RGB -> YCbCr (JFIF), 4:2:0 chroma (2x2
mean, Pillow's default), 8x8 block DCT-II, division by the IJG quantisation
tables scaled for the quality, then log2(1 + |coefficient / step|) summed over
the AC coefficients, a smooth stand-in for the entropy-coded size of the
quantised values (DC is coded differentially by JPEG and left out). It is
differentiable everywhere, and is used without rounding.
"""

from __future__ import annotations

import math

import torch
from torch.nn import functional as F

# ITU-T T.81 Annex K, tables K.1 (luminance) and K.2 (chrominance), row-major
_LUMA = [
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55,
    14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62,
    18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99,
]
_CHROMA = [
    17, 18, 24, 47, 99, 99, 99, 99, 18, 21, 26, 66, 99, 99, 99, 99,
    24, 26, 56, 99, 99, 99, 99, 99, 47, 66, 99, 99, 99, 99, 99, 99,
    *([99] * 32),
]


def quant_tables(quality: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """IJG scaling of the Annex K tables: (B, 8, 8) luma and chroma steps for qualities (B,)."""
    q = quality.float().clamp(1, 100)
    scale = torch.where(q < 50, 5000 / q, 200 - 2 * q)[:, None, None]
    out = []
    for base in (_LUMA, _CHROMA):
        t = torch.tensor(base, dtype=torch.float32, device=q.device).view(1, 8, 8)
        out.append(torch.floor((t * scale + 50) / 100).clamp(1, 255))
    return out[0], out[1]


def _dct_matrix(device) -> torch.Tensor:
    k = torch.arange(8, dtype=torch.float32, device=device)
    d = torch.cos(math.pi * (2 * k[None, :] + 1) * k[:, None] / 16) * math.sqrt(2 / 8)
    d[0] /= math.sqrt(2)
    return d  # orthonormal DCT-II: coefficients = D @ block @ D.T


def _block_dct(x: torch.Tensor) -> torch.Tensor:
    """(B, H, W) with H, W multiples of 8 -> (B, H/8, W/8, 8, 8) coefficients."""
    b, h, w = x.shape
    blocks = x.reshape(b, h // 8, 8, w // 8, 8).permute(0, 1, 3, 2, 4)
    d = _dct_matrix(x.device)
    return d @ blocks @ d.T


def jpeg_bits(rgb: torch.Tensor, quality: torch.Tensor) -> torch.Tensor:
    """Estimated JPEG AC bits of each image in a batch: rgb (B, 3, H, W) in [0, 1] -> (B,)."""
    x = rgb.float() * 255
    pad_h, pad_w = -x.shape[2] % 16, -x.shape[3] % 16
    if pad_h or pad_w:
        x = F.pad(x, (0, pad_w, 0, pad_h), mode="replicate")
    r, g, b = x[:, 0], x[:, 1], x[:, 2]
    y = 0.299 * r + 0.587 * g + 0.114 * b
    cb = -0.168736 * r - 0.331264 * g + 0.5 * b
    cr = 0.5 * r - 0.418688 * g - 0.081312 * b
    chroma = F.avg_pool2d(torch.stack([cb, cr], 1), 2)
    luma_q, chroma_q = quant_tables(quality)
    ac = torch.ones(8, 8, device=x.device)
    ac[0, 0] = 0
    bits = []
    for plane, step in ((y, luma_q), (chroma[:, 0], chroma_q), (chroma[:, 1], chroma_q)):
        c = _block_dct(plane) / step[:, None, None]
        bits.append((torch.log2(1 + c.abs()) * ac).sum(dim=(1, 2, 3, 4)))
    return sum(bits)
