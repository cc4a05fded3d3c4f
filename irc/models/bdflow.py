"""BDFlow: Boundary-aware Decoupled Flow Networks for extreme rescaling (BDFlow paper, section 3).

Per x2 level a Haar transform (:class:`irc.models.blocks.Haar`) and ``blocks_per_level`` InvBlocks
(paper section 4.2: two), the whole tensor passing on to the next level as in IRN: at x8 the
network ends with 3 * 4^3 = 192 channels at 1/8 of the resolution. The output is split three ways
(section 3.2): channels [0:3] are the LR image y, channel [3] the boundary map B (one channel at LR
resolution, learned towards the max-pooled Boundary-aware Mask of :mod:`irc.bam` and stored beside
the LR, quantised to ``bits`` bits), the rest the latent z, pushed towards N(0, 1) and set to 0
(or drawn at a temperature) when decoding.

The InvBlock (Eq. 6, :class:`irc.models.blocks.InvBlock`) is IRN's coupling, an additive update of the 3 LR
channels from phi(u2) and an affine update of the others, u2 * exp(rho(u1)) + eta(u1) with a
clamped log-scale, whose subnets phi, rho, eta are residual networks (:class:`ResSubnet`) as the
paper's Fig. 3: a 3x3 convolution to ``nf`` features, ``res_blocks`` residual blocks
(conv-ReLU-conv + skip) and a 3x3 convolution out, zero-initialised so that every InvBlock starts
as the identity. An untrained BDFlow therefore gives the box average as LR and the Haar detail as
B and z; its decode with B = 0 and z = 0 is the nearest-neighbour enlargement of the LR.

Sizes (:data:`DEFAULTS`), chosen to meet the paper's Table 2 with two InvBlocks per level:
x8: nf 60, 2 residual blocks: 3,155,670 parameters (paper 3.16M); x16: nf 42, 3 residual blocks:
4,610,616 (paper 4.58M). The paper gives no width or depth; these are the (nf, res_blocks) pairs
closest to its counts with small depth (x8: the closest of all pairs but nf = 232 with no residual
block; x16: within 0.7%, a deeper block than x8 for its narrower width).
"""

from __future__ import annotations

import math
from functools import partial

import torch
from torch import nn
from torch.nn import functional as F

from irc.bam import quantize_levels
from irc.models.blocks import Haar, InvBlock, init_subnet
from irc.models.rescaler import LR_CHANNELS, Rescaler, quantize, sample_latent

NAME = "BDFlow"
SIDE_CHANNELS = 1  # the boundary map B
DEFAULTS = {
    8: dict(blocks_per_level=2, nf=60, res_blocks=2),  # 3,155,670 parameters (paper: 3.16M)
    16: dict(blocks_per_level=2, nf=42, res_blocks=3),  # 4,610,616 parameters (paper: 4.58M)
}


class ResSubnet(nn.Module):
    """conv3x3 cin -> nf, ``res_blocks`` x [conv3x3-ReLU-conv3x3 + skip], conv3x3 nf -> cout.

    Hidden convolutions: Xavier-normal scaled by 0.1 (IRN's dense-block init), zero biases; the last
    convolution is zero, so the subnet outputs 0 until it learns."""

    def __init__(self, cin: int, cout: int, nf: int, res_blocks: int):
        super().__init__()
        self.head = nn.Conv2d(cin, nf, 3, padding=1)
        self.body = nn.ModuleList(
            nn.ModuleList([nn.Conv2d(nf, nf, 3, padding=1), nn.Conv2d(nf, nf, 3, padding=1)])
            for _ in range(res_blocks)
        )
        self.tail = nn.Conv2d(nf, cout, 3, padding=1)
        init_subnet([self.head, *(c for pair in self.body for c in pair)], self.tail)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.head(x)
        for first, second in self.body:
            h = h + second(F.relu(first(h)))
        return self.tail(h)


class BDFlow(Rescaler):
    """BDFlow. ``forward`` gives (y, b, z); ``inverse(y, b, z)`` gives x.

    The codec stores the 8-bit LR y and the boundary map b quantised to ``side_bits`` bits
    (:meth:`quantize_side`, 2**bits levels in [0, 1]); ``upscale`` takes both, concatenated on the
    channel axis (3 + ``side_channels`` channels). ``downscale`` gives what the decoder receives:
    the 8-bit LR and the quantised boundary map, (B, 4, H/s, W/s), so that ``upscale(downscale(x))``
    is the round trip (the trainers' validation uses exactly that). ``encode_lr`` is the LR and the
    quantised map before the 8-bit rounding, what the pipeline tiles, blends and rounds;
    ``encode_side`` the raw boundary channel.
    """

    side_channels = SIDE_CHANNELS

    def __init__(self, scale: int = 8, blocks_per_level: int = 2, nf: int = 60, res_blocks: int = 2,
                 bits: int = 1, clamp: float = 1.0):
        super().__init__()
        levels = round(math.log2(scale)) if isinstance(scale, int) and scale >= 2 else 0
        if levels < 1 or 2**levels != scale:
            raise ValueError(f"BDFlow scale must be a power of two >= 2, got {scale}")
        if bits not in (1, 2, 3):
            raise ValueError(f"BDFlow boundary map bits must be 1, 2 or 3, got {bits}")
        if blocks_per_level < 1 or nf < 1 or res_blocks < 0:
            raise ValueError(f"BDFlow needs blocks_per_level >= 1, nf >= 1, res_blocks >= 0, got "
                             f"{blocks_per_level}, {nf}, {res_blocks}")
        self.scale, self.side_bits, self.levels = scale, bits, levels
        self.haar = Haar()
        self.stages = nn.ModuleList()
        subnet = partial(ResSubnet, nf=nf, res_blocks=res_blocks)  # phi, rho, eta of every InvBlock
        channels = LR_CHANNELS
        for _ in range(levels):
            channels *= 4
            self.stages.append(nn.ModuleList(
                InvBlock(channels, LR_CHANNELS, clamp, subnet) for _ in range(blocks_per_level)))
        self.out_channels = channels
        self.latent_channels = channels - LR_CHANNELS - SIDE_CHANNELS

    # -- the flow ----------------------------------------------------------------------------

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        h = self._layout(x)
        for blocks in self.stages:
            h = self._layout(self.haar(h))
            for block in blocks:
                h = block(h)
        side = LR_CHANNELS + SIDE_CHANNELS
        return h[:, :LR_CHANNELS], h[:, LR_CHANNELS:side], h[:, side:]

    def inverse(self, y: torch.Tensor, b: torch.Tensor, z: torch.Tensor | None = None) -> torch.Tensor:
        """(y, b, z) -> x; z = 0 (the mode of the latent) when None."""
        if z is None:
            z = y.new_zeros(y.shape[0], self.latent_channels, *y.shape[2:])
        h = self._layout(torch.cat([y, b.to(y.dtype), z.to(y.dtype)], 1))
        for blocks in reversed(self.stages):
            for block in reversed(blocks):
                h = block.inverse(h)
            h = self._layout(self.haar.inverse(h))
        return h

    # -- what the codec uses -----------------------------------------------------------------

    def encode_lr(self, x: torch.Tensor) -> torch.Tensor:
        """HR -> what the encoder stores, before the 8-bit rounding: the LR y and the quantised
        boundary map, (B, 3 + 1, H/s, W/s). The pipeline blends tiles on it, rounds it to 8 bits,
        codes the first 3 channels with the codec and the last as the BNDY chunk (irc.boundary)."""
        y, b, _ = self(x)
        return torch.cat([y, self.quantize_side(b)], 1)

    def encode_side(self, x: torch.Tensor) -> torch.Tensor:
        """HR -> the boundary channel b in the network's raw values (before :meth:`quantize_side`)."""
        return self(x)[1]

    def quantize_side(self, b: torch.Tensor) -> torch.Tensor:
        """b clamped to [0, 1] and rounded to the 2**side_bits levels k / (2**side_bits - 1),
        straight-through (the gradient passes the rounding as the identity)."""
        return quantize_levels(b, self.side_bits)

    def downscale(self, x: torch.Tensor) -> torch.Tensor:
        """What the decoder receives: the 8-bit LR and the quantised boundary map, (B, 3 + 1, H/s, W/s)."""
        y, b, _ = self(x)
        return torch.cat([quantize(y), self.quantize_side(b)], 1)

    def upscale(self, lr: torch.Tensor, temperature: float = 0.0,
                generator: torch.Generator | None = None) -> torch.Tensor:
        """[y, quantised b] (3 + side_channels channels) -> HR, with z = 0, or z ~ N(0, T^2) drawn on
        the CPU with ``generator`` when ``temperature`` > 0 (:func:`irc.models.rescaler.sample_latent`)."""
        if lr.shape[1] != LR_CHANNELS + SIDE_CHANNELS:
            raise ValueError(f"BDFlow upscales the LR and its boundary map ({LR_CHANNELS + SIDE_CHANNELS} "
                             f"channels), got {lr.shape[1]}")
        shape = (lr.shape[0], self.latent_channels, *lr.shape[2:])
        # the map arrives as 8-bit values (tiles blended, or k / (2^bits - 1) rounded): snap it to its levels
        side = self.quantize_side(lr[:, LR_CHANNELS:])
        return self.inverse(lr[:, :LR_CHANNELS], side, sample_latent(shape, lr, temperature, generator))


def build(scale: int, **params) -> BDFlow:
    """The registry's constructor for ``arch: "bdflow"`` entries: the paper-size network of the scale
    (:data:`DEFAULTS`), with ``params`` overriding it."""
    return BDFlow(scale, **{**DEFAULTS.get(scale, {}), **params})
