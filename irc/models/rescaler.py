"""The one interface every rescaling family offers (IRN, FGRN, and the ones to come).

A rescaler is a :class:`torch.nn.Module` with a ``scale`` and two passes:

* ``encode_lr(x)``: HR in [0, 1], (B, 3, H, W) with H and W multiples of the scale,
  -> LR (B, ``lr_channels``, H/s, W/s) before the 8-bit rounding (3 channels, or 1 for
  a family that stores a grayscale image, IRN_color), then ``side_channels`` of side
  information in [0, 1] (BDFlow's boundary map, already on its ``side_bits`` levels), which
  the codec stores beside the LR (irc.boundary). The pipeline blends tiles on
  this signal and then rounds it; ``downscale`` rounds it with a straight-through
  gradient for training.
* ``upscale(y, temperature=0.0, generator=None)``: LR (and its side channels) -> HR. Families with a latent
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
    lr_channels: int = LR_CHANNELS  # channels of the stored image (1: IRN_color's grayscale carrier)
    side_channels: int = 0  # channels of side information after the LR (BDFlow: 1, its boundary map)
    side_bits: int | None = None  # bits per side value (BDFlow: 1-3)

    def encode_lr(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def downscale(self, x: torch.Tensor) -> torch.Tensor:
        """HR in [0, 1] -> 8-bit-valued LR in [0, 1] (straight-through rounding)."""
        return quantize(self.encode_lr(x))

    def upscale(self, y: torch.Tensor, temperature: float = 0.0,
                generator: torch.Generator | None = None) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError


def sample_latent(shape: tuple[int, ...], like: torch.Tensor, temperature: float,
                  generator: torch.Generator | None = None) -> torch.Tensor | None:
    """z ~ N(0, T^2) of ``shape`` for an upscale, drawn on the CPU with ``generator`` (the same
    numbers whatever the device) and moved to ``like``'s device and dtype; None at temperature
    0, which every family reads as z = 0 (the mode)."""
    if temperature <= 0:
        return None
    return torch.randn(shape, generator=generator, device="cpu").to(like) * temperature


def count_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
