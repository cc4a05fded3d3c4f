"""The questions the rate-control search answers (:class:`irc.ratesearch.Search` inherits them): the
smallest file reaching a PSNR (best-first branch and bound), the best PSNR within a size, and the two
extremes for the messages when neither exists. They reason on :class:`~irc.ratesearch.Search`'s
sizes, estimates and measurements (its module doc says how those stay cheap)."""

from __future__ import annotations

import heapq
import math

from irc.ratepoints import (
    PSNR_WIDTH, SIZE_SLACK, Bracket, Pair, Point, better_psnr, first_reaching, predicted, settle, split,
)

PROBE, REQUEUE, DROP = "probe", "requeue", "drop"  # Queries._rebound's verdicts on a queued pair


class Queries:
    """Mixed into :class:`irc.ratesearch.Search`: every method here uses its candidates."""

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

    def _first_rung(self, pair: Pair, target: float, cap: float) -> tuple[int | None, bool]:
        """(the lowest lossy rung within ``cap`` bytes whose estimate reaches ``target``, or None;
        whether the lossless rung is worth a look: every lossy rung fits and none can reach).
        No rung below the first can reach the target; at scale 1 (or unpruned) it is the answer."""
        top = self._last_fitting(pair, cap)
        if top is not None:
            est_top = self.estimate(pair, top)
            if est_top >= target:
                return first_reaching(-1, top, target, lambda r: self.estimate(pair, r), None, est_top), False
        return None, pair.lossless and (pair.n_lossy == 0 or top == pair.n_lossy - 1)

    def _lossless(self, pair: Pair, target: float, limit: float) -> Point | None:
        """The pair's lossless candidate, if it may fit in ``limit`` bytes and reaches ``target``."""
        if self._out_of_reach(pair, target):
            return None
        p = self._lossless_within(pair, limit)
        return p if p is not None and p.psnr_rgb >= target else None

    def _lossless_within(self, pair: Pair, limit: float) -> Point | None:
        """The pair's lossless candidate, measured unless its size bound already exceeds ``limit``,
        if it fits in ``limit`` bytes."""
        r = len(pair.rungs) - 1
        if not pair.lossless or self.bound(pair, r) - PSNR_WIDTH > limit:
            return None
        p = self.point(pair, r)
        return p if p.file_bytes <= limit else None

    def smallest_reaching(self, target: float, cap: float) -> Point | None:
        """The smallest file (within ``cap`` bytes) whose decode reaches ``target`` dB.

        Best-first branch and bound: each pair's first rung whose estimate reaches the target is
        found with codec round trips alone (at scale 1 it is the answer); its size bounds the
        pair's answer from below. The pair with the smallest bound takes the next measurement
        (its highest rung within the best file so far, then bisection), which raises its bound
        or settles it; a pair whose bound is not below the best file is dropped."""
        self._anchor()
        best, heap, lossless = None, [], []
        # scale 1 first (no model pass), then the most downscaled; this order also breaks ties
        for order, pair in enumerate(sorted(self.pairs, key=lambda p: (p.scale != 1, -p.scale, p.index))):
            if self._out_of_reach(pair, target):
                continue
            start, try_lossless = self._first_rung(pair, target, cap)
            if try_lossless:
                lossless.append(pair)
            elif start is not None and self._exact(pair):
                found = self.point(pair, start)
                if found.file_bytes <= cap and (best is None or found.file_bytes < best.file_bytes):
                    best = found
            elif start is not None:
                heapq.heappush(heap, Bracket(self._least(pair, start), order, pair, start - 1))
        while heap:
            b = heapq.heappop(heap)
            pair, limit = b.pair, cap if best is None else min(cap, best.file_bytes - 1)
            if b.least > limit:
                break  # the heap is ordered by bound: no pair left can beat the best
            top = self._last_fitting(pair, limit)
            if top is None or top <= b.lo or self.ceiling(pair) < target:
                continue
            verdict = self._rebound(b, top, target, limit) if b.hi is None else PROBE
            if verdict == DROP:  # without a model pass
                lossless += [pair] if top == pair.n_lossy - 1 and pair.lossless else []
            if verdict == REQUEUE:
                heapq.heappush(heap, b)
            if verdict != PROBE:
                continue
            if b.hi is None or b.hi > top:  # the highest rung that fits first: missing there drops the pair
                b.hi, b.v_hi = top, self.point(pair, top).psnr_rgb
                if b.v_hi < target:
                    if top == pair.n_lossy - 1 and pair.lossless:
                        lossless.append(pair)
                    continue
            if b.hi - b.lo > 1:
                self._step(b, target)
            if b.hi - b.lo > 1:
                b.least = self._least(pair, b.lo + 1)
                heapq.heappush(heap, b)
            elif self.point(pair, b.hi).file_bytes <= limit:  # (it does where sizes grow with the rung)
                best = self.point(pair, b.hi)
        for pair in lossless:
            found = self._lossless(pair, target, cap if best is None else min(cap, best.file_bytes - 1))
            if found is not None:
                best = found
        return best

    def _step(self, b: Bracket, target: float) -> None:
        """One bisection step of bracket ``b``: measure a rung inside it and move an end there. The rung
        is predicted (:meth:`_guess`) where that keeps paying; when two guesses in a row have not halved
        the bracket, the midpoint (first_reaching's rule): never much worse than plain bisection."""
        if not b.width:
            b.width = b.hi - b.lo
        guess = b.guesses < 2
        mid = self._guess(b, target) if guess else (b.lo + b.hi) // 2
        b.guesses = b.guesses + 1 if guess else 0
        v = self.point(b.pair, mid).psnr_rgb
        if v >= target:
            b.hi, b.v_hi = mid, v
        else:
            b.lo, b.v_lo = mid, v
        b.guesses, b.width = settle(b.guesses, b.width, b.lo, b.hi)

    def _guess(self, b: Bracket, target: float) -> int:
        """The rung in (lo, hi) most likely to be the first reaching ``target``: each rung's decoded LR
        (a codec round trip at LR size, no upscale) through :func:`irc.ratepoints.predicted`, anchored
        on the pair's measured rungs; in PSNR per rung where pruning is off (no LR is compared then)."""
        pair = b.pair
        if not self.prune:
            return split(b.lo, b.hi, target, b.v_lo, b.v_hi)
        ceiling = self.ceiling(pair)
        anchors = [(self._lr_psnr(pair, r), p.psnr_rgb) for (i, r), p in self._points.items()
                   if i == pair.index and pair.rungs[r] is not None]
        first = first_reaching(b.lo, b.hi, target, lambda r: predicted(ceiling, self._lr_psnr(pair, r), anchors))
        return min(max(first, b.lo + 1), b.hi - 1)

    def _rebound(self, b: Bracket, top: int, target: float, limit: float) -> str:
        """What the bounds as they are now (they tighten as candidates are measured) say of the
        unmeasured bracket ``b``, whose highest rung within ``limit`` bytes is ``top``: DROP (``top``'s
        estimate misses ``target``, or the size bound of its first rung reaching it exceeds ``limit``),
        REQUEUE (that size bound rose: ``b`` takes it and waits its turn again) or PROBE (unchanged)."""
        if not self.prune:
            return PROBE
        if self.estimate(b.pair, top) < target:
            return DROP
        start = first_reaching(b.lo, top, target, lambda r: self.estimate(b.pair, r))
        least = self._least(b.pair, start)
        if least <= b.least:
            return PROBE
        b.lo, b.least = start - 1, least
        return DROP if least > limit else REQUEUE

    def _least(self, pair: Pair, r: int) -> int:
        """A lower bound of the size of any file of the pair at rung ``r`` or above."""
        return self.bound(pair, r) - PSNR_WIDTH - SIZE_SLACK

    def best_within(self, cap: float) -> Point | None:
        """The highest PSNR within ``cap`` bytes (then the smaller file)."""
        best = None
        for pair in sorted(self.pairs, key=lambda p: (p.scale, p.index)):  # the highest ceilings first
            if best is not None and self._out_of_reach(pair, best.psnr_rgb + 1e-9):
                continue
            top = self._last_fitting(pair, cap)
            useful = top is not None and (best is None or self.estimate(pair, top) >= best.psnr_rgb)
            found = [self.point(pair, top)] if useful else []
            if top == pair.n_lossy - 1 or pair.n_lossy == 0:  # every lossy rung fits: lossless may too
                found.append(self._lossless_within(pair, cap))
            for p in filter(None, found):
                if p.file_bytes <= cap and better_psnr(p, best):
                    best = p
        return best

    def best_overall(self) -> Point:
        """The highest PSNR any candidate reaches (for the message when a target is out of reach)."""
        best = None
        for pair in sorted(self.pairs, key=lambda p: (p.scale, p.index)):
            if best is not None and self._out_of_reach(pair, best.psnr_rgb + 1e-9):
                continue
            p = self.point(pair, len(pair.rungs) - 1)
            if better_psnr(p, best):
                best = p
        return best

    def smallest_possible(self) -> Point:
        """The smallest file of all (each pair's lowest rung), measured."""
        pair = min(self.pairs, key=lambda p: (self.bound(p, 0), p.index))
        return self.point(pair, 0)
