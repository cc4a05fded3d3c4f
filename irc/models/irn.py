"""Invertible Rescaling Network (IRN).

Structure as in the IRN paper (Fig. 2): each downscaling module is a Haar
transform followed by InvBlocks. The first ``LR_CHANNELS`` channels of the
output form the low-resolution image ``y``; the rest are the latent ``z``.

``IRN(scale=4, haar_first=True, blocks_per_module=16)`` is IRN_E: all Haar
transforms first, then every InvBlock at the lowest resolution.

``IRN(scale=3, downsampling="learned", blocks_per_module=12)`` is IRN_LD (paper
section 3.3.2): one module whose Haar transform is replaced by a squeeze and a
learnable invertible 1x1 convolution (:class:`LearnedDownsampling`), initialised
so that its first channels are the box average; any integer scale >= 2.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from irc.models.blocks import DenseBlock, Haar, InvBlock
from irc.models.rescaler import LR_CHANNELS, Rescaler, count_parameters, quantize, sample_latent

__all__ = ["IRN", "LR_CHANNELS", "DenseBlock", "Haar", "InvBlock", "LearnedDownsampling", "build", "count_parameters",
           "quantize"]


def average_first_basis(factor: int, channels: int = 3) -> torch.Tensor:
    """The (C f^2, C f^2) float64 matrix that LearnedDownsampling starts as.

    Per colour, the f x f 2-D DCT-II basis scaled by 1/f: basis vector 0 is the
    constant 1/f^2 (the f x f box average), the others are orthogonal detail bands
    of the same magnitude as the Haar bands (0.25 at f = 2). Input index (the
    layout of ``pixel_unshuffle``): c f^2 + i f + j; output index: k C + c for
    basis vector k of colour c, so the first C outputs are the colour averages.
    """
    n = torch.arange(factor, dtype=torch.float64)
    dct = torch.cos(math.pi * (2 * n[None, :] + 1) * n[:, None] / (2 * factor))  # (u, n)
    dct[0] *= math.sqrt(1 / factor)
    dct[1:] *= math.sqrt(2 / factor)
    basis = torch.kron(dct, dct) / factor  # row k = u f + v, column i f + j
    f2 = factor * factor
    w = torch.zeros(channels * f2, channels * f2, dtype=torch.float64)
    for c in range(channels):
        w[c::channels, c * f2:(c + 1) * f2] = basis
    return w


class LearnedDownsampling(nn.Module):
    """Squeeze by ``factor`` then an invertible 1x1 convolution (IRN paper section 3.3.2).

    (B, C, H, W) -> (B, C f^2, H/f, W/f). The convolution is LU-parametrised as in
    GLOW: W = P L (U + diag(sign exp(log_s))) with a fixed permutation ``perm`` and
    ``sign``, L unit lower triangular and U strictly upper triangular (only the strict
    triangles of ``lower`` and ``upper`` are used), so its inverse and log-determinant
    are exact and cheap. It starts as :func:`average_first_basis`: the first C
    outputs are the f x f box average of each colour.
    """

    def __init__(self, factor: int, channels: int = 3):
        super().__init__()
        if factor < 2:
            raise ValueError(f"LearnedDownsampling factor must be >= 2, got {factor}")
        self.factor, self.channels = factor, channels
        perm, lower, upper = torch.linalg.lu(average_first_basis(factor, channels))
        diag = torch.diagonal(upper)
        self.register_buffer("perm", perm.float())
        self.register_buffer("sign", torch.sign(diag).float())
        self.lower = nn.Parameter(torch.tril(lower, -1).float())
        self.upper = nn.Parameter(torch.triu(upper, 1).float())
        self.log_s = nn.Parameter(diag.abs().log().float())

    def _factors(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(P, L, U) in float64: a 27 x 27 matrix costs nothing, and float64 keeps the inverse exact."""
        eye = torch.eye(self.log_s.numel(), dtype=torch.float64, device=self.log_s.device)
        lower = torch.tril(self.lower.double(), -1) + eye
        upper = torch.triu(self.upper.double(), 1) + torch.diag(self.sign.double() * self.log_s.double().exp())
        return self.perm.double(), lower, upper

    def matrix(self, inverse: bool = False) -> torch.Tensor:
        """W (or its inverse, U^-1 L^-1 P^T) in float64, out of any autocast."""
        with torch.autocast(self.log_s.device.type, enabled=False):
            perm, lower, upper = self._factors()
            if not inverse:
                return perm @ lower @ upper
            solved = torch.linalg.solve_triangular(lower, perm.T, upper=False, unitriangular=True)
            return torch.linalg.solve_triangular(upper, solved, upper=True)

    def _traced_matrix(self, inverse: bool) -> torch.Tensor:
        """W or W^-1 computed outside the tracer (numpy), so an exporter's graph holds it as a constant."""
        import numpy as np

        perm, lower, upper, sign, log_s = (t.data.cpu().numpy().astype(np.float64) for t in (
            self.perm, self.lower, self.upper, self.sign, self.log_s))
        w = perm @ (np.tril(lower, -1) + np.eye(len(log_s))) @ (np.triu(upper, 1) + np.diag(sign * np.exp(log_s)))
        return torch.from_numpy(np.linalg.inv(w) if inverse else w)

    def _conv(self, x: torch.Tensor, inverse: bool) -> torch.Tensor:
        w = self._traced_matrix(inverse) if torch.jit.is_tracing() else self.matrix(inverse)
        n = w.shape[0]
        return F.conv2d(x, w.to(x.dtype).reshape(n, n, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv(F.pixel_unshuffle(x, self.factor), inverse=False)

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        return F.pixel_shuffle(self._conv(y, inverse=True), self.factor)

    def log_det(self) -> torch.Tensor:
        """log |det W|: the log-determinant of the 1x1 convolution per output pixel."""
        return self.log_s.sum()


class IRN(Rescaler):
    """IRN. ``forward`` gives (y, z); ``inverse`` gives x.

    ``downsampling="haar"``: scale 2**k, one Haar transform per module (or all first,
    ``haar_first``). ``"learned"``: any integer scale >= 2, one module: a
    :class:`LearnedDownsampling` by the scale, then ``blocks_per_module`` InvBlocks.
    """

    def __init__(
        self,
        scale: int = 2,
        blocks_per_module: int = 8,
        haar_first: bool = False,
        in_channels: int = 3,
        downsampling: str = "haar",
    ):
        super().__init__()
        if downsampling not in ("haar", "learned"):
            raise ValueError(f"IRN downsampling must be 'haar' or 'learned', got {downsampling!r}")
        self.scale = scale
        self.in_channels = in_channels
        self.downsampling = downsampling
        # A "stage" is (number of Haar transforms, then a list of InvBlocks).
        stages: list[tuple[int, int]]
        if downsampling == "learned":
            if int(scale) != scale or scale < 2:
                raise ValueError(f"IRN with learned downsampling needs an integer scale >= 2, got {scale}")
            if haar_first:
                raise ValueError("haar_first applies to Haar downsampling only")
            self.down = LearnedDownsampling(int(scale), in_channels)
            stages, factor = [(1, blocks_per_module)], scale * scale
        else:
            levels = round(math.log2(scale))
            if 2**levels != scale or levels < 1:
                raise ValueError(f"IRN scale must be a power of two >= 2, got {scale}")
            self.haar = Haar()
            if haar_first:
                stages = [(levels, blocks_per_module)]
            else:
                stages = [(1, blocks_per_module)] * levels
            factor = 4
        self.stage_haars = [h for h, _ in stages]
        self.stages = nn.ModuleList()
        channels = in_channels
        for n_haar, n_blocks in stages:
            channels *= factor**n_haar
            self.stages.append(
                nn.ModuleList(InvBlock(channels, in_channels) for _ in range(n_blocks))
            )
        self.out_channels = channels

    @property
    def squeeze(self) -> nn.Module:
        """The downsampling step of a module: the Haar transform, or the learned one."""
        return self.down if self.downsampling == "learned" else self.haar

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self._layout(x)
        for n_haar, blocks in zip(self.stage_haars, self.stages):
            for _ in range(n_haar):
                h = self._layout(self.squeeze(h))
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
                h = self._layout(self.squeeze.inverse(h))
        return h

    def encode_lr(self, x: torch.Tensor) -> torch.Tensor:
        """HR -> the LR part y of the forward pass (before the 8-bit rounding)."""
        return self(x)[0]

    def upscale(self, y: torch.Tensor, temperature: float = 0.0,
                generator: torch.Generator | None = None) -> torch.Tensor:
        """LR -> HR with z = 0, or z ~ N(0, T^2) when ``temperature`` > 0."""
        shape = (y.shape[0], self.out_channels - self.in_channels, *y.shape[2:])
        return self.inverse(y, sample_latent(shape, y, temperature, generator))


def build(scale: int, **params) -> IRN:
    """The registry's constructor for ``arch: "irn"`` entries."""
    return IRN(scale, **params)
