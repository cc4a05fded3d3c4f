"""Rescalers at one scale, lossless round trip: PSNR, MS-SSIM and how much detail survives; crops side by side.

    python benchmarks/perceptual.py --data ../shared/data/kodak --models irn-x4,irn-plus-x4 \\
        --temperatures 0,1 --crops kodim13:300,200 --crops kodim23:420,120 --png docs/irn-plus-crops.png

Every decode is the real pipeline (``irc.api.encode`` with PNG, ``irc.api.decode``), at each z
temperature of ``--temperatures`` (T > 0: z ~ N(0, T^2) drawn with ``--seed``; models without a
latent ignore it). Per model, mean over the images:

* ``psnr-y`` (BT.601, border crop = scale) and ``psnr-rgb``
* ``ms-ssim`` (RGB, the optional pytorch-msssim package)
* ``detail``: the mean squared luma gradient of the decode over the original's (border crop =
  scale). It is not a quality score: 1 is the original's amount of fine detail, below 1 is blur,
  above 1 is detail (or noise) the original does not have. PSNR-trained models land below 1; the
  point of a GAN stage (IRN+) is to move towards 1 without inventing noise.
* ``colour``: the RMS error of the BT.601 chroma (Cb, Cr, 8-bit levels) after averaging both
  images over 32x32 blocks: the low-frequency colour error, a tint, which a GAN stage can raise
  (lighter, greener foliage) while Y-PSNR and detail look fine. 0 is the original's colour.
  Blocks this large leave out the chroma detail every rescaler loses at x4: on kodim13,
  irn-x4 measures 1.02 over 8x8 blocks and 0.25 over 32x32; an IRN+ run with a visible
  tint 1.31 and 0.65.

No learned perceptual metric (LPIPS, DISTS) runs here: their packages fetch a VGG/AlexNet
backbone at run time, and this machine has no internet. ``--try NAME=WEIGHTS:LIKE`` measures
unshipped weights (``irc.models.registry.register_trial``). ``--png`` writes the crops (the
original, bicubic, then each model and temperature), each magnified 2x without interpolation.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

CROP = 128  # side of a crop in the comparison PNG, original pixels
ZOOM = 2
LABEL_H = 18


def detail(ref: np.ndarray, test: np.ndarray, crop: int) -> float:
    """Mean squared luma gradient of ``test`` over that of ``ref`` (both uint8 RGB)."""
    from irc.metrics import rgb_to_y

    def energy(img):
        y = rgb_to_y(img.astype(np.float64))
        y = y[crop:-crop, crop:-crop] if crop else y
        return float((np.diff(y, axis=0) ** 2).mean() + (np.diff(y, axis=1) ** 2).mean())

    return energy(test) / energy(ref)


COLOUR_BLOCK = 32  # the block side over which colour is averaged before it is compared


def colour_error(ref: np.ndarray, test: np.ndarray, block: int = COLOUR_BLOCK) -> float:
    """RMS difference of the BT.601 Cb and Cr planes (8-bit levels) of two uint8 RGB images,
    each averaged over ``block`` x ``block`` blocks (the image cut to whole blocks)."""
    def chroma(img):
        rgb = img.astype(np.float64)
        r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
        cb = (-37.797 * r - 74.203 * g + 112.0 * b) / 255.0
        cr = (112.0 * r - 93.786 * g - 18.214 * b) / 255.0
        h, w = (cb.shape[0] // block) * block, (cb.shape[1] // block) * block
        planes = np.stack([cb[:h, :w], cr[:h, :w]])
        return planes.reshape(2, h // block, block, w // block, block).mean(axis=(2, 4))

    return float(np.sqrt(((chroma(test) - chroma(ref)) ** 2).mean()))


def measure(ref: np.ndarray, out: np.ndarray, scale: int) -> dict:
    from irc.metrics import ms_ssim, psnr_rgb, psnr_y

    return {"psnr_y": psnr_y(ref, out, scale), "psnr_rgb": psnr_rgb(ref, out), "ms_ssim": ms_ssim(ref, out),
            "detail": detail(ref, out, scale), "colour": colour_error(ref, out)}


def parse_crop(text: str) -> tuple[str, int, int]:
    stem, _, xy = text.partition(":")
    x, _, y = xy.partition(",")
    return stem, int(x), int(y)


def tile(img: np.ndarray, x: int, y: int, label: str):
    from PIL import Image, ImageDraw

    part = Image.fromarray(img[y:y + CROP, x:x + CROP]).resize((CROP * ZOOM, CROP * ZOOM), Image.NEAREST)
    canvas = Image.new("RGB", (part.width, part.height + LABEL_H), "white")
    canvas.paste(part, (0, LABEL_H))
    ImageDraw.Draw(canvas).text((4, 3), label, fill="black")
    return canvas


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path("../shared/data/kodak"))
    ap.add_argument("--models", default="irn-x4", help="installed models of one scale, comma list")
    ap.add_argument("--try", dest="tries", action="append", default=[], help="NAME=WEIGHTS:LIKE (repeatable)")
    ap.add_argument("--temperatures", default="0", help="z temperatures, comma list (0: z = 0)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--limit", type=int, default=0, help="first N images only")
    ap.add_argument("--images", default="", help="comma list of file stems in --data (default: all)")
    ap.add_argument("--no-bicubic", action="store_true", help="leave out the bicubic row")
    ap.add_argument("--crops", action="append", default=[], help="STEM:X,Y of a crop for --png (repeatable)")
    ap.add_argument("--png", type=Path, default=None)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args()

    import torch
    from PIL import Image

    from irc import api
    from irc.models import registry
    from irc.resample import bicubic_round_trip
    from irc.train.data import list_images

    if args.threads:
        torch.set_num_threads(args.threads)
    names = [m for m in args.models.split(",") if m] + [registry.register_trial(t) for t in args.tries]
    scales = {registry.get_spec(n).scale for n in names}
    if len(scales) != 1:
        raise SystemExit(f"the models must share one scale, got {sorted(scales)}")
    scale = scales.pop()
    temps = [float(t) for t in args.temperatures.split(",")]
    files = list_images([args.data])
    if args.images:
        files = [f for f in files if f.stem in args.images.split(",")]
    files = files[: args.limit or None]
    crops = [parse_crop(c) for c in args.crops]
    rows: dict[str, list[dict]] = {}
    tiles: dict[str, list] = {stem: [] for stem, _, _ in crops}
    for f in files:
        with Image.open(f) as im:
            ref = np.asarray(im.convert("RGB"))
        outs = {} if args.no_bicubic else {f"bicubic x{scale}": bicubic_round_trip(ref, scale)}
        for name in names:
            data = api.encode(ref, scale=None, codec="png", model=name)
            for t in temps:
                label = name if t == 0 else f"{name} T={t:g}"
                outs[label] = np.asarray(api.decode(data, temperature=t, seed=args.seed if t else None))
        for label, out in outs.items():
            rows.setdefault(label, []).append(measure(ref, out, scale))
        for stem, x, y in crops:
            if f.stem == stem:
                tiles[stem] = [tile(ref, x, y, f"{stem} original")] + [tile(o, x, y, k) for k, o in outs.items()]
        print(f"{f.name}: " + "  ".join(f"{k} {m[-1]['psnr_y']:.2f}" for k, m in rows.items()), flush=True)

    table = {k: {m: round(float(np.mean([r[m] for r in v])), 4) for m in v[0]} for k, v in rows.items()}
    print(f"\n{len(files)} images from {args.data}, lossless round trip at x{scale}, seed {args.seed}")
    print(f"{'decode':<28} {'psnr-y':>7} {'psnr-rgb':>8} {'ms-ssim':>8} {'detail':>7} {'colour':>7}")
    for k, m in table.items():
        print(f"{k:<28} {m['psnr_y']:7.2f} {m['psnr_rgb']:8.2f} {m['ms_ssim']:8.4f} {m['detail']:7.3f} "
              f"{m['colour']:7.3f}")
    if args.json:
        args.json.write_text(json.dumps({"images": len(files), "scale": scale, "seed": args.seed,
                                         "results": table}, indent=2) + "\n")
    if args.png:
        strips = [t for t in tiles.values() if t]
        if not strips:
            raise SystemExit("--png: none of the --crops images is in --data")
        w, h = strips[0][0].size
        sheet = Image.new("RGB", (w * max(len(s) for s in strips), h * len(strips)), "white")
        for r, strip in enumerate(strips):
            for c, t in enumerate(strip):
                sheet.paste(t, (c * w, r * h))
        sheet.save(args.png, optimize=True)
        print(f"wrote {args.png}")


if __name__ == "__main__":
    main()
