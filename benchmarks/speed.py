"""Encode and decode time and peak memory, per scale and image size (CPU by default).

Encode and decode each run in a fresh child process, so each peak RSS is its
own (it includes the Python + PyTorch runtime, about 0.3 GB, shown as "base").
Sizes: a Kodak image (768x512) and 24 megapixels (6000x4000, the Kodak image
upsampled with Lanczos). Also bicubic down + up with Pillow, as the floor.

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


def _image(path: str, size: str):
    from PIL import Image

    im = Image.open(path).convert("RGB")
    return im.resize(SIZES[size], Image.LANCZOS) if SIZES[size] else im


def child(args) -> None:
    import numpy as np
    import torch

    from irc import api

    if args.phase == "encode":
        rgb = np.asarray(_image(args.kodak, args.size))
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        t0 = time.perf_counter()
        data = api.encode(rgb, scale=args.scale, codec=args.codec, device=args.device)
        secs = time.perf_counter() - t0
        Path(args.file).write_bytes(data)
        mp = rgb.shape[0] * rgb.shape[1] / 1e6
    elif args.phase == "decode":
        api.read(args.file)  # import and parse before the clock starts
        import irc.models.registry  # noqa: F401

        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        t0 = time.perf_counter()
        out = api.decode(args.file, device=args.device)
        secs = time.perf_counter() - t0
        mp = out.width * out.height / 1e6
    else:  # bicubic floor: down + up with Pillow
        from PIL import Image

        im = _image(args.kodak, args.size)
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        t0 = time.perf_counter()
        small = im.resize((im.width // args.scale, im.height // args.scale), Image.BICUBIC)
        small.resize(im.size, Image.BICUBIC)
        secs = time.perf_counter() - t0
        mp = im.width * im.height / 1e6
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"secs": secs, "mp": mp, "peak_mb": peak / 1024, "base_mb": base / 1024,
                      "threads": torch.get_num_threads()}))


def _run(args, phase: str, scale: int, size: str, file: str) -> dict | None:
    cmd = [sys.executable, __file__, "--phase", phase, "--kodak", args.kodak, "--scale", str(scale),
           "--size", size, "--codec", args.codec, "--device", args.device, "--file", file]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode:
        print(f"x{scale} {size} {phase}: failed: {(res.stderr.strip().splitlines() or ['?'])[-1]}")
        return None
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kodak", default="../shared/data/kodak/kodim23.png")
    ap.add_argument("--scales", type=int, nargs="+", default=[2, 4])
    ap.add_argument("--sizes", nargs="+", default=["kodak", "24mp"], choices=list(SIZES))
    ap.add_argument("--codec", default="png")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--phase", choices=["encode", "decode", "bicubic"], help=argparse.SUPPRESS)
    ap.add_argument("--scale", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--size", help=argparse.SUPPRESS)
    ap.add_argument("--file", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.phase:
        return child(args)

    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")),
               platform.machine()) if Path("/proc/cpuinfo").exists() else platform.machine()
    print(f"host: {cpu}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
          f"device {args.device}, LR codec {args.codec}")
    print(f"| pipeline | size | phase | seconds | s/MP | peak RSS MB | base MB |")
    print(f"|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            for scale in args.scales:
                file = str(Path(tmp) / f"x{scale}-{size}.irc")
                for phase in ("encode", "decode", "bicubic"):
                    r = _run(args, phase, scale, size, file)
                    if r:
                        name = f"bicubic x{scale}" if phase == "bicubic" else f"irc x{scale} {args.codec}"
                        print(f"| {name} | {size} ({r['mp']:.2f} MP) | {phase if phase != 'bicubic' else 'down+up'} "
                              f"| {r['secs']:.2f} | {r['secs'] / r['mp']:.2f} | {r['peak_mb']:.0f} | {r['base_mb']:.0f} |",
                              flush=True)


if __name__ == "__main__":
    main()
