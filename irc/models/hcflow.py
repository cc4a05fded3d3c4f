"""Hierarchical Conditional Flow (HCFlow), image-rescaling configuration.

The HCFlow paper (``../shared/seeds/001_838c1e17970113e7.txt``, Sec. 3.2-3.3, Fig. 3, and
Sec. 4.1 "Image rescaling") as built here, for a scale 2^L (the paper: x4, L = 2):

* **Main flow**, level l = 1..L: a Haar transform (in place of the paper's squeeze), then K
  flow steps (ActNorm, then an affine coupling; no invertible 1x1 convolutions, as the
  paper's rescaling model), then a split: the first half of the channels, ``y_l``, goes on
  to the next level, the rest, ``a_l``, is the high-frequency part of this level. At the
  last level ``y_L`` keeps 3 channels: the LR image. The Haar transform puts the box
  average first, and every coupling starts as the identity, so an untrained network's LR is
  the 2^L x 2^L box average.
* **Conditional features** (Eq. 5): ``c_L = phi_L(y_L)``, ``c_l = phi_l([up(c_{l+1}), y_l])``
  with ``up`` a x2 nearest-neighbour upscale; each ``phi`` is a 3x3 conv, ``rrdb``
  RRDBs (ESRGAN) and a 3x3 conv with a skip. Computed from the LR side only, they exist in
  the decoder too.
* **Additional flows**: ``a_l -> z_l`` by P conditional steps (ActNorm, an affine coupling
  whose subnet also sees ``c_l``). ``z`` is the latent: the decoder takes z = 0 (the
  conditional mode, temperature 0) or samples N(0, T^2).

Encoding needs the main flow only (``encode_lr``); decoding runs the levels from L down to
1: ``c_L`` from the LR, ``a_L`` from ``z_L``, the inverse main flow of level L gives
``y_{L-1}``, and so on.

Coupling: the channels are cut into two halves; step k transforms one half (the second on
even k, the first on odd k, so both change without a permutation) as
``h <- h * exp(s) + t``, with ``(s, t) = subnet(other half [, c])``, ``s`` bounded by
``clamp * (2 sigmoid - 1)``. The subnet is conv3x3 -> ReLU -> conv1x1 -> ReLU -> conv3x3,
the last one starting at zero (Glow), so every step starts as the identity. ActNorm is a
learned per-channel scale (log-parametrised) and shift, starting at the identity.

Sizes (:data:`DEFAULTS`): the paper's L = 2, K = 8, P = 6 and two 3-RRDB extractors; it
gives 4.4M parameters but no widths, so ``nf`` = 64, ``gc`` = 24 and coupling width 64 were
chosen to land near that count: 4,283,782 parameters (-2.6%; 3.33M of them in the two
extractors, which only the decoder runs).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from irc.models.blocks import RRDB, Haar
from irc.models.rescaler import LR_CHANNELS, Rescaler, sample_latent

__all__ = ["DEFAULTS", "NAME", "ActNorm", "Coupling", "HCFlow", "build"]

NAME = "HCFlow"  # as the docs and the registry write the family

DEFAULTS: dict[int, dict] = {
    4: {"flow_steps": 8, "cond_steps": 6, "hidden": 64, "nf": 64, "gc": 24, "rrdb": 3},
}


class ActNorm(nn.Module):
    """Per-channel affine map ``x * exp(log_scale) + bias``, starting as the identity."""

    def __init__(self, channels: int):
        super().__init__()
        self.log_scale = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.bias = nn.Parameter(torch.zeros(1, channels, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.log_scale.exp() + self.bias

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        return (y - self.bias) * (-self.log_scale).exp()


class Coupling(nn.Module):
    """ActNorm, then an affine coupling of one half of the channels given the other half
    (and ``cond_channels`` of conditional features, when > 0)."""

    def __init__(self, channels: int, parity: int, hidden: int = 64, cond_channels: int = 0,
                 clamp: float = 1.0):
        super().__init__()
        self.norm = ActNorm(channels)
        half = channels // 2
        # (start, stop) of the fixed half (the subnet's input) and of the transformed half
        self.fixed, self.moved = ((0, half), (half, channels)) if parity % 2 == 0 else ((half, channels), (0, half))
        n_fixed, n_moved = self.fixed[1] - self.fixed[0], self.moved[1] - self.moved[0]
        self.clamp = clamp
        self.net = nn.Sequential(
            nn.Conv2d(n_fixed + cond_channels, hidden, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(hidden, hidden, 1), nn.ReLU(inplace=True),
            nn.Conv2d(hidden, 2 * n_moved, 3, padding=1),
        )
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)

    def _params(self, fixed: torch.Tensor, cond: torch.Tensor | None):
        inp = fixed if cond is None else torch.cat([fixed, cond], 1)
        raw_s, t = self.net(inp).chunk(2, dim=1)
        return self.clamp * (torch.sigmoid(raw_s) * 2 - 1), t

    def _parts(self, h: torch.Tensor):
        return h[:, self.fixed[0]:self.fixed[1]], h[:, self.moved[0]:self.moved[1]]

    def _join(self, fixed: torch.Tensor, moved: torch.Tensor) -> torch.Tensor:
        return torch.cat([fixed, moved] if self.fixed[0] == 0 else [moved, fixed], 1)

    def forward(self, h: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        fixed, moved = self._parts(self.norm(h))
        s, t = self._params(fixed, cond)
        return self._join(fixed, moved * s.exp() + t)

    def inverse(self, h: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        fixed, moved = self._parts(h)
        s, t = self._params(fixed, cond)
        return self.norm.inverse(self._join(fixed, (moved - t) * (-s).exp()))


class Extractor(nn.Module):
    """A conditional-feature extractor phi_l: conv, ``rrdb`` RRDBs, conv with a skip."""

    def __init__(self, cin: int, nf: int, gc: int, rrdb: int):
        super().__init__()
        self.head = nn.Conv2d(cin, nf, 3, padding=1)
        self.body = nn.Sequential(*(RRDB(nf, gc) for _ in range(rrdb)))
        self.tail = nn.Conv2d(nf, nf, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.head(x)
        return h + self.tail(self.body(h))


class HCFlow(Rescaler):
    """HCFlow for a scale 2^L. ``forward(x)`` -> (LR y_L, [z_1, ..., z_L]); ``inverse(y, zs)`` -> x."""

    def __init__(self, scale: int = 4, flow_steps: int = 8, cond_steps: int = 6, hidden: int = 64,
                 nf: int = 64, gc: int = 24, rrdb: int = 3, clamp: float = 1.0):
        super().__init__()
        levels = round(math.log2(scale)) if isinstance(scale, int) and scale >= 2 else 0
        if levels < 1 or 2**levels != scale:
            raise ValueError(f"HCFlow scale must be a power of two >= 2, got {scale!r}")
        self.scale, self.levels = scale, levels
        self.haar = Haar()
        self.main, self.cond, self.phi = nn.ModuleList(), nn.ModuleList(), nn.ModuleList()
        self.keep: list[int] = []  # channels of y_l kept at each level
        channels = LR_CHANNELS
        for level in range(levels):
            channels *= 4
            keep = LR_CHANNELS if level == levels - 1 else channels // 2
            self.main.append(nn.ModuleList(Coupling(channels, k, hidden, 0, clamp) for k in range(flow_steps)))
            self.cond.append(nn.ModuleList(Coupling(channels - keep, k, hidden, nf, clamp)
                                           for k in range(cond_steps)))
            last = level == levels - 1
            self.phi.append(Extractor(keep + (0 if last else nf), nf, gc, rrdb))
            self.keep.append(keep)
            channels = keep
        self.latent_channels = [4 * (LR_CHANNELS if i == 0 else self.keep[i - 1]) - self.keep[i]
                                for i in range(levels)]

    # -- the two halves of the flow ---------------------------------------------------
    def _down(self, x: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """The main flow: x -> ([y_1 .. y_L], [a_1 .. a_L])."""
        ys, as_ = [], []
        h = self._layout(x)
        for level in range(self.levels):
            h = self._layout(self.haar(h))
            for step in self.main[level]:
                h = step(h)
            keep = self.keep[level]
            ys.append(self._layout(h[:, :keep]))
            as_.append(self._layout(h[:, keep:]))
            h = ys[-1]
        return ys, as_

    def _features(self, level: int, y: torch.Tensor, c_above: torch.Tensor | None) -> torch.Tensor:
        """c_l: phi_l(y_L) at the last level, phi_l([up(c_{l+1}), y_l]) below it."""
        if c_above is None:
            return self.phi[level](y)
        up = F.interpolate(c_above, scale_factor=2, mode="nearest")
        return self.phi[level](self._layout(torch.cat([up, y], 1)))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """HR -> (LR y_L before rounding, latents [z_1 .. z_L])."""
        ys, as_ = self._down(x)
        zs: list[torch.Tensor] = [None] * self.levels  # type: ignore[list-item]
        c = None
        for level in reversed(range(self.levels)):
            c = self._features(level, ys[level], c)
            h = as_[level]
            for step in self.cond[level]:
                h = step(h, c)
            zs[level] = h
        return ys[-1], zs

    def inverse(self, y: torch.Tensor, zs: list[torch.Tensor | None] | None = None) -> torch.Tensor:
        """(LR, latents; None: z = 0) -> HR, level L first."""
        zs = zs or [None] * self.levels
        h, c = self._layout(y), None
        for level in reversed(range(self.levels)):
            c = self._features(level, h, c)
            a = zs[level]
            if a is None:
                a = h.new_zeros(h.shape[0], self.latent_channels[level], *h.shape[2:])
            a = self._layout(a)
            for step in reversed(self.cond[level]):
                a = step.inverse(a, c)
            h = self._layout(torch.cat([h, a], 1))
            for step in reversed(self.main[level]):
                h = step.inverse(h)
            h = self._layout(self.haar.inverse(h))
        return h

    # -- the rescaler interface -------------------------------------------------------
    def encode_lr(self, x: torch.Tensor) -> torch.Tensor:
        """HR -> the LR y_L (the main flow only: no feature extractor runs when encoding)."""
        return self._down(x)[0][-1]

    def latent_shapes(self, y: torch.Tensor) -> list[tuple[int, ...]]:
        """The shape of each z_l for the LR ``y``."""
        b, _, h, w = y.shape
        return [(b, c, h * 2 ** (self.levels - 1 - i), w * 2 ** (self.levels - 1 - i))
                for i, c in enumerate(self.latent_channels)]

    def upscale(self, y: torch.Tensor, temperature: float = 0.0,
                generator: torch.Generator | None = None) -> torch.Tensor:
        """LR -> HR with z = 0 (temperature 0, the conditional mode) or z ~ N(0, T^2)."""
        zs = [sample_latent(shape, y, temperature, generator) for shape in self.latent_shapes(y)]
        return self.inverse(y, zs if temperature > 0 else None)


def build(scale: int, **params) -> HCFlow:
    """The registry's constructor for ``arch: "hcflow"`` entries (defaults: :data:`DEFAULTS`)."""
    return HCFlow(scale, **{**DEFAULTS.get(scale, {}), **params})
