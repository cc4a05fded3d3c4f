"""Invertible Rescaling Network (IRN).

Structure as in the IRN paper (Fig. 2): each downscaling module is a Haar
transform followed by InvBlocks. The first ``LR_CHANNELS`` channels of the
output form the low-resolution image ``y``; the rest are the latent ``z``.

``IRN(scale=4, haar_first=True, blocks_per_module=16)`` is IRN_E: all Haar
transforms first, then every InvBlock at the lowest resolution.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from irc.models.blocks import DenseBlock
from irc.models.rescaler import LR_CHANNELS, Rescaler, count_parameters, quantize

__all__ = ["IRN", "Haar", "InvBlock", "DenseBlock", "build", "quantize", "count_parameters", "LR_CHANNELS"]


class Haar(nn.Module):
    """2x2 Haar transform: (B, C, H, W) -> (B, 4C, H/2, W/2).

    Output channels are ordered [low-pass of every input channel, then the three
    high-pass bands], so the first C channels are the 2x2 box average.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = x[..., 0::2, 0::2]
        b = x[..., 0::2, 1::2]
        c = x[..., 1::2, 0::2]
        d = x[..., 1::2, 1::2]
        ll = (a + b + c + d) * 0.25
        h1 = (a - b + c - d) * 0.25
        h2 = (a + b - c - d) * 0.25
        h3 = (a - b - c + d) * 0.25
        return torch.cat([ll, h1, h2, h3], dim=1)

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        ll, h1, h2, h3 = torch.chunk(y, 4, dim=1)
        a = ll + h1 + h2 + h3
        b = ll - h1 + h2 - h3
        c = ll + h1 - h2 - h3
        d = ll - h1 - h2 + h3
        # interleave back: channel layout (C, [a, b, c, d]) -> pixel_shuffle(2)
        stacked = torch.stack([a, b, c, d], dim=2)  # B, C, 4, h, w
        bsz, ch, _, h, w = stacked.shape
        return F.pixel_shuffle(stacked.reshape(bsz, ch * 4, h, w), 2)


class InvBlock(nn.Module):
    """Coupling layer: additive on the low branch, enhanced affine on the high branch."""

    def __init__(self, channels: int, split: int = LR_CHANNELS, clamp: float = 1.0):
        super().__init__()
        self.split = split
        self.clamp = clamp
        high = channels - split
        self.phi = DenseBlock(high, split)  # updates the low branch
        self.eta = DenseBlock(split, high)  # shift of the high branch
        self.rho = DenseBlock(split, high)  # log-scale of the high branch

    def _log_scale(self, y1: torch.Tensor) -> torch.Tensor:
        return self.clamp * (torch.sigmoid(self.rho(y1)) * 2 - 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1, x2 = x[:, : self.split], x[:, self.split :]
        y1 = x1 + self.phi(x2)
        y2 = x2 * torch.exp(self._log_scale(y1)) + self.eta(y1)
        return torch.cat([y1, y2], 1)

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        y1, y2 = y[:, : self.split], y[:, self.split :]
        x2 = (y2 - self.eta(y1)) * torch.exp(-self._log_scale(y1))
        x1 = y1 - self.phi(x2)
        return torch.cat([x1, x2], 1)


class IRN(Rescaler):
    """IRN for scale 2**k. ``forward`` gives (y, z); ``inverse`` gives x."""

    def __init__(
        self,
        scale: int = 2,
        blocks_per_module: int = 8,
        haar_first: bool = False,
        in_channels: int = 3,
    ):
        super().__init__()
        levels = int(round(math.log2(scale)))
        if 2**levels != scale or levels < 1:
            raise ValueError(f"IRN scale must be a power of two >= 2, got {scale}")
        self.scale = scale
        self.in_channels = in_channels
        self.haar = Haar()
        # A "stage" is (number of Haar transforms, then a list of InvBlocks).
        stages: list[tuple[int, int]]
        if haar_first:
            stages = [(levels, blocks_per_module)]
        else:
            stages = [(1, blocks_per_module)] * levels
        self.stage_haars = [h for h, _ in stages]
        self.stages = nn.ModuleList()
        channels = in_channels
        for n_haar, n_blocks in stages:
            channels *= 4**n_haar
            self.stages.append(
                nn.ModuleList(InvBlock(channels, in_channels) for _ in range(n_blocks))
            )
        self.out_channels = channels

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self._layout(x)
        for n_haar, blocks in zip(self.stage_haars, self.stages):
            for _ in range(n_haar):
                h = self._layout(self.haar(h))
            for block in blocks:
                h = block(h)
        return h[:, : self.in_channels], h[:, self.in_channels :]

    def inverse(self, y: torch.Tensor, z: torch.Tensor | None = None) -> torch.Tensor:
        if z is None:
            z = y.new_zeros(y.shape[0], self.out_channels - self.in_channels, *y.shape[2:])
        h = self._layout(torch.cat([y, z], 1))
        for n_haar, blocks in zip(reversed(self.stage_haars), reversed(self.stages)):
            for block in reversed(blocks):
                h = block.inverse(h)
            for _ in range(n_haar):
                h = self._layout(self.haar.inverse(h))
        return h

    def encode_lr(self, x: torch.Tensor) -> torch.Tensor:
        """HR -> the LR part y of the forward pass (before the 8-bit rounding)."""
        return self(x)[0]

    def upscale(self, y: torch.Tensor, temperature: float = 0.0,
                generator: torch.Generator | None = None) -> torch.Tensor:
        """LR -> HR with z = 0, or z ~ N(0, T^2) when ``temperature`` > 0."""
        z = None
        if temperature > 0:
            shape = (y.shape[0], self.out_channels - self.in_channels, *y.shape[2:])
            z = torch.randn(shape, generator=generator, device="cpu").to(y) * temperature
        return self.inverse(y, z)


def build(scale: int, **params) -> IRN:
    """The registry's constructor for ``arch: "irn"`` entries."""
    return IRN(scale, **params)
