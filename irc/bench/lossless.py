"""The lossless round trip through the real pipeline: how the shipped IRN weights are measured.

``irc.api.encode`` with the PNG codec, then ``irc.api.decode`` (z = 0), on every
image of a folder; mean Y-PSNR (BT.601, border crop = scale) and RGB PSNR. The
registry's Kodak numbers, ``benchmarks/kodak_lossless.py`` and the training
campaign's ship decision all come from here.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import numpy as np


def round_trip(model_key: str, files: list[Path], device: str = "cpu",
               progress: Callable[[int], None] | None = None) -> dict:
    """{psnr_y, psnr_rgb, images, seconds_per_image} of ``model_key`` (a registry name or ``name@version``)."""
    from PIL import Image

    from irc import api
    from irc.metrics import psnr_rgb, psnr_y
    from irc.models.registry import get_spec

    scale = get_spec(model_key).scale
    ys, rgbs, t0 = [], [], time.time()
    for i, f in enumerate(files):
        with Image.open(f) as im:
            ref = np.asarray(im.convert("RGB"))
        data = api.encode(ref, scale=None, codec="png", model=model_key, device=device)
        out = np.asarray(api.decode(data, device=device))
        ys.append(psnr_y(ref, out, scale))
        rgbs.append(psnr_rgb(ref, out))
        if progress:
            progress(i + 1)
    return {"psnr_y": round(float(np.mean(ys)), 3), "psnr_rgb": round(float(np.mean(rgbs)), 3),
            "images": len(files), "seconds_per_image": round((time.time() - t0) / max(1, len(files)), 2)}
