"""Bench output: storage table, R-D curves, BD-rates; terminal tables, JSON, CSV, plots."""

from __future__ import annotations

import csv
import json
import math
import re
from collections import Counter
from dataclasses import asdict, fields
from pathlib import Path

import numpy as np

from irc.bench.auto import AUTO, criteria
from irc.bench.points import CODEC_LABEL, Point, Results
from irc.metrics import bd_rate

# IRN paper, Table 14 (DIV2K validation, 100 images): storage MB, RGB PSNR, change vs matched JPEG,
# by (scale, lossless codec); scale 1 is the codec alone. JPEG XL stands in the FLIF row; FLIF's
# numbers are printed beside it for reference.
PAPER_DIV2K = {
    (1, "png"): "PNG 470 MB",
    (1, "jxl"): "FLIF 294 MB",
    (2, "png"): "131 MB, 40.87 dB, +7.3%",
    (2, "jxl"): "FLIF 108 MB, -11.5%",
    (4, "png"): "34.9 MB, 32.95 dB, +11.1%",
    (4, "jxl"): "FLIF 28.7 MB, -8.6%",
    (8, "png"): "9.16 MB, 28.50 dB, -29.9%",
    (8, "jxl"): "FLIF 7.68 MB, -41.2%",
}
METRICS = ("bpp", "psnr-rgb", "psnr-y", "ssim")


def paper_div2k(scale: int | float, codec: str, model: str | None) -> str:
    """The paper's DIV2K figures beside a storage row (scale, lossless codec, rescaler model): the
    codec alone (scale 1, no model) and the general IRN of the scale (the paper's model) get them
    as they are; the codec's default model of the scale from another family (FGRN x4) gets IRN's,
    marked as IRN's;
    bicubic rows, colour models and other models get none."""
    from irc.errors import IrcError
    from irc.models.registry import default_model, get_spec

    figure = PAPER_DIV2K.get((scale, codec), "")
    if not figure or (model is None) != (scale == 1):
        return ""
    if model is None:
        return figure
    try:
        spec = get_spec(model)
    except IrcError:  # a cached row of a model no longer installed: no claim about it
        return ""
    if spec.arch == "irn" and "*" in spec.codecs:
        return figure
    return "IRN: " + figure if model == default_model(int(scale), codec).name else ""


def _by_pipeline(points: list[Point]) -> dict[str, list[Point]]:
    out: dict[str, list[Point]] = {}
    for p in points:
        out.setdefault(p.pipeline, []).append(p)
    return out


def storage_rows(res: Results) -> list[dict]:
    """Rows of the storage table in print order (matched JPEG before each rescaled row)."""
    rows = []
    for name, pts in _by_pipeline([p for p in res.points if p.quality is None and p.target is None]).items():
        total = sum(p.bytes for p in pts)
        exact = all(math.isinf(p.psnr_rgb) for p in pts)  # the codec alone, lossless
        row = {"pipeline": name, "scale": pts[0].scale, "model": pts[0].model, "total_mb": total / 1e6,
               "psnr_rgb": None if exact else float(np.mean([p.psnr_rgb for p in pts])),
               "psnr_y": None if exact else float(np.mean([p.psnr_y for p in pts])),
               "bpp": total * 8 / res.pixels, "paper_div2k": paper_div2k(pts[0].scale, pts[0].codec, pts[0].model)}
        m = res.matched.get(name)
        if m:
            row["matched_jpeg"] = {"quality": m.quality, "psnr_rgb": m.psnr_rgb, "total_mb": m.total_bytes / 1e6}
            row["delta_vs_matched_jpeg_pct"] = (total / m.total_bytes - 1) * 100
        rows.append(row)
    return rows


def curves(res: Results) -> dict[str, list[dict]]:
    """pipeline -> points averaged over images, by quality (lossy settings only); irc auto by
    target PSNR (its "quality" is None, "chosen" counts the settings picked; "scale" 1: it is
    drawn with the codec-alone curves). A target where some image's file is exact (lossless,
    infinite PSNR) has no finite mean and is left out."""
    out = {}
    for name, pts in _by_pipeline([p for p in res.points if p.quality is not None or p.target is not None]).items():
        auto = name == AUTO
        by_q: dict[float, list[Point]] = {}
        for p in pts:
            by_q.setdefault(p.target if auto else p.quality, []).append(p)
        rows = []
        for q, ps in sorted(by_q.items()):
            if auto and not all(math.isfinite(p.psnr_rgb) for p in ps):
                continue
            row = {"quality": None if auto else q, "bpp": float(np.mean([p.bpp for p in ps])),
                   "psnr-rgb": float(np.mean([p.psnr_rgb for p in ps])),
                   "psnr-y": float(np.mean([p.psnr_y for p in ps])), "ssim": float(np.mean([p.ssim for p in ps])),
                   "encoding_time": float(np.mean([p.enc_s for p in ps])),
                   "decoding_time": float(np.mean([p.dec_s for p in ps])),
                   "scale": 1 if auto else ps[0].scale, "codec": "auto" if auto else ps[0].codec}
            if auto:
                row["target"] = q
                row["chosen"] = dict(Counter(_setting(p) for p in ps).most_common())
            rows.append(row)
        if rows:
            out[name] = rows
    return out


def _setting(p: Point) -> str:
    """"x2 AVIF q57", "x1 JPEG XL lossless": what irc auto chose for one image."""
    return f"x{p.scale:g} {CODEC_LABEL.get(p.codec, p.codec)} " + ("lossless" if p.quality is None else f"q{p.quality}")


def bd_rates(cur: dict[str, list[dict]], anchor: str = "JPEG") -> dict[str, float | None]:
    """BD-rate (%) of every curve against the codec-alone JPEG curve (RGB PSNR)."""
    if anchor not in cur:
        return {}
    a = [(c["bpp"], c["psnr-rgb"]) for c in cur[anchor]]
    return {name: bd_rate(a, [(c["bpp"], c["psnr-rgb"]) for c in pts])
            for name, pts in cur.items() if name != anchor}


def bd_rates_vs_codecs(cur: dict[str, list[dict]]) -> dict[str, dict[str, float | None]]:
    """codec alone ("JPEG", "WebP", "AVIF", "JPEG XL": those measured) -> BD-rate (%) of every other
    curve against it, at every scale the run drew; None where the two share no PSNR range."""
    return {label: bd_rates(cur, label) for label in _alone_labels(cur)}


def _alone_labels(cur: dict[str, list[dict]]) -> list[str]:
    """The codec-alone curves of a run, in the tables' order: JPEG, WebP, AVIF, JPEG XL."""
    return [CODEC_LABEL[c] for c in ("jpeg", "webp", "avif", "jxl") if CODEC_LABEL[c] in cur]


def overlaps_vs_codecs(cur: dict[str, list[dict]]) -> dict[str, dict[str, list[float] | None]]:
    """codec alone -> the RGB PSNR range [lo, hi] (dB) each other curve shares with it: the range
    its BD-rate integrates over (a BD-rate over a sliver says little); None where they share none."""
    def span(pts):
        v = [p["psnr-rgb"] for p in pts]
        return min(v), max(v)

    out = {}
    for label in _alone_labels(cur):
        a_lo, a_hi = span(cur[label])
        out[label] = {}
        for name, pts in cur.items():
            if name != label:
                t_lo, t_hi = span(pts)
                lo, hi = max(a_lo, t_lo), min(a_hi, t_hi)
                out[label][name] = [round(lo, 3), round(hi, 3)] if hi - lo > 1e-6 else None
    return out


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def write_all(res: Results, out: Path, plan) -> dict:
    """Write bench.json, results/<curve>.json (CompressAI layout), per_image.csv, storage.md and plots."""
    out.mkdir(parents=True, exist_ok=True)
    cur, rows = curves(res), storage_rows(res)
    against = bd_rates_vs_codecs(cur)
    summary = {"dataset": res.dataset, "images": res.images, "seconds": round(res.seconds, 1),
               "plan": asdict(plan), "storage": rows, "bd_rate_vs_jpeg_pct": against.get("JPEG", {}),
               "bd_rate_vs_codecs_pct": against, "bd_overlap_vs_codecs_db": overlaps_vs_codecs(cur),
               "curves": {k: v for k, v in cur.items()}}
    if AUTO in cur:  # rate control's criteria: BD-rate and margin at equal rate against each codec alone
        summary["auto_vs_codecs"] = criteria(cur, res.points)
    _atomic_text(out / "bench.json", json.dumps(summary, indent=2))
    (out / "results").mkdir(exist_ok=True)
    for name, pts in cur.items():
        doc = {"name": name, "description": f"{name} on {res.dataset} ({len(res.images)} images), "
               "mean over images per quality; bpp = payload bytes x 8 / original pixels",
               "results": {k: [p[k] for p in pts] for k in
                           ("target" if name == AUTO else "quality", "bpp", "psnr-rgb", "psnr-y", "ssim",
                            "encoding_time", "decoding_time")}}
        _atomic_text(out / "results" / f"{_slug(name)}.json", json.dumps(doc, indent=2))
    tmp = out / "per_image.csv.tmp"
    with open(tmp, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow([f.name for f in fields(Point)])
        for p in res.points:
            w.writerow([getattr(p, f.name) for f in fields(Point)])
    tmp.replace(out / "per_image.csv")
    if rows:  # an R-D-only plan has no storage table
        _atomic_text(out / "storage.md", storage_markdown(rows, res))
    plot_rd(cur, out, res.dataset)
    return summary


def _atomic_text(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text + ("" if text.endswith("\n") else "\n"))
    tmp.replace(path)


def _fmt(v, spec: str, none: str = "-") -> str:
    return none if v is None else format(v, spec)


def _pct(v: float | None) -> str:
    """A BD-rate cell: "+12.3%", or "-" without one."""
    return "-" if v is None else f"{v:+.1f}%"


def storage_markdown(rows: list[dict], res: Results) -> str:
    lines = [f"Storage of {res.dataset} ({len(res.images)} images), lossless LR codecs; "
             "JPEG at the quality whose mean RGB PSNR is closest to the row's.", "",
             "| pipeline | total MB | bpp | RGB PSNR | Y-PSNR | matched JPEG | Δ vs matched JPEG | paper (DIV2K) |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        m = r.get("matched_jpeg")
        mj = f"q{m['quality']}: {m['total_mb']:.2f} MB, {m['psnr_rgb']:.2f} dB" if m else "-"
        d = r.get("delta_vs_matched_jpeg_pct")
        lines.append(f"| {r['pipeline']} | {r['total_mb']:.2f} | {r['bpp']:.3f} | "
                     f"{_fmt(r['psnr_rgb'], '.2f', 'lossless')} | {_fmt(r['psnr_y'], '.2f', 'lossless')} | {mj} | "
                     f"{_pct(d)} | {r['paper_div2k']} |")
    return "\n".join(lines) + "\n"


def plot_rd(cur: dict[str, list[dict]], out: Path, dataset: str) -> list[Path]:
    """One R-D plot (RGB PSNR against bpp) per scale, with the codec-alone curves on each."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("note: matplotlib is not installed (pip install matplotlib); plots skipped")
        return []
    alone = {k: v for k, v in cur.items() if v and v[0]["scale"] == 1}
    scales = sorted({v[0]["scale"] for v in cur.values() if v and v[0]["scale"] > 1})
    written = []
    for s in scales or [1]:
        fig, ax = plt.subplots(figsize=(7, 5))
        for name, pts in {**alone, **{k: v for k, v in cur.items() if v and v[0]["scale"] == s}}.items():
            style = "-" if name == AUTO else "--" if pts[0]["scale"] == 1 else "-"
            ax.plot([p["bpp"] for p in pts], [p["psnr-rgb"] for p in pts], style, marker="o", ms=3, label=name,
                    **({"lw": 2.5, "color": "black"} if name == AUTO else {}))
        ax.set_xlabel("bpp (payload bytes x 8 / original pixels)")
        ax.set_ylabel("RGB PSNR (dB)")
        ax.set_xlim(0, 1.6 if s > 1 else None)
        ax.grid(alpha=0.3)
        ax.set_title(f"{dataset}: rate-distortion" + (f", rescaling x{s}" if s > 1 else ""))
        ax.legend(fontsize=8)
        fig.tight_layout()
        for ext in ("png", "svg"):
            path = out / f"rd_x{s}.{ext}"
            fig.savefig(path, dpi=120)
            written.append(path)
        plt.close(fig)
    return written


def print_tables(summary: dict, console) -> None:
    from rich.table import Table

    t = Table(title=f"Storage, {summary['dataset']} ({len(summary['images'])} images), lossless LR")
    for col in ("pipeline", "total MB", "bpp", "RGB PSNR", "Y-PSNR", "matched JPEG", "Δ vs JPEG", "paper (DIV2K)"):
        t.add_column(col)
    for r in summary["storage"]:
        m = r.get("matched_jpeg")
        d = r.get("delta_vs_matched_jpeg_pct")
        t.add_row(r["pipeline"], f"{r['total_mb']:.2f}", f"{r['bpp']:.3f}", _fmt(r["psnr_rgb"], ".2f", "lossless"),
                  _fmt(r["psnr_y"], ".2f", "lossless"),
                  f"q{m['quality']} {m['total_mb']:.2f} MB {m['psnr_rgb']:.2f} dB" if m else "-",
                  _pct(d), r["paper_div2k"])
    console.print(t)
    t = Table(title="Rate-distortion (mean over images) and BD-rate against JPEG alone")
    for col in ("pipeline", "quality", "bpp", "RGB PSNR", "Y-PSNR", "SSIM", "enc s", "dec s", "BD-rate"):
        t.add_column(col)
    for name, pts in summary["curves"].items():
        bd = summary["bd_rate_vs_jpeg_pct"].get(name)
        for j, p in enumerate(pts):
            t.add_row(name if j == 0 else "", str(p["quality"]) if p["quality"] is not None else f"T{p['target']:g}", f"{p['bpp']:.3f}", f"{p['psnr-rgb']:.2f}",
                      f"{p['psnr-y']:.2f}", f"{p['ssim']:.4f}", f"{p['encoding_time']:.2f}",
                      f"{p['decoding_time']:.2f}", _pct(bd) if j == 0 else "")
    console.print(t)
    against = summary.get("bd_rate_vs_codecs_pct") or {}
    if len(against) > 1:  # with one codec alone the table above says it all
        t = Table(title="BD-rate (RGB PSNR) of every curve against each codec alone, over the PSNR range "
                        "the two share (its width in brackets; '-': none)")
        for col in ("pipeline", *against):
            t.add_column(col)
        spans = summary.get("bd_overlap_vs_codecs_db") or {}

        def cell(anchor: str, name: str) -> str:
            if name == anchor:
                return "0"
            span = spans.get(anchor, {}).get(name)
            bd = against[anchor].get(name)
            return _pct(bd) + (f" ({span[1] - span[0]:.1f} dB)" if span and bd is not None else "")

        for name in summary["curves"]:
            t.add_row(name, *(cell(anchor, name) for anchor in against))
        console.print(t)
    if summary.get("auto_vs_codecs"):
        t = Table(title=f"{AUTO} (--target-psnr per image) against each codec alone: the mean curves, and per "
                        "image (mean and worst BD-rate over images, least margin at equal bpp over all points)")
        for col in ("codec alone", "BD-rate", "BD-PSNR", "least margin", "per image: BD-rate", "worst",
                    "least margin"):
            t.add_column(col)
        for name, c in summary["auto_vs_codecs"].items():
            dbs = lambda v: _fmt(v, "+.2f") + (" dB" if v is not None else "")  # noqa: E731
            t.add_row(name, _pct(c["mean_bd_rate_pct"]), dbs(c["mean_bd_psnr_db"]), dbs(c["mean_least_margin_db"]),
                      _pct(c["image_bd_rate_pct"]), _pct(c["image_worst_bd_rate_pct"]), dbs(c["image_least_margin_db"]))
        console.print(t)
