"""Encode/decode time and peak memory on CPU (or --device cuda), per scale and image size.

Each measurement runs in a fresh child process so that peak RSS is its own.
Sizes: a Kodak image (768x512) and a 24-megapixel image (6000x4000, a Kodak
image upsampled with Lanczos). Prints a table; paste it into benchmarks/RESULTS.md.

    python benchmarks/speed.py --kodak ../shared/data/kodak/kodim23.png --scales 2 4 --sizes kodak 24mp
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SIZES = {"kodak": None, "24mp": (6000, 4000)}


def child(args) -> None:
    import numpy as np
    import torch
    from PIL import Image

    from irc import api

    im = Image.open(args.kodak).convert("RGB")
    if SIZES[args.size]:
        im = im.resize(SIZES[args.size], Image.LANCZOS)
    rgb = np.asarray(im)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    data = api.encode(rgb, scale=args.scale, codec=args.codec, device=args.device)
    t1 = time.perf_counter()
    out = api.decode(data, device=args.device)
    t2 = time.perf_counter()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"size": f"{im.width}x{im.height}", "mp": im.width * im.height / 1e6,
                      "encode_s": t1 - t0, "decode_s": t2 - t1, "peak_rss_mb": peak / 1024,
                      "input_rss_mb": base / 1024, "bytes": len(data), "threads": torch.get_num_threads(),
                      "ok": out.size == im.size}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kodak", default="../shared/data/kodak/kodim23.png")
    ap.add_argument("--scales", type=int, nargs="+", default=[2, 4])
    ap.add_argument("--sizes", nargs="+", default=["kodak", "24mp"], choices=list(SIZES))
    ap.add_argument("--codec", default="png")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--scale", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--size", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child(args)

    print(f"host: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"Python {platform.python_version()}, device {args.device}, LR codec {args.codec}")
    print(f"{'scale':>5} {'size':>10} {'encode s':>9} {'decode s':>9} {'enc s/MP':>9} {'dec s/MP':>9} {'peak RSS MB':>12}")
    for size in args.sizes:
        for scale in args.scales:
            cmd = [sys.executable, __file__, "--child", "--kodak", args.kodak, "--scale", str(scale),
                   "--size", size, "--codec", args.codec, "--device", args.device]
            res = subprocess.run(cmd, capture_output=True, text=True)
            if res.returncode:
                print(f"x{scale} {size}: failed: {res.stderr.strip().splitlines()[-1:]}")
                continue
            r = json.loads(res.stdout.strip().splitlines()[-1])
            print(f"{'x' + str(scale):>5} {r['size']:>10} {r['encode_s']:9.2f} {r['decode_s']:9.2f} "
                  f"{r['encode_s'] / r['mp']:9.2f} {r['decode_s'] / r['mp']:9.2f} {r['peak_rss_mb']:12.0f}")


if __name__ == "__main__":
    main()
