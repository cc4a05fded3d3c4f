"""How good a thumbnail is the stored LR? PSNR of each model's LR against the bicubic downscale.

    python benchmarks/lr_fidelity.py --data ../shared/data/kodak --models irn-x4 fgrn-x4 hcflow-x4

The LR is what `irc encode` stores (``api.downscale``: padded, tiled, rounded to 8 bits); the
reference is the antialiased bicubic downscale of the same HR (the guide every trainer pulls
towards), rounded to 8 bits the same way. Printed per model: mean RGB and Y PSNR over the
images (higher: the LR looks more like an ordinary downscale), and the encode seconds.
Images whose sides are not multiples of the scale are cut to their top-left part that is.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path


def main() -> None:
    import numpy as np

    from irc import api
    from irc.metrics import psnr_rgb, psnr_y
    from irc.models.registry import get_spec
    from irc.train.data import list_images, load_rgb_uint8
    from irc.train.rescaling import bicubic_down

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True, help="Folder of test images (e.g. ../shared/data/kodak).")
    ap.add_argument("--models", nargs="+", required=True, help="Registered rescalers (name or name@version).")
    ap.add_argument("--limit", type=int, default=0, help="First N images only.")
    ap.add_argument("--backend", default="torch")
    ap.add_argument("--markdown", action="store_true")
    args = ap.parse_args()
    files = list_images([args.data])[: args.limit or None]
    if not files:
        raise SystemExit(f"error: no images in {args.data}")
    rows = []
    for name in args.models:
        scale = get_spec(name).scale
        ys, rgbs, t0 = [], [], time.perf_counter()
        for f in files:
            img = load_rgb_uint8(f)  # (3, H, W) uint8
            h, w = img.shape[1] // scale * scale, img.shape[2] // scale * scale
            hr = img[:, :h, :w]
            lr = api.downscale(hr.permute(1, 2, 0).numpy(), name, backend=args.backend, precision="fp32")
            lr = lr[..., :3]  # the image; BDFlow's 4th channel is its boundary map, stored beside it
            ref = bicubic_down(hr[None].float() / 255, scale)[0]
            ref = (ref * 255).round().byte().permute(1, 2, 0).numpy()
            ys.append(psnr_y(ref, lr))
            rgbs.append(psnr_rgb(ref, lr))
        rows.append((name, scale, float(np.mean(rgbs)), float(np.mean(ys)), (time.perf_counter() - t0) / len(files)))
    head = ("model", "scale", "LR vs bicubic RGB PSNR", "Y PSNR", "encode s/image")
    if args.markdown:
        print("| " + " | ".join(head) + " |\n|" + "---|" * len(head))
        for n, s, rgb, y, sec in rows:
            print(f"| `{n}` | ×{s} | {rgb:.2f} | {y:.2f} | {sec:.2f} |")
    else:
        for n, s, rgb, y, sec in rows:
            print(f"{n:>14}  x{s}  RGB {rgb:6.2f} dB  Y {y:6.2f} dB  {sec:5.2f} s/image")
    print(f"{len(files)} images of {args.data}, backend {args.backend}, fp32")


if __name__ == "__main__":
    main()
