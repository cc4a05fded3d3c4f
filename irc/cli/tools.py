"""`irc info`, `irc models`, `irc sample`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from irc.cli import outputs, work
from irc.cli.common import out, user_errors

SAMPLE = "sample.png"  # in irc/data/, with SOURCE.md beside it


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
        size = input.stat().st_size
        record = {**asdict(h), "file_bytes": size, "payload_bytes": len(f.payload),
                  "bpp": round(bpp(size, h.width, h.height), 4),  # every byte of the file
                  "payload_bpp": round(bpp(len(f.payload), h.width, h.height), 4),
                  "icc_profile_bytes": len(f.icc_profile or b""), "alpha_bytes": len(f.alpha or b""),
                  "boundary_bytes": len(f.boundary or b"")}  # BDFlow's boundary map (BNDY chunk)
        if as_json:
            typer.echo(json.dumps(record, indent=2))
            return
        from rich.table import Table

        table = Table(show_header=False, box=None)
        for k, v in record.items():
            table.add_row(k, _shown(k, v, h.scale))
        out.print(table)


def _shown(key: str, value, scale: int) -> str:
    """A header value for the table: scale 1's missing model and the rate-control record in words."""
    if key == "model" and value is None and scale == 1:
        return "none (scale 1: the stored image is the image)"
    if key == "lr_mode":
        return ("L: a grayscale image; the model restores the colours" if value == "L"
                else "RGB (colour)" if value in (None, "RGB") else str(value))
    if key == "rate_control" and value:
        parts = [f"target {value['target_psnr']:g} dB" if value.get("target_psnr") is not None else "",
                 f"max {value['max_bytes']:,} bytes" if value.get("max_bytes") is not None else "",
                 f"max {value['max_bpp']:g} bpp" if value.get("max_bpp") is not None else "",
                 "measured RGB PSNR " + ("exact (infinite)" if value.get("psnr_rgb") is None
                                         else f"{value['psnr_rgb']:.4f} dB")]
        return "; ".join(p for p in parts if p)
    return str(value)


def models(as_json: bool = typer.Option(False, "--json", help="Print the registry as JSON.")):
    """List the installed models with what they measured on Kodak."""
    from dataclasses import asdict

    from rich.table import Table

    from irc.models.registry import all_models, all_versions

    specs = all_models()
    older = sorted(k for k in all_versions() if k not in specs)
    if as_json:
        typer.echo(json.dumps([asdict(s) for s in all_versions().values()], indent=2))
        return
    table = Table(title="irc models, Kodak 24 images (IRN: lossless PNG round trip, dB; CRM: RGB PSNR gain on its LR)",
                  caption="data, recipe, hardware and every number: irc models --json")
    defaults = _defaults()  # (scale, codec) -> the (name, version) `irc encode` picks: looked up once
    for col in ("name", "params", "Y-PSNR", "RGB", "used for", "trained"):
        table.add_column(col, no_wrap=col not in ("used for", "trained"))
    for s in specs.values():
        k, t = s.kodak, s.training
        if s.role == "restore":  # a restore model: its measured gain over decoding without it
            y, rgb = "-", f"{k['mean_gain_db']:+.2f}" if "mean_gain_db" in k else "-"
            use = f"{s.base} {'/'.join(s.codecs)}"
        else:
            y = f"{k['psnr_y']:.2f}" if "psnr_y" in k else "-"
            rgb = f"{k['psnr_rgb']:.2f}" if "psnr_rgb" in k else "-"
            use = _used_for(s, defaults)
            if s.lr_channels == 1:
                use = "--gray (colour from a grayscale image)"
        minutes = f", {t['wall_minutes']:.0f} min" if "wall_minutes" in t else ""
        hours = f", {t['cpu_hours_total']:.1f} CPU-h" if "cpu_hours_total" in t else minutes
        table.add_row(s.name if s.version == 1 else f"{s.name} v{s.version}", f"{t.get('params', 0) / 1e6:.2f}M",
                      y, rgb, use, f"{t.get('iterations', '-')} it{hours}")
    out.print(table)
    if older:
        out.print(f"older weight versions, kept so that old .irc files decode: {', '.join(older)}", highlight=False)


def _defaults() -> dict[tuple[int, str], tuple[str, int]]:
    """The model `irc encode -s SCALE --codec CODEC` picks, as (name, version), for every installed
    rescaler scale and every codec."""
    from irc.codecs import CODEC_NAMES
    from irc.errors import IrcError
    from irc.models.registry import default_model, rescaler_scales

    picks = {}
    for scale in rescaler_scales():
        for codec in CODEC_NAMES:
            try:
                pick = default_model(scale, codec)
            except IrcError:
                continue
            picks[scale, codec] = (pick.name, pick.version)
    return picks


def _used_for(spec, defaults: dict[tuple[int, str], tuple[str, int]]) -> str:
    """The codecs `irc encode -s SCALE` picks ``spec`` for ("any codec", or e.g. "jpeg/webp/jxl/avif"
    for a general model that another model replaces for PNG); "--model" when none. ``defaults``:
    :func:`_defaults`."""
    from irc.codecs import CODEC_NAMES

    if spec.scale < 2:
        return "--model"
    served = [c for c in CODEC_NAMES if defaults.get((spec.scale, c)) == (spec.name, spec.version)]
    if len(served) == len(CODEC_NAMES):
        return "any codec"
    return "/".join(served) or "--model"


def sample_bytes() -> bytes:
    from importlib.resources import files

    return files("irc.data").joinpath(SAMPLE).read_bytes()


def sample(
    output: Optional[str] = typer.Option(None, "-o", "--output", metavar="PATH",
                                         help="Where to write it; the format follows the suffix.", show_default="photo.png"),
    force: bool = typer.Option(False, "--force", "-f", help="Replace an existing output."),
):
    """Write a sample photo (451x300, CC0, from scikit-image) to try irc on.

    Example: irc sample && irc encode photo.png -s 4 --codec jpeg -q 40 && irc decode photo.irc
    """
    import io

    from PIL import Image

    from irc import imageio

    with user_errors():
        plan = outputs.plan([Path(SAMPLE)], output or "photo.png", lambda src, folder: folder / "photo.png")
        outputs.check_outputs(plan, force, inputs=[])
        (_, dest), = plan.pairs
        data = sample_bytes()
        with Image.open(io.BytesIO(data)) as im:
            im.load()
        if outputs.image_format(dest) != "PNG":
            outputs.check_image_output(dest, im.mode)
            data = imageio.save_bytes(im, dest)
        plan.make_folder()
        work.write(dest, data, force)
        out.print(f"{dest}: {im.width}x{im.height} sample photo (CC0, from scikit-image; source in irc/data/SOURCE.md). "
                  f"Try: irc encode {dest} -s 4 --codec jpeg -q 40", markup=False, highlight=False, soft_wrap=True)
