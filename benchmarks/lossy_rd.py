"""The lossy path on an image set: R-D curves of every Fig. 9 pipeline, and PSNR at a matched bpp.

Runs the bench engine (the same code as `irc bench`) with the IRN paper's Fig. 9
pipelines at each scale, for one lossy LR codec (``--codec``, JPEG by default):
the codec alone, Bicubic + codec (+ CRM), IRN + codec, IRN + codec + CRM, and the
codec-robust IRN (the model `irc encode` picks for the codec, when it is not the
general one) + codec (+ CRM), plus any ``--models``. Then prints, per curve, the RGB
PSNR interpolated at the target bpp (linear in log bpp, inside the measured range
only) and the BD-rate against the codec alone. Results are cached in
OUT/cache.jsonl, so a rerun only computes new points.

    python benchmarks/lossy_rd.py --data ../shared/data/kodak --out docs/lossy --scales 2 4
    python benchmarks/lossy_rd.py --codec avif --out docs/lossy-avif --scales 2 --qualities 20 30 45 60
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np


def psnr_at(points: list[dict], bpp: float) -> float | None:
    pts = sorted(points, key=lambda p: p["bpp"])
    x = np.log([p["bpp"] for p in pts])
    if not pts or not x[0] <= np.log(bpp) <= x[-1]:
        return None
    return float(np.interp(np.log(bpp), x, [p["psnr-rgb"] for p in pts]))


def main() -> None:
    from rich.console import Console
    from rich.table import Table

    from irc.bench import datasets, engine, report

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="../shared/data/kodak")
    ap.add_argument("--out", default="docs/lossy")
    ap.add_argument("--scales", type=int, nargs="+", default=[2, 4])
    ap.add_argument("--codec", default="jpeg", choices=sorted(engine.FULL_RESCALED_QUALITIES),
                    help="the lossy LR codec of every curve")
    ap.add_argument("--qualities", type=int, nargs="+", default=None,
                    help="the rescaled curves' qualities (default: the bench's full set for the codec)")
    ap.add_argument("--qualities-x4", type=int, nargs="+", default=None, help="other qualities for x4")
    ap.add_argument("--write-registry", action="store_true",
                    help="record the measured gain of each CRM for --codec in the registry (all 24 Kodak images)")
    ap.add_argument("--bpp", type=float, default=0.2, help="matched bit rate for the comparison")
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--models", nargs="*", default=[],
                    help="more IRN models to draw (each with its CRM if one is registered), e.g. irn-x2-noise")
    ap.add_argument("--try", dest="trials", action="append", default=[], metavar="NAME=WEIGHTS:LIKE",
                    help="unshipped weights with the sizes of LIKE (repeatable); a CRM trial restores --codec LR "
                         "of LIKE's base and is drawn in place of any shipped CRM")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    from irc.models import registry

    for t in args.trials:
        name = registry.register_trial(t, crm_codecs=(args.codec,))
        if registry.get_spec(name).role != "restore":
            args.models.append(name)

    ds = datasets.resolve("kodak" if args.data is None else Path(args.data).name, Path(args.data))
    if args.limit:
        ds.files = ds.files[: args.limit]
    codec = args.codec
    plan = engine.Plan(storage_scales=[], rd_scales=args.scales, rd_codecs=[codec],
                       codec_qualities={codec: engine.CODEC_QUALITIES[codec]},
                       rescaled_qualities={codec: args.qualities or engine.FULL_RESCALED_QUALITIES[codec]}, ablations=True,
                       scale_qualities={4: args.qualities_x4} if args.qualities_x4 else {},
                       extra_models=args.models)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    console = Console()
    done = {}

    def progress(label: str, total: int):
        done[label] = 0

        def tick():
            done[label] += 1
            if done[label] == total:
                console.print(f"  {label}: {total} done")
        return tick

    res = engine.Bench(ds, plan, args.device, cache=out / "cache.jsonl", progress=progress).run()
    summary = report.write_all(res, out, plan)
    alone = engine.CODEC_LABEL[codec]
    cur = summary["curves"]
    bd = report.bd_rates(cur, anchor=alone)
    table = Table(title=f"{ds.name}, {len(res.images)} images: RGB PSNR at {args.bpp} bpp and BD-rate vs {alone} alone")
    for col in ("pipeline", f"PSNR @ {args.bpp} bpp", f"BD-rate vs {alone}", "bpp range"):
        table.add_column(col)
    at = {}
    for name, pts in cur.items():
        at[name] = psnr_at(pts, args.bpp)
        b = bd.get(name)
        table.add_row(name, "-" if at[name] is None else f"{at[name]:.2f} dB", "-" if b is None else f"{b:+.1f}%",
                      f"{min(p['bpp'] for p in pts):.3f}-{max(p['bpp'] for p in pts):.3f}")
    console.print(table)
    (out / "matched_bpp.json").write_text(json.dumps({"bpp": args.bpp, "psnr_rgb": at, "codec": codec,
                                                      f"bd_rate_vs_{codec}_pct": bd,
                                                      "seconds": round(res.seconds, 1)}, indent=2) + "\n")
    console.print(f"{res.seconds:.0f} s; wrote {out}/bench.json, matched_bpp.json, rd_x*.png/svg")
    if args.write_registry and len(res.images) == 24:
        write_registry(cur, codec, "python benchmarks/lossy_rd.py " + " ".join(sys.argv[1:]))


def write_registry(cur: dict, codec: str, command: str) -> None:
    """Store, for each registered CRM of ``codec``, its Kodak curve with and without it."""
    from irc.bench.engine import rescaled_label
    from irc.models import registry

    entries = json.loads(registry.REGISTRY_FILE.read_text())
    for e in entries:
        if e["arch"] != "crm" or codec not in e.get("codecs", ()):
            continue
        base = None if e["base"] == "bicubic" else e["base"]
        name = rescaled_label(e["scale"], codec, base, None)
        with_crm, without = cur.get(rescaled_label(e["scale"], codec, base, e["name"])), cur.get(name)
        if not with_crm or not without:
            continue
        gains = [a["psnr-rgb"] - b["psnr-rgb"] for a, b in zip(with_crm, without)]
        kept = {k: v for k, v in e.get("kodak", {}).items() if k == "bf16"}  # the weights' precision record
        e["kodak"] = {
            **kept,
            "pipeline": name + " + CRM, 24 images, RGB PSNR",
            "quality": [p["quality"] for p in with_crm],
            "bpp": [round(p["bpp"], 4) for p in with_crm],
            "psnr_rgb": [round(p["psnr-rgb"], 3) for p in with_crm],
            "psnr_rgb_without_crm": [round(p["psnr-rgb"], 3) for p in without],
            "mean_gain_db": round(float(np.mean(gains)), 3),
            "command": command,
        }
    registry.write_entries(entries)


if __name__ == "__main__":
    main()
