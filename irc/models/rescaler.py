"""The one interface every rescaling family offers (IRN, FGRN, and the ones to come).

A rescaler is a :class:`torch.nn.Module` with a ``scale`` and two passes:

* ``encode_lr(x)``: HR in [0, 1], (B, 3, H, W) with H and W multiples of the scale,
  -> LR (B, 3, H/s, W/s) before the 8-bit rounding. The pipeline blends tiles on
  this signal and then rounds it; ``downscale`` rounds it with a straight-through
  gradient for training.
* ``upscale(y, temperature=0.0, generator=None)``: LR -> HR. Families with a latent
  draw it from N(0, T^2) with ``generator`` when ``temperature`` > 0 (z = 0, the
  mode, otherwise); families without one ignore both.

``api.py``, the tiling, the bench, the CRM trainer and the validation in the
trainers use nothing else. A family is one module ``irc/models/<arch>.py`` that
defines ``build(scale, **params)`` (see :mod:`irc.models.registry`).
"""

from __future__ import annotations

import torch

from irc.models.layout import ChannelsLast

LR_CHANNELS = 3


def quantize(y: torch.Tensor) -> torch.Tensor:
    """Clamp to [0, 1] and round to 8 bits, with a straight-through gradient."""
    y = y.clamp(0, 1)
    return y + ((y * 255).round() / 255 - y).detach()


class Rescaler(ChannelsLast):
    """Base class of the rescaling families (channels-last capable, see ChannelsLast)."""

    scale: int

    def encode_lr(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def downscale(self, x: torch.Tensor) -> torch.Tensor:
        """HR in [0, 1] -> 8-bit-valued LR in [0, 1] (straight-through rounding)."""
        return quantize(self.encode_lr(x))

    def upscale(self, y: torch.Tensor, temperature: float = 0.0,
                generator: torch.Generator | None = None) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError


def count_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
