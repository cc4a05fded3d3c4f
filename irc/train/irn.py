"""IRN training loop: resumable, time-budgeted, CPU or CUDA.

Loss (IRN paper Eq. 12, lambda_1 = 1, lambda_2 = s^2, lambda_3 = 1), each term a
per-image sum as in the paper, all divided by the number of HR values (a
constant, so the balance is the paper's):

* reconstruction: L1 between x and inverse(round(y), z)
* guidance: L2 between y and the bicubic (antialiased) downscale of x, weight s^2
* distribution: sum z^2 (pushes z towards the mode the decoder uses)
* rate (optional, ``lambda_rate``): estimated JPEG bits of the LR per HR pixel
  (``irc.train.rate``), at the quality the codec in the loop draws, so robust
  training cannot buy robustness with bytes

By default the backward pass uses z = 0, the value the decoder uses (see FGRN
section 4.5: z carries no image-specific information); ``z_mode="sample"``
draws z ~ N(0, 1) as the original IRN does.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from irc.models.irn import IRN, quantize
from irc.train.rescaling import (  # noqa: F401  (validate, load_val_images: also imported from here)
    RescalerTrainConfig, bicubic_down, degrade_lr, draw_qualities, load_val_images, train_rescaler, validate,
)


@dataclass
class IRNTrainConfig(RescalerTrainConfig):
    out: str = "runs/irn-x2"
    blocks_per_module: int = 8
    haar_first: bool = False
    downsampling: str = "haar"  # haar (scale 2**k) | learned (IRN_LD: squeeze + invertible 1x1 conv, any scale)
    lambda_recon: float = 1.0
    lambda_guide: float | None = None  # default s^2
    lambda_distr: float = 1.0
    z_mode: str = "zero"  # zero | sample
    lambda_rate: float = 0.0  # weight of the JPEG bit estimate (per HR pixel); 0: off

    MODEL_FIELDS = ("blocks_per_module", "haar_first", "downsampling")

    def guide_weight(self) -> float:
        return float(self.scale**2) if self.lambda_guide is None else self.lambda_guide


def irn_losses(model: IRN, x: torch.Tensor, cfg: IRNTrainConfig) -> dict[str, torch.Tensor]:
    y, z = model(x)
    n = x[0].numel() * x.shape[0]
    guide = ((y - bicubic_down(x, cfg.scale)) ** 2).sum() / n
    distr = (z.float() ** 2).sum() / n
    qs = draw_qualities(len(x), cfg)
    yq = degrade_lr(quantize(y), cfg, qs)
    z_back = torch.randn_like(z) if cfg.z_mode == "sample" else torch.zeros_like(z)
    x_hat = model.inverse(yq, z_back)
    recon = (x_hat - x).abs().sum() / n
    total = (cfg.lambda_recon * recon + cfg.guide_weight() * guide + cfg.lambda_distr * distr)
    terms = {"loss": total, "recon": recon, "guide": guide, "distr": distr}
    if cfg.lambda_rate:
        from irc.train.rate import jpeg_bits

        rate = jpeg_bits(y.clamp(0, 1), torch.tensor(qs, device=y.device)).sum() / (n / 3)
        terms["loss"] = total + cfg.lambda_rate * rate
        terms["rate"] = rate
    return terms


def build_model(cfg: IRNTrainConfig) -> IRN:
    return IRN(cfg.scale, **cfg.model_params())


def train_irn(cfg: IRNTrainConfig, resume: bool = False,
              progress: Callable[[dict], None] | None = None, sampler=None) -> Path:
    """Run (or continue) training; returns the checkpoint path. ``sampler``: crops from elsewhere
    than ``cfg.data``'s folders (e.g. :class:`irc.train.pack.PackedSampler`), same interface."""
    return train_rescaler(cfg, build_model, irn_losses, resume, progress, sampler)


# What the campaign (irc.train.campaign) asks of a family's trainer module irc.train.<arch>:
CONFIG = IRNTrainConfig
train = train_irn
RECIPE_NOTE = "z = 0 in the backward pass, lambda = 1 / s^2 / 1"
