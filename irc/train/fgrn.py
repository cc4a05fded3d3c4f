"""FGRN training (paper Sec. 3.4) on the shared loop.

Two objectives on disjoint parameters, summed into one loss for the one optimizer:

* reconstruction (Eq. 7): mean |HR - G_u(Q(G_d(HR)))| trains ``G_d`` and ``G_u``;
* guide (Eq. 9): mean |F(rep) - bicubic LR| - gamma * log|det J_F| / (LR values), with the
  representation detached, trains ``F`` (gamma = 1e-3 as the paper).

``recon_path="lr"`` sends the reconstruction through what the decoder really sees instead:
``G_u(F^-1(degrade(Q(F(rep)))))``. ``F`` then also gets a reconstruction gradient, from what
the rounding and the degradation change (the rounding is straight-through, so an exact
grid-to-grid flow gets none). A lossy LR in the loop (``lr_degrade``: noise or a codec,
straight-through) needs that path, and gets it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from irc.models.fgrn import FGRN, build
from irc.models.rescaler import quantize
from irc.train.rescaling import RescalerTrainConfig, bicubic_down, degrade_lr, draw_qualities, train_rescaler


@dataclass
class FGRNTrainConfig(RescalerTrainConfig):
    out: str = "runs/fgrn-x2"
    # network size; None: the paper-size defaults of irc.models.fgrn.DEFAULTS for the scale
    nf: int | None = None
    down_blocks: int | None = None
    up_blocks: int | None = None
    flow_cells: int | None = None
    gamma: float = 1e-3  # weight of the flow's log-determinant in the guide loss
    lambda_guide: float = 1.0
    recon_path: str = "paper"  # paper: G_u(Q(G_d(x))) | lr: through F, the rounded (degraded) LR and F^-1

    MODEL_FIELDS = ("nf", "down_blocks", "up_blocks", "flow_cells")


def build_model(cfg: FGRNTrainConfig) -> FGRN:
    return build(cfg.scale, **cfg.model_params())


def fgrn_losses(model: FGRN, x: torch.Tensor, cfg: FGRNTrainConfig) -> dict[str, torch.Tensor]:
    out = model.training_outputs(x)
    lr, logdet = out["lr"], out["logdet"]
    guide_l1 = (lr - bicubic_down(x, cfg.scale)).abs().mean()
    guide = guide_l1 - cfg.gamma * logdet.sum() / lr.numel()
    if cfg.recon_path == "lr" or cfg.lr_degrade != "none":
        seen = degrade_lr(quantize(model.flow(out["rep"])), cfg, draw_qualities(len(x), cfg))
        hr = model.g_u(model.flow_inverse(seen))
    else:
        hr = out["hr"]
    recon = (hr - x).abs().mean()
    return {"loss": recon + cfg.lambda_guide * guide, "recon": recon, "guide": guide_l1,
            "logdet": (logdet.sum() / lr.numel()).detach()}


def train_fgrn(cfg: FGRNTrainConfig, resume: bool = False,
               progress: Callable[[dict], None] | None = None, sampler=None) -> Path:
    """Run (or continue) FGRN training; returns the checkpoint path."""
    if cfg.recon_path not in ("paper", "lr"):
        raise ValueError(f"recon_path must be paper or lr, got {cfg.recon_path!r}")
    return train_rescaler(cfg, build_model, fgrn_losses, resume, progress, sampler)


# What the campaign (irc.train.campaign) asks of a family's trainer module irc.train.<arch>:
CONFIG = FGRNTrainConfig
train = train_fgrn
RECIPE_NOTE = "L1 reconstruction (Eq. 7) + guide: L1 to the bicubic LR - 1e-3 log|det| (Eq. 9)"
