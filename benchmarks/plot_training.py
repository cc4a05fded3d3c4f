"""Plot validation Y-PSNR against iterations and wall time from training logs.

    python benchmarks/plot_training.py runs/irn-x2/log.jsonl runs/irn-x4/log.jsonl -o docs/training.png
    python benchmarks/plot_training.py docs/logs/crm-x2-jpeg.jsonl --metric val_lr_gain -o docs/crm_training.png
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


YLABEL = {"val_psnr_y": "validation Y-PSNR (dB, Kodak subset)",
          "val_lr_gain": "LR PSNR gain of the CRM (dB, Kodak subset, mean of 4 qualities)"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("logs", nargs="+", type=Path)
    ap.add_argument("-o", "--output", type=Path, default=Path("docs/training.png"))
    ap.add_argument("--metric", default="val_psnr_y", help="log key to plot (CRM runs: val_lr_gain)")
    args = ap.parse_args()

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4))
    for log in args.logs:
        rows = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
        # a resumed run repeats the iterations after its last checkpoint: keep the latest row per iteration
        by_iter = {r["iter"]: r for r in rows if args.metric in r}
        pts = [by_iter[k] for k in sorted(by_iter)]
        label = log.parent.name if log.name == "log.jsonl" else log.stem
        a1.plot([p["iter"] for p in pts], [p[args.metric] for p in pts], "o-", label=label)
        a2.plot([p["wall"] / 60 for p in pts], [p[args.metric] for p in pts], "o-", label=label)
    a1.set_xlabel("iteration")
    a2.set_xlabel("wall time (min; hardware per run in docs/TRAINING.md)")
    for a in (a1, a2):
        a.set_ylabel(YLABEL.get(args.metric, args.metric))
        a.grid(alpha=0.3)
        a.legend()
    fig.tight_layout()
    fig.savefig(args.output, dpi=100)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
