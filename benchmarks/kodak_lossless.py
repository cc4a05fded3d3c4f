"""Kodak lossless round trip: the shipped models against bicubic down + bicubic up.

Runs the real pipeline (irc.api.encode with --codec png, then irc.api.decode)
on every image of a folder and prints mean Y-PSNR (BT.601, border crop =
scale) and RGB PSNR. With --write-registry the measured numbers are stored in
the model registry (irc/models/registry.json).

    python benchmarks/kodak_lossless.py --data ../shared/data/kodak --models irn-x2 irn-x4
"""

from __future__ import annotations

import argparse
import json

import numpy as np
from PIL import Image

from irc.bench.lossless import round_trip
from irc.metrics import psnr_rgb, psnr_y
from irc.models import registry
from irc.resample import bicubic_round_trip
from irc.train.data import list_images


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="../shared/data/kodak")
    ap.add_argument("--models", nargs="*", default=None, help="registry names (default: all IRN models)")
    ap.add_argument("--limit", type=int, default=0, help="first N images only")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--write-registry", action="store_true")
    args = ap.parse_args()

    files = list_images([args.data])[: args.limit or None]
    names = args.models or [n for n, s in registry.all_models().items() if s.role == "rescaler"]
    images = [np.asarray(Image.open(f).convert("RGB")) for f in files]
    rows = []
    for scale in sorted({registry.get_spec(n).scale for n in names}):
        bic = [bicubic_round_trip(im, scale) for im in images]
        rows.append((f"bicubic x{scale}", np.mean([psnr_y(a, b, scale) for a, b in zip(images, bic)]),
                     np.mean([psnr_rgb(a, b) for a, b in zip(images, bic)]), 0.0))
    for name in names:
        spec = registry.get_spec(name)  # a name (newest version) or name@version
        res = round_trip(name, files, args.device)
        rows.append((name, res["psnr_y"], res["psnr_rgb"], res["seconds_per_image"]))
        if args.write_registry and len(images) == 24:
            entries = json.loads(registry.REGISTRY_FILE.read_text())
            for e in entries:
                if e["name"] == spec.name and e.get("version", 1) == spec.version:
                    e["kodak"] = {"psnr_y": res["psnr_y"], "psnr_rgb": res["psnr_rgb"],
                                  "images": 24, "pipeline": "png lossless, z = 0",
                                  "command": "python benchmarks/kodak_lossless.py --write-registry"}
            registry.REGISTRY_FILE.write_text(json.dumps(entries, indent=2) + "\n")
    print(f"{len(images)} images from {args.data}")
    print(f"{'pipeline':<16} {'Y-PSNR':>8} {'RGB PSNR':>9} {'s/image':>8}")
    for name, y, rgb, secs in rows:
        print(f"{name:<16} {y:8.2f} {rgb:9.2f} {secs:8.2f}")


if __name__ == "__main__":
    main()
