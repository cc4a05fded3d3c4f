"""Equal-compute shoot-out of rescaler families: validation PSNR against training CPU-minutes.

    python benchmarks/shootout.py runs/shootout/irn-x2 runs/shootout/fgrn-x2 \\
        --plot docs/shootout-x2.png --markdown

Each argument is a run folder of `irc train irn|fgrn` (its ``log.jsonl`` and
``config.json``). The clock is the process's CPU seconds (``cpu`` in the log: every
thread, summed over resumed invocations) **minus the time spent validating**, so runs
that shared cores, or validated at other intervals, are compared on the training
compute they received. Validation time is read from the log: a record whose step
ran a validation is followed by a CPU jump larger than its steps; the excess is
subtracted from then on.

Printed: for every run, the validation Y-PSNR / RGB PSNR (first 4 Kodak images, full
size, lossless round trip through the rescaler interface) of its exported weights (the
EMA when the run keeps one; the raw weights beside it) at equal CPU-minute marks,
and CPU-seconds per training step.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def training_clock(rows: list[dict]) -> list[dict]:
    """The log's step records, each with ``train_cpu``: CPU seconds spent on training steps.

    A record at step k carries the CPU clock before that step's validation; the CPU
    spent by validating appears in the next interval, which is then longer than the
    median interval per step. That excess is taken out."""
    steps = [r for r in rows if "iter" in r and "cpu" in r and "loss" in r]
    by_iter: dict[int, dict] = {}
    for r in steps:  # a resumed run repeats the steps after its last checkpoint: keep the last
        by_iter[r["iter"]] = r
    recs = [by_iter[k] for k in sorted(by_iter)]
    per_step = []
    for a, b in zip(recs, recs[1:]):
        if "val_psnr_y" not in a and b["iter"] > a["iter"] and b["cpu"] >= a["cpu"]:
            per_step.append((b["cpu"] - a["cpu"]) / (b["iter"] - a["iter"]))
    typical = sorted(per_step)[len(per_step) // 2] if per_step else 0.0
    out, excess = [], 0.0
    for i, r in enumerate(recs):
        if i and "val_psnr_y" in recs[i - 1]:
            gap = r["cpu"] - recs[i - 1]["cpu"]
            excess += max(0.0, gap - typical * (r["iter"] - recs[i - 1]["iter"]))
        out.append({**r, "train_cpu": r["cpu"] - excess})
    return out


def load_run(folder: Path) -> dict:
    cfg = json.loads((folder / "config.json").read_text())
    rows = [json.loads(line) for line in (folder / "log.jsonl").read_text().splitlines() if line.strip()]
    recs = training_clock(rows)
    vals = [r for r in recs if "val_psnr_y" in r]
    cps = [(b["train_cpu"] - a["train_cpu"]) / (b["iter"] - a["iter"])
           for a, b in zip(recs, recs[1:]) if b["iter"] > a["iter"]]
    return {"name": folder.name, "config": cfg, "vals": vals, "steps": recs[-1]["iter"] if recs else 0,
            "cpu_min": (recs[-1]["train_cpu"] / 60) if recs else 0.0,
            "cpu_per_step": sorted(cps)[len(cps) // 2] if cps else float("nan")}


def at_minute(vals: list[dict], minute: float, key: str) -> float | None:
    """The last validation at or before ``minute`` training CPU-minutes."""
    seen = [v[key] for v in vals if v["train_cpu"] / 60 <= minute + 0.1 and key in v]  # 0.1: the marks are rounded
    return seen[-1] if seen else None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--every", type=float, default=10.0, help="CPU-minute marks of the table.")
    ap.add_argument("--plot", type=Path, help="Write the curves (PNG).")
    ap.add_argument("--markdown", action="store_true", help="Print the table as Markdown.")
    args = ap.parse_args()
    runs = [load_run(r) for r in args.runs]
    end = min(r["cpu_min"] for r in runs)
    marks = [m * args.every for m in range(1, int(end // args.every) + 1)]
    if not marks or marks[-1] < end:
        marks.append(round(end, 1))
    names = [r["name"] for r in runs]
    head = ["CPU-min"] + [f"{n} Y / RGB (raw Y)" for n in names]
    lines = []
    for m in marks:
        row = [f"{m:g}"]
        for r in runs:
            y, rgb = at_minute(r["vals"], m, "val_psnr_y"), at_minute(r["vals"], m, "val_psnr_rgb")
            raw = at_minute(r["vals"], m, "val_raw_psnr_y")
            row.append("-" if y is None else f"{y:.2f} / {rgb:.2f}" + (f" ({raw:.2f})" if raw is not None else ""))
        lines.append(row)
    if args.markdown:
        print("| " + " | ".join(head) + " |")
        print("|" + "---|" * len(head))
        for row in lines:
            print("| " + " | ".join(row) + " |")
    else:
        print("  ".join(f"{h:>24}" for h in head))
        for row in lines:
            print("  ".join(f"{c:>24}" for c in row))
    for r in runs:
        print(f"{r['name']}: {r['steps']} steps, {r['cpu_min']:.1f} training CPU-min, "
              f"{r['cpu_per_step']:.2f} CPU-s/step, lr {r['config'].get('lr')}, batch {r['config'].get('batch')}, "
              f"crop {r['config'].get('crop')}, threads {r['config'].get('threads')}")
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(8, 5))
        for r in runs:
            xs = [v["train_cpu"] / 60 for v in r["vals"]]
            line, = ax.plot(xs, [v["val_psnr_y"] for v in r["vals"]], "o-", ms=3, label=f"{r['name']} (EMA)")
            raw = [(x, v["val_raw_psnr_y"]) for x, v in zip(xs, r["vals"]) if "val_raw_psnr_y" in v]
            if raw:
                ax.plot(*zip(*raw), ":", color=line.get_color(), label=f"{r['name']} raw weights")
        ax.set_xlabel("training CPU-minutes (validation excluded)")
        ax.set_ylabel("Y-PSNR, first 4 Kodak images (dB)")
        ax.set_title("Equal compute from scratch: " + " vs ".join(names))
        ax.grid(alpha=0.3)
        ax.legend()
        fig.tight_layout()
        fig.savefig(args.plot, dpi=110)
        print(f"wrote {args.plot}")


if __name__ == "__main__":
    main()
