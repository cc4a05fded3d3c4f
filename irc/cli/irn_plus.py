"""`irc train irn-plus`: the IRN paper's second stage (GAN fine-tuning) from a registered IRN."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from irc.cli.common import out, user_errors
from irc.cli import train_options as opt
from irc.cli.training import (
    _check_crop, _check_new_run, _common_options, _resumed_config, train_app,
)
from irc.errors import IrcError

Z_RAMP_HELP = ("Grow T from 0 to --z-temperature over this many generator steps (0: T from the start, as the paper). "
               "The shipped IRNs were trained with z = 0 and decode a random z badly: ease them in.")
INIT_HELP = ("Weights of --base's architecture to start from instead of its registered ones: a run's last.pt or "
             "a .safetensors, e.g. the paper's first stage, `irc train irn --z sample --init-from irn-x4`.")

D_INIT_HELP = ("Another IRN+ run's last.pt: start the discriminator (and its Adam state) from its, instead of "
               "from scratch; --d-warmup then counts from there (a warm-up costs about a CPU-second a step).")


@train_app.command("irn-plus")
def train_irn_plus(
    base: str = typer.Option("irn-x4", "--base", help="The registered IRN to fine-tune (its scale and weights): irn-x2, irn-x4, irn-e-x4, irn-x8."),
    data: list[Path] = opt.DATA,
    out_dir: Path = opt.out_dir("runs/irn-plus"),
    iters: int = typer.Option(2000, "--iters", help="Steps, the discriminator's warm-up included."),
    crop: int = typer.Option(96, "--crop", help="HR crop side, a multiple of the scale (paper: 144)."),
    batch: int = typer.Option(4, "--batch", help="Crops per step (paper: 16)."),
    lr: float = typer.Option(1e-4, "--lr", help="Generator learning rate (paper: 1e-4)."),
    warmup: int = typer.Option(0, "--warmup", help="Generator learning-rate warm-up steps."),
    schedule: str = typer.Option("constant", "--schedule", help="constant, cosine or step (halve every iters/5)."),
    lambda_recon: float = typer.Option(0.01, "--lambda-recon", help="Weight of the L1 reconstruction with z ~ N(0, T^2) (paper: 0.01)."),
    lambda_guide: Optional[float] = typer.Option(None, "--lambda-guide", help="Weight of the L2 LR guide (default s^2, the paper's)."),
    lambda_distr: float = typer.Option(1.0, "--lambda-distr", help="Weight of the adversarial (JS) term (paper: 1)."),
    lambda_lowpass: float = typer.Option(0.0, "--lambda-lowpass", help="Weight of the L1 between the bicubic downscales of the decode and the original (0: off, the paper's; holds colour and tone where the GAN moves them)."),
    gan_norm_pixels: int = typer.Option(144 * 144 * 3, "--gan-norm-pixels", help="The GAN terms are divided by this (the paper's per-image pixel sums at 144x144)."),
    d_lr: float = typer.Option(1e-4, "--d-lr", help="Discriminator learning rate."),
    d_warmup: int = typer.Option(200, "--d-warmup", help="Steps that train only the discriminator first (paper: 5000)."),
    d_norm: str = typer.Option("none", "--d-norm", help="Discriminator normalisation: none, or batch (SRGAN's)."),
    z_temperature: float = typer.Option(1.0, "--z-temperature", help="z ~ N(0, T^2) in training (1: the full distribution)."),
    z_ramp: int = typer.Option(0, "--z-ramp", help=Z_RAMP_HELP),
    init_from: Optional[Path] = typer.Option(None, "--init-from", help=INIT_HELP),
    d_init_from: Optional[Path] = typer.Option(None, "--d-init-from", help=D_INIT_HELP),
    grad_clip: float = typer.Option(1.0, "--grad-clip", help="Generator gradient-norm clip (0: off)."),
    val_dir: Optional[Path] = typer.Option(None, "--val-dir", help="Validation folder, e.g. ../shared/data/kodak (PSNR, z = 0)."),
    val_images: int = opt.VAL_IMAGES,
    val_every: int = opt.VAL_EVERY,
    checkpoint_minutes: float = opt.CHECKPOINT_MINUTES,
    time_budget: Optional[float] = opt.TIME_BUDGET,
    device: str = opt.DEVICE,
    threads: int = opt.THREADS,
    precision: str = opt.PRECISION,
    ema: Optional[float] = opt.EMA,
    seed: int = opt.SEED,
    resume: bool = opt.RESUME,
):
    """Fine-tune an IRN into IRN+ (paper Eq. 13: reconstruction with random z, LR guide, and a GAN
    discriminator for the JS distribution matching; no perceptual term: no offline VGG weights).
    Example: irc train irn-plus --base irn-x4 --data ../shared/data/train --val-dir ../shared/data/kodak"""
    from irc.train.irn_plus import IRNPlusTrainConfig, base_spec, check_config, train_irn_plus as run

    with user_errors():
        if resume:
            cfg = _resumed_config(IRNPlusTrainConfig, out_dir, time_budget, device, threads, ema)
        else:
            spec = base_spec(base)
            _check_new_run(spec.scale, data, out_dir, any_scale=True)
            _check_crop(crop, spec.scale)
            if d_norm not in ("none", "batch"):
                raise IrcError(f"--d-norm must be none or batch, got {d_norm!r}")
            if d_init_from is not None and not d_init_from.is_file():
                raise IrcError(f"--d-init-from {d_init_from}: no such file (an `irc train irn-plus` run's last.pt)")
            for name, value in (("--d-warmup", d_warmup), ("--z-temperature", z_temperature), ("--z-ramp", z_ramp),
                                ("--lambda-recon", lambda_recon), ("--lambda-distr", lambda_distr),
                                ("--lambda-lowpass", lambda_lowpass)):
                if value < 0:
                    raise IrcError(f"{name} must be >= 0, got {value}")
            for name, value in (("--gan-norm-pixels", gan_norm_pixels), ("--d-lr", d_lr), ("--lr", lr)):
                if value <= 0:
                    raise IrcError(f"{name} must be > 0, got {value}")
            cfg = IRNPlusTrainConfig(
                base=base, scale=spec.scale, lambda_recon=lambda_recon, lambda_guide=lambda_guide,
                lambda_distr=lambda_distr, lambda_lowpass=lambda_lowpass, gan_norm_pixels=gan_norm_pixels, d_lr=d_lr, d_warmup=d_warmup,
                d_norm=d_norm, z_temperature=z_temperature, z_ramp=z_ramp,
                d_init_from=str(d_init_from) if d_init_from else None,
                **_common_options(data, out_dir, crop, batch, iters, lr, warmup, schedule, grad_clip, val_dir,
                                  val_images, val_every, checkpoint_minutes, time_budget, init_from, device,
                                  threads, seed, precision, ema),
            )
            check_config(cfg)
        ckpt = run(cfg, resume=resume, progress=_show_gan_record)
        out.print(f"checkpoint: {ckpt}")


def _show_gan_record(rec: dict) -> None:
    keys = ("iter", "wall", "recon", "lowpass", "gan", "d_real", "d_fake", "z_t", "val_psnr_y", "event")
    out.print("  ".join(f"{k}={rec[k]}" for k in keys if k in rec), highlight=False, soft_wrap=True)
