"""`irc train campaign MODEL`: continue a shipped model's training, then measure and ship it."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from irc.cli.common import out, user_errors
from irc.cli.training import _show_record, check_train_precision, train_app
from irc.errors import IrcError


@train_app.command("campaign")
def train_campaign(
    model: str = typer.Argument(..., help="The shipped model to improve: irn-x2, irn-x4, irn-e-x4, irn-x8, irn-ld-x3, fgrn-x2, fgrn-x4, fgrn-x8, hcflow-x4, irn-color, bdflow-x8 or bdflow-x16."),
    data: list[Path] = typer.Option([], "--data", help="Training image folder (repeatable); never the benchmark set."),
    kodak: Optional[Path] = typer.Option(None, "--kodak", help="Folder measured at the end (all of it), e.g. ../shared/data/kodak; "
                                         "its first 4 images also validate during training."),
    time_budget: float = typer.Option(3600.0, "--time-budget", help="Seconds of training in this invocation."),
    runs: Path = typer.Option(Path("runs/campaign"), "--runs", help="Folder of campaign runs (one per model)."),
    threads: int = typer.Option(1, "--threads", help="CPU threads (1 leaves the other core free)."),
    device: str = typer.Option("cpu", "--device"),
    precision: Optional[str] = typer.Option(None, "--precision", help="fp32, bf16 (autocast, fp32 master weights) or auto; "
                                            "default: the recipe's, auto (bf16 on CUDA and on CPUs with native bf16)."),
    lr: Optional[float] = typer.Option(None, "--lr", help="Learning rate of this leg (Adam, constant); default: the recipe's. "
                                       "For a measured change, e.g. a twin run in another --runs folder."),
    min_gain: float = typer.Option(0.2, "--min-gain", help="Ship only when Kodak Y-PSNR (RGB PSNR for a colour model) rises by at least this (dB)."),
    train: bool = typer.Option(True, "--train/--no-train", help="--no-train: only export, measure and (maybe) ship."),
    ship: bool = typer.Option(True, "--ship/--no-ship", help="--no-ship: measure and report, install nothing."),
    adopt: Optional[Path] = typer.Option(None, "--adopt", help="Start MODEL's campaign run from this training run "
                                         "(copied), e.g. a new family's from-scratch run; it ships as version 1."),
):
    """Continue training MODEL under a time budget, then export its EMA weights, measure every
    image of --kodak through the real pipeline and ship them as a new version if they are better.

    Example: irc train campaign irn-e-x4 --data ../shared/data/train --kodak ../shared/data/kodak --time-budget 7200

    Stop early with SIGTERM or Ctrl-C: the step finishes, the checkpoint is written, then the
    export and measurement run as usual. A second Ctrl-C aborts.
    """
    from irc.api import resolve_device
    from irc.models.registry import all_models, get_spec
    from irc.train import campaign
    from irc.train.data import list_images

    with user_errors():
        if model not in campaign.RECIPES:
            raise IrcError(f"no campaign recipe for {model!r}; one of: {', '.join(campaign.recipe_names())}")
        if kodak is None or not kodak.is_dir():
            raise IrcError("give --kodak FOLDER: the images the result is measured on before it may ship")
        files = list_images([kodak])
        if not files:
            raise IrcError(f"no images in {kodak}")
        device = resolve_device(device)
        if precision is not None:
            check_train_precision(precision)
        if lr is not None and not 0 < lr < 1:
            raise IrcError(f"--lr must be between 0 and 1, not {lr}")
        if adopt is not None:
            run_dir = campaign.adopt(model, adopt, runs)
            out.print(f"adopted {adopt} as the campaign run {run_dir}", highlight=False)
        before = all_models().get(model)  # None: nothing shipped yet, this would be version 1
        if before is None and not (runs / model / "last.pt").exists():
            raise IrcError(f"{model} has no shipped weights to start from: give --adopt RUN (a training run of its family)")
        if train:
            if not data and not (runs / model / "last.pt").exists():
                raise IrcError("give at least one --data folder of training images")
            if not data:
                import json

                data = [Path(d) for d in json.loads((runs / model / "config.json").read_text())["data"]]
            out.print(f"training {model} for {time_budget:.0f} s in {runs / model}", highlight=False)
            campaign.train_leg(model, runs, [str(d) for d in data], str(kodak), time_budget, threads, device,
                               progress=_show_record,
                               overrides={k: v for k, v in {"precision": precision, "lr": lr}.items() if v is not None})
        out.print(f"choosing EMA or raw weights on {min(4, len(files))} images, then measuring on all "
                  f"{len(files)} images of {kodak} ...", highlight=False)
        cand, numbers = campaign.export_and_measure(model, runs, files, device)
        key = campaign.metric(campaign.family_of(model, runs)[0])  # psnr_y, or psnr_rgb for a colour model
        old = before.kodak.get(key) if before else None
        if before:
            out.print(f"{model} v{before.version} (shipped): Y-PSNR {old} dB, RGB {before.kodak.get('psnr_rgb')} dB "
                      f"on {before.kodak.get('images')} images", highlight=False)
        else:
            out.print(f"{model}: nothing shipped yet", highlight=False)
        out.print(f"validation {_METRIC[key]} {numbers[f'validation_{key}']}: exporting the {numbers['weights']} weights",
                  highlight=False)
        out.print(f"campaign weights: Y-PSNR {numbers['psnr_y']} dB, RGB {numbers['psnr_rgb']} dB on "
                  f"{numbers['images']} images ({campaign.cpu_hours(runs / model):.2f} CPU-hours so far)",
                  highlight=False)
        gain = numbers[key] - old if old is not None else float("inf")
        if before and len(files) != before.kodak.get("images"):
            out.print("not shipped: measured on another number of images than the shipped numbers", highlight=False)
        elif gain < min_gain:
            out.print(f"not shipped: {gain:+.3f} dB is below --min-gain {min_gain} dB", highlight=False)
        elif not ship:
            out.print(f"would ship ({gain:+.3f} dB); --no-ship given", highlight=False)
        else:
            campaign.ship(model, cand, numbers, runs)
            after = get_spec(model)
            kept = f"; v{before.version} stays installed as {model}@{before.version}" if before else " (its first version)"
            out.print(f"shipped {model} v{after.version}" + (f" ({gain:+.3f} dB)" if before else "")
                      + f": {after.weights_path.name}{kept}", highlight=False)


_METRIC = {"psnr_y": "Y-PSNR", "psnr_rgb": "RGB PSNR"}
