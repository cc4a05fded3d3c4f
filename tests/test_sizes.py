"""Honest sizes and modes (issue 12, defect 6): bpp counts every byte of the file; 16-bit input is noted."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from irc import api, container


def test_bpp_counts_every_byte_of_the_file(photo):
    """The alpha chunk was left out of the reported size (80 % of an RGBA file)."""
    rng = np.random.default_rng(0)
    rgba = np.dstack([photo, rng.integers(0, 256, photo.shape[:2], dtype=np.uint8)])  # noisy alpha: a big ALPH
    data, info = api.encode_image(rgba, scale=2, codec="jpeg", quality=30)
    f = container.loads(data)
    pixels = photo.shape[0] * photo.shape[1]
    assert info.file_bytes == len(data) == f.file_bytes
    assert info.alpha_bytes == len(f.alpha) > info.payload_bytes == len(f.payload)
    assert info.bpp == pytest.approx(len(data) * 8 / pixels)
    assert info.payload_bpp == pytest.approx(len(f.payload) * 8 / pixels)
    assert info.file_bytes > info.payload_bytes + info.alpha_bytes  # + the header and framing
    assert info.bpp > 2 * info.payload_bpp


def _png16(arr: np.ndarray) -> bytes:
    import imagecodecs

    return bytes(imagecodecs.png_encode(arr))


@pytest.mark.parametrize("channels", [3, 4])
def test_16_bit_rgb_is_noted_and_recorded(photo, channels):
    """A 48-bit PNG is read by Pillow as 8-bit RGB: the note was missing and the header said nothing."""
    arr = photo.astype(np.uint16) * 257
    if channels == 4:
        arr = np.dstack([arr, np.full(photo.shape[:2], 40000, np.uint16)])
    data, info = api.encode_image(io.BytesIO(_png16(arr)).getvalue(), scale=2, codec="png")
    assert any("16-bit" in n and "8 bits" in n for n in info.notes), info.notes
    hd = container.loads(data).header
    assert hd.source_bits == 16 and hd.mode == ("RGB" if channels == 3 else "RGBA")


def test_source_bits_of_other_inputs(photo, tmp_path):
    p = tmp_path / "eight.png"
    Image.fromarray(photo).save(p)
    _, info = api.encode_image(p, scale=2, codec="png")
    assert info.header.source_bits == 8 and not info.notes
    deep = Image.fromarray(photo[..., 0].astype(np.uint16) * 257)
    _, info = api.encode_image(deep, scale=2, codec="png")
    assert info.header.source_bits == 16 and any("16-bit" in n for n in info.notes)
    _, info = api.encode_image(photo.astype(np.uint16) * 257, scale=2, codec="png")  # uint16 arrays too
    assert info.header.source_bits == 16 and any("16-bit" in n for n in info.notes)
    _, info = api.encode_image(Image.fromarray(photo).convert("1"), scale=2, codec="png")
    assert info.header.source_bits == 1 and info.header.mode == "L"
