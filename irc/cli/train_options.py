"""Typer options that every rescaler trainer (`irc train irn|fgrn|hcflow`) shares.

One object per option, written once. :func:`with_shared_options` adds the :data:`SHARED` ones
to a trainer command after its own options and hands their values to it as one dict, so a
trainer declares only what is its own (its scale, its network, its learning rate)."""

from __future__ import annotations

import functools
import inspect
from pathlib import Path
from typing import Optional

import typer

PRECISION_HELP = ("auto (bf16 autocast on CUDA and on CPUs with native bf16, else fp32), fp32, "
                  "or bf16 (fp32 master weights).")
INIT_HELP = ("Weights (.safetensors), a run's last.pt, or an installed model's name (irn-x2) to start from: every "
             "tensor whose name and shape match is copied, the rest keeps its initialisation (reported).")
EMA_HELP = ("Decay of an exponential moving average of the weights, exported when on (0: off; e.g. 0.998). "
            "With --resume: the run's new decay (default: its own); an EMA added to a run starts as its weights.")

DATA = typer.Option([], "--data", help="Training image folder (repeatable); any folder of images.")
ITERS = typer.Option(2000, "--iters")
CROP = typer.Option(64, "--crop", help="HR crop side.")
BATCH = typer.Option(16, "--batch")
WARMUP = typer.Option(50, "--warmup")
SCHEDULE = typer.Option("cosine", "--schedule", help="cosine, step (halve every iters/5) or constant.")
GRAD_CLIP = typer.Option(1.0, "--grad-clip", help="Gradient-norm clip (0: off).")
LR_DEGRADE = typer.Option("none", "--lr-degrade",
                          help="none, noise, or a codec (jpeg, webp, ...) in the loop (straight-through).")
DEGRADE_Q = typer.Option("10,90", "--degrade-q", help="Codec quality range drawn for --lr-degrade CODEC.")
NOISE_STD = typer.Option(0.02, "--noise-std", help="LR noise for --lr-degrade noise (0-1 units).")
VAL_DIR = typer.Option(None, "--val-dir", help="Validation folder, e.g. ../shared/data/kodak.")
VAL_IMAGES = typer.Option(4, "--val-images")
VAL_EVERY = typer.Option(200, "--val-every")
CHECKPOINT_MINUTES = typer.Option(5.0, "--checkpoint-minutes")
TIME_BUDGET = typer.Option(None, "--time-budget", help="Seconds; stop cleanly with a checkpoint.")
INIT_FROM = typer.Option(None, "--init-from", help=INIT_HELP)
DEVICE = typer.Option("cpu", "--device")
THREADS = typer.Option(0, "--threads", help="CPU threads (0: all cores).")
COMPILE = typer.Option(False, "--compile", help="torch.compile the loss (CUDA).")
PRECISION = typer.Option("auto", "--precision", help=PRECISION_HELP)
EMA = typer.Option(None, "--ema", help=EMA_HELP, show_default="0")
SEED = typer.Option(0, "--seed")
RESUME = typer.Option(False, "--resume", help="Continue the run in --out exactly (its saved config; --ema may change).")


def out_dir(default: str):
    """--out, with the trainer's own default run folder."""
    return typer.Option(Path(default), "--out", help="Run folder: checkpoint, log.jsonl, config.")


# name -> (type, option): the options of every rescaler trainer, in the order --help lists them
SHARED: dict[str, tuple[object, object]] = {
    "data": (list[Path], DATA), "iters": (int, ITERS), "crop": (int, CROP), "batch": (int, BATCH),
    "warmup": (int, WARMUP), "schedule": (str, SCHEDULE), "grad_clip": (float, GRAD_CLIP),
    "lr_degrade": (str, LR_DEGRADE), "degrade_q": (str, DEGRADE_Q), "noise_std": (float, NOISE_STD),
    "val_dir": (Optional[Path], VAL_DIR), "val_images": (int, VAL_IMAGES), "val_every": (int, VAL_EVERY),
    "checkpoint_minutes": (float, CHECKPOINT_MINUTES), "time_budget": (Optional[float], TIME_BUDGET),
    "init_from": (Optional[Path], INIT_FROM), "device": (str, DEVICE), "threads": (int, THREADS),
    "compile": (bool, COMPILE), "precision": (str, PRECISION), "ema": (Optional[float], EMA), "seed": (int, SEED),
    "resume": (bool, RESUME),
}


def with_shared_options(fn):
    """Decorate a trainer command ``fn(own options..., shared)``: Typer sees its own options and
    then every :data:`SHARED` one; ``fn`` gets the latter's values as the dict ``shared``."""
    own = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY)
           for p in inspect.signature(fn, eval_str=True).parameters.values() if p.name != "shared"]
    added = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=option, annotation=kind)
             for name, (kind, option) in SHARED.items()]

    @functools.wraps(fn)
    def command(**kwargs):
        shared = {name: kwargs.pop(name) for name in SHARED}
        return fn(**kwargs, shared=shared)

    command.__signature__ = inspect.Signature(own + added)
    command.__annotations__ = {p.name: p.annotation for p in own + added}
    return command
