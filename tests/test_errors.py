"""One error type: the header schema, defensive ALPH/ICCP decoding, and bad arguments (issue 12, defect 5)."""

from __future__ import annotations

import io
from dataclasses import replace

import numpy as np
import pytest
from PIL import Image

import irc
from irc import api, container
from irc.errors import IrcError, IrcFormatError, IrcTypeError
from tests.irc_bytes import head_of, with_chunk, with_head


@pytest.fixture(scope="module")
def small(tiny_models) -> bytes:
    rgb = np.random.default_rng(1).integers(0, 256, (13, 15, 3), dtype=np.uint8)
    return api.encode(rgb, scale=2, codec="png")


@pytest.fixture(scope="module")
def small_rgba(tiny_models) -> bytes:
    rng = np.random.default_rng(2)
    return api.encode(rng.integers(0, 256, (13, 15, 4), dtype=np.uint8), scale=2, codec="png")


BAD_VALUES = [
    ("width", "96"), ("width", None), ("width", True), ("width", 0), ("width", -15), ("width", 15.0),
    ("height", [13]), ("lr_width", "8"), ("lr_width", 9), ("lr_height", 2**40), ("scale", 17), ("scale", 2.0), ("scale", True),
    ("scale", "2"), ("quality", 101), ("quality", -1), ("quality", "50"), ("quality", True), ("mode", "P"),
    ("mode", None), ("mode", "rgb"), ("weights_sha256", "xyz"), ("weights_sha256", None), ("model", 5),
    ("model", ""), ("model", "a\nb"), ("codec", 1), ("codec", "PNG!"), ("codec_version", None),
    ("source_mode", {}), ("crm_sha256", "12"), ("model_version", 0), ("model_version", "1"),
    ("model_version", True), ("crm_version", -3), ("crm_version", 1.5), ("source_bits", 0),
    ("source_bits", "16"), ("extra", []), ("extra", None),
]


@pytest.mark.parametrize("key,value", BAD_VALUES)
def test_header_schema_refuses_bad_values(small, key, value):
    """Checksum-valid files with malformed headers: one IrcError naming the key (they gave tracebacks)."""
    data = with_head(small, lambda h: h.__setitem__(key, value))
    with pytest.raises(IrcFormatError, match=f"corrupt .irc header: '{key}'"):
        container.loads(data)
    with pytest.raises(IrcError, match=key):
        irc.decode(data)


@pytest.mark.parametrize("key", ["model", "weights_sha256", "scale", "codec", "codec_version", "quality", "width",
                                 "height", "mode", "source_mode", "lr_width", "lr_height"])
def test_header_schema_requires_keys(small, key):
    with pytest.raises(IrcFormatError, match=f"'{key}' is missing"):
        irc.decode(with_head(small, lambda h: h.pop(key)))


@pytest.mark.parametrize("raw", [b"[]", b"1", b'"x"', b"null", b"{", b"", b'{"width": NaN}', b"[" * 50000, b"\xff{}"])
def test_header_that_is_not_a_json_object(small, raw):
    with pytest.raises(IrcFormatError, match="corrupt .irc header"):
        irc.decode(with_head(small, raw=raw))


def test_header_size_limits_and_consistency(small):
    huge = with_head(small, lambda h: h.update(width=20000, height=20000, lr_width=10000, lr_height=10000))
    with pytest.raises(IrcFormatError, match="decompression-bomb"):
        irc.decode(huge)
    with pytest.raises(IrcFormatError, match="crm_sha256"):
        irc.decode(with_head(small, lambda h: h.update(crm="tiny-crm-tiny-x2-jpeg", crm_sha256=None)))


def test_header_keeps_new_keys_and_ignores_unknown(small):
    data = with_head(small, lambda h: h.update(model_version=1, crm_version=None, source_bits=16,
                                                future_key={"a": [1, 2]}, extra={"note": "x"}))
    hd = container.loads(data).header
    assert (hd.model_version, hd.crm_version, hd.source_bits, hd.extra) == (1, None, 16, {"note": "x"})
    assert irc.decode(data).size == (15, 13)
    # 1.1 files (no model_version / crm_version / source_bits) read as before
    old = with_head(small, lambda h: [h.pop(k) for k in ("model_version", "crm_version", "source_bits")])
    assert container.loads(old).header.model_version is None and irc.decode(old).size == (15, 13)
    assert container.VERSION == (1, 6) and head_of(small)["source_bits"] == 8
    assert "rate_control" not in head_of(small)  # written only by rate control (1.3)


def test_writer_refuses_what_the_reader_refuses(small):
    f = container.loads(small)
    with pytest.raises(IrcFormatError, match="'scale'"):
        container.dumps(replace(f, header=replace(f.header, scale=17)))
    with pytest.raises(IrcFormatError, match="'width'"):
        irc.decode(replace(f, header=replace(f.header, width="15")))  # a hand-made IrcFile is checked too


@pytest.mark.parametrize("alph", [
    b"garbage", b"", b"\x89PNG\r\n\x1a\n" + b"\x00" * 20,
    "wrong-size", "huge-ihdr", "truncated", "jpeg",
])
def test_corrupt_alpha_chunk(small_rgba, alph):
    """Corrupt ALPH chunks gave UnidentifiedImageError / OSError; now IrcError, before the model runs."""
    good = container.loads(small_rgba).alpha
    if alph == "wrong-size":
        buf = io.BytesIO()
        Image.new("L", (4, 4)).save(buf, format="PNG")
        alph = buf.getvalue()
    elif alph == "huge-ihdr":  # a PNG header claiming 100000 x 100000 pixels: refused before decoding
        alph = good[:16] + (100000).to_bytes(4, "big") * 2 + good[24:]
    elif alph == "truncated":
        alph = good[: len(good) // 2]
    elif alph == "jpeg":
        buf = io.BytesIO()
        Image.new("L", (15, 13)).save(buf, format="JPEG")
        alph = buf.getvalue()
    with pytest.raises(IrcError):
        irc.decode(with_chunk(small_rgba, b"ALPH", alph))


def test_mode_with_alpha_needs_the_alpha_chunk(small_rgba):
    with pytest.raises(IrcFormatError, match="without an ALPH chunk"):
        irc.decode(with_chunk(small_rgba, b"ALPH", None))


@pytest.mark.parametrize("icc", [b"x", bytes(200), b"\x00" * 36 + b"ACSP" + bytes(100)])
def test_corrupt_icc_chunk(small, icc):
    with pytest.raises(IrcFormatError, match="ICCP"):
        irc.decode(with_chunk(small, b"ICCP", icc))
    ok = bytes(36) + b"acsp" + bytes(100)
    assert irc.decode(with_chunk(small, b"ICCP", ok)).info["icc_profile"] == ok


def test_duplicate_and_misplaced_chunks(small):
    from tests.irc_bytes import build, chunks_of

    parts = chunks_of(small)
    with pytest.raises(IrcFormatError, match="two 'LRIM'"):
        irc.decode(build(parts + [parts[1]]))
    with pytest.raises(IrcFormatError, match="header is not the first"):
        irc.decode(build(parts[::-1]))


def test_model_of_the_wrong_kind(small, tiny_models):
    crm = tiny_models["crm"]
    data = with_head(small, lambda h: h.update(model=crm.name, weights_sha256=crm.sha256()))
    with pytest.raises(IrcError, match="not a rescaler"):
        irc.decode(data)


# ---- wrong arguments ---------------------------------------------------------------------------

RGB = np.zeros((8, 8, 3), np.uint8)


@pytest.mark.parametrize("kwargs,needle", [
    ({"scale": "4"}, "scale must be a number"), ({"scale": True}, "scale"), ({"scale": [2]}, "scale"),
    ({"quality": True}, "quality"), ({"quality": "40"}, "quality"), ({"codec": 5}, "codec"),
    ({"lossless": "yes"}, "lossless"), ({"model": 3}, "model"), ({"device": 1}, "device"),
    ({"tile": "512"}, "tile"), ({"crm": 1}, "crm"), ({"layout": "zip"}, "layout"), ({"colour": 1}, "unknown option"),
    ({"progress": 5}, "progress"),
])
def test_encode_wrong_argument_types(kwargs, needle):
    with pytest.raises(IrcError, match=needle):
        irc.encode(RGB, **{"scale": 2, "codec": "png", **kwargs})


def test_wrong_types_are_also_type_errors():
    with pytest.raises(TypeError):
        irc.encode(RGB, scale="4")
    assert issubclass(IrcTypeError, IrcError) and issubclass(IrcFormatError, ValueError)


@pytest.mark.parametrize("image,needle", [
    (np.zeros((0, 8, 3), np.uint8), "empty"), (np.zeros((8, 0), np.uint8), "empty"),
    (np.full((8, 8, 3), np.nan), "NaN"), (np.full((8, 8), np.inf, np.float32), "NaN or infinite"),
    (np.zeros((8, 8, 3), complex), "uint8"), (np.zeros((8, 8), bool), "uint8"), (np.zeros((8, 8), np.int64), "uint8"),
    (np.zeros((8, 8, 2), np.uint8), "shape|\\(H, W\\)"), (np.zeros((2, 8, 8, 3), np.uint8), "\\(H, W\\)"),
    (np.array([[object()]]), "uint8"), (np.zeros(5, np.uint8), "\\(H, W\\)"),
    (None, "cannot read an image from NoneType"), (42, "from int"), ([[0, 1]], "from list"),
    (b"", "empty"), (b"not an image", "not an image"), ("nul\0byte.png", "nul"),
])
def test_encode_bad_images(image, needle):
    with pytest.raises(IrcError, match=needle):
        irc.encode(image, scale=2, codec="png")


def test_encode_bad_paths_and_lazy_images(tmp_path):
    with pytest.raises(IrcError, match="is a directory"):
        irc.encode(tmp_path, scale=2, codec="png")
    with pytest.raises(IrcError, match="empty"):
        irc.encode(Image.new("RGB", (0, 0)), scale=2, codec="png")
    p = tmp_path / "cut.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(p)
    p.write_bytes(p.read_bytes()[:300])
    with pytest.raises(IrcError, match="cut.png"):
        irc.encode(p, scale=2, codec="png")
    with pytest.raises(IrcError):
        irc.encode(Image.open(p), scale=2, codec="png")  # lazily opened, fails on load inside irc


def test_encode_accepts_float_image_with_nan_free_values_and_image_bytes(tiny_models):
    buf = io.BytesIO()
    Image.fromarray(RGB).save(buf, format="PNG")
    assert irc.decode(irc.encode(buf.getvalue(), scale=2, codec="png")).size == (8, 8)
    f32 = Image.fromarray(np.full((8, 8), np.nan, np.float32), "F")  # Pillow F image with NaN: not an error
    assert irc.decode(irc.encode(f32, scale=2, codec="png")).mode == "L"


@pytest.mark.parametrize("data,needle", [
    (None, "NoneType"), (5, "from int"), ([1], "from list"), ("nul\0.irc", "nul"), (b"", "magic"),
    (bytearray(b"\x89IRC\r\n\x1a\n"), "truncated"),
])
def test_decode_bad_sources(data, needle):
    with pytest.raises(IrcError, match=needle):
        irc.decode(data)


def test_decode_bad_paths_name_the_path(small, tmp_path):
    with pytest.raises(IrcError, match="is a directory"):
        irc.decode(tmp_path)
    with pytest.raises(IrcError, match="no such file"):
        irc.decode(tmp_path / "missing.irc")
    bad = tmp_path / "broken.irc"
    bad.write_bytes(small[:-1])
    with pytest.raises(IrcError, match=r"broken\.irc: corrupt or truncated"):
        irc.decode(bad)
    with pytest.raises(IrcError, match="broken.irc"):
        irc.read(str(bad))


@pytest.mark.parametrize("kwargs,needle", [
    ({"temperature": -1}, "temperature"), ({"temperature": float("nan")}, "temperature"),
    ({"temperature": "hot"}, "temperature"), ({"seed": "x"}, "seed"), ({"seed": 1.5}, "seed"),
    ({"use_crm": "yes"}, "use_crm"), ({"device": 3}, "device"), ({"device": "tpu"}, "unknown device"),
    ({"tile": "x"}, "tile"), ({"tile": 30}, "tile"), ({"progress": 1}, "progress"),
])
def test_decode_wrong_arguments(small, kwargs, needle):
    with pytest.raises(IrcError, match=needle):
        irc.decode(small, **kwargs)
