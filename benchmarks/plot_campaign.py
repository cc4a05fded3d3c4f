"""Kodak PSNR against cumulative CPU-hours, across the runs that built each model.

    python benchmarks/plot_campaign.py \\
        --chain "irn-e-x4=docs/logs/irn-e-x4.jsonl:1,docs/logs/irn-e-x4-campaign.jsonl:1" \\
        --chain "irn-x2=docs/logs/irn-x2.jsonl:2,docs/logs/irn-x2-campaign.jsonl:1" -o docs/campaign.png

A chain is the logs of one model in training order, each ``path:threads`` (CPU-hours =
training wall time x threads). Lines: validation Y-PSNR on the first 4 Kodak images
(``val_psnr_y``; for a run with an EMA, the EMA's, and dotted, the raw weights'). Stars:
every installed version's Kodak Y-PSNR on all 24 images (the registry), placed at the
CPU-hours recorded for it. A chain that starts from another model's run (x4 from x2)
counts only its own runs.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def load_chain(spec: str) -> tuple[str, list[tuple[float, float, float | None]]]:
    """(model, [(cpu_hours, val_psnr_y, val_raw_psnr_y or None)]) of one ``model=path:threads,...``."""
    model, runs = spec.split("=", 1)
    pts, offset = [], 0.0
    for part in runs.split(","):
        path, threads = part.rsplit(":", 1)
        rows = [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
        by_iter = {r["iter"]: r for r in rows if "val_psnr_y" in r}  # a resumed run repeats some steps
        last_wall = 0.0
        for k in sorted(by_iter):
            r = by_iter[k]
            pts.append((offset + r["wall"] * int(threads) / 3600, r["val_psnr_y"], r.get("val_raw_psnr_y")))
        if rows:
            last_wall = max(r.get("wall", 0.0) for r in rows)
        offset += last_wall * int(threads) / 3600
    return model, pts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--chain", action="append", required=True)
    ap.add_argument("-o", "--output", type=Path, default=Path("docs/campaign.png"))
    args = ap.parse_args()

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from irc.models.registry import all_versions

    fig, ax = plt.subplots(figsize=(8, 5))
    for spec in args.chain:
        model, pts = load_chain(spec)
        line, = ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-", ms=3, label=f"{model} (4 Kodak images)")
        raw = [(p[0], p[2]) for p in pts if p[2] is not None]
        if raw:
            ax.plot(*zip(*raw), ":", color=line.get_color(), label=f"{model} raw weights")
        for v in all_versions().values():
            if v.name == model and v.kodak.get("images") == 24:
                hours = v.training.get("cpu_hours_total")
                if hours is not None:
                    ax.plot([hours], [v.kodak["psnr_y"]], "*", ms=12, color=line.get_color())
                    ax.annotate(f"v{v.version}: {v.kodak['psnr_y']:.2f} (24 images)", (hours, v.kodak["psnr_y"]),
                                textcoords="offset points", xytext=(5, -12), fontsize=8)
        print(model, " ".join(f"{h:.2f}h:{y:.2f}" for h, y, _ in pts))
    ax.set_xlabel("cumulative CPU core-hours of training (this project's AMD EPYC; fp32, bf16 from 2026-12-06)")
    ax.set_ylabel("Kodak Y-PSNR (dB)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(args.output, dpi=100)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
