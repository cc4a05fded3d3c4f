"""Flow-Guided Rescaling Network (FGRN).

Three parts (paper Sec. 3.2-3.3):

* ``G_d`` (downscaler): squeeze (space-to-depth, sH x sW x 3 -> H x W x 3s^2, lossless),
  a 3x3 conv to ``nf`` channels, ``down_blocks`` plain ResBlocks (conv-ReLU-conv + skip,
  no batch norm), a 3x3 conv to 3 channels. That conv starts at zero and is added to the
  box average of the HR, so an untrained ``G_d`` is the box downscale. Its output is the
  *representation* x, which nothing constrains to look like an image.
* ``F`` (flow guidance module): ``flow_cells`` invertible cells on x. Cell k splits off
  one channel l1 (channel k mod 3, so every channel gets both roles) from the other two,
  l2, and applies Eq. 5: ``l1' = l1 + alpha(l2)``, ``l2' = l2 * exp(beta(l1')) + phi(l1')``
  (inverse: Eq. 6). alpha, beta, phi are the dense blocks of blocks.py, as in IRN
  (last conv zero, so every cell starts as the identity); beta is bounded, ``clamp * (2 sigmoid - 1)``.
* ``G_u`` (upscaler): 3x3 conv to ``nf``, ``up_blocks`` ResBlocks, a conv with a skip
  around the body, PixelShuffle stages (one per prime factor of the scale: x2 stages for
  powers of two, one x3 stage for 3), a 3x3 conv to 3 channels that starts at zero and
  is added to a bilinear upscale of its input, so an untrained ``G_u`` is bilinear.

Quantization (Sec. 3.3): the representation is rounded to 8 bits (straight-through)
before ``F`` so that ``F`` maps between two 8-bit grids; the LR ``F(Q(G_d(x)))`` is
rounded by ``downscale`` / the pipeline. Upscaling is ``G_u(F^-1(y))``.

Training (Sec. 3.4) uses two objectives: ``G_d`` and ``G_u`` only by the reconstruction
loss ``|y - G_u(Q(G_d(y)))|_1`` (Eq. 7, which bypasses ``F``: ``F`` is invertible),
``F`` only by the guide loss ``|F(x) - y_bic|_1 - gamma * logdet`` (Eq. 9) on a detached
representation. :meth:`FGRN.training_outputs` gives the tensors for both.

Default sizes (:data:`DEFAULTS`): the paper gives parameter counts (x2: 1.33M, x4: 3.35M)
but not block counts, so these were chosen to match the counts, with most of the budget
in ``G_u``: x2: nf=64, 2 down / 6 up ResBlocks, 3 flow cells = 1,317,815 parameters
(-0.9%); x4: nf=64, 4 down / 27 up ResBlocks, 4 flow cells = 3,361,650 (+0.3%). The paper has
no x8; irc's x8 keeps the x4 sizes (a third PixelShuffle stage, a wider squeeze head:
3,592,306 parameters), so it starts from the x4 weights in all but three tensors.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from irc.models.blocks import DenseBlock
from irc.models.rescaler import LR_CHANNELS, Rescaler, quantize

__all__ = ["DEFAULTS", "FGRN", "FlowCell", "ResBlock", "build"]

_X4 = {"nf": 64, "down_blocks": 4, "up_blocks": 27, "flow_cells": 4}
DEFAULTS: dict[int, dict] = {
    2: {"nf": 64, "down_blocks": 2, "up_blocks": 6, "flow_cells": 3},
    4: _X4,
    8: dict(_X4),  # no x8 in the paper: the x4 sizes, so a x8 run starts from the x4 weights
}


def _factors(scale: int) -> list[int]:
    """Prime factors of ``scale``, smallest first (the PixelShuffle stages)."""
    out, n, p = [], scale, 2
    while n > 1:
        while n % p == 0:
            out.append(p)
            n //= p
        p += 1
    return out


def _conv(cin: int, cout: int, zero: bool = False) -> nn.Conv2d:
    conv = nn.Conv2d(cin, cout, 3, padding=1)
    if zero:
        nn.init.zeros_(conv.weight)
        nn.init.zeros_(conv.bias)
    return conv


class ResBlock(nn.Module):
    """EDSR residual block: x + res_scale * conv(relu(conv(x)))."""

    def __init__(self, nf: int, res_scale: float = 1.0):
        super().__init__()
        self.conv1, self.conv2 = _conv(nf, nf), _conv(nf, nf)
        self.res_scale = res_scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.relu(self.conv1(x))) * self.res_scale


class FlowCell(nn.Module):
    """One invertible cell (Eq. 5/6) on a split (l1: 1 channel, l2: 2 channels)."""

    def __init__(self, c1: int = 1, c2: int = LR_CHANNELS - 1, clamp: float = 1.0):
        super().__init__()
        self.clamp = clamp
        self.alpha = DenseBlock(c2, c1)  # shift of l1 from l2
        self.beta = DenseBlock(c1, c2)  # log-scale of l2 from l1'
        self.phi = DenseBlock(c1, c2)  # shift of l2 from l1'

    def log_scale(self, l1: torch.Tensor) -> torch.Tensor:
        return self.clamp * (torch.sigmoid(self.beta(l1)) * 2 - 1)

    def forward(self, l1: torch.Tensor, l2: torch.Tensor):
        l1 = l1 + self.alpha(l2)
        s = self.log_scale(l1)
        return l1, l2 * torch.exp(s) + self.phi(l1), s.sum(dim=(1, 2, 3))

    def inverse(self, l1: torch.Tensor, l2: torch.Tensor):
        l2 = (l2 - self.phi(l1)) * torch.exp(-self.log_scale(l1))
        return l1 - self.alpha(l2), l2


class FGRN(Rescaler):
    """FGRN for an integer scale >= 2 (paper sizes: :data:`DEFAULTS` via :func:`build`)."""

    def __init__(self, scale: int = 2, nf: int = 64, down_blocks: int = 2, up_blocks: int = 6,
                 flow_cells: int = 3, clamp: float = 1.0, res_scale: float = 1.0):
        super().__init__()
        if isinstance(scale, bool) or int(scale) != scale or scale < 2:
            raise ValueError(f"FGRN scale must be an integer >= 2, got {scale!r}")
        self.scale = scale = int(scale)
        c = LR_CHANNELS
        # G_d
        self.d_head = _conv(c * scale * scale, nf)
        self.d_body = nn.Sequential(*(ResBlock(nf, res_scale) for _ in range(down_blocks)))
        self.d_tail = _conv(nf, c, zero=True)
        # F
        self.cells = nn.ModuleList(FlowCell(1, c - 1, clamp) for _ in range(flow_cells))
        # G_u
        self.u_head = _conv(c, nf)
        self.u_body = nn.Sequential(*(ResBlock(nf, res_scale) for _ in range(up_blocks)))
        self.u_body_tail = _conv(nf, nf)
        self.u_stages = nn.ModuleList(_conv(nf, nf * r * r) for r in _factors(scale))
        self.u_factors = _factors(scale)
        self.u_tail = _conv(nf, c, zero=True)

    # -- the three parts -------------------------------------------------------------
    def g_d(self, x: torch.Tensor) -> torch.Tensor:
        """HR (B, 3, sH, sW) -> float representation (B, 3, H, W)."""
        sq = self._layout(F.pixel_unshuffle(self._layout(x), self.scale))
        box = self._layout(sq.unflatten(1, (LR_CHANNELS, -1)).mean(2))  # box average
        return box + self.d_tail(self.d_body(self.d_head(sq)))

    def g_u(self, x: torch.Tensor) -> torch.Tensor:
        """Representation (B, 3, H, W) -> HR (B, 3, sH, sW)."""
        x = self._layout(x)
        h = self.u_head(x)
        h = h + self.u_body_tail(self.u_body(h))
        for conv, r in zip(self.u_stages, self.u_factors, strict=True):
            h = self._layout(F.pixel_shuffle(conv(h), r))
        base = F.interpolate(x, scale_factor=self.scale, mode="bilinear", align_corners=False)
        return self._layout(base) + self.u_tail(h)

    def _split(self, x: torch.Tensor, k: int):
        j = k % LR_CHANNELS
        rest = [i for i in range(LR_CHANNELS) if i != j]
        return self._layout(x[:, j : j + 1]), self._layout(x[:, rest])

    def _merge(self, l1: torch.Tensor, l2: torch.Tensor, k: int) -> torch.Tensor:
        j = k % LR_CHANNELS
        return self._layout(torch.cat([l2[:, :j], l1, l2[:, j:]], 1))

    def flow(self, x: torch.Tensor, with_logdet: bool = False):
        """F: representation -> LR; with ``with_logdet`` also the per-image log|det J| (B,)."""
        logdet = x.new_zeros(x.shape[0])
        h = self._layout(x)
        for k, cell in enumerate(self.cells):
            l1, l2, ld = cell(*self._split(h, k))
            h, logdet = self._merge(l1, l2, k), logdet + ld
        return (h, logdet) if with_logdet else h

    def flow_inverse(self, y: torch.Tensor) -> torch.Tensor:
        """F^-1: LR -> representation."""
        h = self._layout(y)
        for k in reversed(range(len(self.cells))):
            h = self._merge(*self.cells[k].inverse(*self._split(h, k)), k)
        return h

    # -- the rescaler interface -------------------------------------------------------
    def represent(self, x: torch.Tensor) -> torch.Tensor:
        """HR -> quantized representation Q(G_d(x)) (straight-through rounding)."""
        return quantize(self.g_d(x))

    def encode_lr(self, x: torch.Tensor) -> torch.Tensor:
        """HR -> F(Q(G_d(x))), the LR before the final 8-bit rounding."""
        return self.flow(self.represent(x))

    def upscale(self, y: torch.Tensor, temperature: float = 0.0,
                generator: torch.Generator | None = None) -> torch.Tensor:
        """LR -> G_u(F^-1(y)). FGRN has no latent: ``temperature`` and ``generator`` are
        accepted for the common interface and ignored."""
        return self.g_u(self.flow_inverse(y))

    def training_outputs(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Tensors for the two losses (Sec. 3.4).

        ``rep``: Q(G_d(x)); ``hr``: G_u(rep) (Eq. 7, trains G_d and G_u); ``lr``: F of the
        detached rep, unrounded, and ``logdet`` (B,): its log|det J| (Eq. 9, trains F only).
        """
        rep = self.represent(x)
        lr, logdet = self.flow(rep.detach(), with_logdet=True)
        return {"rep": rep, "hr": self.g_u(rep), "lr": lr, "logdet": logdet}


def build(scale: int, **params) -> FGRN:
    """The registry's constructor for ``arch: "fgrn"`` entries (defaults: :data:`DEFAULTS`)."""
    return FGRN(scale, **{**DEFAULTS.get(scale, {}), **params})
