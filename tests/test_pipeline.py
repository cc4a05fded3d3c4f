
import numpy as np
import pytest
import torch
from PIL import Image

import irc
from irc import api, container
from irc.errors import IrcError
from irc.tiling import pad_to_multiple, run_tiled


@pytest.mark.parametrize("scale", [2, 4, 8])
def test_any_size_round_trips_to_original_size(photo, scale):
    data = irc.encode(photo, scale=scale, codec="png")
    out = irc.decode(data)
    assert out.size == (photo.shape[1], photo.shape[0]) and out.mode == "RGB"
    h = container.loads(data).header
    assert (h.lr_width, h.lr_height) == (-(-67 // scale), -(-45 // scale))


def test_api_accepts_path_pil_and_array(photo, tmp_path):
    p = tmp_path / "p.png"
    Image.fromarray(photo).save(p)
    a = irc.encode(photo, scale=2, codec="png")
    assert irc.encode(p, scale=2, codec="png") == a
    assert irc.encode(Image.fromarray(photo), scale=2, codec="png") == a
    out_path = tmp_path / "p.irc"
    out_path.write_bytes(a)
    assert np.array_equal(np.asarray(irc.decode(out_path)), np.asarray(irc.decode(a)))


def test_decode_is_deterministic_and_temperature_is_seeded(photo):
    data = irc.encode(photo, scale=2, codec="png")
    assert np.array_equal(np.asarray(irc.decode(data)), np.asarray(irc.decode(data)))
    a = np.asarray(api.decode(data, temperature=0.8, seed=3))
    b = np.asarray(api.decode(data, temperature=0.8, seed=3))
    c = np.asarray(api.decode(data, temperature=0.8, seed=4))
    assert np.array_equal(a, b) and not np.array_equal(a, c)


@pytest.mark.parametrize("n,tile,overlap", [(3000, 512, 32), (2000, 512, 32), (513, 512, 32), (100, 40, 12), (70, 64, 8)])
def test_tiles_cover_evenly_with_the_overlap(n, tile, overlap):
    from irc.tiling import _spans

    spans = _spans(n, tile, overlap)
    assert spans[0][0] == 0 and spans[-1][0] + spans[-1][1] == n
    assert len({length for _, length in spans}) == 1 and spans[0][1] <= tile
    assert len(spans) == -(-(n - overlap) // (tile - overlap))  # no more tiles than a fixed-size layout
    for (a, la), (b, _) in zip(spans, spans[1:]):
        assert a < b and a + la - b >= overlap  # neighbours share at least the blend ramp
    # recomputed pixels stay near the minimum: at most one overlap per seam, plus rounding
    assert sum(length for _, length in spans) <= n + len(spans) * (overlap + 1)


def test_tiled_matches_whole_image_closely():
    torch.manual_seed(0)
    net = torch.nn.Conv2d(3, 3, 3, padding=1)
    x = torch.rand(1, 3, 100, 140)
    with torch.no_grad():
        whole = net(x)
        tiled = run_tiled(net, x, 100, 140, 1, 1, tile=40, overlap=12)
    # a 3x3 conv has a 1-pixel reach: blended tiles equal the whole result away from tile borders
    diff = (tiled - whole).abs()
    assert diff.mean() < 1e-3 and diff.max() < 0.05


def test_tiled_encode_decode_has_no_seams(photo):
    big = np.tile(photo, (3, 3, 1))  # 135 x 201
    whole = np.asarray(irc.decode(irc.encode(big, scale=2, codec="png", tile=512)), dtype=float)
    tiled_data = api.encode(big, scale=2, codec="png", tile=64, overlap=16)
    tiled = np.asarray(api.decode(tiled_data, tile=64, overlap=16), dtype=float)
    assert np.abs(whole - tiled).mean() < 1.0


def test_pad_replicates_edges():
    x = torch.arange(6.0).reshape(1, 1, 2, 3)
    p = pad_to_multiple(x, 4)
    assert p.shape == (1, 1, 4, 4) and p[0, 0, 3, 3] == x[0, 0, 1, 2]


def test_rgba_alpha_survives_exactly(photo):
    alpha = np.zeros(photo.shape[:2], np.uint8)
    alpha[10:30, 5:50] = 255
    alpha[0, 0] = 77
    rgba = np.dstack([photo, alpha])
    out = irc.decode(irc.encode(rgba, scale=2, codec="png"))
    assert out.mode == "RGBA"
    assert np.array_equal(np.asarray(out)[..., 3], alpha)


def test_grayscale_palette_cmyk_and_16bit(photo):
    gray = Image.fromarray(photo).convert("L")
    assert irc.decode(irc.encode(gray, scale=2, codec="png")).mode == "L"
    pal = Image.fromarray(photo).convert("P")
    assert irc.decode(irc.encode(pal, scale=2, codec="png")).mode == "RGB"
    cmyk = Image.fromarray(photo).convert("CMYK")
    _, info = api.encode_image(cmyk, scale=2, codec="png")
    assert info.header.source_mode == "CMYK" and any("CMYK" in n for n in info.notes)
    deep = Image.fromarray(np.asarray(gray).astype(np.uint16) * 257)
    assert deep.mode.startswith("I")
    _, info = api.encode_image(deep, scale=2, codec="png")
    assert any("8 bits" in n for n in info.notes)


def test_icc_profile_and_exif_orientation(photo, tmp_path):
    from PIL import ImageCms

    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    im = Image.fromarray(photo)
    exif = im.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise when shown
    p = tmp_path / "o.jpg"
    im.save(p, icc_profile=icc, exif=exif.tobytes(), quality=95)
    out = irc.decode(irc.encode(p, scale=2, codec="png"))
    assert out.size == (photo.shape[0], photo.shape[1])  # upright: width and height swap
    assert out.info.get("icc_profile") == icc


def test_lossy_codecs_through_the_pipeline(photo):
    for codec, q in [("jpeg", 40), ("webp", 50), ("avif", 40), ("jxl", 80)]:
        data = irc.encode(photo, scale=2, codec=codec, quality=q)
        h = container.loads(data).header
        assert h.codec == codec and h.quality == q
        assert irc.decode(data).size == (67, 45)


def test_bad_inputs_raise_irc_errors(photo, tmp_path):
    with pytest.raises(IrcError, match="no such file"):
        irc.encode(tmp_path / "missing.png")
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"not an image at all")
    with pytest.raises(IrcError, match="not an image"):
        irc.encode(junk)
    with pytest.raises(IrcError, match="unsupported scale"):
        irc.encode(photo, scale=17)
    with pytest.raises(IrcError, match="magic"):
        irc.decode(b"hello world, this is not irc")
    data = irc.encode(photo, scale=2, codec="png")
    with pytest.raises(IrcError, match="checksum"):
        irc.decode(data[: len(data) // 2])


def test_decompression_bomb_is_refused(tmp_path):
    p = tmp_path / "bomb.png"
    Image.new("L", (20000, 10000)).save(p)  # 200 MP of zeros: a tiny file
    with pytest.raises(IrcError, match="decompression bomb"):
        irc.encode(p)


def test_mismatched_weights_refused(photo):
    from dataclasses import replace

    data = container.loads(irc.encode(photo, scale=2, codec="png"))
    bad = container.dumps(replace(data, header=replace(data.header, weights_sha256="0" * 16)))
    with pytest.raises(IrcError, match="other weights"):
        irc.decode(bad)
