import numpy as np
import pytest

from irc import container
from irc.codecs import CODEC_NAMES, get_codec
from irc.errors import IrcError


@pytest.fixture
def lr(photo):
    return photo[:32, :48]


@pytest.mark.parametrize("name", CODEC_NAMES)
def test_codecs_round_trip(name, lr):
    codec = get_codec(name)
    s = codec.settings(lossless=True) if codec.lossless else codec.settings(quality=90)
    out = codec.decode(codec.encode(lr, s))
    assert out.shape == lr.shape and out.dtype == np.uint8
    if s.lossless:
        assert np.array_equal(out, lr)
    else:
        assert np.abs(out.astype(int) - lr).mean() < 12
    assert codec.version()


@pytest.mark.parametrize("name", ["jpeg", "webp", "avif", "jxl"])
def test_lossy_quality_controls_size(name, lr):
    codec = get_codec(name)
    small = codec.encode(lr, codec.settings(quality=10))
    big = codec.encode(lr, codec.settings(quality=95))
    assert len(small) < len(big)


def test_codec_option_errors():
    with pytest.raises(IrcError, match="lossless only"):
        get_codec("png").settings(quality=50)
    with pytest.raises(IrcError, match="no lossless"):
        get_codec("jpeg").settings(lossless=True)
    with pytest.raises(IrcError, match="out of range"):
        get_codec("jpeg").settings(quality=0)
    with pytest.raises(IrcError, match="unknown codec"):
        get_codec("bmp")
    with pytest.raises(IrcError, match="FLIF"):
        get_codec("flif")
    assert get_codec("jxl").settings().lossless  # JPEG XL defaults to lossless
    assert get_codec("jpeg").settings().quality == 75


ICC = bytes(36) + b"acsp" + bytes(92)  # the shape of an ICC profile header


def _sample_file():
    h = container.Header(model="m", weights_sha256="ab" * 8, scale=2, codec="png", codec_version="x",
                         quality=None, width=5, height=3, mode="RGB", source_mode="RGB", lr_width=3, lr_height=2)
    return container.IrcFile(h, b"payload-bytes", icc_profile=ICC, alpha=None)


def test_container_round_trip_and_checks():
    data = container.dumps(_sample_file())
    back = container.loads(data)
    assert back.header == _sample_file().header and back.payload == b"payload-bytes" and back.icc_profile == ICC
    with pytest.raises(IrcError, match="magic"):
        container.loads(b"GIF89a" + data[6:])
    with pytest.raises(IrcError, match="checksum"):
        container.loads(data[:-10])
    flipped = bytearray(data)
    flipped[30] ^= 1
    with pytest.raises(IrcError, match="checksum"):
        container.loads(bytes(flipped))
    future = bytearray(data)
    future[8], future[9] = 2, 0
    with pytest.raises(IrcError, match="version 2.0"):
        container.loads(bytes(future))


def test_version_1_0_files_still_read(photo):
    """1.0 files (a plain HEAD chunk without the CRM keys) read as lossless/no-CRM files of this version."""
    import json

    from irc import api
    from tests.irc_bytes import build, chunks_of, head_text

    parts = chunks_of(api.encode(photo, scale=2, codec="png"))
    assert parts[0][0] == b"HEDZ"  # 1.6 writes the deflated header
    head = json.loads(head_text(parts[0]))
    for key in ("crm", "crm_sha256"):
        head.pop(key)
    f = container.loads(build([(b"HEAD", json.dumps(head).encode())] + parts[1:], version=b"\x01\x00"))
    assert f.header.crm is None and f.header.crm_sha256 is None
    assert api.decode(f).size == (photo.shape[1], photo.shape[0])


def test_header_is_deflated_small_and_its_dictionary_pinned(photo):
    """1.6 writes HEDZ: the header JSON deflated with a fixed preset dictionary (irc.headz). It is a
    fraction of the plain HEAD, and the dictionary can never change (every 1.6 file depends on it)."""
    import hashlib
    import json

    from irc import api, headz
    from tests.irc_bytes import chunks_of, head_text

    assert hashlib.sha256(headz.DICTIONARY).hexdigest() == (
        "342877751f12800c38708fbeb552abd9ea169d4832d6fd9899c5f2e04ef60349")
    for kw in ({"scale": 2, "codec": "jpeg", "quality": 40}, {"scale": 1, "codec": "webp", "quality": 30}):
        data = api.encode(photo, **kw)
        tag, packed = chunks_of(data)[0]
        text = head_text((tag, packed))
        assert tag == b"HEDZ" and headz.unpack(packed) == text and json.loads(text)["codec"] == kw["codec"]
        assert len(packed) < 130 and len(packed) * 2.5 < len(text), (len(packed), len(text))
        # the same file with the plain 1.5 header decodes to the same image
        assert container.loads(data).header == container.loads(_with_plain_head(data)).header


def _with_plain_head(data: bytes) -> bytes:
    from tests.irc_bytes import build, chunks_of, head_text

    parts = chunks_of(data)
    return build([(b"HEAD", head_text(parts[0]))] + parts[1:], version=b"\x01\x05")


@pytest.mark.parametrize("case,needle", [
    ("cut", "cut short"), ("tail", "bytes after its end"), ("junk", "not a deflate stream"),
    ("bomb", "inflates beyond"), ("json", "header is not JSON"), ("newer", "upgrade irc"),
    ("second", "second header chunk"),
])
def test_bad_compressed_headers_are_one_line_errors(photo, case, needle):
    from irc import api, headz
    from irc.errors import IrcFormatError
    from tests.irc_bytes import build, chunks_of, head_text

    parts = chunks_of(api.encode(photo, scale=2, codec="png"))
    (tag, packed), rest = parts[0], parts[1:]
    chunk = {"cut": (tag, packed[:-3]), "tail": (tag, packed + b"\x00"), "junk": (tag, b"\xff" * 30),
             "bomb": (tag, headz.pack(b" " * 70000 + head_text(parts[0]))),
             "json": (tag, headz.pack(b"{not json")), "newer": (b"HDR2", packed), "second": (tag, packed)}[case]
    blob = (build([chunk] + rest, version=b"\x01\x07") if case == "newer" else
            build([parts[0], *rest, chunk]) if case == "second" else build([chunk] + rest))
    with pytest.raises(IrcFormatError, match=needle) as e:
        container.loads(blob)
    assert "\n" not in str(e.value)


def test_format_doc_spells_out_the_header_dictionary():
    from pathlib import Path

    from irc import headz

    doc = (Path(__file__).parents[1] / "docs" / "FORMAT.md").read_text()
    block = doc.split("every line break is to be removed):\n\n```\n")[1].split("\n```")[0]
    assert block.replace("\n", "").encode() == headz.DICTIONARY
