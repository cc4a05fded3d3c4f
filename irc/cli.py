"""The `irc` command line: thin, it parses, calls irc.api / irc.train, and prints."""

from __future__ import annotations

import json
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from irc.errors import IrcError

app = typer.Typer(
    name="irc",
    help="irc: image codec with a learned invertible downscaler (IRN).\n\n"
    "Examples:\n\n"
    "  irc encode photo.png -s 4 --codec jpeg -q 40   # -> photo.irc\n\n"
    "  irc decode photo.irc                           # -> photo.png, original size\n\n"
    "  irc info photo.irc --json\n\n"
    "  irc extract photo.irc                          # the LR thumbnail, byte-exact\n\n"
    "  irc models",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
train_app = typer.Typer(help="Train the networks (resumable, time-budgeted).", no_args_is_help=True)
app.add_typer(train_app, name="train")

out = Console()
err = Console(stderr=True)


def fail(message: str, code: int = 1):
    err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


@contextmanager
def user_errors():
    """Turn expected failures into one line on stderr and a non-zero exit."""
    try:
        yield
    except IrcError as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        fail("interrupted; no output written", 130)
    except MemoryError:
        fail("out of memory; try a smaller --tile")
    except OSError as exc:
        fail(f"{exc.filename or ''}: {exc.strerror or exc}".lstrip(": "))


@contextmanager
def tile_progress(label: str):
    """Yield a factory total -> advance() that shows a progress bar over tiles.

    The bar starts only when the work starts, so an early error prints nothing else.
    """
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    bar = Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total} tiles"),
                   TimeElapsedColumn(), console=err, transient=True)

    def factory(total: int):
        bar.start()
        task = bar.add_task(label, total=total)
        return lambda: bar.advance(task)

    try:
        yield factory
    finally:
        if bar.live.is_started:
            bar.stop()


def _check_output(path: Path, force: bool) -> None:
    if path.exists() and not force:
        raise IrcError(f"{path} exists; use --force to overwrite")


@app.command()
def encode(
    input: Path = typer.Argument(..., help="Image to encode (PNG, JPEG, TIFF, WebP, ...)."),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="Default: INPUT with suffix .irc."),
    scale: Optional[int] = typer.Option(None, "-s", "--scale", help="Downscale factor: 2, 4 or 8 [default: 4, or the model's]."),
    codec: str = typer.Option("jpeg", "--codec", "-c", help="LR codec: png, jxl, jpeg, webp, avif."),
    quality: Optional[int] = typer.Option(None, "-q", "--quality", help="LR codec quality (lossy codecs)."),
    lossless: bool = typer.Option(False, "--lossless", help="Lossless LR (webp, avif, jxl; png always is)."),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="Registry name (see `irc models`)."),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda, cuda:N or auto."),
    tile: int = typer.Option(1024, "--tile", help="Tile side in HR pixels (bounds memory)."),
    force: bool = typer.Option(False, "--force", "-f", help="Overwrite an existing output."),
):
    """Encode an image to .irc.

    Example: irc encode photo.png -s 4 --codec jpeg -q 40
    """
    from irc import api, imageio
    from irc.metrics import bpp

    with user_errors():
        if scale is None and model is None:
            scale = 4
        dest = output or input.with_suffix(".irc")
        _check_output(dest, force)
        with tile_progress("encoding") as prog:
            data, info = api.encode_image(input, scale, codec, quality, lossless or None, model, device,
                                          tile=tile, progress=prog)
        imageio.atomic_write(dest, data, force)
        for note in info.notes:
            err.print(f"[yellow]note:[/] {note}", highlight=False)
        h = info.header
        q = "lossless" if h.lossless else f"q{h.quality}"
        out.print(f"{input} {h.width}x{h.height} -> {dest}: {info.file_bytes:,} bytes "
                  f"(payload {info.payload_bytes:,} B, {bpp(info.payload_bytes, h.width, h.height):.3f} bpp), "
                  f"LR {h.lr_width}x{h.lr_height} {h.codec} {q}, model {h.model}", highlight=False, soft_wrap=True)


@app.command()
def decode(
    input: Path = typer.Argument(..., help="An .irc file."),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="Default: <stem>.png (<stem>.decoded.png if that exists); format follows the suffix."),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda, cuda:N or auto."),
    temperature: float = typer.Option(0.0, "--temperature", "-t", help="Sample z ~ N(0, T^2) instead of z = 0."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Seed for --temperature (default 0)."),
    tile: int = typer.Option(1024, "--tile", help="Tile side in HR pixels (bounds memory)."),
    force: bool = typer.Option(False, "--force", "-f", help="Overwrite an existing output."),
):
    """Decode an .irc file to an image of the original size.

    Example: irc decode photo.irc -o photo.png
    """
    from irc import api, imageio

    with user_errors():
        parsed = api.read(input)  # checks the file before anything else
        dest = output or input.with_suffix(".png")
        if output is None and dest.exists() and not force:
            # the default name is usually the original next to its .irc: never clobber it
            dest = input.with_suffix(".decoded.png")
        _check_output(dest, force)
        with tile_progress("decoding") as prog:
            image = api.decode(parsed, device, temperature, seed, tile=tile, progress=prog)
        imageio.atomic_write(dest, imageio.save_bytes(image, dest), force)
        out.print(f"{input} -> {dest}: {image.width}x{image.height} {image.mode}", highlight=False)


@app.command()
def info(
    input: Path = typer.Argument(..., help="An .irc file."),
    as_json: bool = typer.Option(False, "--json", help="Print the header as JSON."),
):
    """Print the header of an .irc file."""
    from dataclasses import asdict

    from irc import api
    from irc.metrics import bpp

    with user_errors():
        f = api.read(input)
        h = f.header
        record = {**asdict(h), "payload_bytes": len(f.payload),
                  "bpp": round(bpp(len(f.payload), h.width, h.height), 4),
                  "icc_profile_bytes": len(f.icc_profile or b""), "alpha_bytes": len(f.alpha or b"")}
        if as_json:
            typer.echo(json.dumps(record, indent=2))
            return
        from rich.table import Table

        table = Table(show_header=False, box=None)
        for k, v in record.items():
            table.add_row(k, str(v))
        out.print(table)


@app.command()
def extract(
    input: Path = typer.Argument(..., help="An .irc file."),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="Default: <stem>.lr.<codec suffix>."),
    force: bool = typer.Option(False, "--force", "-f", help="Overwrite an existing output."),
):
    """Write the LR image exactly as stored: a thumbnail any viewer opens."""
    from irc import api, imageio
    from irc.codecs import get_codec

    with user_errors():
        f = api.read(input)
        dest = output or input.with_suffix(".lr" + get_codec(f.header.codec).suffix)
        imageio.atomic_write(dest, f.payload, force)
        out.print(f"{input} -> {dest}: {f.header.lr_width}x{f.header.lr_height} {f.header.codec}, "
                  f"{len(f.payload):,} bytes", highlight=False)


@app.command()
def models(as_json: bool = typer.Option(False, "--json", help="Print the registry as JSON.")):
    """List the installed models with what they measured on Kodak."""
    from dataclasses import asdict

    from rich.table import Table

    from irc.models.registry import all_models

    specs = all_models()
    if as_json:
        typer.echo(json.dumps([asdict(s) for s in specs.values()], indent=2))
        return
    table = Table(title="irc models (Kodak: lossless PNG round trip, mean of 24 images)")
    for col in ("name", "arch", "scale", "params", "Kodak Y-PSNR", "Kodak RGB PSNR", "iterations", "trained on"):
        table.add_column(col)
    for s in specs.values():
        k, t = s.kodak, s.training
        table.add_row(s.name, s.arch, f"x{s.scale}", f"{t.get('params', 0) / 1e6:.2f}M",
                      f"{k['psnr_y']:.2f} dB" if "psnr_y" in k else "-",
                      f"{k['psnr_rgb']:.2f} dB" if "psnr_rgb" in k else "-",
                      f"{t.get('iterations', '-')}", f"{t.get('data', '-')} ({t.get('hardware', '?')})")
    out.print(table)


@train_app.command("irn")
def train_irn(
    scale: int = typer.Option(2, "--scale", "-s", help="2, 4 or 8."),
    data: list[Path] = typer.Option([], "--data", help="Training image folder (repeatable); any folder of images."),
    out_dir: Path = typer.Option(Path("runs/irn"), "--out", help="Run folder: checkpoint, log.jsonl, config."),
    arch: str = typer.Option("irn", "--arch", help="irn, or irn-e (Haar first, then 16 InvBlocks; x4)."),
    iters: int = typer.Option(2000, "--iters"),
    crop: int = typer.Option(64, "--crop", help="HR crop side."),
    batch: int = typer.Option(16, "--batch"),
    lr: float = typer.Option(5e-4, "--lr"),
    warmup: int = typer.Option(50, "--warmup"),
    schedule: str = typer.Option("cosine", "--schedule", help="cosine, or step (halve every iters/5)."),
    z_mode: str = typer.Option("zero", "--z", help="zero (z = 0 in the backward pass) or sample."),
    grad_clip: float = typer.Option(1.0, "--grad-clip", help="Gradient-norm clip (0: off)."),
    val_dir: Optional[Path] = typer.Option(None, "--val-dir", help="Validation folder, e.g. ../shared/data/kodak."),
    val_images: int = typer.Option(4, "--val-images"),
    val_every: int = typer.Option(200, "--val-every"),
    checkpoint_minutes: float = typer.Option(5.0, "--checkpoint-minutes"),
    time_budget: Optional[float] = typer.Option(None, "--time-budget", help="Seconds; stop cleanly with a checkpoint."),
    init_from: Optional[Path] = typer.Option(None, "--init-from", help="Weights/checkpoint to copy matching tensors from."),
    device: str = typer.Option("cpu", "--device"),
    threads: int = typer.Option(0, "--threads", help="CPU threads (0: all cores)."),
    compile: bool = typer.Option(False, "--compile", help="torch.compile the loss (CUDA)."),
    seed: int = typer.Option(0, "--seed"),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --out exactly (its saved config)."),
):
    """Train IRN. Example: irc train irn --scale 2 --data ../shared/data/train --val-dir ../shared/data/kodak"""
    from dataclasses import fields

    from irc.api import resolve_device
    from irc.train.irn import IRNTrainConfig, train_irn as run

    with user_errors():
        if resume:
            cfg_path = out_dir / "config.json"
            if not cfg_path.exists():
                raise IrcError(f"nothing to resume in {out_dir} (no config.json)")
            saved = json.loads(cfg_path.read_text())
            cfg = IRNTrainConfig(**{f.name: saved[f.name] for f in fields(IRNTrainConfig) if f.name in saved})
            cfg.time_budget, cfg.device, cfg.threads = time_budget, resolve_device(device), threads
        else:
            if scale not in (2, 4, 8):
                raise IrcError(f"unsupported scale {scale}; choose 2, 4 or 8")
            if not data:
                raise IrcError("give at least one --data folder of training images")
            if z_mode not in ("zero", "sample") or schedule not in ("cosine", "step"):
                raise IrcError("--z must be zero or sample; --schedule cosine or step")
            if arch not in ("irn", "irn-e"):
                raise IrcError(f"unknown arch {arch!r}: irn or irn-e")
            if (out_dir / "last.pt").exists():
                raise IrcError(f"{out_dir} already holds a run; use --resume or another --out")
            cfg = IRNTrainConfig(
                scale=scale, data=[str(d) for d in data], out=str(out_dir), crop=crop, batch=batch, iters=iters,
                lr=lr, warmup=warmup, schedule=schedule, z_mode=z_mode, grad_clip=grad_clip, val_dir=str(val_dir) if val_dir else None,
                val_images=val_images, val_every=val_every, checkpoint_minutes=checkpoint_minutes,
                time_budget=time_budget, init_from=str(init_from) if init_from else None,
                device=resolve_device(device), threads=threads, compile=compile, seed=seed,
                haar_first=arch == "irn-e", blocks_per_module=16 if arch == "irn-e" else 8,
            )

        def show(rec: dict) -> None:
            keys = ("iter", "wall", "loss", "recon", "val_psnr_y", "val_psnr_rgb", "event")
            out.print("  ".join(f"{k}={rec[k]}" for k in keys if k in rec), highlight=False)

        ckpt = run(cfg, resume=resume, progress=show)
        out.print(f"checkpoint: {ckpt}")


@train_app.command("export")
def train_export(
    checkpoint: Path = typer.Argument(..., help="A run's last.pt."),
    dest: Path = typer.Argument(..., help="Output .safetensors (model tensors only, fp16)."),
    force: bool = typer.Option(False, "--force", "-f"),
):
    """Export a checkpoint's weights (no optimizer state) as fp16 safetensors."""
    from irc.train.irn import export_weights

    with user_errors():
        _check_output(dest, force)
        if not checkpoint.is_file():
            raise IrcError(f"no such checkpoint: {checkpoint}")
        export_weights(checkpoint, dest)
        out.print(f"{checkpoint} -> {dest}")


def main() -> None:  # console-script entry point
    try:
        app()
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    main()
