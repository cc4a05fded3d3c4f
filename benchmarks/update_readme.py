"""Regenerate the README's Kodak bench section: run `irc bench` and splice its storage table in.

    python benchmarks/update_readme.py --data ../shared/data/kodak

Runs ``irc bench kodak --data DATA --out docs/bench`` (reusing docs/bench/cache.jsonl
when present), then replaces the text between the README markers
``<!-- bench:storage -->`` and ``<!-- /bench:storage -->`` with docs/bench/storage.md
and the BD-rates. The R-D plot the README shows is docs/bench/rd_x2.png.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="../shared/data/kodak")
    ap.add_argument("--out", default="docs/bench")
    ap.add_argument("--skip-run", action="store_true", help="only splice the existing results in")
    ap.add_argument("--models", default="auto", help="irc bench --models: auto (every other family's rows too) or none")
    args = ap.parse_args()
    out = ROOT / args.out
    if not args.skip_run:
        subprocess.run([sys.executable, "-m", "irc.cli", "bench", "kodak", "--data", args.data, "--out", str(out),
                        "--models", args.models],
                       check=True, cwd=ROOT)
    summary = json.loads((out / "bench.json").read_text())
    bd = "\n".join(f"| {k} | {v:+.1f}% |" if v is not None else f"| {k} | no PSNR overlap |"
                   for k, v in summary["bd_rate_vs_jpeg_pct"].items())
    block = ((out / "storage.md").read_text() + f"\n`irc bench kodak`, {len(summary['images'])} images: "
             f"{summary['seconds'] / 60:.1f} min for this run (points already in {args.out}/cache.jsonl "
             "are reused, so a rerun times only what changed).\n\n"
             "| R-D curve (×2) | BD-rate vs JPEG alone (RGB PSNR) |\n|---|---|\n" + bd + "\n\n"
             f"![rate-distortion, x2]({args.out}/rd_x2.png)\n")
    readme = ROOT / "README.md"
    text = readme.read_text()
    pattern = re.compile(r"(<!-- bench:storage -->\n).*?(<!-- /bench:storage -->)", re.S)
    if not pattern.search(text):
        sys.exit("README.md has no <!-- bench:storage --> ... <!-- /bench:storage --> markers")
    readme.write_text(pattern.sub(lambda m: m.group(1) + block + m.group(2), text))
    print(f"README.md updated from {out}/bench.json")


if __name__ == "__main__":
    main()
