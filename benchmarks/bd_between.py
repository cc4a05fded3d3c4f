"""BD-rate and BD-PSNR between two curves of an `irc bench` run, e.g. a model with a side channel
against one without it at equal total bytes (BDFlow's curves count the boundary map's bytes).

    irc bench ../shared/data/kodak --out runs/x8 --scales none --rd-scales 8 --codecs webp \\
        --models bdflow-x8 --qualities 20,40,60,80
    python benchmarks/bd_between.py runs/x8/bench.json "BDFlow x8 + WebP" "IRN x8 + WebP"

Prints each curve's points, then the BD-rate (%) of the first against the second (negative:
fewer bytes at equal RGB PSNR) and the BD-PSNR (dB at equal bpp, the mean gap over the
overlapping rates, from cubic fits of PSNR against log-rate).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def main() -> None:
    from irc.metrics import bd_psnr, bd_rate

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("bench_json", type=Path)
    ap.add_argument("test", help="curve name, as in bench.json's curves")
    ap.add_argument("anchor", help="curve name to compare against")
    args = ap.parse_args()
    curves = json.loads(args.bench_json.read_text())["curves"]
    for name in (args.test, args.anchor):
        if name not in curves:
            sys.exit(f"no curve {name!r} in {args.bench_json}; it has: {', '.join(curves)}")
    pts = {n: [(c["bpp"], c["psnr-rgb"]) for c in curves[n]] for n in (args.test, args.anchor)}
    print("| curve | quality | bpp | RGB PSNR | Y-PSNR |\n|---|---|---|---|---|")
    for n in (args.test, args.anchor):
        for c in curves[n]:
            print(f"| {n} | {c['quality']} | {c['bpp']:.4f} | {c['psnr-rgb']:.2f} | {c['psnr-y']:.2f} |")
    rate = bd_rate(pts[args.anchor], pts[args.test])
    gap = bd_psnr(pts[args.anchor], pts[args.test])
    print(f"\n{args.test} against {args.anchor}: BD-rate "
          f"{'n/a (no overlap)' if rate is None else f'{rate:+.1f}%'}, BD-PSNR "
          f"{'n/a (no overlap)' if gap is None else f'{gap:+.2f} dB'}")


if __name__ == "__main__":
    main()
