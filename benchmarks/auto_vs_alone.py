"""Is "irc auto" ever worse than a plain codec file of the bench? Measured points only, no interpolation.

    python benchmarks/auto_vs_alone.py OUT/cache.jsonl    # OUT: the --out folder of `irc bench --auto`

Reads an `irc bench --auto` cache (``OUT/cache.jsonl``). For every irc auto point (image, target T)
and every codec-alone curve of the same image, it takes the smallest codec-alone file of the bench
whose RGB PSNR reaches T, and counts the cases where that file is smaller than irc auto's whole
.irc file, with by how many bytes. The bench's own "least margin" columns interpolate each codec's
quality ladder in log-rate instead, which can pass between points no quality gives.
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from pathlib import Path

from irc.bench.engine import read_cache


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("cache", type=Path, help="OUT/cache.jsonl of an `irc bench --auto` run")
    ap.add_argument("--show", type=int, default=10, help="list this many of the cases where a plain file is smaller")
    args = ap.parse_args()
    if not args.cache.exists():
        raise SystemExit(f"auto_vs_alone: {args.cache} does not exist")
    rows = list(read_cache(args.cache).values())
    auto = [r for r in rows if r.get("target") is not None]
    alone: dict = defaultdict(list)
    for r in rows:
        if r.get("target") is None and r["scale"] == 1:
            alone[(r["image"], r["codec"])].append(r)
    codecs = sorted({codec for _, codec in alone})
    cases, smaller = 0, []
    for a in auto:
        for codec in codecs:
            reaching = [p for p in alone[(a["image"], codec)] if p["psnr_rgb"] >= a["target"]]
            if not reaching:
                continue
            cases += 1
            best = min(reaching, key=lambda p: p["bytes"])
            if best["bytes"] < a["bytes"]:
                smaller.append((a["bytes"] - best["bytes"], a, codec, best))
    print(f"{len(auto)} irc auto points, {len(set(a['image'] for a in auto))} images; codecs alone: {', '.join(codecs)}")
    print(f"{cases} (image, target, codec) cases with a codec-alone file reaching the target; "
          f"in {len(smaller)} it is smaller than irc auto's file"
          + (f", by {min(s[0] for s in smaller)}-{max(s[0] for s in smaller)} bytes" if smaller else ""))
    for gap, a, codec, best in sorted(smaller, key=lambda s: -s[0])[: args.show]:
        print(f"  {a['image']} T{a['target']:g}: irc auto x{a['scale']} {a['codec']} q{a['quality']} {a['bytes']:,} B "
              f"{a['psnr_rgb']:.2f} dB; {codec} alone q{best['quality']} {best['bytes']:,} B {best['psnr_rgb']:.2f} dB "
              f"(+{gap} B)")


if __name__ == "__main__":
    main()
