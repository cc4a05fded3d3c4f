"""`irc encode`, `irc decode`, `irc extract`: every output checked before any model pass."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from irc.cli import batch, outputs, work
from irc.cli.common import out, user_errors
from irc.errors import IrcError


def quality_help() -> str:
    """-q's default and range for each codec, from the codec registry."""
    from irc.codecs import CODEC_NAMES, get_codec

    parts = []
    for name in CODEC_NAMES:
        c = get_codec(name)
        lo, hi = c.quality_range
        if not c.lossy:
            parts.append(f"{name}: lossless only")
        elif c.default_lossless:
            parts.append(f"{name}: lossless unless -q {lo}-{hi}")
        else:
            parts.append(f"{name}: {c.default_quality} ({lo}-{hi}" + (", or --lossless)" if c.lossless else ")"))
    return "LR codec quality. Default (range) per codec: " + "; ".join(parts) + "."


def _inputs(paths: list[Path], pattern: str) -> tuple[list[Path], list[dict]]:
    """Split the inputs into files to work on and ones already known bad (missing, a folder)."""
    good, bad = [], []
    for src in paths:
        if src.is_dir():
            bad.append(work.failure(src, f"{src} is a directory; give the files in it, e.g. {src / pattern}"))
        elif not src.exists():
            bad.append(work.failure(src, f"no such file: {src}"))
        else:
            good.append(src)
    return good, bad


def _check_jobs(jobs: int) -> None:
    if jobs < 1:
        raise IrcError(f"--jobs must be at least 1, got {jobs}")


def _describe_encode(r: dict) -> str:
    q = "lossless" if r["lossless"] else f"q{r['quality']}"
    model = f"model {r['model']}" + (f" + {r['crm']}" if r["crm"] else "") if r["model"] else "no model"
    if r.get("resample"):
        model += f" (scale {r['scale']:g}: the HR resampled around its x{r['model_scale']}, {r['resample']})"
    if "rate_control" in r:
        return _describe_search(r, q, model)
    return (f"{r['input']} {r['width']}x{r['height']} -> {r['output']}: {r['bytes_out']:,} bytes, {r['bpp']:.3f} bpp "
            f"(LR payload {r['payload_bytes']:,} B, {r['payload_bpp']:.3f} bpp"
            + (f"; boundary map {r['boundary_bytes']:,} B" if r.get("boundary_bytes") else "") + "), "
            f"LR {r['lr_width']}x{r['lr_height']}{' grayscale' if r.get('lr_mode') == 'L' else ''} "
            f"{r['codec']} {q}, {model}")


def _describe_search(r: dict, q: str, model: str) -> str:
    rc = r["rate_control"]
    psnr = "exact (infinite)" if rc["psnr_rgb"] is None else f"{rc['psnr_rgb']:.2f} dB"
    asked = [f"target {rc['target_psnr']:g} dB" + ("" if rc["target_reached"] in (True, None) else " not reached")
             if rc["target_psnr"] is not None else "",
             f"max {rc['max_bytes']:,} bytes" if rc["max_bytes"] is not None else ""]
    return (f"{r['input']} {r['width']}x{r['height']} -> {r['output']}: chose scale {r['scale']}, {r['codec']} {q} "
            f"({model}): RGB PSNR {psnr}, {r['bytes_out']:,} bytes, {r['bpp']:.3f} bpp "
            f"({'; '.join(a for a in asked if a)}; {rc['candidates']} candidates measured, "
            f"{rc['model_passes']} model passes, {rc['seconds']:.1f} s)")


def _describe_decode(r: dict) -> str:
    return f"{r['input']} -> {r['output']}: {r['width']}x{r['height']} {r['mode']}, {r['bytes_out']:,} bytes"


BACKEND_HELP = ("Inference backend: auto (OpenVINO on the CPU where it is installed, else PyTorch), "
                "torch or openvino (pip install 'irc\\[openvino]').")
PRECISION_HELP = ("auto (per pass: bf16 only where the CPU has it natively and that pass of the model measured "
                  "within 0.02 dB on this backend), fp32 or bf16. An encode records what its pass ran in.")
OUTPUT_HELP = ("Output file for one input; a folder for several (made if missing). "
               "Default: beside each input, {what}.")


def encode(
    inputs: list[Path] = typer.Argument(..., metavar="INPUT", help="Images to encode (PNG, JPEG, TIFF, WebP, ...); several at once, e.g. *.png."),
    output: Optional[str] = typer.Option(None, "-o", "--output", metavar="PATH", help=OUTPUT_HELP.format(what="INPUT with suffix .irc")),
    scale: Optional[float] = typer.Option(None, "-s", "--scale", help="Downscale factor: a model's own (2, 3, 4, 8, 16 with BDFlow: see `irc models`), any other up to the largest such as 2.5 or 6 (the HR is resampled around the next larger model's scale), or 1: the image itself with the codec (no model).",
                                        show_default="4, or the --model's; searched with rate control"),
    codec: Optional[str] = typer.Option(None, "--codec", "-c", help="LR codec: png, jxl, jpeg, webp, avif. With rate control also a comma list (avif,webp) or auto (avif, webp, jpeg, jxl).",
                                        show_default="jpeg; auto with rate control"),
    quality: Optional[int] = typer.Option(None, "-q", "--quality", help=quality_help(), show_default=False),
    lossless: bool = typer.Option(False, "--lossless", help="Lossless LR (webp, avif, jxl; png always is)."),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="Registry name (see `irc models`)."),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda, cuda:N or auto."),
    crm: str = typer.Option("auto", "--crm", help="Restore model recorded for lossy LR: auto (the registered one), none, or a name."),
    tile: int = typer.Option(1024, "--tile", help="Tile side in HR pixels (bounds memory)."),
    viewable: bool = typer.Option(False, "--viewable", help="Write a file that is also a PNG or JPEG of the LR image, which viewers show (--codec png or jpeg); irc reads it as usual."),
    jobs: int = typer.Option(1, "--jobs", "-j", help="Files encoded at once, in worker processes sharing the CPU cores."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per file on stdout (JSON lines), nothing else there."),
    force: bool = typer.Option(False, "--force", "-f", help="Replace existing outputs (only the names this run would write)."),
    target_psnr: Optional[float] = typer.Option(None, "--target-psnr", metavar="DB", help="Rate control: the smallest file whose decode reaches this RGB PSNR; searches scale, codec and quality.", rich_help_panel="Rate control"),
    max_bytes: Optional[int] = typer.Option(None, "--max-bytes", metavar="N", help="Rate control: the best RGB PSNR in at most N bytes (the whole .irc file); with --target-psnr a hard limit.", rich_help_panel="Rate control"),
    max_bpp: Optional[float] = typer.Option(None, "--max-bpp", metavar="B", help="As --max-bytes, in bits per original pixel (whole file x 8 / pixels).", rich_help_panel="Rate control"),
    backend: str = typer.Option("auto", "--backend", help=BACKEND_HELP, rich_help_panel="Inference"),
    precision: str = typer.Option("auto", "--precision", help=PRECISION_HELP, rich_help_panel="Inference"),
    gray: bool = typer.Option(False, "--gray", help="Store a full-size grayscale image; the colour model (IRN_color) restores the colours on decode. Scale 1 (-s 1 or no -s); any codec."),
):
    """Encode images to .irc.

    Example: irc encode photo.png -s 4 --codec jpeg -q 40

    Many files: irc encode *.png -o out/ --jobs 2

    Rate control: irc encode photo.png --target-psnr 32 (or --max-bytes 20000)
    """
    with user_errors():
        rc = target_psnr is not None or max_bytes is not None or max_bpp is not None
        if scale is None and model is None and not rc and not gray:
            scale = 4
        job = work.EncodeJob(scale, codec or ("auto" if rc else "jpeg"), quality, lossless or None, model, device, crm,
                             tile, viewable, target_psnr, max_bytes, max_bpp, backend=backend, precision=precision,
                             gray=gray)
        codecs = work.check_encode(job)
        _check_jobs(jobs)
        good, bad = _inputs(inputs, "*.png")
        plan = outputs.plan(good, output, outputs.encode_name, given=len(inputs))
        outputs.check_outputs(plan, force)
        for _, dest in plan.pairs:
            outputs.check_encode_suffix(dest, codecs[0] if len(codecs) == 1 else "", viewable)
        failed = _run(plan, work.encode_file, job, force, jobs, batch.Report(as_json, _describe_encode), "encod", bad)
    if failed:
        raise typer.Exit(1)


def _run(plan, worker, job, force: bool, jobs: int, report, stem: str, bad: list) -> list:
    """Make the output folder, then run ``worker`` over the planned pairs; returns the failures."""
    plan.make_folder()
    return batch.run(worker, plan.pairs, force, job, report, jobs=jobs, label=f"{stem}ing", verb=f"{stem}ed", failed=bad)


def decode(
    inputs: list[Path] = typer.Argument(..., metavar="INPUT", help=".irc files; several at once, e.g. *.irc."),
    output: Optional[str] = typer.Option(None, "-o", "--output", metavar="PATH",
                                         help=OUTPUT_HELP.format(what="<stem>.png, or <stem>.decoded.png if <stem>.png exists")
                                         + " The format follows the suffix."),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda, cuda:N or auto."),
    temperature: float = typer.Option(0.0, "--temperature", "-t", help="Sample z ~ N(0, T^2) instead of z = 0."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Seed for --temperature.", show_default="0"),
    no_crm: bool = typer.Option(False, "--no-crm", help="Skip the restore model the file names (for comparison)."),
    tile: int = typer.Option(1024, "--tile", help="Tile side in HR pixels (bounds memory)."),
    jobs: int = typer.Option(1, "--jobs", "-j", help="Files decoded at once, in worker processes sharing the CPU cores."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per file on stdout (JSON lines), nothing else there."),
    force: bool = typer.Option(False, "--force", "-f", help="Replace existing outputs (only the names this run would write)."),
    backend: str = typer.Option("auto", "--backend", help=BACKEND_HELP, rich_help_panel="Inference"),
    precision: str = typer.Option("auto", "--precision", help=PRECISION_HELP, rich_help_panel="Inference"),
):
    """Decode .irc files to images of the original size.

    Example: irc decode photo.irc -o photo.png

    Many files: irc decode *.irc -o decoded/ --jobs 2
    """
    from irc import api

    with user_errors():
        job = work.DecodeJob(device, temperature, seed, not no_crm, tile, backend=backend, precision=precision)
        work.check_decode(job)
        _check_jobs(jobs)
        good, bad = _inputs(inputs, "*.irc")
        readable = {}
        for src in good:  # the header says what the output must hold (mode, ICC): check it now
            try:
                f = api.read(src)
                readable[src] = (f.header.mode, f.icc_profile)
            except work.EXPECTED as exc:
                bad.append(work.failure(src, str(exc)))
        plan = outputs.plan(list(readable), output, outputs.decode_name, given=len(inputs))
        outputs.check_outputs(plan, force, inputs=good)
        checked = set()
        for src, dest in plan.pairs:
            key = (dest.suffix.lower(), *readable[src])
            if key not in checked:
                outputs.check_image_output(dest, *readable[src])
                checked.add(key)
        failed = _run(plan, work.decode_file, job, force, jobs, batch.Report(as_json, _describe_decode), "decod", bad)
    if failed:
        raise typer.Exit(1)


def extract(
    input: Path = typer.Argument(..., help="An .irc file."),
    output: Optional[str] = typer.Option(None, "-o", "--output", metavar="PATH", help="Default: <stem>.lr.<codec suffix> beside the input."),
    force: bool = typer.Option(False, "--force", "-f", help="Replace an existing output (only the name this run would write)."),
):
    """Write the LR image exactly as stored: a thumbnail any viewer opens."""
    from irc import api
    from irc.codecs import get_codec

    with user_errors():
        f = api.read(input)
        codec = get_codec(f.header.codec)
        plan = outputs.plan([input], output, lambda src, folder: outputs.extract_name(src, folder, codec.suffix))
        outputs.check_outputs(plan, force)
        (_, dest), = plan.pairs
        outputs.check_extract_suffix(dest, codec.name, codec.suffix)
        plan.make_folder()
        work.write(dest, f.payload, force)
        out.print(f"{input} -> {dest}: {f.header.lr_width}x{f.header.lr_height} {f.header.codec}, "
                  f"{len(f.payload):,} bytes", markup=False, highlight=False)
