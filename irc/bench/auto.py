"""The "irc auto" curve of `irc bench --auto`: `irc encode --target-psnr T --codec auto`, T swept.

For every image and target the bench runs the rate-control search exactly as `irc encode`
does (:class:`irc.ratesearch.Search` under the plan :func:`irc.ratecontrol.plan_search`
makes), writes the file it chooses, then decodes that file with :func:`irc.api.decode`
and measures the decode against the input. So each point is what a user gets, and its
``bytes`` are every byte of the .irc file (header and rate-control record included), not
only the payload the other curves count: the comparison is conservative for irc auto.

One search per image serves all targets: :meth:`Search.retarget` keeps the LRs and the
measured upscales (both deterministic), so a later target re-runs only codec encodes and
the upscales it has not seen. A point's ``enc_s`` is its own search's seconds with that
reuse (the first target of an image pays the LR passes); ``dec_s`` is the decode.

Curve criteria of rate control (issue 15): BD-rate against each codec alone, and the
margin at every rate (:func:`margins`): how far irc auto's mean PSNR lies above each
codec-alone curve, interpolated in log-rate at irc auto's mean bpp.
"""

from __future__ import annotations

import hashlib
import math
import time

import numpy as np

AUTO = "irc auto"  # the curve's name in bench.json, the tables and the plots


def cache_key(codecs: str) -> str:
    """A digest of what the points depend on beyond the image: the container version, the search's
    (irc.ratesearch.SEARCH_VERSION: what it chooses may change with it), the codec versions, and
    the weights of every model and CRM the search may use (its own plan: the
    scales of :func:`irc.ratecontrol.plan_search`, each pair's model and CRM as
    :func:`irc.api.plan_encode` picks them for a lossy candidate)."""
    from irc import api
    from irc.container import VERSION
    from irc.ratecontrol import plan_search
    from irc.ratesearch import SEARCH_VERSION

    plan = plan_search(target_psnr=30.0, codecs=codecs)
    parts = [f"format {VERSION}", f"search {SEARCH_VERSION}"]  # the container's size is part of every point
    for codec in plan.codecs:
        parts.append(f"{codec.name}:{codec.version()}")
        q = codec.quality_range[0] if codec.lossy else None
        for s in plan.scales:
            if s != 1:
                pe = api.plan_encode(s, codec.name, q, True if q is None else None, plan.model, plan.crm)
                parts.append(f"{s}{codec.name}:{pe.model.sha256()}:{pe.crm.sha256() if pe.crm else '-'}")
    return hashlib.sha256(",".join(parts).encode()).hexdigest()[:16]


def run_auto(bench, targets: list[float], codecs: str = "auto") -> None:
    """Add one "irc auto" point per image and target to ``bench``'s results."""
    from irc.bench.points import Point

    n = len(bench.images)
    key_models = cache_key(codecs)
    searches: dict[int, object] = {}

    def job(i: int, target: float):
        def compute() -> Point:
            return _point(bench, searches, i, target, codecs, Point)

        return bench._cached(f"{bench.ids[i]}|{AUTO}|{target:g}|{codecs}|{key_models}", compute)

    jobs = [lambda i=i, t=t: job(i, t) for i in range(n) for t in sorted(targets)]
    bench._run(f"{AUTO} ({len(targets)} targets)", jobs)
    searches.clear()


def _point(bench, searches: dict, i: int, target: float, codecs: str, Point):
    from irc import api, imageio
    from irc.metrics import bpp, psnr_rgb, psnr_y, ssim
    from irc.ratecontrol import plan_search
    from irc.ratesearch import Search

    ref = bench.images[i]
    h, w = ref.shape[:2]
    t0 = time.perf_counter()
    if i not in searches:
        searches.clear()  # one image's memo at a time
        plan = plan_search(target_psnr=target, codecs=codecs)
        img = imageio.load(ref)
        searches[i] = Search(img, plan, {}, bench.device, api.DEFAULT_TILE, api.DEFAULT_OVERLAP)
    search = searches[i]
    search.retarget({"target_psnr": target, "max_bytes": None})
    best = search.smallest_reaching(target, math.inf)
    if best is None:  # nothing reaches it (lossy codecs only): the best there is, as the CLI's message gives
        best = search.best_overall()
    data, _ = search.file_of(best)
    enc_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    out = np.asarray(api.decode(data, device=bench.device).convert("RGB"))
    dec_s = time.perf_counter() - t1
    measured = psnr_rgb(ref, out)
    if not (measured == best.psnr_rgb or math.isclose(measured, best.psnr_rgb, abs_tol=1e-9)):
        raise RuntimeError(f"{bench.names[i]}: the search promised {best.psnr_rgb} dB, the decode gives {measured}")
    crop = math.ceil(best.scale) if best.scale > 1 else 0
    return Point(bench.names[i], AUTO, best.scale, best.codec, best.quality, len(data), bpp(len(data), w, h),
                 measured, psnr_y(ref, out, crop=crop), ssim(ref, out), enc_s, dec_s, target=target)


def _log_interp(points: list[tuple[float, float]], rate: float) -> float | None:
    """PSNR of a curve at ``rate`` (piecewise linear in log rate); None outside its rate range."""
    pts = sorted(points)
    rates = [math.log(r) for r, _ in pts]
    x = math.log(rate)
    if not pts or x < rates[0] - 1e-12 or x > rates[-1] + 1e-12:
        return None
    return float(np.interp(x, rates, [d for _, d in pts]))


def margins(auto: list[tuple[float, float]], anchor: list[tuple[float, float]]) -> list[float | None]:
    """Per irc auto (bpp, PSNR) point: its PSNR minus the anchor curve's at the same bpp (None where
    the anchor's rates do not reach). Never worse than the codec: all >= 0."""
    out = []
    for rate, psnr in auto:
        other = _log_interp(anchor, rate)
        out.append(None if other is None else psnr - other)
    return out


def criteria(cur: dict[str, list[dict]], points: list) -> dict:
    """irc auto against every codec-alone curve, two ways.

    * Mean curves (``mean_*``): BD-rate (%), BD-PSNR (dB) and the least margin (dB) at equal
      rate of irc auto's mean-over-images curve against the codec's. This favours the codec:
      one quality for every image spends bits where they buy the most mean PSNR, while a
      PSNR target per image holds every image to the same PSNR, whatever it costs.
    * Per image (``image_*``): each image's irc auto points against the same image's codec
      points, what a user coding that image sees. The mean and the worst BD-rate over the
      images, and the least margin at equal rate over every point of every image: "never
      worse than the plain codec" means this margin is >= 0 (within the container's bytes).
    """
    from irc.metrics import bd_psnr, bd_rate

    auto = cur.get(AUTO)
    if not auto:
        return {}
    mine = {}
    for p in points:
        if p.pipeline == AUTO and math.isfinite(p.psnr_rgb):
            mine.setdefault(p.image, []).append((p.bpp, p.psnr_rgb))
    out = {}
    for name, pts in cur.items():
        if name == AUTO or not pts or pts[0]["scale"] != 1:
            continue
        a, t = [(c["bpp"], c["psnr-rgb"]) for c in pts], [(c["bpp"], c["psnr-rgb"]) for c in auto]
        m = [v for v in margins(t, a) if v is not None]
        row = {"mean_bd_rate_pct": bd_rate(a, t), "mean_bd_psnr_db": bd_psnr(a, t),
               "mean_least_margin_db": min(m) if m else None}
        theirs = {}
        for p in points:
            if p.pipeline == name and p.quality is not None:
                theirs.setdefault(p.image, []).append((p.bpp, p.psnr_rgb))
        rates, gaps = [], []
        for image, own in mine.items():
            if image in theirs:
                rate = bd_rate(theirs[image], own)
                if rate is not None:
                    rates.append(rate)
                gaps += [v for v in margins(own, theirs[image]) if v is not None]
        row.update({"image_bd_rate_pct": float(np.mean(rates)) if rates else None,
                    "image_worst_bd_rate_pct": max(rates) if rates else None,
                    "image_least_margin_db": min(gaps) if gaps else None,
                    "images": len(rates), "points_compared": len(gaps)})
        out[name] = row
    return out
