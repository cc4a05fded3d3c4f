"""`irc train bdflow`: BDFlow (Boundary-aware Decoupled Flow Networks), extreme rescaling x8 / x16."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from irc.cli import train_options as opt
from irc.cli.training import _check_crop, _check_new_run, _shared_fields, run_family_trainer, train_app
from irc.errors import IrcError


@train_app.command("bdflow")
@opt.with_shared_options
def train_bdflow(
    scale: int = typer.Option(8, "--scale", "-s", help="8 or 16 (the paper's Table 2 sizes)."),
    out_dir: Path = opt.out_dir("runs/bdflow-x8"),
    blocks_per_level: Optional[int] = typer.Option(None, "--blocks-per-level", help="InvBlocks after each Haar transform (paper: 2)."),
    nf: Optional[int] = typer.Option(None, "--nf", help="Width of the residual subnets (default: 60 at x8, 42 at x16)."),
    res_blocks: Optional[int] = typer.Option(None, "--res-blocks", help="Residual blocks per subnet (default: 2 at x8, 3 at x16)."),
    bits: int = typer.Option(1, "--bits", help="Bits of the stored boundary map: 1, 2 or 3 (paper Table 4)."),
    threshold: float = typer.Option(50.0, "--threshold", help="BAM threshold T on the 0-255 gradient scale (paper: 50)."),
    sigma: float = typer.Option(1.0, "--sigma", help="Gaussian blur of the BAM (Algorithm 1)."),
    baw_start_step: int = typer.Option(2000, "--baw-start-step", help="Step from which the boundary-aware weight (Eq. 4) applies."),
    lambda1: float = typer.Option(2.0, "--lambda1", help="Weight of the L2 to the bicubic LR (paper: 2)."),
    lambda2: float = typer.Option(2.0, "--lambda2", help="Weight of the HR L1, the base of the BAW (paper: 2)."),
    lambda4: float = typer.Option(16.0, "--lambda4", help="Weight of the L2 of the boundary map to the BAM (paper: 16)."),
    lambda5: float = typer.Option(4.0, "--lambda5", help="Weight of the latent's Gaussian NLL (paper: 4)."),
    lr: float = typer.Option(2e-4, "--lr", help="Peak learning rate (paper: 2e-4)."),
    shared: dict = None,
):
    """Train BDFlow for extreme rescaling (paper Eq. 7 without LPIPS). Example: irc train bdflow --data ../shared/data/train --val-dir ../shared/data/kodak"""
    from irc.train.bdflow import BDFlowTrainConfig, train_bdflow as run

    def new_config():
        if scale not in (8, 16):
            raise IrcError(f"unsupported scale {scale}; BDFlow trains at 8 or 16")
        _check_new_run(scale, shared["data"], out_dir, any_scale=True)
        _check_crop(shared["crop"], scale)
        if bits not in (1, 2, 3):
            raise IrcError(f"--bits must be 1, 2 or 3, got {bits}")
        sizes = {"--blocks-per-level": (blocks_per_level, 1), "--nf": (nf, 1), "--res-blocks": (res_blocks, 0)}
        for name, (value, least) in sizes.items():
            if value is not None and value < least:
                raise IrcError(f"{name} must be at least {least}, got {value}")
        for name, value in (("--threshold", threshold), ("--sigma", sigma), ("--baw-start-step", baw_start_step),
                            ("--lambda1", lambda1), ("--lambda2", lambda2), ("--lambda4", lambda4),
                            ("--lambda5", lambda5)):
            if value < 0:
                raise IrcError(f"{name} must be >= 0, got {value}")
        return BDFlowTrainConfig(
            scale=scale, blocks_per_level=blocks_per_level, nf=nf, res_blocks=res_blocks, bits=bits,
            threshold=threshold, sigma=sigma, baw_start_step=baw_start_step,
            lambda1=lambda1, lambda2=lambda2, lambda4=lambda4, lambda5=lambda5,
            **_shared_fields(out_dir, lr, shared),
        )

    run_family_trainer(BDFlowTrainConfig, run, out_dir, shared, new_config)
