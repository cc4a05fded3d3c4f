"""What BDFlow's boundary map costs and buys, beside IRN at the same scale.

    python benchmarks/boundary_gain.py --data ../shared/data/kodak --model bdflow-x8 --against irn-x8 --markdown

On every image, lossless PNG LR (`irc encode --model M --codec png`, then `irc decode`):

* the BDFlow file: its bytes, of which the BNDY chunk (the boundary map), and the RGB / Y PSNR
  of its decode;
* the same file with a blank map (every level 0, what the decoder would do without the side
  channel): the PSNR the map buys, for the bytes it costs;
* the ``--against`` model's file (IRN x8: no side channel): bytes and PSNR.

Printed: totals and means over the images, and the decode time per megapixel of each model
(model passes included, load excluded: the first image is decoded once before timing).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def main() -> None:
    import numpy as np

    from irc import api, boundary, container
    from irc.metrics import psnr_rgb, psnr_y
    from irc.train.data import list_images, load_rgb_uint8

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True, help="Folder of test images (e.g. ../shared/data/kodak).")
    ap.add_argument("--model", default="bdflow-x8", help="A model with a boundary map (BDFlow).")
    ap.add_argument("--against", default="irn-x8", help="A model of the same scale without one.")
    ap.add_argument("--limit", type=int, default=0, help="First N images only.")
    ap.add_argument("--backend", default="auto", help="Inference backend of both (auto, torch, openvino).")
    ap.add_argument("--markdown", action="store_true")
    ap.add_argument("--json", type=Path, default=None, help="Also write the totals here.")
    args = ap.parse_args()
    files = list_images([args.data])[: args.limit or None]
    if not files:
        raise SystemExit(f"error: no images in {args.data}")
    images = [load_rgb_uint8(f).permute(1, 2, 0).numpy() for f in files]
    scale = None
    for name in (args.model, args.against):  # warm-up: load and convert outside the timing
        api.decode(api.encode(images[0], scale=None, codec="png", model=name, backend=args.backend), backend=args.backend)
    rows = {k: {"bytes": 0, "rgb": [], "y": [], "seconds": 0.0} for k in ("with map", "blank map", "against")}
    map_bytes, pixels = 0, 0
    for im in images:
        pixels += im.shape[0] * im.shape[1]
        for key, name in (("with map", args.model), ("against", args.against)):
            data = api.encode(im, scale=None, codec="png", model=name, backend=args.backend)
            f = container.loads(data)
            scale = scale or f.header.scale
            t0 = time.perf_counter()
            out = np.asarray(api.decode(data, backend=args.backend))
            rows[key]["seconds"] += time.perf_counter() - t0
            rows[key]["bytes"] += len(data)
            rows[key]["rgb"].append(psnr_rgb(im, out))
            rows[key]["y"].append(psnr_y(im, out, crop=f.header.scale))
            if key == "with map":
                if f.boundary is None:
                    raise SystemExit(f"error: {name} stores no boundary map")
                map_bytes += len(f.boundary)
                h = f.header
                blank_map = boundary.encode(np.zeros((h.lr_height, h.lr_width), np.uint8), h.boundary_bits)
                blank = container.dumps(container.IrcFile(h, f.payload, f.icc_profile, f.alpha, boundary=blank_map))
                out = np.asarray(api.decode(blank, backend=args.backend))
                rows["blank map"]["bytes"] += len(blank)
                rows["blank map"]["rgb"].append(psnr_rgb(im, out))
                rows["blank map"]["y"].append(psnr_y(im, out, crop=h.scale))
    n, mp = len(images), pixels / 1e6
    table = []
    for key, label in (("with map", f"{args.model} (LR + boundary map)"),
                       ("blank map", f"{args.model}, the map blanked on decode"), ("against", args.against)):
        r = rows[key]
        table.append({"pipeline": label, "bytes": r["bytes"], "bpp": r["bytes"] * 8 / pixels,
                      "psnr_rgb": float(np.mean(r["rgb"])), "psnr_y": float(np.mean(r["y"])),
                      "decode_s_per_mp": r["seconds"] / mp if r["seconds"] else None})
    summary = {"images": n, "data": str(args.data), "scale": scale, "boundary_bytes": map_bytes,
               "boundary_bpp": map_bytes * 8 / pixels, "rows": table}
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2) + "\n")
    print(f"{n} images from {args.data}, x{scale}, PNG LR; the boundary maps: {map_bytes:,} bytes in all "
          f"({summary['boundary_bpp']:.4f} bpp)\n")
    head = "| pipeline | bytes | bpp (whole files) | RGB PSNR | Y-PSNR | decode s/MP |"
    print(head if args.markdown else head.replace("|", " "))
    if args.markdown:
        print("|---|---|---|---|---|---|")
    for r in table:
        speed = f"{r['decode_s_per_mp']:.2f}" if r["decode_s_per_mp"] is not None else "-"
        print(f"| {r['pipeline']} | {r['bytes']:,} | {r['bpp']:.4f} | {r['psnr_rgb']:.2f} | {r['psnr_y']:.2f} | {speed} |")


if __name__ == "__main__":
    main()
