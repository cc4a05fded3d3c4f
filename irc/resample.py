"""Bicubic resampling: the non-learned baseline rescaler (Pillow, antialiased down).

Used by the bench (Bicubic + codec rows), by CRM training on bicubic LR (the
paper's ablation) and by the tests. ``bicubic_down`` rounds the size down, as
the papers' bicubic LR does; ``bicubic_up`` resizes back to any given size.
"""

from __future__ import annotations

import numpy as np


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
