"""`irc bench`: the paper's storage table and R-D curves on Kodak, DIV2K or a folder."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from irc.cli.common import err, out, user_errors
from irc.errors import IrcError

FRACTIONAL = 2.5  # the fractional scale of the default storage table (IRN paper section 3.3.2)


def bench(
    dataset: str = typer.Argument(..., help="kodak, div2k (downloaded once and cached), or a folder of images."),
    data: Optional[Path] = typer.Option(None, "--data", help="Use this local folder for the set instead of downloading."),
    out_dir: Path = typer.Option(Path("bench-out"), "--out", help="Folder for bench.json, results/, per_image.csv, plots."),
    scales: str = typer.Option("", "--scales", help="Storage-table scales, e.g. 2,4,8; a fraction such as 2.5 runs the next larger model on a resampled HR; none: no storage table.",
                               show_default=f"every shipped scale and {FRACTIONAL}"),
    rd_scales: str = typer.Option("2", "--rd-scales", help="Scales of the rescaled R-D curves (each costs model passes); none: codec-alone curves only."),
    codecs: str = typer.Option("jpeg", "--codecs", help="Lossy codecs for R-D curves: jpeg,webp,avif,jxl."),
    qualities: str = typer.Option("", "--qualities", help="LR qualities of the rescaled curves, e.g. 10,30,70.", show_default="per codec"),
    full: bool = typer.Option(False, "--full", help="8 qualities per rescaled curve and the IRN-without-CRM ablation (slow)."),
    quick: bool = typer.Option(False, "--quick", help="3 images, 256 px centre crops, 2 qualities: a smoke test (< 2 min)."),
    models: str = typer.Option("auto", "--models", help="More rescalers beside each scale's default, comma-separated "
                               "(storage rows and R-D curves; a colour model: storage rows of its grayscale image); "
                               "auto: one of every other shipped family and every colour model; none."),
    auto: str = typer.Option("", "--auto", help="The 'irc auto' curve: target RGB PSNRs (dB), e.g. 30,32,34,36,38; per image "
                             "and target, `irc encode --target-psnr T --codec AUTO_CODECS` and its decode (slow: a "
                             "rate-control search each). Compared with every codec-alone curve (--codecs)."),
    auto_codecs: str = typer.Option("auto", "--auto-codecs", help="Codecs irc auto searches: auto (avif, webp, jpeg, jxl) or a comma list."),
    limit: int = typer.Option(0, "--limit", help="First N images only."),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda, cuda:N or auto."),
):
    """Storage table (lossless LR) and rate-distortion curves with BD-rates.

    Example: irc bench kodak --data ../shared/data/kodak --out bench-out
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from irc.api import model_scale_for, resolve_device, scale_arg
    from irc.bench import datasets, engine, report
    from irc.models.registry import all_models, get_spec

    def ints(text: str, what: str) -> list[int]:
        try:
            return [int(v) for v in text.split(",") if v.strip()]
        except ValueError:
            raise IrcError(f"{what} takes comma-separated integers, got {text!r}") from None

    def numbers(text: str) -> list[int | float]:
        try:
            return [scale_arg(float(v)) for v in text.split(",") if v.strip()]
        except ValueError:
            raise IrcError(f"--scales takes comma-separated numbers, got {text!r}") from None

    def targets(text: str) -> list[float]:
        try:
            values = sorted({float(v) for v in text.split(",") if v.strip()})
        except ValueError:
            raise IrcError(f"--auto takes comma-separated target PSNRs in dB, e.g. 30,32,34, got {text!r}") from None
        bad = [v for v in values if not 10 <= v <= 60]
        if bad:
            raise IrcError(f"--auto: a target PSNR lies between 10 and 60 dB, got {bad[0]:g}")
        return values

    with user_errors():
        from irc.ratecontrol import codec_list

        auto_targets = targets(auto)
        if auto_targets:
            codec_list(auto_codecs)  # unknown or unusable codecs fail here, before any work
        shipped = sorted({m.scale for m in all_models().values() if m.role == "rescaler" and m.scale >= 2
                          and m.weights_path.exists()})
        storage = [] if scales.strip() == "none" else numbers(scales) or shipped + [FRACTIONAL]
        rd = [] if rd_scales.strip() == "none" else ints(rd_scales, "--rd-scales")
        for s in [s for s in storage if isinstance(s, int)] + rd:
            if s not in shipped:
                raise IrcError(f"no shipped model for scale {s}; shipped scales: {', '.join(map(str, shipped))} "
                               "(or a fraction such as 2.5)")
        for s in storage:
            if s == 1:
                raise IrcError("--scales: scale 1 is the codec alone, which the table has already")
            model_scale_for(s)  # a fraction needs a larger model
        rd_codecs = engine.check_codecs([c.strip() for c in codecs.split(",") if c.strip()])
        table = engine.QUICK_QUALITIES if quick else engine.FULL_RESCALED_QUALITIES if full else engine.RESCALED_QUALITIES
        custom = ints(qualities, "--qualities")
        extra = other_families([s for s in storage if isinstance(s, int)] + rd) if models == "auto" else [] if models == "none" else [
            get_spec(m.strip()).key for m in models.split(",") if m.strip()]
        for m in extra:
            if get_spec(m).role != "rescaler":
                raise IrcError(f"--models: {m} is not a rescaler")
        color = [m for m in extra if get_spec(m).lr_channels == 1]  # storage rows of their grayscale image
        if models == "auto":
            color = [m.key for m in all_models().values() if m.role == "rescaler" and m.lr_channels == 1
                     and m.weights_path.exists()]
        if not storage:  # no storage table: no grayscale storage rows either
            color = []
        extra = [m for m in extra if m not in color]
        plan = engine.Plan(
            storage_scales=storage, rd_scales=rd, rd_codecs=rd_codecs,
            codec_qualities={c: (engine.CODEC_QUALITIES[c][::2] if quick else engine.CODEC_QUALITIES[c]) for c in rd_codecs},
            rescaled_qualities={c: custom or table[c] for c in rd_codecs},
            ablations=full, crop=256 if quick else 0, extra_models=extra, color_models=color,
            auto_targets=auto_targets, auto_codecs=auto_codecs,
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


def other_families(scales: list[int]) -> list[str]:
    """Per scale, the newest general model of every shipped rescaler family other than the
    PNG default's (e.g. irn-x4 and hcflow-x4 beside fgrn-x4): what `irc bench` compares by default."""
    from irc.models.registry import all_models, default_model

    picked = []
    for s in sorted(set(scales)):
        default = default_model(s, "png")
        seen = {default.arch}
        for m in all_models().values():
            if m.role == "rescaler" and m.scale == s and m.arch not in seen and m.weights_path.exists():
                seen.add(m.arch)
                picked.append(m.key)
    return picked
