"""Bicubic resampling: the non-learned baseline rescaler (Pillow, antialiased down),
and the float resize around a model at scales it was not trained for.

Used by the bench (Bicubic + codec rows), by CRM training on bicubic LR (the
paper's ablation) and by the tests. ``bicubic_down`` rounds the size down, as
the papers' bicubic LR does; ``bicubic_up`` resizes back to any given size.
``resize`` is the ``bicubic-antialias`` resampler of the .irc header (format 1.4):
an encode at scale 2.5 resizes the HR by 3/2.5 before a x3 model, the decode resizes
the model's output back by 2.5/3 (IRN paper section 3.3.2).
"""

from __future__ import annotations

import numpy as np


RESAMPLER = "bicubic-antialias"


def resize(x, size: tuple[int, int]):
    """(B, C, H, W) float tensor -> (B, C, size[1], size[0]): bicubic (a = -0.75), antialiased
    when shrinking, in float (no 8-bit rounding between the resize and the model)."""
    from torch.nn import functional as F

    w, h = size
    if (h, w) == tuple(x.shape[-2:]):
        return x
    return F.interpolate(x, size=(h, w), mode="bicubic", align_corners=False, antialias=True)


def bicubic_down(rgb: np.ndarray, scale: int) -> np.ndarray:
    """(H, W, 3) uint8 -> (H // scale, W // scale, 3) uint8."""
    from PIL import Image

    im = Image.fromarray(np.ascontiguousarray(rgb))
    w, h = max(1, im.width // scale), max(1, im.height // scale)
    return np.asarray(im.resize((w, h), Image.BICUBIC))


def bicubic_up(lr: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(h, w, 3) uint8 -> (size[1], size[0], 3) uint8; ``size`` is (width, height)."""
    from PIL import Image

    return np.asarray(Image.fromarray(np.ascontiguousarray(lr)).resize(size, Image.BICUBIC))


def bicubic_round_trip(rgb: np.ndarray, scale: int) -> np.ndarray:
    """Bicubic down by ``scale`` and back up to the original size."""
    return bicubic_up(bicubic_down(rgb, scale), (rgb.shape[1], rgb.shape[0]))
