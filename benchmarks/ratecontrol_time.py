"""What does `irc encode --target-psnr` cost? The search per image against one fixed encode + decode.

    python benchmarks/ratecontrol_time.py --data ../shared/data/kodak --n 2 --target 32

For each image: a fixed x2 encode + decode (default: jpeg q75, what `irc encode -s 2`
does), then the rate-control search for ``--target`` dB over ``--codecs`` (auto: avif,
webp, jpeg, jxl) and every scale with a model, as `irc encode --target-psnr` runs it
(irc.ratecontrol.encode_target, in this process). Wall and CPU seconds of both, the
search's cost in fixed encode+decodes, and what it chose and measured (checked here by
decoding the file it returned). Models are loaded (and converted, for OpenVINO) by a
warm-up on a crop first, so neither column counts that. Prints a Markdown table; timings belong here, not in the tests.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np


def timed(fn):
    w0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - w0, time.process_time() - c0


def compiled() -> int:
    """OpenVINO graphs compiled so far in this process (0 where OpenVINO is not used)."""
    module = sys.modules.get("irc.backends.openvino_backend")
    return module.compiles if module else 0


def peak_mb() -> float:
    """This process's peak resident memory (Linux reports KiB, macOS bytes)."""
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (2**20 if sys.platform == "darwin" else 2**10)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path("../shared/data/kodak"), help="folder of images")
    ap.add_argument("--n", type=int, default=24, help="images (the first N by name)")
    ap.add_argument("--target", type=float, default=32.0, help="--target-psnr in dB")
    ap.add_argument("--codecs", default="auto")
    ap.add_argument("--fixed-codec", default="jpeg")
    ap.add_argument("--fixed-quality", type=int, default=75)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--graphs", type=int, default=0,
                    help="OpenVINO compiled graphs kept (irc.backends.openvino_backend._MAX_COMPILED; 0: as shipped)")
    ap.add_argument("--no-prune", action="store_true",
                    help="measure every probed candidate (irc.ratesearch.PRUNE off): the search before pruning")
    args = ap.parse_args()

    import torch

    from irc import api, imageio
    from irc.errors import IrcError
    from irc.metrics import psnr_rgb
    from irc.ratecontrol import encode_target

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.graphs:
        from irc.backends import openvino_backend

        openvino_backend._MAX_COMPILED = args.graphs
    if args.no_prune:
        from irc import ratesearch

        ratesearch.PRUNE = False
    files = sorted(p for p in args.data.iterdir() if p.suffix.lower() in (".png", ".jpg", ".tif"))[: args.n]
    if not files:
        sys.exit(f"no images in {args.data}")

    def fixed(path):
        data = api.encode(path, scale=2, codec=args.fixed_codec, quality=args.fixed_quality, device=args.device)
        return data, api.decode(data, device=args.device)

    # warm-up, not timed: load (and, for OpenVINO, convert) every model the search may use
    fixed(files[0])
    crop = imageio.load(files[0]).rgb[:128, :128]
    encode_target(crop, target_psnr=args.target, codecs=args.codecs, device=args.device)
    encode_target(crop, max_bpp=1.0, codecs=args.codecs, device=args.device)
    print(f"# --target-psnr {args.target:g}, codecs {args.codecs}{', not pruned' if args.no_prune else ''}; fixed: x2 {args.fixed_codec} q{args.fixed_quality}; "
          f"{platform.processor() or platform.machine()}, {len(os.sched_getaffinity(0))} cores, "
          f"torch threads {torch.get_num_threads()}, load average {os.getloadavg()[0]:.1f}\n")
    print("| image | fixed wall s | fixed CPU s | search wall s | search CPU s | x fixed (CPU) | candidates | "
          "model passes | graphs compiled | encodes | choice | promised dB | decoded dB | bytes | bpp |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    totals = np.zeros(4)
    for path in files:
        _, fw, fc = timed(lambda p=path: fixed(p))
        compiled0 = compiled()
        try:
            res, sw, sc = timed(lambda p=path: encode_target(p, target_psnr=args.target, codecs=args.codecs,
                                                             device=args.device))
        except IrcError as exc:
            print(f"| {path.stem} | {fw:.2f} | {fc:.2f} | - | - | - | - | - | - | - | {exc} | | | | |")
            continue
        ref = imageio.load(path).rgb
        got = psnr_rgb(ref, np.asarray(api.decode(res.data, device=args.device).convert("RGB")))
        c = res.choice
        pixels = ref.shape[0] * ref.shape[1]
        print(f"| {path.stem} | {fw:.2f} | {fc:.2f} | {sw:.2f} | {sc:.2f} | {sc / fc:.1f} | {res.candidates} | "
              f"{res.model_passes} | {compiled() - compiled0} | {res.encodes} | {c.setting} | {c.psnr_rgb:.4f} | {got:.4f} | "
              f"{c.file_bytes:,} | {c.file_bytes * 8 / pixels:.3f} |")
        totals += (fw, fc, sw, sc)
    print(f"\nTotal: fixed {totals[0]:.1f} s wall / {totals[1]:.1f} s CPU; search {totals[2]:.1f} s wall / "
          f"{totals[3]:.1f} s CPU ({totals[3] / max(totals[1], 1e-9):.1f}x the fixed encode+decode in CPU time); "
          f"peak memory {peak_mb():,.0f} MB.")


if __name__ == "__main__":
    main()
