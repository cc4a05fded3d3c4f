"""Issue 15: the rate-control search prunes candidates and scales before their model passes.

The bounds (irc.ratesearch.upper_estimate, Search.ceiling_bound) only decide what is measured;
what a search promises is still measured. Tiny random-weight models check the plumbing; the
shipped models on a Kodak crop check that pruning finds the same file with fewer passes.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from PIL import Image

from irc import api, ratecontrol, ratesearch
from irc.metrics import psnr_rgb
from irc.ratecontrol import encode_target

from .conftest import KODAK
from .test_ratecontrol import check_promise, one_thread  # noqa: F401  (its module-wide one-thread fixture)


def test_upper_estimate_adds_the_two_errors():
    assert ratesearch.upper_estimate(30.0, math.inf) == 30.0
    assert ratesearch.upper_estimate(math.inf, 28.0) == 28.0
    # equal errors: twice the MSE, 3.01 dB lower; never above either term, symmetric
    assert ratesearch.upper_estimate(30.0, 30.0) == pytest.approx(30.0 - 10 * math.log10(2))
    for c, lr in [(38.5, 29.9), (31.0, 36.0), (25.0, 25.5)]:
        e = ratesearch.upper_estimate(c, lr)
        assert e < min(c, lr) and e == pytest.approx(ratesearch.upper_estimate(lr, c))


def test_the_amplification_is_calibrated_on_closer_lrs_only():
    from irc.ratepoints import AMP_MARGIN, amplification, calibrated_amplification

    c = 32.0
    assert ratesearch.upper_estimate(c, 30.0, 1.0) == ratesearch.upper_estimate(c, 30.0)
    assert ratesearch.upper_estimate(c, 30.0, 0.5) == ratesearch.upper_estimate(c, 30.0)  # never below the plain bound
    assert ratesearch.upper_estimate(c, 30.0, 3.0) < ratesearch.upper_estimate(c, 30.0)
    decoded = ratesearch.upper_estimate(c, 29.0, 2.5)  # a decode whose LR error was amplified 2.5x
    assert amplification(c, 29.0, decoded) == pytest.approx(2.5)
    assert amplification(math.inf, 29.0, decoded) is None
    assert calibrated_amplification(31.0, []) == 1.0
    assert calibrated_amplification(31.0, [(c, 29.0, decoded)]) == pytest.approx(AMP_MARGIN * 2.5)
    assert calibrated_amplification(28.0, [(c, 29.0, decoded)]) == 1.0  # a closer LR says nothing of a further one
    weak = ratesearch.upper_estimate(c, 29.0, 1.1)
    assert calibrated_amplification(31.0, [(c, 29.0, weak)]) == 1.0  # 0.72: the plain bound
    assert calibrated_amplification(31.0, [(c, 29.0, weak), (c, 29.0, decoded), (c, 31.5, decoded)]) == \
        pytest.approx(AMP_MARGIN * 2.5)  # the largest amplification among the further LRs


def search_for(photo, target, **kw):
    from irc import imageio

    plan = ratecontrol.plan_search(target_psnr=target, **kw)
    img = imageio.load(photo)
    return ratesearch.Search(img, plan, {"target_psnr": target}, "cpu", api.DEFAULT_TILE, api.DEFAULT_OVERLAP)


@pytest.mark.parametrize("prune", [True, False])
@pytest.mark.parametrize("target", [22.0, 27.0])
def test_pruned_and_exhaustive_searches_keep_the_promise(photo, monkeypatch, prune, target):
    monkeypatch.setattr(ratesearch, "PRUNE", prune)
    res = encode_target(photo, target_psnr=target, codecs="jpeg,png")
    check_promise(res, photo)
    assert res.choice.psnr_rgb >= target
    within = encode_target(photo, max_bytes=2500, codecs="jpeg,png")
    check_promise(within, photo)
    assert within.choice.file_bytes <= 2500


def test_estimates_need_no_model_pass_and_scale_1_is_exact(photo):
    s = search_for(photo, 25.0, codecs="jpeg,png")
    x2 = next(p for p in s.pairs if p.scale == 2 and p.codec.name == "jpeg")
    png2 = next(p for p in s.pairs if p.scale == 2 and p.codec.name == "png")
    ceiling = s.ceiling(x2)
    passes = s.model_passes
    e = s.estimate(x2, 20)
    assert s.model_passes == passes and s.candidates == 0  # a codec round trip, no upscale
    assert e <= ceiling + ratesearch.ESTIMATE_SLACK_DB
    assert s.estimate(png2, 0) == ceiling  # the lossless rung: the ceiling itself
    one = next(p for p in s.pairs if p.scale == 1)
    assert s.estimate(one, 40) == s.point(one, 40).psnr_rgb


def test_a_scale_is_skipped_before_its_downscale_when_its_ceiling_bound_misses(photo, tiny_models, monkeypatch):
    """With Kodak numbers in the registry, a measured x2 ceiling bounds x4 and x8 (no downscale for them)."""
    from irc.models import registry

    for k, v in {2: 36.0, 4: 29.0, 8: 25.0}.items():
        monkeypatch.setitem(registry._extra, f"tiny-x{k}", dataclasses.replace(registry._extra[f"tiny-x{k}"], kodak={"psnr_rgb": v}))
    registry.load_model.cache_clear()
    s = search_for(photo, 30.0, codecs="jpeg")
    x2, x4, x8 = (next(p for p in s.pairs if p.scale == k) for k in (2, 4, 8))
    assert s.ceiling_bound(x4) == math.inf  # nothing measured yet
    c2 = s.ceiling(x2)
    assert s.ceiling_bound(x4) == pytest.approx(c2 - 7.0 + ratesearch.CEILING_SLACK_DB)
    assert s.ceiling_bound(x8) == pytest.approx(c2 - 11.0 + ratesearch.CEILING_SLACK_DB)
    goal = c2 - 7.0 + ratesearch.CEILING_SLACK_DB + 0.1
    lrs = set(s._lr)
    assert s._out_of_reach(x4, goal) and s._out_of_reach(x8, goal)
    assert set(s._lr) == lrs  # no x4 or x8 downscale was run for that
    monkeypatch.setattr(s, "prune", False)
    assert s.ceiling_bound(x8) == math.inf


# ---- the shipped models on a Kodak crop ---------------------------------------------------------

def kodak_crop() -> np.ndarray:
    return np.asarray(Image.open(KODAK / "kodim03.png").convert("RGB"))[128:384, 256:512]


@pytest.fixture
def shipped_only(monkeypatch):
    """The shipped registry alone: the session's tiny test models would be the defaults otherwise."""
    from irc.models import registry

    monkeypatch.setattr(registry, "_extra", {})
    registry.load_model.cache_clear()
    yield
    registry.load_model.cache_clear()


@pytest.mark.skipif(not KODAK.is_dir(), reason="../shared/data/kodak not present")
def test_estimates_bound_the_shipped_models_decodes(shipped_only):
    """The upper estimate (without its slack) is above what each shipped default model's decode gives."""
    s = search_for(kodak_crop(), 28.0)
    assert {p.scale for p in s.pairs} == {1, 2, 4, 8}
    for pair in s.pairs:
        if pair.scale == 1 or pair.n_lossy == 0:
            continue
        assert not s._plan_of(pair).model.name.startswith("tiny")
        for q in (30, 75):
            r = pair.rungs.index(q)
            p = s.point(pair, r)
            assert s.estimate(pair, r) - ratesearch.ESTIMATE_SLACK_DB >= p.psnr_rgb, (pair.scale, pair.codec.name, q)


@pytest.mark.skipif(not KODAK.is_dir(), reason="../shared/data/kodak not present")
def test_pruning_finds_the_exhaustive_choice_with_fewer_passes(shipped_only, monkeypatch):
    img, target = kodak_crop()[32:224, 32:224], 27.0
    pruned = encode_target(img, target_psnr=target)
    monkeypatch.setattr(ratesearch, "PRUNE", False)
    full = encode_target(img, target_psnr=target)
    assert pruned.data == full.data
    assert pruned.model_passes < full.model_passes
    decoded = np.asarray(api.decode(pruned.data).convert("RGB"))
    assert abs(psnr_rgb(img, decoded) - pruned.choice.psnr_rgb) <= 1e-6


def test_a_measured_candidate_bounds_its_models_further_lrs(photo):
    """Once a candidate is measured, one of the same model whose LR is no closer to the clean LR is
    estimated at most MONOTONE_SLACK_DB above it (no upscale for that)."""
    s = search_for(photo, 25.0, codecs="jpeg,webp")
    jpeg2 = next(p for p in s.pairs if p.scale == 2 and p.codec.name == "jpeg")
    webp2 = next(p for p in s.pairs if p.scale == 2 and p.codec.name == "webp")
    measured = s.point(jpeg2, 89)
    close = s._lr_psnr(jpeg2, 89)
    further = next(r for r in range(60, -1, -1) if s._lr_psnr(webp2, r) <= close)
    s.ceiling(webp2)  # the same model's: measured once, for both
    passes = s.model_passes
    assert s.estimate(webp2, further) <= measured.psnr_rgb + ratesearch.MONOTONE_SLACK_DB
    assert s.model_passes == passes


def test_a_measured_candidate_calibrates_the_bound_of_closer_lrs(photo):
    """The estimate of a candidate whose LR is closer than a measured one's assumes the measured
    amplification (times AMP_MARGIN) of the LR's error, without an upscale of its own."""
    from irc.ratepoints import AMP_MARGIN, amplification

    s = search_for(photo, 25.0, codecs="jpeg")
    jpeg2, jpeg4 = (next(p for p in s.pairs if p.scale == k and p.codec.name == "jpeg") for k in (2, 4))
    ceiling = s.ceiling(jpeg2)
    low = s.point(jpeg2, 20)
    amp = amplification(ceiling, s._lr_psnr(jpeg2, 20), low.psnr_rgb)
    passes = s.model_passes
    lr = s._lr_psnr(jpeg2, 60)
    assert lr > s._lr_psnr(jpeg2, 20)
    e = s.estimate(jpeg2, 60)
    assert s.model_passes == passes
    assert e <= ratesearch.upper_estimate(ceiling, lr, AMP_MARGIN * amp) + ratesearch.ESTIMATE_SLACK_DB + 1e-9
    assert e <= ratesearch.upper_estimate(ceiling, lr) + ratesearch.ESTIMATE_SLACK_DB
    # a larger scale's model is calibrated on it too (its own ceiling measured), a smaller one's is not
    c4 = s.ceiling(jpeg4)
    r4 = next(r for r in range(len(jpeg4.rungs) - 1) if s._lr_psnr(jpeg4, r) >= s._lr_psnr(jpeg2, 20))
    assert s.estimate(jpeg4, r4) <= ratesearch.upper_estimate(c4, s._lr_psnr(jpeg4, r4), AMP_MARGIN * amp) + \
        ratesearch.ESTIMATE_SLACK_DB + 1e-9
    s.point(jpeg4, r4)
    assert s.estimate(jpeg2, 60) == e  # x4's decode says nothing of x2's


def test_a_queued_pair_is_bounded_again_before_its_first_probe(photo, monkeypatch):
    """Bounds tighten as candidates are measured: before a queued pair's first (costly) probe its
    first reaching rung is looked for again; a pair the bounds now rule out costs no upscale."""
    from irc.ratepoints import Bracket
    from irc.ratequeries import DROP, PROBE, REQUEUE

    s = search_for(photo, 25.0, codecs="jpeg")
    pair = next(p for p in s.pairs if p.scale == 2)
    top, inf = 60, float("inf")
    b = Bracket(s._least(pair, 10), 0, pair, 9)
    monkeypatch.setattr(s, "estimate", lambda p, r: 20.0 + r / 10)  # rung 50 is the first to reach 25
    assert s._rebound(b, top, 25.0, inf) == REQUEUE and b.lo == 49 and b.least == s._least(pair, 50)
    assert s._rebound(b, top, 25.0, inf) == PROBE  # nothing tightened since
    assert s._rebound(Bracket(0, 0, pair, -1), top, 30.0, inf) == DROP  # the top rung misses
    low = Bracket(s._least(pair, 10), 0, pair, 9)
    assert s._rebound(low, top, 25.0, s._least(pair, 50) - 1) == DROP  # its new bound exceeds the limit
    monkeypatch.setattr(s, "prune", False)
    assert s._rebound(Bracket(0, 0, pair, -1), top, 30.0, inf) == PROBE
    assert s.model_passes == 0


def test_the_prediction_reproduces_its_anchors_and_interpolates_the_amplification():
    from irc.ratepoints import predicted

    c = 32.0
    lo, hi = (26.0, ratesearch.upper_estimate(c, 26.0, 2.0)), (34.0, ratesearch.upper_estimate(c, 34.0, 4.0))
    assert predicted(c, 30.0, []) == ratesearch.upper_estimate(c, 30.0)  # no anchor: the plain bound
    for x, v in (lo, hi):
        assert predicted(c, x, [lo, hi]) == pytest.approx(v)
    assert predicted(c, 30.0, [lo, hi]) == pytest.approx(ratesearch.upper_estimate(c, 30.0, 3.0))
    assert predicted(c, 40.0, [lo, hi]) == pytest.approx(ratesearch.upper_estimate(c, 40.0, 4.0))  # constant beyond
    assert predicted(c, 20.0, [hi]) == pytest.approx(ratesearch.upper_estimate(c, 20.0, 4.0))
    assert predicted(c, math.inf, [lo]) == c


def test_a_bracket_measures_the_predicted_rung_and_halves_when_guesses_stall(photo, monkeypatch):
    """A bisection step measures the rung the prediction names; after two guesses that did not halve
    the bracket, the midpoint. The bracket keeps hi reaching the target and lo missing it."""
    from irc.ratepoints import Bracket, Point

    s = search_for(photo, 25.0, codecs="jpeg")
    pair = next(p for p in s.pairs if p.scale == 2)
    truth = lambda r: 20.0 + r / 10  # noqa: E731  rung 50 is the first to reach 25
    measured = []

    def point(p, r):
        measured.append(r)
        return Point(2, "jpeg", r, 1000 + r, truth(r))

    monkeypatch.setattr(s, "point", point)
    monkeypatch.setattr(s, "_guess", lambda b, t: b.hi - 1)  # a poor guess: one rung below hi
    b = Bracket(0, 0, pair, 9, 90, None, truth(90))
    while b.hi - b.lo > 1:
        s._step(b, 25.0)
        assert truth(b.hi) >= 25.0 and (b.lo < 0 or truth(b.lo) < 25.0)
    assert b.hi == 50
    assert measured[:3] == [89, 88, (9 + 88) // 2]  # two stalled guesses, then the midpoint
    monkeypatch.setattr(s, "_guess", lambda b, t: 50 if b.lo < 50 < b.hi else b.hi - 1)  # a perfect guess
    measured.clear()
    b = Bracket(0, 0, pair, 9, 90, None, truth(90))
    while b.hi - b.lo > 1:
        s._step(b, 25.0)
    assert (b.hi, measured) == (50, [50, 49])  # the answer and its neighbour: two measurements


def test_the_guess_lies_inside_the_bracket_and_needs_no_model_pass(photo):
    from irc.ratepoints import Bracket

    s = search_for(photo, 25.0, codecs="jpeg")
    pair = next(p for p in s.pairs if p.scale == 2)
    hi = s.point(pair, 80)
    s.ceiling(pair)  # measured before any bisection step (the search checks it first)
    passes = s.model_passes
    for lo in (-1, 10, 78):
        g = s._guess(Bracket(0, 0, pair, lo, 80, None, hi.psnr_rgb), min(hi.psnr_rgb, 25.0))
        assert lo < g < 80
    assert s.model_passes == passes
