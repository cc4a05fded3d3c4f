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
    """1.0 files (no CRM keys in HEAD) read as lossless/no-CRM files of this version."""
    import json
    import struct
    import zlib

    from irc import api

    data = bytearray(api.encode(photo, scale=2, codec="png"))
    data[9] = 0
    head_len = struct.unpack(">I", data[14:18])[0]
    head = json.loads(data[18 : 18 + head_len])
    for key in ("crm", "crm_sha256"):
        head.pop(key)
    new_head = json.dumps(head).encode()
    body = bytes(data[:14]) + struct.pack(">I", len(new_head)) + new_head + bytes(data[18 + head_len : -4])
    f = container.loads(body + struct.pack(">I", zlib.crc32(body)))
    assert f.header.crm is None and f.header.crm_sha256 is None
    assert api.decode(f).size == (photo.shape[1], photo.shape[0])
