"""What the rate-control search (:mod:`irc.ratesearch`) reasons with: its candidates (pairs of
scale and codec, measured points), the bisection over a pair's rungs, and the bounds that let it
skip a model pass (:func:`upper_estimate`, the slacks)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np


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

# Pruning (irc.ratesearch's module doc). Measured with the shipped models on 3 Kodak images
# (kodim04, 13, 19) at x2, x4 and x8, avif/webp/jpeg (with its CRM)/jxl at q30, 60, 90: each of the
# 108 decodes stays 0.4-5.1 dB below upper_estimate (benchmarks/ratesearch_bounds.py), so the slack is a
# margin on a margin. Among one model's candidates on one image, a decoded LR further from the clean
# one decoded better by at most 0.81 dB (513 ordered pairs, any two codecs, JPEG's CRM included):
# MONOTONE_SLACK_DB is 1.
# A scale only wins with a lossy LR, whose decode stays below the scale's ceiling (1-5 dB above), so
# the ceiling bound needs no wide margin: Kodak ceilings differ from image to image by up to 1.4 dB
# (x4) and 1.8 dB (x8) more than the models' mean Kodak PSNRs do, and CEILING_SLACK_DB is 1.5.
ESTIMATE_SLACK_DB = 0.5
MONOTONE_SLACK_DB = 1.0
CEILING_SLACK_DB = 1.5
# Per image, the amplification of the LR's error (calibrated_amplification) rises with the decoded
# LR's PSNR and with the scale: among the 108 decodes above, an LR at least as close as another decoded
# by the same model (any codecs, JPEG's CRM included) or by one of no larger scale amplified at least
# 0.70x as much (irn-x4 against fgrn-x4; 0.75x within one model: webp q90 against avif q90, LRs above
# 35 dB, where it levels off). With AMP_MARGIN 0.65 each of the 108 decodes, bounded from the other
# decodes of its image (as the search would have them), lies 0.09-2.8 dB below the calibrated bound
# (benchmarks/ratesearch_bounds.py prints the figures).
AMP_MARGIN = 0.65
SIZE_SLACK = 8  # bytes: a file with its PSNR in the record may deflate a little below its size with null


def _mse(psnr: float) -> float:
    return 10.0 ** (-psnr / 10.0)


def upper_estimate(ceiling: float, lr_psnr: float, amplification: float = 1.0) -> float:
    """An upper estimate (without slack) of the PSNR an upscale gives from a decoded LR that is
    ``lr_psnr`` dB from the clean LR, for a model whose clean LR gives ``ceiling`` dB.

    The inverse of an invertible rescaler reproduces its LR: downscaling the decoded image gives
    the decoded LR again. The downscale is close to a local average, which does not enlarge a
    difference, so the decoded image is at least as far from the input as the decoded LR is
    from the clean one, on top of the model's own error (the ceiling); the two errors add.
    ``amplification`` (at least 1) scales the LR's squared error: what the image's own measured
    candidates say the inverse does to it (:func:`calibrated_amplification`)."""
    if math.isinf(lr_psnr):
        return ceiling
    if math.isinf(ceiling):
        return lr_psnr
    return -10.0 * math.log10(_mse(ceiling) + max(1.0, amplification) * _mse(lr_psnr))


def amplification(ceiling: float, lr_psnr: float, psnr: float) -> float | None:
    """How much of a decoded LR's squared error reached the decode: (MSE of the decode - MSE of
    the ceiling) / MSE of the LR. None where a term is exact (infinite PSNR)."""
    if math.isinf(ceiling) or math.isinf(lr_psnr) or math.isinf(psnr):
        return None
    return (_mse(psnr) - _mse(ceiling)) / _mse(lr_psnr)


def calibrated_amplification(lr_psnr: float, measured) -> float:
    """The amplification to assume for a decoded LR ``lr_psnr`` dB from the clean one, from ``measured``:
    (measured ceiling, decoded LR's PSNR, PSNR) of lossy candidates decoded on the same image with the
    same model or one of no larger scale. The inverse amplifies the LR's error 1.3-7.7x (measured),
    more for a closer LR and for a larger scale, so an LR at least as close as a measured one is
    assumed to amplify at least AMP_MARGIN times as much; 1 (the plain bound) without one."""
    found = [amplification(ceiling, other, psnr) for ceiling, other, psnr in measured if other <= lr_psnr]
    return max([1.0] + [AMP_MARGIN * a for a in found if a is not None])


def predicted(ceiling: float, lr_psnr: float, anchors) -> float:
    """A prediction (not a bound) of the PSNR an upscale gives from a decoded LR ``lr_psnr`` dB from the
    clean one, from ``anchors``: (decoded LR's PSNR, PSNR) measured on the same pair of scale and codec.
    The amplification of the LR's error is interpolated linearly in the LR's PSNR between the anchors
    (constant beyond them), so an anchor predicts itself; with no anchor it is 1 (the plain bound).
    It only chooses which rung a bisection measures next (:meth:`irc.ratequeries.Queries._guess`)."""
    if math.isinf(lr_psnr) or math.isinf(ceiling):
        return upper_estimate(ceiling, lr_psnr)
    known = sorted((x, a) for x, v in anchors if (a := amplification(ceiling, x, v)) is not None)
    if not known:
        return upper_estimate(ceiling, lr_psnr)
    a = float(np.interp(lr_psnr, [x for x, _ in known], [a for _, a in known]))  # constant beyond the ends
    mse = _mse(ceiling) + a * _mse(lr_psnr)
    return math.inf if mse <= 0 else -10.0 * math.log10(mse)


def lossy_estimate(ceiling: float, lr_psnr: float, seen, measured=()) -> float:
    """The search's upper estimate of a lossy candidate's PSNR before its upscale: :func:`upper_estimate`
    plus ESTIMATE_SLACK_DB, calibrated on ``measured`` (:func:`calibrated_amplification`), and no more
    than MONOTONE_SLACK_DB above any of ``seen`` ((decoded LR's PSNR, PSNR) of the same model's measured
    lossy candidates) whose LR is at least as close to the clean one."""
    bound = upper_estimate(ceiling, lr_psnr, calibrated_amplification(lr_psnr, measured)) + ESTIMATE_SLACK_DB
    return min([bound] + [psnr + MONOTONE_SLACK_DB for other, psnr in seen if other >= lr_psnr])


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


@dataclass(order=True)
class Bracket:
    """A pair's open quality bracket in the best-first search, ordered by the lower bound of its
    file size (``least``), then by search order: rungs ``lo`` (missing the target, or below the
    first candidate) and ``hi`` (reaching it, once measured), with their PSNRs."""
    least: int
    order: int
    pair: Pair = field(compare=False)
    lo: int = field(compare=False)
    hi: int | None = field(default=None, compare=False)
    v_lo: float | None = field(default=None, compare=False)
    v_hi: float | None = field(default=None, compare=False)
    guesses: int = field(default=0, compare=False)  # predicted steps since the bracket last halved
    width: int = field(default=0, compare=False)  # its width then (0: no step taken yet)


def pairs_of(plan) -> list[Pair]:
    out = []
    for scale in plan.scales:
        for codec in plan.codecs:
            lossy = tuple(range(codec.quality_range[0], codec.quality_range[1] + 1)) if codec.lossy else ()
            out.append(Pair(len(out), scale, codec, lossy + ((None,) if codec.lossless else ())))
    return out


def _known(v_lo: float | None, v_hi: float | None) -> bool:
    """Whether both ends of a bracket are measured, finite and increasing (interpolation works)."""
    return v_lo is not None and v_hi is not None and math.isfinite(v_lo) and math.isfinite(v_hi) and v_hi > v_lo


def split(lo: int, hi: int, goal: float, v_lo: float | None, v_hi: float | None, interpolate: bool = True,
          log: bool = False) -> int:
    """The rung to measure next in (lo, hi), hi - lo > 1: interpolated (in log with ``log``) where
    both ends' values are known and ``interpolate``, else the midpoint."""
    if interpolate and _known(v_lo, v_hi):
        f = math.log if log else float
        t = (f(goal) - f(v_lo)) / (f(v_hi) - f(v_lo))
        return min(max(lo + round(t * (hi - lo)), lo + 1), hi - 1)
    return (lo + hi) // 2


def first_reaching(lo: int, hi: int, goal: float, value, v_lo: float | None = None, v_hi: float | None = None,
                   log: bool = False) -> int:
    """The lowest rung in (lo, hi] whose ``value`` reaches ``goal``, for a value that grows with the
    rung, given value(hi) >= goal > value(lo) (``v_lo`` None: not measured, or lo = -1).

    Bisection whose split point is interpolated between the measured ends (in log for sizes,
    which grow about exponentially with quality); when two guesses in a row have not halved
    the bracket, it halves it, so it never takes much more than plain bisection's steps.
    """
    guesses, width = 0, hi - lo  # interpolated steps since the bracket last halved, its width then
    while hi - lo > 1:
        interpolated = guesses < 2 and _known(v_lo, v_hi)
        mid = split(lo, hi, goal, v_lo, v_hi, interpolated, log)
        guesses = guesses + 1 if interpolated else 0
        v = value(mid)
        lo, hi, v_lo, v_hi = (lo, mid, v_lo, v) if v >= goal else (mid, hi, v, v_hi)
        guesses, width = settle(guesses, width, lo, hi)
    return hi


def settle(guesses: int, width: int, lo: int, hi: int) -> tuple[int, int]:
    """(guesses, width) after a step left the bracket (lo, hi): both start again once the bracket is
    half as wide as at the last start, or after a midpoint step (``guesses`` 0). Guessed steps run
    while fewer than two in a row have failed to halve it (:func:`first_reaching`, Queries._step)."""
    return (0, hi - lo) if (hi - lo) * 2 <= width or guesses == 0 else (guesses, width)


def better_psnr(p: Point, best: Point | None) -> bool:
    return best is None or (p.psnr_rgb, -p.file_bytes) > (best.psnr_rgb, -best.file_bytes)
