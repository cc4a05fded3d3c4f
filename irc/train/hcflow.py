"""HCFlow training for image rescaling (HCFlow paper Eq. 9) on the shared loop.

``lambda_hr * L1(x, x_hat) + lambda_lr * L2(y, bicubic LR) + lambda_latent * L2(z)``, each
term a mean (the paper's weights: 1, 5e-2, 1e-5). ``x_hat`` is the inverse of the rounded
(and, with ``lr_degrade``, codec-degraded) LR with the latent the decoder uses: z = 0 by
default, the temperature-0 decode of the codec; ``z_mode="sample"`` draws z ~ N(0, 1), the
paper's x_{tau=1}.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from irc.models.hcflow import HCFlow, build
from irc.models.rescaler import quantize
from irc.train.rescaling import RescalerTrainConfig, bicubic_down, degrade_lr, draw_qualities, train_rescaler


@dataclass
class HCFlowTrainConfig(RescalerTrainConfig):
    out: str = "runs/hcflow-x4"
    scale: int = 4
    # network size; None: the paper-size defaults of irc.models.hcflow.DEFAULTS
    flow_steps: int | None = None
    cond_steps: int | None = None
    hidden: int | None = None
    nf: int | None = None
    gc: int | None = None
    rrdb: int | None = None
    lambda_hr: float = 1.0
    lambda_lr: float = 5e-2
    lambda_latent: float = 1e-5
    z_mode: str = "zero"  # zero | sample (the paper's tau = 1)

    MODEL_FIELDS = ("flow_steps", "cond_steps", "hidden", "nf", "gc", "rrdb")


def build_model(cfg: HCFlowTrainConfig) -> HCFlow:
    return build(cfg.scale, **cfg.model_params())


def hcflow_losses(model: HCFlow, x: torch.Tensor, cfg: HCFlowTrainConfig) -> dict[str, torch.Tensor]:
    y, zs = model(x)
    guide = ((y - bicubic_down(x, cfg.scale)) ** 2).mean()
    latent = torch.stack([(z.float() ** 2).mean() for z in zs]).mean()
    seen = degrade_lr(quantize(y), cfg, draw_qualities(len(x), cfg))
    z_back = [torch.randn_like(z) for z in zs] if cfg.z_mode == "sample" else None
    recon = (model.inverse(seen, z_back) - x).abs().mean()
    loss = cfg.lambda_hr * recon + cfg.lambda_lr * guide + cfg.lambda_latent * latent
    return {"loss": loss, "recon": recon, "guide": guide, "latent": latent.detach()}


def train_hcflow(cfg: HCFlowTrainConfig, resume: bool = False,
                 progress: Callable[[dict], None] | None = None, sampler=None) -> Path:
    """Run (or continue) HCFlow training; returns the checkpoint path."""
    if cfg.z_mode not in ("zero", "sample"):
        raise ValueError(f"z_mode must be zero or sample, got {cfg.z_mode!r}")
    return train_rescaler(cfg, build_model, hcflow_losses, resume, progress, sampler)


# What the campaign (irc.train.campaign) asks of a family's trainer module irc.train.<arch>:
CONFIG = HCFlowTrainConfig
train = train_hcflow
RECIPE_NOTE = "HCFlow Eq. 9: L1 HR (z = 0) + 5e-2 L2 to the bicubic LR + 1e-5 L2 latent, means"
