"""Padding to a multiple of the scale, and overlapping tiles blended back.

Tiles are laid out on the LR grid, so encode (HR -> LR) and decode (LR -> HR)
share one routine: ``in_per_lr`` and ``out_per_lr`` say how many input and
output pixels one LR pixel spans. Overlaps are blended with linear ramps, which
hides seams; an image that fits in one tile is processed whole (bit-exact with
untiled processing).
"""

from __future__ import annotations

from typing import Callable

import torch
from torch.nn import functional as F


def pad_to_multiple(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """Replicate-pad (B, C, H, W) at the bottom/right to a multiple of ``multiple``."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph or pw:
        x = F.pad(x, (0, pw, 0, ph), mode="replicate")
    return x


def _spans(n: int, tile: int, overlap: int) -> list[tuple[int, int]]:
    """(start, length) of the tiles covering ``n`` pixels: as few tiles of at most ``tile``
    as an ``overlap`` allows, all of one size and evenly spaced, so that no tile
    recomputes more than it must (a fixed-size last tile pushed against the edge can
    overlap its neighbour by most of a tile)."""
    if n <= tile:
        return [(0, n)]
    count = -(-(n - overlap) // (tile - overlap))  # ceil
    length = -(-(n - overlap) // count) + overlap  # <= tile
    last = n - length
    return [(round(i * last / (count - 1)), length) for i in range(count)]


def _ramp(length: int, start: int, n: int, overlap: int) -> torch.Tensor:
    """1-D blend weight: rises over ``overlap`` at interior edges, flat elsewhere."""
    w = torch.ones(length)
    if overlap > 0:
        r = (torch.arange(overlap, dtype=torch.float32) + 0.5) / overlap
        if start > 0:
            w[:overlap] = r
        if start + length < n:
            w[-overlap:] = r.flip(0)
    return w


def tile_count(lr_h: int, lr_w: int, tile: int, overlap: int) -> int:
    return len(_spans(lr_h, tile, overlap)) * len(_spans(lr_w, tile, overlap))


def run_tiled(
    fn: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    lr_h: int,
    lr_w: int,
    in_per_lr: int,
    out_per_lr: int,
    tile: int,
    overlap: int,
    on_tile: Callable[[], None] | None = None,
) -> torch.Tensor:
    """Apply ``fn`` to overlapping tiles of ``x`` (1, C, lr_h*in_per_lr, lr_w*in_per_lr).

    ``tile`` and ``overlap`` are in LR pixels. The result (on CPU, float32)
    has shape (1, C_out, lr_h*out_per_lr, lr_w*out_per_lr).
    """
    ys, xs = _spans(lr_h, tile, overlap), _spans(lr_w, tile, overlap)
    if len(ys) == 1 and len(xs) == 1:
        out = fn(x).float().cpu()
        if on_tile:
            on_tile()
        return out
    out = wsum = None
    k = out_per_lr
    for ty, th in ys:
        wy = _ramp(th, ty, lr_h, overlap)
        for tx, tw in xs:
            part = x[..., ty * in_per_lr : (ty + th) * in_per_lr, tx * in_per_lr : (tx + tw) * in_per_lr]
            res = fn(part).float().cpu()
            if out is None:
                out = torch.zeros(1, res.shape[1], lr_h * k, lr_w * k)
                wsum = torch.zeros(1, 1, lr_h * k, lr_w * k)
            w = torch.outer(wy, _ramp(tw, tx, lr_w, overlap))
            w = w.repeat_interleave(k, 0).repeat_interleave(k, 1)[None, None]
            out[..., ty * k : (ty + th) * k, tx * k : (tx + tw) * k] += res * w
            wsum[..., ty * k : (ty + th) * k, tx * k : (tx + tw) * k] += w
            if on_tile:
                on_tile()
    return out / wsum
