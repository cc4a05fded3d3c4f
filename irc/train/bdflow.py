"""BDFlow training (BDFlow paper Eq. 7, section 4.2) on the shared loop.

``L = forw + back + BAM + latent``, Eq. 7 without its LPIPS term (weight lambda3 = 1 in the paper;
not used here: no LPIPS network in this project, and the codec is measured by PSNR):

* forw (Eq. 8): ``lambda1 * mean (y - bicubic LR)^2``;
* back (Eq. 9): ``mean over HR values of lambda_BAW * |x_back - x|``, x_back the inverse of the
  rounded (with ``lr_degrade``, codec-degraded) LR, the quantised boundary map and z = 0: what the
  decoder does at temperature 0. lambda_BAW (Eq. 4) is lambda2 until ``baw_start_step``, then
  ``lambda2 + normalised B_s`` per HR pixel (:func:`irc.bam.baw_weight`, from the un-quantised B_s
  of the HR crop, as the paper says);
* BAM (Eq. 10): ``lambda4 * mean (b - B)^2``, B the Boundary-aware Mask of the HR crop max-pooled
  to the LR grid (:func:`irc.bam.to_lr_grid`: a boundary anywhere in the s x s block), with
  ``bits`` levels, the values the network's b is quantised to;
* latent (Eq. 11): ``lambda5 * mean z^2 / 2``, the Gaussian negative log-likelihood up to a constant.

The paper's weights (section 4.2): lambda1..lambda5 = 2, 2, 1 (LPIPS), 16, 4.

When BAW starts: the paper switches at alpha = 0.3 of the epochs. Runs here are open-ended (time
budgets, resumes, campaigns that raise ``iters``), so a fraction of a total that changes would move
the switch; ``baw_start_step`` (default 2000) fixes it in steps. The shared loop calls
``losses(model, x, cfg)`` without the step, so :func:`train_bdflow` keeps its own step counter, a
:class:`StepClock` ticked once per loss evaluation (the loop evaluates the loss once per step and
never for validation), checkpointed with the run through ``train_rescaler``'s ``extra`` state so a
resumed run goes on counting where it stopped. Not on the config (config.json is the options asked
for, not progress) nor on the model (a buffer would land in the exported weights).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from irc.bam import baw_weight, boundary_strength, strength_to_levels, to_lr_grid
from irc.models.bdflow import BDFlow, build
from irc.models.rescaler import quantize
from irc.train.rescaling import RescalerTrainConfig, bicubic_down, degrade_lr, draw_qualities, train_rescaler


@dataclass
class BDFlowTrainConfig(RescalerTrainConfig):
    out: str = "runs/bdflow-x8"
    scale: int = 8
    # network size; None: the paper-size defaults of irc.models.bdflow.DEFAULTS
    blocks_per_level: int | None = None
    nf: int | None = None
    res_blocks: int | None = None
    bits: int = 1  # levels of the boundary map: 2**bits (paper Table 4: 1 to 3 bits)
    # Boundary-aware Mask (Algorithm 1): blur, threshold on the 0-255 scale (paper: T = 50), norm
    sigma: float = 1.0
    threshold: float = 50.0
    norm: int = 2
    lambda1: float = 2.0  # forw: L2 to the bicubic LR
    lambda2: float = 2.0  # back: L1 of the HR reconstruction (the base of lambda_BAW)
    lambda3: float = 1.0  # LPIPS in the paper; not used here (no LPIPS term)
    lambda4: float = 16.0  # BAM: L2 of b to the max-pooled mask
    lambda5: float = 4.0  # latent: Gaussian NLL of z
    baw_start_step: int = 2000  # the step from which Eq. 4's boundary weight applies (paper: 30% of epochs)

    MODEL_FIELDS = ("blocks_per_level", "nf", "res_blocks", "bits")


def build_model(cfg: BDFlowTrainConfig) -> BDFlow:
    return build(cfg.scale, **cfg.model_params())


def bdflow_losses(model: BDFlow, x: torch.Tensor, cfg: BDFlowTrainConfig, step: int = 0) -> dict[str, torch.Tensor]:
    """Eq. 7 without LPIPS at training step ``step`` (BAW from ``cfg.baw_start_step`` on)."""
    y, b, z = model(x)
    b_s = boundary_strength(x, cfg.sigma, cfg.threshold, cfg.norm)  # float32, no gradient
    target = to_lr_grid(strength_to_levels(b_s, cfg.bits), cfg.scale)
    forw = ((y.float() - bicubic_down(x, cfg.scale)) ** 2).mean()
    bam = ((b.float() - target) ** 2).mean()
    latent = (z.float() ** 2).mean() / 2
    seen = degrade_lr(quantize(y), cfg, draw_qualities(len(x), cfg))
    err = (model.inverse(seen, model.quantize_side(b)).float() - x).abs()
    baw = step >= cfg.baw_start_step
    weight = baw_weight(b_s, cfg.lambda2) if baw else cfg.lambda2  # (B, 1, H, W): one weight per HR pixel
    back = (weight * err).mean()
    loss = cfg.lambda1 * forw + back + cfg.lambda4 * bam + cfg.lambda5 * latent
    return {"loss": loss, "forw": forw.detach(), "back": back.detach(), "bam": bam.detach(),
            "latent": latent.detach(), "baw": torch.tensor(float(baw))}


class StepClock:
    """The training step as the loss sees it: :meth:`tick` returns the index of the step being taken
    and counts it. Checkpointed with the run (``state_dict``/``load_state_dict``). ``tick`` is kept out
    of ``torch.compile`` (``--compile``): the counter moves in Python, the compiled loss sees the step."""

    def __init__(self) -> None:
        self.step = 0

    @torch.compiler.disable
    def tick(self) -> int:
        step, self.step = self.step, self.step + 1
        return step

    def state_dict(self) -> dict:
        return {"step": self.step}

    def load_state_dict(self, state: dict) -> None:
        self.step = int(state["step"])


def check_config(cfg: BDFlowTrainConfig) -> None:
    """The options :func:`train_bdflow` refuses (the network checks its own sizes and bits)."""
    if cfg.norm not in (1, 2):
        raise ValueError(f"norm must be 1 or 2, got {cfg.norm}")
    if cfg.sigma < 0 or cfg.threshold < 0:
        raise ValueError(f"sigma and threshold must be >= 0, got {cfg.sigma}, {cfg.threshold}")
    if cfg.baw_start_step < 0:
        raise ValueError(f"baw_start_step must be >= 0, got {cfg.baw_start_step}")
    weights = (cfg.lambda1, cfg.lambda2, cfg.lambda4, cfg.lambda5)
    if min(weights) < 0:
        raise ValueError(f"loss weights must be >= 0, got lambda1, 2, 4, 5 = {weights}")


def train_bdflow(cfg: BDFlowTrainConfig, resume: bool = False,
                 progress: Callable[[dict], None] | None = None, sampler=None) -> Path:
    """Run (or continue) BDFlow training; returns the checkpoint path."""
    check_config(cfg)
    clock = StepClock()

    def losses(model: BDFlow, x: torch.Tensor, cfg: BDFlowTrainConfig) -> dict[str, torch.Tensor]:
        return bdflow_losses(model, x, cfg, step=clock.tick())

    return train_rescaler(cfg, build_model, losses, resume, progress, sampler, extra={"bdflow_clock": clock})


# What the campaign (irc.train.campaign) asks of a family's trainer module irc.train.<arch>:
CONFIG = BDFlowTrainConfig
train = train_bdflow
RECIPE_NOTE = ("BDFlow Eq. 7 without LPIPS: 2 L2 to the bicubic LR + L1 HR (b quantised, z = 0) weighted 2, "
               "Eq. 4's boundary weight from baw_start_step (the run's config) + 16 L2 of b to the max-pooled BAM + 4 z^2 / 2, means")
REGISTRY_NOTE = ("trained without the paper's LPIPS term (Eq. 7): its pretrained feature network cannot be "
                 "downloaded here; stores a boundary map beside the LR (BNDY chunk)")
