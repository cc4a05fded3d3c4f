"""benchmarks/perceptual.py's own measures: detail and the low-frequency colour error."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from perceptual import colour_error, detail  # noqa: E402


def _image(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(40, 200, (48, 64, 3), dtype=np.uint8)


def test_colour_error_is_zero_for_the_original_and_its_luma_only_changes():
    ref = _image()
    assert colour_error(ref, ref) == 0.0
    grey = np.full_like(ref, 100)
    brighter = grey + 20  # R = G = B: the luma moves, the chroma does not
    assert colour_error(grey, brighter) < 1e-9


def test_colour_error_measures_a_tint_in_8bit_chroma_levels():
    ref = _image()
    tinted = ref.copy()
    tinted[..., 2] += 10  # +10 blue: Cb +112*10/255, Cr -18.214*10/255 (BT.601)
    expected = math.sqrt(((112.0 * 10 / 255) ** 2 + (18.214 * 10 / 255) ** 2) / 2)
    assert abs(colour_error(ref, tinted) - expected) < 1e-9


def test_colour_error_ignores_detail_that_averages_out_within_a_block():
    ref = np.full((64, 64, 3), 128, dtype=np.uint8)
    noisy = ref.copy()
    noisy[::2, :, 0] += 6  # a stripe pattern of red: zero-mean over each block ...
    noisy[1::2, :, 0] -= 6
    assert colour_error(ref, noisy) < 1e-9  # ... so no low-frequency colour error
    noisy[:32, :32, 0] += 4  # one block tinted: its mean moves, and the error with it
    assert colour_error(ref, noisy) > 0.5


def test_detail_is_one_for_the_original_and_below_one_for_a_blur():
    ref = _image(1)
    assert detail(ref, ref, 2) == 1.0
    blurred = ((ref[:-1, :-1].astype(np.int32) + ref[1:, 1:] + ref[:-1, 1:] + ref[1:, :-1]) // 4).astype(np.uint8)
    assert detail(ref[:-1, :-1], blurred, 2) < 0.6
