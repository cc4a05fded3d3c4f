"""`irc train hcflow`: HCFlow (hierarchical conditional flow) for image rescaling, x4."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from irc.cli import train_options as opt
from irc.cli.training import _check_crop, _check_new_run, _shared_fields, run_family_trainer, train_app
from irc.errors import IrcError


@train_app.command("hcflow")
@opt.with_shared_options
def train_hcflow(
    scale: int = typer.Option(4, "--scale", "-s", help="4 (the paper's rescaling model), or 2 / 8."),
    out_dir: Path = opt.out_dir("runs/hcflow-x4"),
    flow_steps: Optional[int] = typer.Option(None, "--flow-steps", help="K: flow steps per level of the main flow (paper: 8)."),
    cond_steps: Optional[int] = typer.Option(None, "--cond-steps", help="P: conditional steps per level of the latent flows (paper: 6)."),
    hidden: Optional[int] = typer.Option(None, "--hidden", help="Width of the coupling subnets (default 64)."),
    nf: Optional[int] = typer.Option(None, "--nf", help="Features of the conditional extractors (default 64)."),
    gc: Optional[int] = typer.Option(None, "--gc", help="RRDB growth channels (default 24)."),
    rrdb: Optional[int] = typer.Option(None, "--rrdb", help="RRDBs per extractor (paper: 3)."),
    lambda_lr: float = typer.Option(5e-2, "--lambda-lr", help="Weight of the L2 to the bicubic LR (paper: 5e-2)."),
    lambda_latent: float = typer.Option(1e-5, "--lambda-latent", help="Weight of the L2 on the latent (paper: 1e-5)."),
    z_mode: str = typer.Option("zero", "--z", help="zero (the decoder's z = 0 in the HR loss) or sample (the paper's tau = 1)."),
    lr: float = typer.Option(2.5e-4, "--lr", help="Peak learning rate (paper: 2.5e-4)."),
    shared: dict = None,
):
    """Train HCFlow for rescaling (paper Eq. 9). Example: irc train hcflow --data ../shared/data/train --val-dir ../shared/data/kodak"""
    from irc.train.hcflow import HCFlowTrainConfig, train_hcflow as run

    def new_config():
        _check_new_run(scale, shared["data"], out_dir)
        _check_crop(shared["crop"], scale)
        if z_mode not in ("zero", "sample"):
            raise IrcError("--z must be zero or sample")
        sizes = {"--flow-steps": flow_steps, "--cond-steps": cond_steps, "--hidden": hidden, "--nf": nf,
                 "--gc": gc, "--rrdb": rrdb}
        for name, value in sizes.items():
            if value is not None and value < 1:
                raise IrcError(f"{name} must be at least 1, got {value}")
        if lambda_lr < 0 or lambda_latent < 0:
            raise IrcError("--lambda-lr and --lambda-latent must be >= 0")
        return HCFlowTrainConfig(
            scale=scale, flow_steps=flow_steps, cond_steps=cond_steps, hidden=hidden, nf=nf, gc=gc, rrdb=rrdb,
            lambda_lr=lambda_lr, lambda_latent=lambda_latent, z_mode=z_mode,
            **_shared_fields(out_dir, lr, shared),
        )

    run_family_trainer(HCFlowTrainConfig, run, out_dir, shared, new_config)
