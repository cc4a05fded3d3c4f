"""`irc train irn|fgrn|crm|export`: resumable, time-budgeted training runs (irc.train)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from irc.cli import train_options as opt
from irc.cli.common import out, user_errors
from irc.errors import IrcError

train_app = typer.Typer(help="Train the networks (resumable, time-budgeted).", no_args_is_help=True)


@train_app.command("irn")
@opt.with_shared_options
def train_irn(
    scale: int = typer.Option(2, "--scale", "-s", help="2, 4 or 8; any integer >= 2 with --downsampling learned."),
    out_dir: Path = opt.out_dir("runs/irn"),
    arch: str = typer.Option("irn", "--arch", help="irn, or irn-e (Haar first, then 16 InvBlocks; x4)."),
    downsampling: str = typer.Option("haar", "--downsampling", help="haar, or learned (IRN_LD: squeeze + invertible 1x1 conv starting as the box average, one module; e.g. x3)."),
    blocks_per_module: Optional[int] = typer.Option(None, "--blocks-per-module", help="InvBlocks per module (default 8; irn-e: 16; IRN_LD x3 in the paper: 12)."),
    lr: float = typer.Option(5e-4, "--lr"),
    z_mode: str = typer.Option("zero", "--z", help="zero (z = 0 in the backward pass) or sample."),
    lambda_rate: float = typer.Option(0.0, "--lambda-rate", help="Weight of the LR's estimated JPEG bits per HR pixel (0: off)."),
    shared: dict = None,
):
    """Train IRN. Example: irc train irn --scale 2 --data ../shared/data/train --val-dir ../shared/data/kodak"""
    from irc.train.irn import IRNTrainConfig, train_irn as run

    with user_errors():
        if shared["resume"]:
            cfg = _resumed_config(IRNTrainConfig, out_dir, shared["time_budget"], shared["device"], shared["threads"],
                                  shared["ema"])
        else:
            if downsampling not in ("haar", "learned"):
                raise IrcError(f"--downsampling must be haar or learned, got {downsampling!r}")
            if downsampling == "learned" and scale < 2:
                raise IrcError(f"unsupported scale {scale}; --downsampling learned takes any integer >= 2")
            _check_new_run(scale, shared["data"], out_dir, any_scale=downsampling == "learned")
            _check_crop(shared["crop"], scale)
            if z_mode not in ("zero", "sample"):
                raise IrcError("--z must be zero or sample")
            if arch not in ("irn", "irn-e"):
                raise IrcError(f"unknown arch {arch!r}: irn or irn-e")
            if arch == "irn-e" and downsampling == "learned":
                raise IrcError("--arch irn-e is Haar first; --downsampling learned has one module: use --arch irn")
            if blocks_per_module is not None and blocks_per_module < 1:
                raise IrcError(f"--blocks-per-module must be at least 1, got {blocks_per_module}")
            if lambda_rate < 0:
                raise IrcError(f"--lambda-rate must be >= 0, got {lambda_rate}")
            cfg = IRNTrainConfig(
                scale=scale, z_mode=z_mode, haar_first=arch == "irn-e", downsampling=downsampling,
                blocks_per_module=blocks_per_module or (16 if arch == "irn-e" else 8), lambda_rate=lambda_rate,
                **_shared_fields(out_dir, lr, shared),
            )

        ckpt = run(cfg, resume=shared["resume"], progress=_show_record)
        out.print(f"checkpoint: {ckpt}")


@train_app.command("fgrn")
@opt.with_shared_options
def train_fgrn(
    scale: int = typer.Option(2, "--scale", "-s", help="2 or 4 (paper sizes), or 8 (the x4 sizes, no paper size)."),
    out_dir: Path = opt.out_dir("runs/fgrn"),
    nf: Optional[int] = typer.Option(None, "--nf", help="Features (default: the paper-size model of the scale)."),
    down_blocks: Optional[int] = typer.Option(None, "--down-blocks", help="ResBlocks of the downscaler G_d."),
    up_blocks: Optional[int] = typer.Option(None, "--up-blocks", help="ResBlocks of the upscaler G_u."),
    flow_cells: Optional[int] = typer.Option(None, "--flow-cells", help="Invertible cells of the flow F."),
    gamma: float = typer.Option(1e-3, "--gamma", help="Weight of F's log-determinant in the guide loss (paper: 1e-3)."),
    recon_path: str = typer.Option("paper", "--recon-path", help="paper: G_u(Q(G_d(x))); lr: through F, the rounded LR and F^-1 (forced by --lr-degrade)."),
    lr: float = typer.Option(3e-4, "--lr", help="Peak learning rate (paper: 3e-4)."),
    shared: dict = None,
):
    """Train FGRN (flow-guided rescaling). Example: irc train fgrn --scale 2 --data ../shared/data/train --val-dir ../shared/data/kodak"""
    from irc.train.fgrn import FGRNTrainConfig, train_fgrn as run

    with user_errors():
        if shared["resume"]:
            cfg = _resumed_config(FGRNTrainConfig, out_dir, shared["time_budget"], shared["device"], shared["threads"],
                                  shared["ema"])
        else:
            _check_new_run(scale, shared["data"], out_dir)
            _check_crop(shared["crop"], scale)
            if recon_path not in ("paper", "lr"):
                raise IrcError(f"--recon-path must be paper or lr, got {recon_path!r}")
            for name, value in (("--nf", nf), ("--down-blocks", down_blocks), ("--up-blocks", up_blocks),
                                ("--flow-cells", flow_cells)):
                if value is not None and value < (1 if name == "--nf" else 0):
                    raise IrcError(f"{name} must be {'at least 1' if name == '--nf' else '>= 0'}, got {value}")
            cfg = FGRNTrainConfig(
                scale=scale, nf=nf, down_blocks=down_blocks, up_blocks=up_blocks, flow_cells=flow_cells,
                gamma=gamma, recon_path=recon_path,
                **_shared_fields(out_dir, lr, shared),
            )
        ckpt = run(cfg, resume=shared["resume"], progress=_show_record)
        out.print(f"checkpoint: {ckpt}")


def check_train_precision(precision: str) -> str:
    """A trainer's --precision, or one clear IrcError."""
    if precision not in ("auto", "fp32", "bf16"):
        raise IrcError(f"--precision must be auto, fp32 or bf16, got {precision!r}")
    return precision


def _common_options(data, out_dir, crop, batch, iters, lr, warmup, schedule, grad_clip, val_dir, val_images,
                    val_every, checkpoint_minutes, time_budget, init_from, device, threads, seed,
                    precision, ema) -> dict:
    """The checked options every rescaler trainer shares, as TrainConfig fields."""
    from irc.api import resolve_device

    if schedule not in ("cosine", "step", "constant"):
        raise IrcError(f"--schedule must be cosine, step or constant, got {schedule!r}")
    check_train_precision(precision)
    ema = _check_ema(0.0 if ema is None else ema)
    for name, value in (("--crop", crop), ("--batch", batch), ("--iters", iters)):
        if value < 1:
            raise IrcError(f"{name} must be at least 1, got {value}")
    return dict(data=[str(d) for d in data], out=str(out_dir), crop=crop, batch=batch, iters=iters, lr=lr,
                warmup=warmup, schedule=schedule, grad_clip=grad_clip,
                val_dir=str(val_dir) if val_dir else None, val_images=val_images, val_every=val_every,
                checkpoint_minutes=checkpoint_minutes, time_budget=time_budget,
                init_from=_init_source(init_from), device=resolve_device(device),
                threads=threads, seed=seed, precision=precision, ema=ema)


def _shared_fields(out_dir: Path, lr: float, shared: dict) -> dict:
    """The config fields of a rescaler trainer's shared options (train_options.SHARED), checked."""
    s = shared
    return {**_common_options(s["data"], out_dir, s["crop"], s["batch"], s["iters"], lr, s["warmup"], s["schedule"],
                              s["grad_clip"], s["val_dir"], s["val_images"], s["val_every"], s["checkpoint_minutes"],
                              s["time_budget"], s["init_from"], s["device"], s["threads"], s["seed"], s["precision"],
                              s["ema"]),
            **_degrade_options(s["lr_degrade"], s["degrade_q"], s["noise_std"]), "compile": s["compile"]}


def _degrade_options(lr_degrade: str, degrade_q: str, noise_std: float) -> dict:
    """--lr-degrade (none, noise or a codec, checked) and its quality range, as config fields."""
    try:
        q_lo, q_hi = (int(v) for v in degrade_q.split(","))
    except ValueError:
        raise IrcError(f"--degrade-q takes LOW,HIGH, got {degrade_q!r}") from None
    if lr_degrade not in ("none", "noise"):
        from irc.codecs import get_codec

        codec_obj = get_codec(lr_degrade)
        codec_obj.settings(q_lo, False), codec_obj.settings(q_hi, False)  # range check
        lr_degrade = codec_obj.name
    return dict(lr_degrade=lr_degrade, degrade_q_min=q_lo, degrade_q_max=q_hi, noise_std=noise_std)


def _show_record(rec: dict) -> None:
    keys = ("iter", "wall", "loss", "recon", "val_psnr_y", "val_psnr_rgb", "val_lr_gain", "event")
    out.print("  ".join(f"{k}={rec[k]}" for k in keys if k in rec), highlight=False)


def _check_new_run(scale: int, data: list[Path], out_dir: Path, any_scale: bool = False) -> None:
    """What every fresh training run needs: a supported scale (2, 4, 8; any >= 2 with ``any_scale``),
    data, and a free run folder."""
    if not any_scale and scale not in (2, 4, 8):
        raise IrcError(f"unsupported scale {scale}; choose 2, 4 or 8")
    if not data:
        raise IrcError("give at least one --data folder of training images")
    if (out_dir / "last.pt").exists():
        raise IrcError(f"{out_dir} already holds a run; use --resume or another --out")


def _check_crop(crop: int, scale: int) -> None:
    """The HR crop must divide into LR pixels (irc.train.rescaling.check_crops, as one CLI line)."""
    if crop >= 1 and crop % scale:
        lower = crop - crop % scale
        raise IrcError(f"--crop {crop} is not a multiple of the scale {scale}; use --crop {lower or lower + scale}"
                       f" or {lower + scale}")


def _init_source(init_from: Optional[Path]) -> Optional[str]:
    """--init-from as a file: a path as given, or the weights of an installed model named so (irn-x2)."""
    if init_from is None:
        return None
    if init_from.exists():
        if not init_from.is_file():
            raise IrcError(f"--init-from {init_from} is not a file")
        return str(init_from)
    from irc.models.registry import all_versions

    spec = all_versions().get(str(init_from))
    if spec is None:
        raise IrcError(f"--init-from {init_from}: no such file, nor an installed model (`irc models` lists them)")
    if not spec.weights_path.exists():
        raise IrcError(f"--init-from {init_from}: its weights are missing ({spec.weights_path})")
    return str(spec.weights_path)


def run_family_trainer(config_cls, run, out_dir: Path, shared: dict, new_config) -> None:
    """What every `irc train FAMILY` does around its own options: resume the run in ``out_dir``
    exactly (``--resume``), or take ``new_config()`` (which checks the family's options and
    builds its config), then train with ``run`` and print the checkpoint; errors are one line."""
    with user_errors():
        if shared["resume"]:
            cfg = _resumed_config(config_cls, out_dir, shared["time_budget"], shared["device"], shared["threads"],
                                  shared["ema"])
        else:
            cfg = new_config()
        ckpt = run(cfg, resume=shared["resume"], progress=_show_record)
        out.print(f"checkpoint: {ckpt}")


def _check_ema(ema: float) -> float:
    if not 0 <= ema < 1:
        raise IrcError(f"--ema must be in [0, 1), got {ema}")
    return ema


def _resumed_config(cls, out_dir: Path, time_budget, device: str, threads: int, ema: float | None = None):
    """A run's saved config.json, with this invocation's budget, device and threads, and its EMA
    decay when ``ema`` is given (the loop starts an EMA the checkpoint lacks from the weights)."""
    from dataclasses import fields

    from irc.api import resolve_device

    cfg_path = out_dir / "config.json"
    if not cfg_path.exists():
        raise IrcError(f"nothing to resume in {out_dir} (no config.json)")
    saved = json.loads(cfg_path.read_text())
    cfg = cls(**{f.name: saved[f.name] for f in fields(cls) if f.name in saved})
    cfg.time_budget, cfg.device, cfg.threads = time_budget, resolve_device(device), threads
    if ema is not None:
        cfg.ema = _check_ema(ema)
    return cfg


@train_app.command("crm")
def train_crm(
    scale: int = typer.Option(2, "--scale", "-s", help="2, 4 or 8."),
    codec: str = typer.Option("jpeg", "--codec", help="The lossy LR codec to undo (jpeg, webp, avif, jxl)."),
    base: Optional[str] = typer.Option(None, "--base", help="LR producer: an IRN model (default: irn-x<scale>) or 'bicubic'."),
    data: list[Path] = typer.Option([], "--data", help="Training image folder (repeatable)."),
    out_dir: Path = typer.Option(Path("runs/crm"), "--out", help="Run folder: checkpoint, log.jsonl, config, LR cache."),
    q_min: int = typer.Option(5, "--q-min", help="Lowest codec quality drawn in training."),
    q_max: int = typer.Option(95, "--q-max", help="Highest codec quality drawn in training."),
    nf: int = typer.Option(32, "--nf", help="RRDB features (paper: 64)."),
    gc: int = typer.Option(16, "--gc", help="RRDB growth channels (paper: 32)."),
    blocks: int = typer.Option(3, "--blocks", help="RRDB blocks (paper: 8)."),
    unconditioned: bool = typer.Option(False, "--unconditioned", help="No quality input (one network per quality, as the paper)."),
    target: str = typer.Option("lr", "--target", help="Loss: lr (L2 to the clean LR, the paper) or hr (L2 of the decoded HR through the frozen base IRN)."),
    iters: int = typer.Option(2000, "--iters"),
    crop: int = typer.Option(64, "--crop", help="LR crop side."),
    batch: int = typer.Option(16, "--batch"),
    lr: float = typer.Option(2e-4, "--lr"),
    warmup: int = typer.Option(50, "--warmup"),
    val_dir: Optional[Path] = typer.Option(None, "--val-dir", help="Validation folder, e.g. ../shared/data/kodak."),
    val_images: int = typer.Option(4, "--val-images", help="Validation images (the first N of --val-dir)."),
    val_every: int = typer.Option(100, "--val-every"),
    checkpoint_minutes: float = typer.Option(5.0, "--checkpoint-minutes"),
    time_budget: Optional[float] = typer.Option(None, "--time-budget", help="Seconds; stop cleanly with a checkpoint."),
    init_from: Optional[Path] = typer.Option(None, "--init-from", help="Weights/checkpoint to copy matching tensors from."),
    device: str = typer.Option("cpu", "--device"),
    threads: int = typer.Option(0, "--threads", help="CPU threads (0: all cores)."),
    seed: int = typer.Option(0, "--seed"),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --out exactly (its saved config)."),
):
    """Train a quality-conditioned CRM. Example: irc train crm --scale 2 --codec jpeg --data ../shared/data/train/bsd200"""
    from irc.api import resolve_device
    from irc.codecs import get_codec
    from irc.train.crm import CRMTrainConfig, train_crm as run

    with user_errors():
        if resume:
            cfg = _resumed_config(CRMTrainConfig, out_dir, time_budget, device, threads)
        else:
            _check_new_run(scale, data, out_dir)
            codec_obj = get_codec(codec)
            if not codec_obj.lossy:
                raise IrcError(f"codec {codec_obj.name} is lossless: there is nothing to restore")
            codec_obj.settings(q_min, False), codec_obj.settings(q_max, False)  # range check
            if q_min > q_max:
                raise IrcError("--q-min must not exceed --q-max")
            base = base or f"irn-x{scale}"
            if base != "bicubic":
                from irc.models.registry import get_spec

                if get_spec(base).scale != scale:
                    raise IrcError(f"--base {base} is not a x{scale} model")
            cfg = CRMTrainConfig(
                scale=scale, base=base, codec=codec_obj.name, q_min=q_min, q_max=q_max, nf=nf, gc=gc,
                blocks=blocks, conditioned=not unconditioned, target=target, data=[str(d) for d in data], out=str(out_dir),
                crop=crop, batch=batch, iters=iters, lr=lr, warmup=warmup,
                val_dir=str(val_dir) if val_dir else None, val_images=val_images, val_every=val_every,
                checkpoint_minutes=checkpoint_minutes, time_budget=time_budget,
                init_from=_init_source(init_from), device=resolve_device(device),
                threads=threads, seed=seed,
            )
        ckpt = run(cfg, resume=resume, progress=_show_record)
        out.print(f"checkpoint: {ckpt}")


@train_app.command("export")
def train_export(
    checkpoint: Path = typer.Argument(..., help="A run's last.pt."),
    dest: Path = typer.Argument(..., help="Output .safetensors (model tensors only, fp16)."),
    force: bool = typer.Option(False, "--force", "-f"),
):
    """Export a checkpoint's weights (no optimizer state) as fp16 safetensors."""
    from irc.train.loop import export_weights

    with user_errors():
        if dest.exists() and not force:
            raise IrcError(f"{dest} exists; use --force to overwrite")
        if not checkpoint.is_file():
            raise IrcError(f"no such checkpoint: {checkpoint}")
        export_weights(checkpoint, dest, force=force)
        out.print(f"{checkpoint} -> {dest}")
