"""Rescalers under one lossy codec: rate-distortion per image against the codec alone, BD-rate.

    python benchmarks/codec_models.py --data KODAK8 --codec avif --scale 2 \\
        --models irn-x2,fgrn-x2 --try fgrn-x2-avif=runs/avif/fgrn-x2-avif/weights.safetensors:fgrn-x2 \\
        --qualities 50,60,70,80,90 --alone 20,30,40,50,60,70

Every point is a complete `irc encode` (``-s SCALE --codec CODEC -q Q --model M``, the CRM that
encode picks, none for a model given with --try) decoded by `irc decode`: RGB PSNR against the
input and bpp over the whole .irc file. ``--try NAME=WEIGHTS:LIKE`` registers unshipped weights
(an exported checkpoint) with the family and sizes of the shipped model LIKE, for this run only.
Prints each curve's mean points and, per image and on the mean curves, the BD-rate of every
model's curve against the codec alone and against the first model (irc.metrics.bd_rate; negative:
fewer bits at equal PSNR).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--codec", default="avif")
    ap.add_argument("--scale", type=int, default=2)
    ap.add_argument("--models", default="", help="shipped models, comma list")
    ap.add_argument("--try", dest="tries", action="append", default=[], help="NAME=WEIGHTS:LIKE (repeatable)")
    ap.add_argument("--qualities", default="50,60,70,80,90", help="LR qualities of the rescaled curves")
    ap.add_argument("--alone", default="20,30,40,50,60,70", help="qualities of the codec alone (scale 1)")
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args()

    import torch

    from irc import api, imageio
    from irc.metrics import bd_rate, psnr_rgb
    from irc.models import registry

    if args.threads:
        torch.set_num_threads(args.threads)
    names, tried = [m for m in args.models.split(",") if m], set()
    for spec in args.tries:
        name = registry.register_trial(spec)
        names.append(name)
        tried.add(name)
    files = sorted(p for p in args.data.iterdir() if p.suffix.lower() == ".png")
    curves = {"alone": [], **{m: [] for m in names}}  # curve -> per image [(bpp, psnr), ...]

    def point(ref, pixels, **kw):
        data = api.encode(ref, codec=args.codec, **kw)
        return len(data) * 8 / pixels, psnr_rgb(ref, np.asarray(api.decode(data).convert("RGB")))

    for path in files:
        ref = imageio.load(path).rgb
        pixels = ref.shape[0] * ref.shape[1]
        curves["alone"].append([point(ref, pixels, scale=1, quality=int(q)) for q in args.alone.split(",")])
        for m in names:
            crm = "none" if m in tried else "auto"
            curves[m].append([point(ref, pixels, scale=args.scale, quality=int(q), model=m, crm=crm)
                              for q in args.qualities.split(",")])
        print(f"{path.stem}: " + "; ".join(f"{k} " + " ".join(f"{b:.3f}/{p:.2f}" for b, p in v[-1])
                                           for k, v in curves.items()), flush=True)

    def bd(a, b):
        v = bd_rate(a, b)  # None: the curves do not overlap
        return float("nan") if v is None else v

    print(f"\n{len(files)} images, {args.codec}, x{args.scale}; mean curves (bpp / RGB dB):")
    mean = {k: [tuple(np.mean([img[i] for img in v], axis=0)) for i in range(len(v[0]))] for k, v in curves.items()}
    for k, v in mean.items():
        print(f"  {k}: " + ", ".join(f"{b:.3f}/{p:.2f}" for b, p in v))
    print("\n| curve | BD-rate vs alone (mean curves) | per image: mean | worst | BD-rate vs " + (names[0] if names else "-") + " (mean curves) |")
    print("|---|---|---|---|---|")
    for m in names:
        per = [bd(a, r) for a, r in zip(curves["alone"], curves[m])]
        per = [x for x in per if np.isfinite(x)]
        first = bd(mean[names[0]], mean[m]) if m != names[0] else 0.0
        print(f"| {m} | {bd(mean['alone'], mean[m]):+.1f} % | {np.mean(per) if per else float('nan'):+.1f} % | "
              f"{max(per) if per else float('nan'):+.1f} % | {first:+.1f} % |")


if __name__ == "__main__":
    main()
