"""What the grayscale carrier costs and restores: `irc encode --gray` against the colour image.

    python benchmarks/gray.py --data ../shared/data/kodak --model irn-color --markdown

For each codec setting, on every image of the folder, two files of the same image with the
same codec and quality: the colour image itself (`irc encode -s 1`) and the grayscale image
of the colour model (`irc encode --gray`). Printed per setting: the total bytes of each (every
byte of the .irc files), the mean RGB PSNR of each decode against the input, and the bytes
of the gray file as a share of the colour one. The first row, "luma only", is the RGB PSNR
of the input's own BT.601 luma shown as a gray image: what storing gray without the model
would give back.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

SETTINGS = [("png", None), ("jxl", None), ("jpeg", 90), ("jpeg", 75), ("jpeg", 40), ("webp", 75), ("avif", 60)]


def main() -> None:
    import numpy as np

    from irc import api
    from irc.metrics import psnr_rgb
    from irc.train.data import list_images, load_rgb_uint8

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True, help="Folder of test images (e.g. ../shared/data/kodak).")
    ap.add_argument("--model", default=None, help="Colour model (default: the installed one `--gray` uses).")
    ap.add_argument("--limit", type=int, default=0, help="First N images only.")
    ap.add_argument("--settings", default="", help="codec:quality list, e.g. png,jpeg:75 (default: a spread).")
    ap.add_argument("--markdown", action="store_true")
    ap.add_argument("--json", type=Path, default=None, help="Also write the rows here.")
    args = ap.parse_args()
    files = list_images([args.data])[: args.limit or None]
    if not files:
        raise SystemExit(f"error: no images in {args.data}")
    settings = SETTINGS if not args.settings else [
        (c, int(q) if q else None) for c, _, q in (s.partition(":") for s in args.settings.split(","))]
    images = [load_rgb_uint8(f).permute(1, 2, 0).numpy() for f in files]
    luma = [np.repeat(np.rint(im @ np.array([0.299, 0.587, 0.114])).clip(0, 255).astype(np.uint8)[..., None], 3, 2)
            for im in images]
    rows = [{"setting": "luma only (no model)", "psnr_luma": float(np.mean([psnr_rgb(a, b) for a, b in zip(images, luma)]))}]
    for codec, quality in settings:
        sizes = {"colour": 0, "gray": 0}
        psnrs: dict[str, list[float]] = {"colour": [], "gray": []}
        secs = {"encode": 0.0, "decode": 0.0}
        for im in images:
            for kind in ("colour", "gray"):
                t0 = time.perf_counter()
                data = api.encode(im, scale=1, codec=codec, quality=quality,  # no quality: the codec's lossless mode
                                  lossless=True if quality is None else None,
                                  model=args.model if kind == "gray" else None, gray=kind == "gray")
                t1 = time.perf_counter()
                out = np.asarray(api.decode(data).convert("RGB"))
                t2 = time.perf_counter()
                sizes[kind] += len(data)
                psnrs[kind].append(psnr_rgb(im, out))
                if kind == "gray":
                    secs["encode"] += t1 - t0
                    secs["decode"] += t2 - t1
        n = len(images)
        rows.append({"setting": f"{codec} " + ("lossless" if quality is None else f"q{quality}"),
                     "colour_bytes": sizes["colour"], "colour_psnr": float(np.mean(psnrs["colour"])),
                     "gray_bytes": sizes["gray"], "gray_psnr": float(np.mean(psnrs["gray"])),
                     "gray_share": sizes["gray"] / sizes["colour"],
                     "gray_encode_s": secs["encode"] / n, "gray_decode_s": secs["decode"] / n})
        print(json.dumps(rows[-1]), flush=True)
    if args.json:
        args.json.write_text(json.dumps({"images": len(images), "data": str(args.data), "rows": rows}, indent=2) + "\n")
    inf = float("inf")
    print(f"\n{len(images)} images from {args.data}; RGB PSNR in dB, bytes = whole .irc files\n")
    head = "| setting | colour: bytes | colour: RGB PSNR | gray + model: bytes | gray + model: RGB PSNR | gray / colour bytes |"
    print(head if args.markdown else head.replace("|", " "))
    if args.markdown:
        print("|---|---|---|---|---|---|")
    print(f"| {rows[0]['setting']} | - | - | - | {rows[0]['psnr_luma']:.2f} | - |")
    for r in rows[1:]:
        cp = "exact" if r["colour_psnr"] == inf else f"{r['colour_psnr']:.2f}"
        print(f"| {r['setting']} | {r['colour_bytes']:,} | {cp} | {r['gray_bytes']:,} | {r['gray_psnr']:.2f} | "
              f"{r['gray_share'] * 100:.0f}% |")


if __name__ == "__main__":
    main()
