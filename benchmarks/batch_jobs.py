"""Does `--jobs N` pay? Wall time of `irc encode` / `irc decode` over a set of files.

    python benchmarks/batch_jobs.py --images ../shared/data/kodak --n 6 --jobs 1,2

Each run is a fresh `python -m irc.cli` process (model loading and, for --jobs > 1,
the worker start-up are counted, as a user sees them). --jobs 1 runs the files one
after another with torch using every core; --jobs N runs N worker processes with
cores // N torch threads each. Without --images it uses copies of `irc sample`'s photo.
Prints a Markdown table; timings, so they belong here and not in the test suite.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def cli(*args: str) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "irc.cli", *args], check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def inputs(folder: Path | None, n: int, work: Path) -> list[Path]:
    src = work / "src"
    src.mkdir()
    if folder is None:
        subprocess.run([sys.executable, "-m", "irc.cli", "sample", "-o", str(src / "photo.png")], check=True,
                       stdout=subprocess.DEVNULL)
        files = [src / "photo.png"]
        for i in range(1, n):
            files.append(Path(shutil.copy(files[0], src / f"photo{i}.png")))
        return files
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg", ".bmp", ".tif"))[:n]
    if len(files) < n:
        sys.exit(f"{folder} holds only {len(files)} images")
    return files


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=Path, help="folder of images (default: copies of the sample photo)")
    ap.add_argument("--n", type=int, default=6, help="files per run")
    ap.add_argument("--jobs", default="1,2", help="comma-separated --jobs values")
    ap.add_argument("--scale", default="4")
    ap.add_argument("--codec", default="jpeg")
    ap.add_argument("-q", "--quality", default="40")
    ap.add_argument("--repeats", type=int, default=1, help="runs per setting (the best is kept)")
    args = ap.parse_args()

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        files = inputs(args.images, args.n, work)
        mp = sum(_size(f) for f in files) / 1e6
        rows = []
        for jobs in [int(j) for j in args.jobs.split(",")]:
            enc_t, dec_t = [], []
            for rep in range(args.repeats):
                enc, dec = work / f"enc{jobs}-{rep}", work / f"dec{jobs}-{rep}"
                enc_t.append(cli("encode", *map(str, files), "-o", f"{enc}/", "--jobs", str(jobs), "-s", args.scale,
                                 "--codec", args.codec, "-q", args.quality))
                ircs = sorted(map(str, enc.glob("*.irc")))
                dec_t.append(cli("decode", *ircs, "-o", f"{dec}/", "--jobs", str(jobs)))
            rows.append((jobs, max(1, cores // jobs), min(enc_t), min(dec_t)))
        load = os.getloadavg() if hasattr(os, "getloadavg") else ("-",)
        print(f"host: {platform.processor() or platform.machine()}, {cores} cores, load average {load[0]:.2f} "
              f"at the end; {len(files)} files, {mp:.2f} MP in all; x{args.scale} {args.codec} q{args.quality}\n")
        print("| --jobs | torch threads per job | encode s | decode s | encode speed-up | decode speed-up |")
        print("|---|---|---|---|---|---|")
        base_e, base_d = rows[0][2], rows[0][3]
        for jobs, threads, e, d in rows:
            print(f"| {jobs} | {threads} | {e:.1f} | {d:.1f} | {base_e / e:.2f}x | {base_d / d:.2f}x |")


def _size(path: Path) -> int:
    from PIL import Image

    with Image.open(path) as im:
        return im.width * im.height


if __name__ == "__main__":
    main()
