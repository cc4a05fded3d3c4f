"""The viewable layout: an .irc file that viewers open as a PNG / JPEG of the LR, and irc decodes."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

import irc
from irc import api, container, viewable
from irc.errors import IrcError, IrcFormatError
from tests.irc_bytes import head_of


def _lr_of(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im.convert("RGB"))


@pytest.mark.parametrize("codec,quality,fmt", [("png", None, "PNG"), ("jpeg", 50, "JPEG")])
@pytest.mark.parametrize("alpha", [False, True])
def test_viewers_see_the_lr_and_irc_decodes_it(photo, codec, quality, fmt, alpha, tiny_models):
    image = np.dstack([photo, np.arange(photo.size // 3, dtype=np.uint32).reshape(photo.shape[:2]).astype(np.uint8)]) \
        if alpha else photo
    plain = api.encode(image, scale=2, codec=codec, quality=quality)
    data = api.encode(image, scale=2, codec=codec, quality=quality, layout="viewable")
    with Image.open(io.BytesIO(data)) as im:  # what a viewer does: a normal PNG / JPEG
        assert im.format == fmt and im.size == (34, 23)
        im.load()
    f, g = container.loads(data), container.loads(plain)
    assert f.layout == "viewable" and f.header == g.header and f.alpha == g.alpha
    assert f.payload == g.payload  # `irc extract` gives the codec's bytes back exactly
    assert np.array_equal(_lr_of(data), _lr_of(g.payload))
    assert np.array_equal(np.asarray(irc.decode(data)), np.asarray(irc.decode(plain)))
    assert f.file_bytes == len(data)


@pytest.mark.parametrize("codec,quality", [("png", None), ("jpeg", 50)])
def test_every_single_byte_change_and_truncation_is_caught(photo, codec, quality, tiny_models):
    data = api.encode(photo[:16, :16], scale=2, codec=codec, quality=quality, layout="viewable")
    for i in range(len(data)):
        for bit in (0, 7):
            bad = bytearray(data)
            bad[i] ^= 1 << bit
            with pytest.raises(IrcError):
                container.loads(bytes(bad))
    for n in range(len(data)):
        with pytest.raises(IrcError):
            container.loads(data[:n])


def test_checksum_covers_the_image_data(photo, tiny_models):
    """A JPEG has no checksum of its own: a changed scan byte is caught by irc's CRC-32."""
    data = api.encode(photo, scale=2, codec="jpeg", quality=50, layout="viewable")
    bad = bytearray(data)
    bad[-10] ^= 0x10  # inside the entropy-coded scan, before EOI
    Image.open(io.BytesIO(bytes(bad))).load()  # viewers do not notice
    with pytest.raises(IrcFormatError, match="checksum"):
        irc.decode(bytes(bad))


def test_large_irc_data_spans_several_jpeg_segments(tiny_models):
    rng = np.random.default_rng(0)
    rgba = rng.integers(0, 256, (300, 300, 4), dtype=np.uint8)  # noisy alpha: ALPH of about 90 KB
    data = api.encode(rgba, scale=2, codec="jpeg", quality=50, layout="viewable")
    assert data.count(b"\xff\xef") >= 2 and len(container.loads(data).alpha) > viewable.JPEG_PIECE
    with Image.open(io.BytesIO(data)) as im:
        assert im.format == "JPEG" and im.size == (150, 150)
    assert np.array_equal(np.asarray(irc.decode(data))[..., 3], rgba[..., 3])


def test_what_is_not_a_viewable_irc_file(photo, tiny_models):
    buf = io.BytesIO()
    Image.fromarray(photo).save(buf, format="PNG")
    with pytest.raises(IrcFormatError, match="PNG image without irc data"):
        irc.decode(buf.getvalue())
    buf = io.BytesIO()
    Image.fromarray(photo).save(buf, format="JPEG")
    with pytest.raises(IrcFormatError, match="JPEG image without irc data"):
        irc.decode(buf.getvalue())
    with pytest.raises(IrcError, match="png or jpeg"):
        irc.encode(photo, scale=2, codec="webp", layout="viewable")
    with pytest.raises(IrcError, match="unknown layout"):
        irc.encode(photo, scale=2, codec="png", layout="png-ish")


def test_versioning_and_host_checks_still_apply(photo, tiny_models):
    from tests.irc_bytes import build, chunks_of

    data = api.encode(photo, scale=2, codec="png", layout="viewable")
    blob, lr = viewable._png_split(data)
    parts = chunks_of(blob)
    with pytest.raises(IrcFormatError, match="unsupported .irc version 2.0"):
        irc.decode(build(parts, version=b"\x02\x00", host="png", lr=lr))
    jpeg_ref = [(t, b"jpeg" if t == b"LREF" else d) for t, d in parts]
    with pytest.raises(IrcFormatError, match="does not belong to this png image"):
        irc.decode(build(jpeg_ref, host="png", lr=lr))
    with pytest.raises(IrcFormatError, match="two irCD chunks"):
        at = viewable._png_chunks(data)[0][1]
        chunk = viewable._png_chunk(viewable.PNG_TAG, blob)
        irc.decode(data[:at] + chunk + data[at:])
    assert head_of(blob)["codec"] == "png"


@pytest.mark.parametrize("codec,quality", [("png", None), ("jpeg", 50)])
def test_a_cut_viewable_file_reads_as_a_damaged_irc_file(photo, codec, quality, tiny_models):
    data = api.encode(photo, scale=2, codec=codec, quality=quality, layout="viewable")
    with pytest.raises(IrcFormatError, match="truncated"):
        irc.decode(data[: len(data) * 2 // 3])
