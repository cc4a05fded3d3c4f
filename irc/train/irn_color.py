"""IRN_color training (IRN paper section 3.4.2) on the shared loop.

``lambda_recon * L1(x, inverse(round(y), z = 0)) + lambda_guide * L2(y, Y) + lambda_distr * z^2``,
each term a per-image sum divided by the number of HR values, as IRN's trainer does. The
paper's weights are 1 / 9 / 1 (section 4.1); the grayscale guidance ``Y`` is the BT.601 luma
of the input; z = 0 in the reconstruction, the point the decoder uses (section 3.4.2).
With ``lr_degrade`` the grayscale image passes through the real codec in the loop
(straight-through), so the colours survive a lossy gray payload.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from irc.models.irn_color import IRNColor, build
from irc.models.rescaler import quantize
from irc.train.rescaling import RescalerTrainConfig, degrade_lr, draw_qualities, train_rescaler

LUMA = (0.299, 0.587, 0.114)  # BT.601: the grayscale guidance


@dataclass
class IRNColorTrainConfig(RescalerTrainConfig):
    out: str = "runs/irn-color"
    scale: int = 1
    blocks: int | None = None  # InvBlocks (None: the paper's 8)
    lambda_recon: float = 1.0
    lambda_guide: float = 9.0
    lambda_distr: float = 1.0

    MODEL_FIELDS = ("blocks",)


def build_model(cfg: IRNColorTrainConfig) -> IRNColor:
    return build(cfg.scale, **cfg.model_params())


def luma(x: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) RGB -> (B, 1, H, W) BT.601 luma."""
    w = torch.tensor(LUMA, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x * w).sum(1, keepdim=True)


def color_losses(model: IRNColor, x: torch.Tensor, cfg: IRNColorTrainConfig) -> dict[str, torch.Tensor]:
    y, z = model(x)
    n = x[0].numel() * x.shape[0]
    guide = ((y - luma(x)) ** 2).sum() / n
    distr = (z.float() ** 2).sum() / n
    seen = degrade_lr(quantize(y), cfg, draw_qualities(len(x), cfg))
    recon = (model.inverse(seen) - x).abs().sum() / n
    loss = cfg.lambda_recon * recon + cfg.lambda_guide * guide + cfg.lambda_distr * distr
    return {"loss": loss, "recon": recon, "guide": guide, "distr": distr.detach()}


def train_irn_color(cfg: IRNColorTrainConfig, resume: bool = False,
                    progress: Callable[[dict], None] | None = None, sampler=None) -> Path:
    """Run (or continue) IRN_color training; returns the checkpoint path."""
    if cfg.scale != 1:
        raise ValueError(f"IRN_color keeps the resolution: scale must be 1, got {cfg.scale}")
    return train_rescaler(cfg, build_model, color_losses, resume, progress, sampler)


# What the campaign (irc.train.campaign) asks of a family's trainer module irc.train.<arch>:
CONFIG = IRNColorTrainConfig
train = train_irn_color
RECIPE_NOTE = "IRN_color section 3.4.2: L1 RGB (z = 0) + 9 L2 to the BT.601 luma + 1 z^2, per-value sums"
METRIC = "psnr_rgb"  # what validation ranks by: colour restored, not luma (the paper's RGB PSNR)
REGISTRY_NOTE = "decolorisation-colorisation: stores a full-size grayscale image, restores the colours (--gray)"
