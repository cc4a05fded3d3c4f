"""IRN_color: invertible decolorisation-colorisation (IRN paper, sections 3.4 and 4.3).

The graying module replaces IRN's downsampling: a fixed YCbCr transform (BT.601, full
range, the JPEG one) splits the colour image into luma and chroma, and 8 InvBlocks (IRN's
coupling, split 1 / 2) mix them. The first output channel is the grayscale image that is
stored (any codec, 8 bits); the other two are the latent z, driven towards N(0, 1) and
set to 0 (its mode) on decode, as the paper's z = 0 choice for colour (section 3.4.2).

It runs through the rescaler interface at scale 1 with a one-channel LR
(``lr_channels = 1``): ``encode_lr`` gives the grayscale image, ``upscale`` the colour
one, so the tiling, the backends and the pipeline treat it as any other rescaler. The
chroma is centred (Cb - 0.5, Cr - 0.5), so the untrained network (every InvBlock starts as
the identity) stores the plain BT.601 luma and decodes it to a neutral gray image.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from irc.models.blocks import InvBlock
from irc.models.rescaler import Rescaler, sample_latent

NAME = "IRN_color"
LR_CHANNELS = 1  # the stored image is grayscale
DEFAULTS = {1: dict(blocks=8)}  # the paper's graying module: 8 InvBlocks (section 4.1)

# RGB -> (Y, Cb - 0.5, Cr - 0.5), BT.601 full range (JFIF)
_TO_YCC = ((0.299, 0.587, 0.114),
           (-0.168735892, -0.331264108, 0.5),
           (0.5, -0.418687589, -0.081312411))


class IRNColor(Rescaler):
    """RGB (B, 3, H, W) <-> gray (B, 1, H, W) + latent (B, 2, H, W); ``forward`` gives (y, z)."""

    lr_channels = LR_CHANNELS

    def __init__(self, scale: int = 1, blocks: int = 8):
        super().__init__()
        if scale != 1:
            raise ValueError(f"IRN_color keeps the resolution: its scale is 1, got {scale}")
        if blocks < 1:
            raise ValueError(f"IRN_color needs at least one InvBlock, got {blocks}")
        self.scale = 1
        to_ycc = torch.tensor(_TO_YCC, dtype=torch.float64)
        # not in the weights file: fixed, exact, computed here in float64
        self.register_buffer("to_ycc", to_ycc.float(), persistent=False)
        self.register_buffer("from_ycc", torch.linalg.inv(to_ycc).float(), persistent=False)
        self.blocks = nn.ModuleList(InvBlock(3, split=LR_CHANNELS) for _ in range(blocks))

    @staticmethod
    def _mix(x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, m.to(x.dtype)[:, :, None, None])

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self._layout(self._mix(x, self.to_ycc))
        for block in self.blocks:
            h = block(h)
        return h[:, :LR_CHANNELS], h[:, LR_CHANNELS:]

    def inverse(self, y: torch.Tensor, z: torch.Tensor | None = None) -> torch.Tensor:
        if z is None:
            z = y.new_zeros(y.shape[0], 3 - LR_CHANNELS, *y.shape[2:])
        h = self._layout(torch.cat([y, z], 1))
        for block in reversed(self.blocks):
            h = block.inverse(h)
        return self._layout(self._mix(h, self.from_ycc))

    def encode_lr(self, x: torch.Tensor) -> torch.Tensor:
        """RGB -> the grayscale image (before the 8-bit rounding)."""
        return self(x)[0]

    def upscale(self, y: torch.Tensor, temperature: float = 0.0,
                generator: torch.Generator | None = None) -> torch.Tensor:
        """Gray -> RGB with z = 0, or z ~ N(0, T^2) when ``temperature`` > 0."""
        shape = (y.shape[0], 3 - LR_CHANNELS, *y.shape[2:])
        return self.inverse(y, sample_latent(shape, y, temperature, generator))


def build(scale: int = 1, **params) -> IRNColor:
    """The registry's constructor for ``arch: "irn_color"`` entries."""
    return IRNColor(scale, **{**DEFAULTS.get(scale, {}), **params})
