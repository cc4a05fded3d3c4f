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
* most candidates need no upscale at all. A lossy candidate's PSNR is bounded before its
  upscale (:meth:`Search.estimate`) by :func:`irc.ratepoints.upper_estimate`, from its
  decoded LR's PSNR against the clean LR (a codec decode at LR size) and the pair's
  ceiling, and by the measured PSNR of any candidate of the same model whose decoded LR
  is at least as close to the clean one (plus a slack). Once candidates are measured, the
  bound is calibrated on them: the inverse amplifies the LR's error (1.3-7.7x in MSE), more
  for a closer LR and a larger scale, so a candidate whose LR is at least as close as one
  measured with its model, or with one of no larger scale, is assumed to amplify at least
  AMP_MARGIN times as much (:func:`irc.ratepoints.calibrated_amplification`);
* for the smallest file reaching a target: branch and bound. Each pair's first rung whose
  bound reaches the target is found with codec round trips alone (at scale 1, with no
  model, that is the answer itself); its size bounds the pair's answer from below. Pairs
  are measured best first (scale 1's answers at once): the pair with the smallest bound takes
  the next measurement, its highest rung smaller than the best file so far (a pair that misses
  the target there is dropped after one upscale, or before it where the bounds, tightened by
  the measurements since it was queued, say it misses), then bisection steps from its first
  rung, each raising its bound; pairs whose bound is not below the best file are never measured
  (:mod:`irc.ratequeries`);
* a bisection step measures the rung predicted to be the first reaching the target: every
  rung's decoded LR is compared with the clean one (codec round trips), and the amplification
  of its error measured at the bracket's ends is interpolated between them
  (:func:`irc.ratepoints.predicted`); a good guess and its neighbour settle the bracket in two
  upscales. Two guesses in a row that do not halve the bracket give way to its midpoint;
* a scale's ceiling is itself bounded before its downscale, from the ceiling measured
  with the least downscaled model and the registry's Kodak PSNR of both models
  (:meth:`Search.ceiling_bound`): a target a few dB above the x2 ceiling skips x4 and x8.

If size or PSNR is not monotone in quality, or a bound is wrong for some image, the search
may miss a slightly better setting; what it promises is still measured, never estimated.
"""

from __future__ import annotations

import hashlib
import math

import numpy as np

from irc import api, imageio
from irc.metrics import psnr_rgb
from irc.ratequeries import Queries
from irc.ratepoints import (  # noqa: F401  (db, the slacks and upper_estimate stay reachable here)
    CEILING_SLACK_DB, ESTIMATE_SLACK_DB, MONOTONE_SLACK_DB, PSNR_WIDTH, Pair, Point, db, lossy_estimate, pairs_of,
    upper_estimate,
)

SEARCH_VERSION = 4  # 2: pruned by bounds, branch and bound; 3: calibrated bounds; 4: predicted bisection steps
# (cached bench points key on it)
PRUNE = True  # False: each pair is bisected on measured PSNRs alone (tests; ratecontrol_time.py --no-prune)


class Search(Queries):
    """Candidates of one image under one :class:`irc.ratecontrol.SearchPlan`, measured on demand."""

    def __init__(self, img, plan, record: dict, device: str, tile: int, overlap: int, backend: str = "auto",
                 precision: str = "auto"):
        self.img, self.plan, self.record, self.device = img, plan, record, device
        self.tile, self.overlap, self.backend, self.precision = tile, overlap, backend, precision
        self.pairs = pairs_of(plan)
        self.size = (img.rgb.shape[1], img.rgb.shape[0])
        self.alpha = imageio.encode_alpha(img.alpha) if img.alpha is not None else None
        self._lr: dict = {}  # model key (None: scale 1) -> (LR, the precision its pass ran in)
        self._encoded: dict = {}  # (pair, rung) -> (EncodePlan, payload, size bound)
        self._points: dict = {}  # (pair, rung) -> Point
        self._files: dict = {}  # Point -> (bytes, EncodeInfo)
        self._psnr: dict = {}  # (model, LR shape, LR hash, CRM, CRM quality) -> PSNR
        self._decoded: dict = {}  # (pair, rung) -> the decoded LR
        self._lr_psnrs: dict = {}  # (pair, rung) -> its PSNR against the clean LR
        self._plans: dict = {}  # pair -> its lossless-or-lowest-rung EncodePlan, no CRM (model, resampling)
        self._ceiling: dict = {}  # pair -> its measured ceiling
        self._ceilings: dict = {}  # model key -> (its spec, the measured ceiling), unresampled models
        self._seen: dict = {}  # model key -> [(decoded LR's PSNR, measured PSNR)] of its lossy candidates
        self._calibrations: dict = {}  # scale -> _calibration(scale), until the next measurement
        self.prune = PRUNE
        self.candidates = self.model_passes = self.encodes = 0

    def retarget(self, record: dict) -> None:
        """Search again under a new ``rate_control`` record (another target): the files change
        with the record, so they are rebuilt; the LRs and the measured upscales are kept."""
        self.record = record
        self._encoded.clear()
        self._points.clear()
        self._files.clear()
        self._decoded.clear()
        self._lr_psnrs.clear()

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
            psnr = self._measure(plan, plan.crm, plan.settings.quality, self._decode(pair, r))
            rc = {**self.record, "psnr_rgb": None if math.isinf(psnr) else psnr}
            data, info = api.pack(self.img, plan, payload, lr_size, self.plan.layout, rc, self.alpha, precision, side)
            pt = Point(pair.scale, plan.codec.name, plan.settings.quality, len(data), psnr,
                       plan.model.name if plan.model else None, plan.crm.name if plan.crm else None)
            self._points[key], self._files[pt] = pt, (data, info)
            self.candidates += 1
            if plan.model is not None and pair.rungs[r] is not None:
                self._seen.setdefault(plan.model.key, []).append((self._lr_psnr(pair, r), psnr))
                self._calibrations.clear()
        return self._points[key]

    def _decode(self, pair: Pair, r: int) -> np.ndarray:
        """The candidate's LR as the decoder gets it from the codec (memoised)."""
        key = (pair.index, r)
        if key not in self._decoded:
            plan, payload, _, side = self._encode(pair, r)
            lr = self._lr_of(plan)[0]
            self._decoded[key] = api.decode_lr(plan.codec, payload, (lr.shape[1], lr.shape[0]), side=side)
        return self._decoded[key]

    def _exact(self, pair: Pair) -> bool:
        """Whether :meth:`estimate` is the measured PSNR itself (no pruning, or no model to run)."""
        return not self.prune or pair.scale == 1

    def estimate(self, pair: Pair, r: int) -> float:
        """An upper estimate of the candidate's PSNR: measured where that is cheap (scale 1, the
        lossless rung once the ceiling is known), else :func:`irc.ratepoints.lossy_estimate`, with
        no upscale of its own. Without pruning: the measured PSNR."""
        if self._exact(pair):
            return self.point(pair, r).psnr_rgb
        if pair.rungs[r] is None:
            return self._ceiling_or_bound(pair)
        key = self._encode(pair, r)[0].model.key
        measured = () if self._plan_of(pair).resample else self._calibration(pair.scale)
        return lossy_estimate(self._ceiling_or_bound(pair), self._lr_psnr(pair, r), self._seen.get(key, ()), measured)

    def _calibration(self, scale) -> list:
        """(ceiling, decoded LR's PSNR, PSNR) of this image's measured lossy candidates whose model has
        no larger scale than ``scale`` (unresampled): what calibrates a bound. Rebuilt only after a new
        measurement (:meth:`point` and :meth:`ceiling` clear it)."""
        if scale not in self._calibrations:
            self._calibrations[scale] = [(ceiling, lr, psnr) for k, (spec, ceiling) in self._ceilings.items()
                                         if spec.scale <= scale for lr, psnr in self._seen.get(k, ())]
        return self._calibrations[scale]

    def _lr_psnr(self, pair: Pair, r: int) -> float:
        """The PSNR of the candidate's decoded LR against the clean LR (image channels)."""
        key = (pair.index, r)
        if key not in self._lr_psnrs:  # estimates ask for it again at every bisection step
            plan = self._encode(pair, r)[0]
            n = plan.model.lr_channels
            self._lr_psnrs[key] = psnr_rgb(self._lr_of(plan)[0][..., :n], self._decode(pair, r)[..., :n])
        return self._lr_psnrs[key]

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
        if pair.index not in self._ceiling:
            plan = self._plan_of(pair)
            value = self._ceiling[pair.index] = self._measure(plan, None, None, self._lr_of(plan)[0])
            if plan.model is not None and not plan.resample:
                self._ceilings[plan.model.key] = (plan.model, value)
                self._calibrations.clear()
        return self._ceiling[pair.index]

    def _plan_of(self, pair: Pair):
        if pair.index not in self._plans:
            q = pair.rungs[0]
            self._plans[pair.index] = api.plan_encode(pair.scale, pair.codec.name, q, True if q is None else None,
                                                      self.plan.model, "none")
        return self._plans[pair.index]

    def ceiling_bound(self, pair: Pair) -> float:
        """The pair's ceiling, bounded without a model pass where possible: from a ceiling measured
        with another model on this image, plus the difference of both models' Kodak PSNRs (the
        registry's) and CEILING_SLACK_DB. inf when nothing bounds it yet."""
        plan = self._plan_of(pair)
        spec = plan.model
        if spec is None:
            return math.inf
        if spec.key in self._ceilings and not plan.resample:
            return self._ceilings[spec.key][1]
        if not self.prune or plan.resample:
            return math.inf
        mine = spec.kodak.get("psnr_rgb")
        bounds = [value + mine - other.kodak["psnr_rgb"] + CEILING_SLACK_DB
                  for other, value in self._ceilings.values()
                  if mine is not None and other.kodak.get("psnr_rgb") is not None]
        return min(bounds, default=math.inf)

    def _anchor(self) -> None:
        """Measure the ceiling of the least downscaled model first: it bounds the others'."""
        scaled = [p for p in self.pairs if p.scale != 1]
        if self.prune and scaled:
            self.ceiling(min(scaled, key=lambda p: (p.scale, p.index)))

    def _ceiling_or_bound(self, pair: Pair) -> float:
        """The pair's ceiling where measured, else its bound where there is one, else measured."""
        bound = self.ceiling_bound(pair)
        return bound if math.isfinite(bound) else self.ceiling(pair)

    def _out_of_reach(self, pair: Pair, goal: float) -> bool:
        """Whether the pair's ceiling (or its bound, until measured) is below ``goal``."""
        return self._ceiling_or_bound(pair) < goal

    def file_of(self, point: Point) -> tuple[bytes, api.EncodeInfo]:
        return self._files[point]

    # ---- bisection ------------------------------------------------------------------------------
