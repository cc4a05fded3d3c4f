"""The storage table's "matched JPEG": per lossless-LR row, JPEG at the quality whose mean RGB
PSNR over the set is closest to the row's (a bisection on quality; each probe is cached)."""

from __future__ import annotations

import math

import numpy as np


def jpeg_mean(bench, q: int) -> tuple[float, int]:
    """Mean RGB PSNR and total bytes of JPEG at ``q`` over the bench's images (memoised)."""
    from irc.metrics import psnr_rgb

    if q not in bench._probes:
        c = bench._codec("jpeg")
        psnrs, total = [], 0
        for im in bench.images:
            data = c.encode(im, c.settings(q, False))
            psnrs.append(psnr_rgb(im, c.decode(data)))
            total += len(data)
        bench._probes[q] = (float(np.mean(psnrs)), total)
    return bench._probes[q]


def match_jpeg(bench) -> None:
    """For each lossy storage row of ``bench``'s results: the matched JPEG, into results.matched."""
    from irc.bench.points import Matched

    rows: dict[str, list] = {}
    for p in bench.results.points:
        if p.quality is None and math.isfinite(p.psnr_rgb):  # lossless LR, not an exact (codec-alone) decode
            rows.setdefault(p.pipeline, []).append(p)
    targets = {name: float(np.mean([p.psnr_rgb for p in pts])) for name, pts in rows.items()}
    tick = bench.progress("JPEG at matched PSNR", len(targets)) if bench.progress and targets else None
    for name, target in targets.items():
        lo, hi = 1, 100  # smallest q with mean PSNR >= target lies in [lo, hi]
        while lo < hi:
            mid = (lo + hi) // 2
            if jpeg_mean(bench, mid)[0] >= target:
                hi = mid
            else:
                lo = mid + 1
        best = min({max(1, lo - 1), lo}, key=lambda q: abs(jpeg_mean(bench, q)[0] - target))
        psnr, total = jpeg_mean(bench, best)
        bench.results.matched[name] = Matched(target, best, psnr, total)
        if tick:
            tick()
