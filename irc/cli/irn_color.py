"""`irc train color`: IRN_color, the invertible decolorisation-colorisation model (scale 1)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from irc.cli import train_options as opt
from irc.cli.training import _check_new_run, _shared_fields, run_family_trainer, train_app
from irc.errors import IrcError


@train_app.command("color")
@opt.with_shared_options
def train_color(
    out_dir: Path = opt.out_dir("runs/irn-color"),
    blocks: Optional[int] = typer.Option(None, "--blocks", help="InvBlocks of the graying module (paper: 8)."),
    lambda_guide: float = typer.Option(9.0, "--lambda-guide", help="Weight of the L2 to the BT.601 luma (paper: 9)."),
    lambda_distr: float = typer.Option(1.0, "--lambda-distr", help="Weight of the z^2 term (paper: 1)."),
    lr: float = typer.Option(2e-4, "--lr", help="Peak learning rate (paper: 2e-4)."),
    shared: dict = None,
):
    """Train IRN_color: colour <-> grayscale + latent (IRN paper 3.4). Example: irc train color --data ../shared/data/train --val-dir ../shared/data/kodak"""
    from irc.train.irn_color import IRNColorTrainConfig, train_irn_color as run

    def new_config():
        _check_new_run(1, shared["data"], out_dir, any_scale=True)
        if blocks is not None and blocks < 1:
            raise IrcError(f"--blocks must be at least 1, got {blocks}")
        if lambda_guide < 0 or lambda_distr < 0:
            raise IrcError("--lambda-guide and --lambda-distr must be >= 0")
        return IRNColorTrainConfig(blocks=blocks, lambda_guide=lambda_guide, lambda_distr=lambda_distr,
                                   **_shared_fields(out_dir, lr, shared))

    run_family_trainer(IRNColorTrainConfig, run, out_dir, shared, new_config)
