"""The search behind irc.ratecontrol: candidates, their sizes and measured PSNRs, bisection.

A *pair* is a (scale, codec); its *rungs* are the codec's integer qualities, lowest
first, then its lossless mode where it has one (png has only that rung). A candidate
is a pair and a rung: a complete .irc file made by the steps a plain encode runs
(:func:`irc.api.plan_encode`, :func:`irc.api.lr_of`, the codec, :func:`irc.api.pack`).

Measuring a candidate is what `irc decode` does: the codec decodes the payload, then
:func:`irc.api.hr_from_lr` with the model and CRM its header names, at the default
decode tiling, then the decoded image's mode; psnr_rgb against the input's RGB.

What keeps it fast:

* each model's LR is computed once (one downscale per scale);
* a size needs only a codec encode: "the highest rung that fits in N bytes" is a
  bisection on encodes alone. Before its PSNR is known a file's size is bounded by
  its size with ``psnr_rgb: null`` plus PSNR_WIDTH bytes (a guide: every kept file's
  size is checked against the limit itself);
* PSNRs are memoised by (model, decoded LR bytes, CRM, CRM quality): every lossless
  rung of a scale decodes to the same LR and costs one upscale, as do two qualities
  a codec maps to the same bitstream;
* bisection (with interpolated split points, :func:`first_reaching`) assumes size and
  PSNR grow with the rung; the lossless LR's PSNR (the
  pair's *ceiling*) bounds a pair, so a target above it skips the pair, and in the
  size-limited search a pair whose ceiling is not above the best found is skipped;
* for the smallest file reaching a target, scale 1 goes first (it needs no model pass),
  and each later pair is probed once, at the highest rung smaller than the best file so
  far: if that misses the target, the pair cannot win and is dropped after one upscale.

If size or PSNR is not monotone in quality the search may miss a slightly better
setting; what it promises is still measured, never estimated.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import numpy as np

from irc import api, imageio
from irc.metrics import psnr_rgb


@dataclass(frozen=True)
class Point:
    """One measured candidate: a complete .irc file and the RGB PSNR its decode gives."""

    scale: int | float
    codec: str
    quality: int | None  # None: lossless
    file_bytes: int  # every byte of the file, the rate_control record included
    psnr_rgb: float  # math.inf: the decode equals the input
    model: str | None = None
    crm: str | None = None

    @property
    def setting(self) -> str:
        return f"scale {self.scale}, {self.codec} " + ("lossless" if self.quality is None else f"q{self.quality}")

    def describe(self) -> str:
        return f"{db(self.psnr_rgb)} ({self.setting}, {self.file_bytes:,} bytes)"


def db(psnr: float) -> str:
    return "exact (infinite PSNR)" if math.isinf(psnr) else f"{psnr:.2f} dB"


# bytes a float PSNR (at most 24 JSON characters) may add beyond "null" (4): the header is deflated
# (irc.headz), where each added character costs at most 9 bits, plus a block's worth of slack
PSNR_WIDTH = 40


@dataclass(frozen=True)
class Pair:
    index: int  # search order among pairs: ties go to the earlier one
    scale: int | float
    codec: object  # irc.codecs.Codec
    rungs: tuple  # qualities ascending, then None (lossless) where the codec has it

    @property
    def n_lossy(self) -> int:
        return sum(r is not None for r in self.rungs)

    @property
    def lossless(self) -> bool:
        return self.rungs[-1] is None


def _pairs(plan) -> list[Pair]:
    out = []
    for scale in plan.scales:
        for codec in plan.codecs:
            lossy = tuple(range(codec.quality_range[0], codec.quality_range[1] + 1)) if codec.lossy else ()
            out.append(Pair(len(out), scale, codec, lossy + ((None,) if codec.lossless else ())))
    return out


def first_reaching(lo: int, hi: int, goal: float, value, v_lo: float | None = None, v_hi: float | None = None,
                   log: bool = False) -> int:
    """The lowest rung in (lo, hi] whose ``value`` reaches ``goal``, for a value that grows with the
    rung, given value(hi) >= goal > value(lo) (``v_lo`` None: not measured, or lo = -1).

    Bisection whose split point is interpolated between the measured ends (in log for sizes,
    which grow about exponentially with quality); when two guesses in a row have not halved
    the bracket, it halves it, so it never takes much more than plain bisection's steps.
    """
    f = math.log if log else float
    guesses, width = 0, hi - lo  # interpolated steps since the bracket last halved, its width then
    while hi - lo > 1:
        known = v_lo is not None and v_hi is not None and math.isfinite(v_lo) and math.isfinite(v_hi) and v_hi > v_lo
        if known and guesses < 2:
            t = (f(goal) - f(v_lo)) / (f(v_hi) - f(v_lo))
            mid, guesses = min(max(lo + round(t * (hi - lo)), lo + 1), hi - 1), guesses + 1
        else:
            mid, guesses = (lo + hi) // 2, 0
        v = value(mid)
        lo, hi, v_lo, v_hi = (lo, mid, v_lo, v) if v >= goal else (mid, hi, v, v_hi)
        if (hi - lo) * 2 <= width or guesses == 0:
            guesses, width = 0, hi - lo
    return hi


def _better_psnr(p: Point, best: Point | None) -> bool:
    return best is None or (p.psnr_rgb, -p.file_bytes) > (best.psnr_rgb, -best.file_bytes)


class Search:
    """Candidates of one image under one :class:`irc.ratecontrol.SearchPlan`, measured on demand."""

    def __init__(self, img, plan, record: dict, device: str, tile: int, overlap: int, backend: str = "auto",
                 precision: str = "auto"):
        self.img, self.plan, self.record, self.device = img, plan, record, device
        self.tile, self.overlap, self.backend, self.precision = tile, overlap, backend, precision
        self.pairs = _pairs(plan)
        self.size = (img.rgb.shape[1], img.rgb.shape[0])
        self.alpha = imageio.encode_alpha(img.alpha) if img.alpha is not None else None
        self._lr: dict = {}  # model key (None: scale 1) -> (LR, the precision its pass ran in)
        self._encoded: dict = {}  # (pair, rung) -> (EncodePlan, payload, size bound)
        self._points: dict = {}  # (pair, rung) -> Point
        self._files: dict = {}  # Point -> (bytes, EncodeInfo)
        self._psnr: dict = {}  # (model, LR shape, LR hash, CRM, CRM quality) -> PSNR
        self.candidates = self.model_passes = self.encodes = 0

    def retarget(self, record: dict) -> None:
        """Search again under a new ``rate_control`` record (another target): the files change
        with the record, so they are rebuilt; the LRs and the measured upscales are kept."""
        self.record = record
        self._encoded.clear()
        self._points.clear()
        self._files.clear()

    def space(self) -> str:
        return (f"scale {', '.join(map(str, self.plan.scales))} x codec "
                f"{', '.join(c.name for c in self.plan.codecs)}")

    # ---- candidates -------------------------------------------------------------------------

    def _encode(self, pair: Pair, r: int):
        key = (pair.index, r)
        if key not in self._encoded:
            q = pair.rungs[r]
            plan = api.plan_encode(pair.scale, pair.codec.name, q, True if q is None else None,
                                   self.plan.model, self.plan.crm)
            lr, precision = self._lr_of(plan)
            payload, side = api.code_lr(plan.codec, plan.settings, lr, self._rescaler(plan.model))
            self.encodes += 1
            rc = {**self.record, "psnr_rgb": None}
            data, _ = api.pack(self.img, plan, payload, (lr.shape[1], lr.shape[0]), self.plan.layout, rc, self.alpha,
                               precision, side)
            self._encoded[key] = (plan, payload, len(data) + PSNR_WIDTH, side)
        return self._encoded[key]

    def _rescaler(self, spec):
        """The model loaded as encode_image and decode load it (None at scale 1)."""
        from irc.models.registry import load_rescaler

        return load_rescaler(spec, self.device, self.backend, self.precision)

    def _lr_of(self, plan) -> tuple[np.ndarray, str | None]:
        spec = plan.model
        key = (spec.key, plan.scale) if spec else None
        if key not in self._lr:
            rescaler = self._rescaler(spec)
            lr = api.lr_of(self.img.rgb, rescaler, self.device, self.tile, self.overlap, scale=plan.scale)
            self._lr[key] = (lr, rescaler.precision_of("encode_lr") if rescaler else None)
        return self._lr[key]

    def bound(self, pair: Pair, r: int) -> int:
        """An upper bound of the candidate's file size (exact but for its PSNR's digits)."""
        return self._encode(pair, r)[2]

    def point(self, pair: Pair, r: int) -> Point:
        """The candidate measured: its file built with its own rate_control record."""
        key = (pair.index, r)
        if key not in self._points:
            plan, payload, _, side = self._encode(pair, r)
            lr, precision = self._lr_of(plan)
            lr_size = (lr.shape[1], lr.shape[0])
            decoded = api.decode_lr(plan.codec, payload, lr_size, side=side)
            psnr = self._measure(plan, plan.crm, plan.settings.quality, decoded)
            rc = {**self.record, "psnr_rgb": None if math.isinf(psnr) else psnr}
            data, info = api.pack(self.img, plan, payload, lr_size, self.plan.layout, rc, self.alpha, precision, side)
            pt = Point(pair.scale, plan.codec.name, plan.settings.quality, len(data), psnr,
                       plan.model.name if plan.model else None, plan.crm.name if plan.crm else None)
            self._points[key], self._files[pt] = pt, (data, info)
            self.candidates += 1
        return self._points[key]

    def _measure(self, plan, crm, quality, lr: np.ndarray) -> float:
        """RGB PSNR of what `irc decode` makes of this decoded LR of ``plan``'s model (memoised)."""
        from irc.models.registry import load

        spec, q = plan.model, quality if crm else None
        key = (spec.key if spec else None, plan.resample, lr.shape, hashlib.sha256(lr.tobytes()).digest(),
               crm.key if crm else None, q)
        if key not in self._psnr:
            crm_loaded = load(crm, self.device, backend=self.backend, precision=self.precision) if crm else None
            rgb = api.hr_from_lr(lr, self._rescaler(spec), self.size, crm_loaded, quality, self.device,
                                 resample=plan.resample)
            self.model_passes += spec is not None
            image = imageio.to_pil(np.ascontiguousarray(rgb), None, self.img.mode, None)  # as decode gives it
            self._psnr[key] = psnr_rgb(self.img.rgb, np.asarray(image.convert("RGB")))
        return self._psnr[key]

    def ceiling(self, pair: Pair) -> float:
        """The PSNR of the pair's model on its clean LR (no codec loss, no CRM): what the pair can reach."""
        q = pair.rungs[0]
        plan = api.plan_encode(pair.scale, pair.codec.name, q, True if q is None else None, self.plan.model, "none")
        return self._measure(plan, None, None, self._lr_of(plan)[0])

    def file_of(self, point: Point) -> tuple[bytes, api.EncodeInfo]:
        return self._files[point]

    # ---- bisection ------------------------------------------------------------------------------

    def _last_fitting(self, pair: Pair, limit: float) -> int | None:
        """The highest lossy rung whose file fits in ``limit`` bytes (sizes taken to grow with quality)."""
        n = pair.n_lossy
        if n == 0:
            return None
        if math.isinf(limit):
            return n - 1
        if self.bound(pair, 0) > limit:
            return None
        if self.bound(pair, n - 1) <= limit:
            return n - 1
        # the first rung that does not fit, then one below it
        return first_reaching(0, n - 1, limit + 1, lambda r: self.bound(pair, r), self.bound(pair, 0),
                              self.bound(pair, n - 1), log=True) - 1

    def _reach(self, pair: Pair, target: float, limit: float) -> Point | None:
        """The pair's smallest candidate reaching ``target`` within ``limit`` bytes, if any."""
        top = self._last_fitting(pair, limit)
        if top is not None:
            at_top = self.point(pair, top).psnr_rgb
            if at_top >= target:
                r = first_reaching(-1, top, target, lambda r: self.point(pair, r).psnr_rgb, None, at_top)
                found = self.point(pair, r)
                return found if found.file_bytes <= limit else self.point(pair, top)
            if top < pair.n_lossy - 1:
                return None  # the qualities that might reach it do not fit
        if pair.lossless and (top is not None or pair.n_lossy == 0):
            r = len(pair.rungs) - 1
            if self.bound(pair, r) - PSNR_WIDTH <= limit:  # it may fit: measure it
                p = self.point(pair, r)
                if p.psnr_rgb >= target and p.file_bytes <= limit:
                    return p
        return None

    def smallest_reaching(self, target: float, cap: float) -> Point | None:
        """The smallest file (within ``cap`` bytes) whose decode reaches ``target`` dB."""
        best = None
        # scale 1 first (no model pass: its best file bounds the rest cheaply), then the most downscaled
        for pair in sorted(self.pairs, key=lambda p: (p.scale != 1, -p.scale, p.index)):
            if self.ceiling(pair) < target:
                continue
            limit = cap if best is None else min(cap, best.file_bytes - 1)
            found = self._reach(pair, target, limit)
            if found is not None:
                best = found
        return best

    def best_within(self, cap: float) -> Point | None:
        """The highest PSNR within ``cap`` bytes (then the smaller file)."""
        best = None
        for pair in sorted(self.pairs, key=lambda p: (p.scale, p.index)):  # the highest ceilings first
            if best is not None and self.ceiling(pair) <= best.psnr_rgb:
                continue
            top = self._last_fitting(pair, cap)
            found = [self.point(pair, top)] if top is not None else []
            if pair.lossless and (top == pair.n_lossy - 1 or pair.n_lossy == 0):
                r = len(pair.rungs) - 1
                if self.bound(pair, r) - PSNR_WIDTH <= cap:
                    found.append(self.point(pair, r))
            for p in found:
                if p.file_bytes <= cap and _better_psnr(p, best):
                    best = p
        return best

    def best_overall(self) -> Point:
        """The highest PSNR any candidate reaches (for the message when a target is out of reach)."""
        best = None
        for pair in sorted(self.pairs, key=lambda p: (p.scale, p.index)):
            if best is not None and self.ceiling(pair) <= best.psnr_rgb:
                continue
            p = self.point(pair, len(pair.rungs) - 1)
            if _better_psnr(p, best):
                best = p
        return best

    def smallest_possible(self) -> Point:
        """The smallest file of all (each pair's lowest rung), measured."""
        pair = min(self.pairs, key=lambda p: (self.bound(p, 0), p.index))
        return self.point(pair, 0)
