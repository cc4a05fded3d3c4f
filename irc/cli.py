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
    except ValueError as exc:  # bad training data and the like, raised below the CLI
        fail(str(exc))


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
    crm: str = typer.Option("auto", "--crm", help="Restore model recorded for lossy LR: auto (the registered one), none, or a name."),
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
                                          tile=tile, progress=prog, crm=crm)
        imageio.atomic_write(dest, data, force)
        for note in info.notes:
            err.print(f"[yellow]note:[/] {note}", highlight=False)
        h = info.header
        q = "lossless" if h.lossless else f"q{h.quality}"
        out.print(f"{input} {h.width}x{h.height} -> {dest}: {info.file_bytes:,} bytes "
                  f"(payload {info.payload_bytes:,} B, {bpp(info.payload_bytes, h.width, h.height):.3f} bpp), "
                  f"LR {h.lr_width}x{h.lr_height} {h.codec} {q}, model {h.model}"
                  + (f" + {h.crm}" if h.crm else ""), highlight=False, soft_wrap=True)


@app.command()
def decode(
    input: Path = typer.Argument(..., help="An .irc file."),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="Default: <stem>.png (<stem>.decoded.png if that exists); format follows the suffix."),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda, cuda:N or auto."),
    temperature: float = typer.Option(0.0, "--temperature", "-t", help="Sample z ~ N(0, T^2) instead of z = 0."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Seed for --temperature (default 0)."),
    no_crm: bool = typer.Option(False, "--no-crm", help="Skip the restore model the file names (for comparison)."),
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
            image = api.decode(parsed, device, temperature, seed, tile=tile, progress=prog, use_crm=not no_crm)
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
    table = Table(title="irc models, Kodak 24 images (IRN: lossless PNG round trip, dB; CRM: RGB PSNR gain on its LR)",
                  caption="data, recipe, hardware and every number: irc models --json")
    for col in ("name", "params", "Y-PSNR", "RGB", "used for", "trained"):
        table.add_column(col, no_wrap=col not in ("used for", "trained"))
    for s in specs.values():
        k, t = s.kodak, s.training
        if s.arch == "crm":  # a restore model: its measured gain over decoding without it
            y, rgb = "-", f"{k['mean_gain_db']:+.2f}" if "mean_gain_db" in k else "-"
            use = f"{s.base} {'/'.join(s.codecs)}"
        else:
            y = f"{k['psnr_y']:.2f}" if "psnr_y" in k else "-"
            rgb = f"{k['psnr_rgb']:.2f}" if "psnr_rgb" in k else "-"
            use = "any codec" if "*" in s.codecs else "/".join(s.codecs) or "--model"
        minutes = f", {t['wall_minutes']:.0f} min" if "wall_minutes" in t else ""
        table.add_row(s.name, f"{t.get('params', 0) / 1e6:.2f}M", y, rgb, use,
                      f"{t.get('iterations', '-')} it{minutes}")
    out.print(table)


@app.command()
def bench(
    dataset: str = typer.Argument(..., help="kodak, div2k (downloaded once and cached), or a folder of images."),
    data: Optional[Path] = typer.Option(None, "--data", help="Use this local folder for the set instead of downloading."),
    out_dir: Path = typer.Option(Path("bench-out"), "--out", help="Folder for bench.json, results/, per_image.csv, plots."),
    scales: str = typer.Option("", "--scales", help="Storage-table scales, e.g. 2,4,8 [default: every shipped scale]."),
    rd_scales: str = typer.Option("2", "--rd-scales", help="Scales of the rescaled R-D curves (each costs model passes)."),
    codecs: str = typer.Option("jpeg", "--codecs", help="Lossy codecs for R-D curves: jpeg,webp,avif,jxl."),
    qualities: str = typer.Option("", "--qualities", help="LR qualities of the rescaled curves, e.g. 10,30,70 [default per codec]."),
    full: bool = typer.Option(False, "--full", help="8 qualities per rescaled curve and the IRN-without-CRM ablation (slow)."),
    quick: bool = typer.Option(False, "--quick", help="3 images, 256 px centre crops, 2 qualities: a smoke test (< 2 min)."),
    limit: int = typer.Option(0, "--limit", help="First N images only."),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda, cuda:N or auto."),
):
    """Storage table (lossless LR) and rate-distortion curves with BD-rates.

    Example: irc bench kodak --data ../shared/data/kodak --out bench-out
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from irc.api import SCALES, resolve_device
    from irc.bench import datasets, engine, report
    from irc.models.registry import all_models

    def ints(text: str, what: str) -> list[int]:
        try:
            return [int(v) for v in text.split(",") if v.strip()]
        except ValueError:
            raise IrcError(f"{what} takes comma-separated integers, got {text!r}") from None

    with user_errors():
        shipped = sorted({m.scale for m in all_models().values() if m.arch == "irn" and m.weights_path.exists()})
        storage = ints(scales, "--scales") or shipped
        rd = ints(rd_scales, "--rd-scales")
        for s in storage + rd:
            if s not in SCALES or s not in shipped:
                raise IrcError(f"no shipped model for scale {s}; shipped scales: {', '.join(map(str, shipped))}")
        rd_codecs = engine.check_codecs([c.strip() for c in codecs.split(",") if c.strip()])
        table = engine.QUICK_QUALITIES if quick else engine.FULL_RESCALED_QUALITIES if full else engine.RESCALED_QUALITIES
        custom = ints(qualities, "--qualities")
        plan = engine.Plan(
            storage_scales=storage, rd_scales=rd, rd_codecs=rd_codecs,
            codec_qualities={c: (engine.CODEC_QUALITIES[c][::2] if quick else engine.CODEC_QUALITIES[c]) for c in rd_codecs},
            rescaled_qualities={c: custom or table[c] for c in rd_codecs},
            ablations=full, crop=256 if quick else 0,
        )
        ds = datasets.resolve(dataset, data)
        if quick:
            ds.files = ds.files[:3]
        if limit:
            ds.files = ds.files[:limit]
        out_dir.mkdir(parents=True, exist_ok=True)
        bar = Progress(TextColumn("{task.description:<28}"), BarColumn(), MofNCompleteColumn(),
                       TimeElapsedColumn(), console=err, transient=False)

        def progress(label: str, total: int):
            task = bar.add_task(label, total=total)
            return lambda: bar.advance(task)

        with bar:
            b = engine.Bench(ds, plan, resolve_device(device), cache=out_dir / "cache.jsonl", progress=progress)
            res = b.run()
        summary = report.write_all(res, out_dir, plan)
        report.print_tables(summary, out)
        out.print(f"{len(res.images)} images from {ds.source} in {res.seconds:.0f} s; wrote {out_dir}/bench.json, "
                  f"results/*.json, per_image.csv, storage.md, rd_x*.png/svg", highlight=False, soft_wrap=True)


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
    lr_degrade: str = typer.Option("none", "--lr-degrade", help="none, noise, or a codec (jpeg, webp, ...) in the loop (straight-through)."),
    degrade_q: str = typer.Option("10,90", "--degrade-q", help="Codec quality range drawn for --lr-degrade CODEC."),
    noise_std: float = typer.Option(0.02, "--noise-std", help="LR noise for --lr-degrade noise (0-1 units)."),
    lambda_rate: float = typer.Option(0.0, "--lambda-rate", help="Weight of the LR's estimated JPEG bits per HR pixel (0: off)."),
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
    from irc.api import resolve_device
    from irc.train.irn import IRNTrainConfig, train_irn as run

    with user_errors():
        if resume:
            cfg = _resumed_config(IRNTrainConfig, out_dir, time_budget, device, threads)
        else:
            _check_new_run(scale, data, out_dir)
            if z_mode not in ("zero", "sample") or schedule not in ("cosine", "step"):
                raise IrcError("--z must be zero or sample; --schedule cosine or step")
            if arch not in ("irn", "irn-e"):
                raise IrcError(f"unknown arch {arch!r}: irn or irn-e")
            if lambda_rate < 0:
                raise IrcError(f"--lambda-rate must be >= 0, got {lambda_rate}")
            try:
                q_lo, q_hi = (int(v) for v in degrade_q.split(","))
            except ValueError:
                raise IrcError(f"--degrade-q takes LOW,HIGH, got {degrade_q!r}") from None
            if lr_degrade not in ("none", "noise"):
                from irc.codecs import get_codec

                codec_obj = get_codec(lr_degrade)
                codec_obj.settings(q_lo, False), codec_obj.settings(q_hi, False)  # range check
                lr_degrade = codec_obj.name
            cfg = IRNTrainConfig(
                scale=scale, data=[str(d) for d in data], out=str(out_dir), crop=crop, batch=batch, iters=iters,
                lr=lr, warmup=warmup, schedule=schedule, z_mode=z_mode, grad_clip=grad_clip, val_dir=str(val_dir) if val_dir else None,
                val_images=val_images, val_every=val_every, checkpoint_minutes=checkpoint_minutes,
                time_budget=time_budget, init_from=str(init_from) if init_from else None,
                device=resolve_device(device), threads=threads, compile=compile, seed=seed,
                haar_first=arch == "irn-e", blocks_per_module=16 if arch == "irn-e" else 8,
                lr_degrade=lr_degrade, degrade_q_min=q_lo, degrade_q_max=q_hi, noise_std=noise_std,
                lambda_rate=lambda_rate,
            )

        ckpt = run(cfg, resume=resume, progress=_show_record)
        out.print(f"checkpoint: {ckpt}")


def _show_record(rec: dict) -> None:
    keys = ("iter", "wall", "loss", "recon", "val_psnr_y", "val_psnr_rgb", "val_lr_gain", "event")
    out.print("  ".join(f"{k}={rec[k]}" for k in keys if k in rec), highlight=False)


def _check_new_run(scale: int, data: list[Path], out_dir: Path) -> None:
    """What every fresh training run needs: a supported scale, data, and a free run folder."""
    if scale not in (2, 4, 8):
        raise IrcError(f"unsupported scale {scale}; choose 2, 4 or 8")
    if not data:
        raise IrcError("give at least one --data folder of training images")
    if (out_dir / "last.pt").exists():
        raise IrcError(f"{out_dir} already holds a run; use --resume or another --out")


def _resumed_config(cls, out_dir: Path, time_budget, device: str, threads: int):
    """A run's saved config.json, with this invocation's budget, device and threads."""
    from dataclasses import fields

    from irc.api import resolve_device

    cfg_path = out_dir / "config.json"
    if not cfg_path.exists():
        raise IrcError(f"nothing to resume in {out_dir} (no config.json)")
    saved = json.loads(cfg_path.read_text())
    cfg = cls(**{f.name: saved[f.name] for f in fields(cls) if f.name in saved})
    cfg.time_budget, cfg.device, cfg.threads = time_budget, resolve_device(device), threads
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
                init_from=str(init_from) if init_from else None, device=resolve_device(device),
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
        _check_output(dest, force)
        if not checkpoint.is_file():
            raise IrcError(f"no such checkpoint: {checkpoint}")
        export_weights(checkpoint, dest, force=force)
        out.print(f"{checkpoint} -> {dest}")


def main() -> None:  # console-script entry point
    try:
        app()
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    main()
