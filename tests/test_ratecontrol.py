"""Issue 15: scale 1 (the codec alone) and rate control (--target-psnr, --max-bytes / --max-bpp).

The search runs on the tiny random-weight models; what it promises must be exactly what
decoding the file gives (PSNR to 1e-6, size to the byte).
"""

from __future__ import annotations

import io
import json
import math

import numpy as np
import pytest
import torch
from PIL import Image

from irc import api, container
from irc.errors import IrcError, IrcTypeError
from irc.metrics import psnr_rgb
from irc.ratecontrol import encode_target
from tests.irc_bytes import head_of, with_head

from .conftest import run_cli


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny images: one torch thread is fastest, and stays fast on a machine busy with other work."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def measured(data: bytes, reference: np.ndarray) -> float:
    return psnr_rgb(reference, np.asarray(api.decode(data).convert("RGB")))


def plain_bytes(data: bytes) -> bytes:
    """The file without its rate_control record: what a plain encode with its settings writes."""
    f = container.loads(data)
    f.header.rate_control = None
    return container.dumps(f)


def check_promise(res, reference: np.ndarray) -> None:
    """The promise (API result and header record) is the decoded file's PSNR and the file's size."""
    psnr = measured(res.data, reference)
    rc = api.read(res.data).header.rate_control
    assert len(res.data) == res.choice.file_bytes == res.info.file_bytes
    if math.isinf(res.choice.psnr_rgb):
        assert math.isinf(psnr) and rc["psnr_rgb"] is None
    else:
        assert abs(psnr - res.choice.psnr_rgb) <= 1e-6 and rc["psnr_rgb"] == res.choice.psnr_rgb
    c = res.choice  # the same bytes a plain encode with those settings gives
    plain = api.encode(reference, scale=c.scale, codec=c.codec, quality=c.quality, lossless=c.quality is None or None)
    assert plain_bytes(res.data) == plain


# ---- scale 1 ---------------------------------------------------------------------------------

def test_scale_1_png_is_exact_and_has_no_model(photo):
    data, info = api.encode_image(photo, scale=1, codec="png")
    hd = info.header
    assert (hd.scale, hd.model, hd.weights_sha256, hd.model_version, hd.crm) == (1, None, None, None, None)
    assert (hd.lr_width, hd.lr_height) == (67, 45) and hd.rate_control is None
    assert np.array_equal(np.asarray(api.decode(data)), photo)
    lr = np.asarray(Image.open(io.BytesIO(api.read(data).payload)))  # the thumbnail is the image
    assert np.array_equal(lr, photo)
    assert data[8:10] == bytes(container.VERSION) and container.VERSION >= (1, 3)
    assert "rate_control" not in head_of(data)


def test_scale_1_jpeg_is_close_and_viewable_works(photo):
    data = api.encode(photo, scale=1, codec="jpeg", quality=90)
    assert api.read(data).header.crm is None  # no model, no CRM
    assert measured(data, photo) > 30
    for codec in ("png", "jpeg"):
        view = api.encode(photo, scale=1, codec=codec, quality=90 if codec == "jpeg" else None, layout="viewable")
        assert Image.open(io.BytesIO(view)).size == (67, 45)  # viewers see the full image
        assert api.decode(view).size == (67, 45)
    assert np.array_equal(np.asarray(api.decode(api.encode(photo, scale=1, codec="png", layout="viewable"))), photo)


def test_scale_1_rejects_a_model_or_crm(photo):
    with pytest.raises(IrcError, match="scale 1 stores the image itself"):
        api.encode(photo, scale=1, codec="png", model="tiny-x2")
    with pytest.raises(IrcError, match="CRM"):
        api.encode(photo, scale=1, codec="jpeg", crm="tiny-crm-tiny-x2-jpeg")


def test_header_allows_no_model_only_at_scale_1(photo):
    one = api.encode(photo, scale=1, codec="png")
    two = api.encode(photo, scale=2, codec="png")
    with pytest.raises(IrcError, match="'model' must be null at scale 1"):
        api.decode(with_head(one, lambda h: h.update(model="tiny-x2", weights_sha256="0" * 16)))
    with pytest.raises(IrcError, match="'crm' must be null at scale 1"):
        api.decode(with_head(one, lambda h: h.update(crm="x", crm_sha256="0" * 16)))
    with pytest.raises(IrcError, match="'model' must be a model name"):
        api.decode(with_head(two, lambda h: h.update(model=None)))
    with pytest.raises(IrcError, match="lr_width"):  # scale 1: the LR is the image's size
        api.decode(with_head(two, lambda h: h.update(scale=1, model=None, weights_sha256=None, model_version=None)))


@pytest.mark.parametrize("value", [[], "x", {"target_psnr": "30"}, {"psnr_rgb": -1}, {"max_bytes": 0},
                                   {"max_bytes": 1.5}, {"max_bpp": True}])
def test_header_rate_control_record_is_checked(photo, value):
    data = api.encode(photo, scale=1, codec="png")
    with pytest.raises(IrcError, match="'rate_control' must be"):
        api.decode(with_head(data, lambda h: h.update(rate_control=value)))


def test_header_rate_control_bad_json_and_unknown_keys(photo):
    data = api.encode(photo, scale=1, codec="png")
    raw = json.dumps(head_of(data))[:-1] + ',"rate_control":{"psnr_rgb":NaN}}'
    with pytest.raises(IrcError, match="'rate_control' must be"):
        api.decode(with_head(data, raw=raw.encode()))
    ok = with_head(data, lambda h: h.update(rate_control={"psnr_rgb": 31.5, "future": [1]}))
    assert api.read(ok).header.rate_control["psnr_rgb"] == 31.5 and api.decode(ok).size == (67, 45)


def test_scale_1_cli_info_and_errors(png, tmp_path):
    r = run_cli("encode", png, "-s", 1, "--codec", "png")
    assert r.exit_code == 0, r.output
    assert "no model" in r.output
    meta = json.loads(run_cli("info", tmp_path / "photo.irc", "--json").output)
    assert (meta["scale"], meta["model"], meta["lr_width"]) == (1, None, 67)
    assert "none (scale 1" in run_cli("info", tmp_path / "photo.irc").output
    r = run_cli("decode", tmp_path / "photo.irc", "-o", tmp_path / "back.png")
    assert r.exit_code == 0 and np.array_equal(np.asarray(Image.open(tmp_path / "back.png")), np.asarray(Image.open(png)))
    for args in (["--model", "tiny-x2"], ["--crm", "tiny-crm-tiny-x2-jpeg", "--codec", "jpeg"]):
        r = run_cli("encode", png, "-s", 1, *args, "-o", tmp_path / "m.irc")
        assert r.exit_code != 0 and "scale 1 stores the image itself" in r.output
        assert r.output.strip().count("\n") == 0 and not (tmp_path / "m.irc").exists()


# ---- the search ---------------------------------------------------------------------------------

@pytest.mark.parametrize("target", [21.0, 27.5])
def test_target_psnr_promise_is_exact(photo, target):
    res = encode_target(photo, target_psnr=target)
    assert res.target_reached and res.choice.psnr_rgb >= target
    check_promise(res, photo)
    assert api.read(res.data).header.rate_control["target_psnr"] == target
    assert res.candidates >= 1 and res.model_passes <= res.candidates + 3  # memoised: no pass twice


@pytest.mark.parametrize("codecs", ["auto", "jpeg,webp", ["avif", "png"]])
def test_max_bytes_promise_is_exact(photo, codecs):
    res = encode_target(photo, max_bytes=1400, codecs=codecs)
    assert res.choice.file_bytes <= 1400 and res.target_reached is None
    allowed = ("avif", "webp", "jpeg", "jxl") if codecs == "auto" else tuple(
        codecs.split(",") if isinstance(codecs, str) else codecs)
    assert res.choice.codec in allowed
    check_promise(res, photo)


def test_max_bpp_and_a_pinned_scale_or_model(photo):
    res = encode_target(photo, max_bpp=3.0, codecs="webp", scale=2)
    limit = math.floor(3.0 * 67 * 45 / 8)
    assert res.choice.scale == 2 and res.choice.file_bytes <= limit
    assert api.read(res.data).header.rate_control == {"target_psnr": None, "max_bytes": limit, "max_bpp": 3.0,
                                                      "psnr_rgb": res.choice.psnr_rgb}
    check_promise(res, photo)
    res = encode_target(photo, target_psnr=16, model="tiny-x4", codecs="jpeg")
    assert (res.choice.scale, api.read(res.data).header.model) == (4, "tiny-x4")
    check_promise(res, photo)


def test_viewable_layout_searches_png_and_jpeg(photo):
    res = encode_target(photo, max_bytes=3000, layout="viewable")
    assert res.choice.codec in ("png", "jpeg") and api.read(res.data).layout == "viewable"
    assert abs(measured(res.data, photo) - res.choice.psnr_rgb) <= 1e-6 and len(res.data) == res.choice.file_bytes
    assert Image.open(io.BytesIO(res.data)).format in ("PNG", "JPEG")


def test_target_within_a_limit_and_the_fallback_note(photo):
    res = encode_target(photo, target_psnr=24, max_bytes=2000)
    assert res.target_reached and res.choice.file_bytes <= 2000 and res.choice.psnr_rgb >= 24
    res = encode_target(photo, target_psnr=60, max_bytes=1500, codecs="jpeg")
    assert res.target_reached is False and res.choice.file_bytes <= 1500
    assert any("not reached within 1,500 bytes" in n for n in res.info.notes)
    check_promise(res, photo)


def test_search_agrees_with_brute_force_and_is_deterministic(photo):
    """Scale 1 jpeg needs no model: every quality can be tried, and the search must find the same one."""
    res = encode_target(photo, target_psnr=28, codecs="jpeg", scale=1)
    rows = [(len(d), q) for q in range(1, 101) if measured(d := api.encode(photo, scale=1, codec="jpeg", quality=q),
                                                              photo) >= 28]
    assert res.choice.quality == min(rows)[1]
    again = encode_target(photo, target_psnr=28, codecs="jpeg", scale=1)
    assert again.data == res.data
    a, b = encode_target(photo, target_psnr=22), encode_target(photo, target_psnr=22)
    assert a.data == b.data and (a.candidates, a.model_passes) == (b.candidates, b.model_passes)


def test_gray_and_rgba_inputs_keep_the_promise(photo):
    gray = Image.fromarray(photo).convert("L")
    res = encode_target(gray, target_psnr=26, codecs="webp")
    ref = np.asarray(gray.convert("RGB"))
    assert api.decode(res.data).mode == "L" and abs(measured(res.data, ref) - res.choice.psnr_rgb) <= 1e-6
    rgba = np.dstack([photo, np.full(photo.shape[:2], 200, np.uint8)])
    res = encode_target(rgba, max_bytes=2500, codecs="jpeg")
    assert res.choice.file_bytes == len(res.data) <= 2500 and res.info.alpha_bytes > 0
    assert abs(measured(res.data, photo) - res.choice.psnr_rgb) <= 1e-6


def test_unreachable_targets_raise_with_the_closest_value(photo):
    with pytest.raises(IrcError, match=r"target 60 dB is unreachable: best is [\d.]+ dB \(scale 1, jpeg q\d+, [\d,]+ bytes\)"):
        encode_target(photo, target_psnr=60, codecs="jpeg")
    with pytest.raises(IrcError, match=r"no file fits in 100 bytes: the smallest possible is [\d,]+ bytes"):
        encode_target(photo, max_bytes=100)


@pytest.mark.parametrize("kwargs,error,needle", [
    ({"target_psnr": float("nan")}, IrcError, "finite number above 0"),
    ({"target_psnr": -3}, IrcError, "finite number above 0"),
    ({"target_psnr": "30"}, IrcTypeError, "number"),
    ({"max_bytes": 0}, IrcError, ">= 1"),
    ({"max_bytes": 1.5}, IrcTypeError, "whole number"),
    ({"max_bytes": True}, IrcTypeError, "whole number"),
    ({"max_bpp": float("inf")}, IrcError, "finite"),
    ({"max_bytes": 100, "max_bpp": 1.0}, IrcError, "not both"),
    ({}, IrcError, "needs a target PSNR"),
    ({"target_psnr": 30, "codecs": "avif,gif"}, IrcError, "unknown codec 'gif'"),
    ({"target_psnr": 30, "codecs": "auto,jpeg"}, IrcError, "stands alone"),
    ({"target_psnr": 30, "codecs": "jpeg,"}, IrcError, "empty codec name"),
    ({"target_psnr": 30, "codecs": 5}, IrcTypeError, "codecs must be"),
    ({"target_psnr": 30, "crm": "tiny-crm-tiny-x2-jpeg"}, IrcError, "--crm auto or none"),
    ({"target_psnr": 30, "model": "tiny-x2", "scale": 4}, IrcError, "is for scale 2"),
    ({"target_psnr": 30, "model": "tiny-x2", "scale": 1}, IrcError, "scale 1 stores the image itself"),
    ({"target_psnr": 30, "scale": 17}, IrcError, "unsupported scale 17"),
    ({"target_psnr": 30, "codecs": "webp", "layout": "viewable"}, IrcError, "png or jpeg"),
])
def test_api_rejects_bad_values(photo, kwargs, error, needle):
    with pytest.raises(error, match=needle):
        encode_target(photo, **kwargs)


# ---- the command line -----------------------------------------------------------------------------

def test_cli_target_psnr_prints_and_keeps_the_promise(png, tmp_path):
    r = run_cli("encode", png, "--target-psnr", 25, "--codec", "jpeg,webp", "--json")
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout.strip().splitlines()[-1])
    data = (tmp_path / "photo.irc").read_bytes()
    rc = res["rate_control"]
    assert res["bytes_out"] == len(data) and res["codec"] in ("jpeg", "webp") and rc["target_reached"]
    ref = np.asarray(Image.open(png).convert("RGB"))
    assert abs(measured(data, ref) - rc["psnr_rgb"]) <= 1e-6 and rc["candidates"] >= 1
    meta = json.loads(run_cli("info", tmp_path / "photo.irc", "--json").output)
    assert meta["rate_control"]["psnr_rgb"] == rc["psnr_rgb"] and meta["rate_control"]["target_psnr"] == 25
    assert "target 25 dB; measured RGB PSNR" in run_cli("info", tmp_path / "photo.irc").output
    r = run_cli("encode", png, "--max-bpp", 2.5, "-o", tmp_path / "b.irc")
    assert r.exit_code == 0, r.output
    assert "chose scale" in r.output and "bpp" in r.output and "dB" in r.output
    assert (tmp_path / "b.irc").stat().st_size <= math.floor(2.5 * 67 * 45 / 8)


@pytest.mark.parametrize("args,needle", [
    (["--target-psnr", "90", "--codec", "jpeg"], "target 90 dB is unreachable: best is"),
    (["--max-bytes", "60"], "no file fits in 60 bytes: the smallest possible is"),
    (["--target-psnr", "-1"], "finite number above 0"),
    (["--target-psnr", "nan"], "finite number above 0"),
    (["--max-bytes", "-5"], ">= 1"),
    (["--max-bpp", "0"], "finite number above 0"),
    (["--target-psnr", "30", "-q", "50"], "-q/--quality does not combine"),
    (["--target-psnr", "30", "--lossless"], "--lossless does not combine"),
    (["--target-psnr", "30", "--codec", "avif,gif"], "unknown codec 'gif'"),
    (["--max-bytes", "900", "--max-bpp", "1"], "not both"),
    (["--codec", "auto"], "needs --target-psnr"),
    (["--codec", "jpeg,webp", "-q", "40"], "needs --target-psnr"),
    (["--target-psnr", "30", "-s", "4", "--model", "tiny-x2"], "is for scale 2"),
    (["--target-psnr", "30", "--viewable", "--codec", "avif"], "png or jpeg"),
])
def test_cli_errors_are_one_line_and_write_nothing(png, tmp_path, args, needle):
    dest = tmp_path / "out.irc"
    r = run_cli("encode", png, "-o", dest, *args)
    assert r.exit_code != 0 and needle in " ".join(r.output.split()), r.output
    assert "Traceback" not in r.output and r.output.strip().count("\n") == 0, r.output
    assert not dest.exists() and not list(tmp_path.glob(".*irc-tmp*"))


def test_a_retargeted_search_gives_the_files_of_fresh_searches(photo):
    """irc bench --auto reuses one Search per image across targets (Search.retarget keeps the LRs
    and measured upscales): each target's file is byte for byte what encode_target makes alone."""
    from irc.imageio import load
    from irc.ratecontrol import plan_search
    from irc.ratesearch import Search

    big = np.tile(photo, (2, 2, 1))
    search = Search(load(big), plan_search(target_psnr=30, codecs="jpeg,webp"), {}, "cpu", api.DEFAULT_TILE,
                    api.DEFAULT_OVERLAP)
    passes = []
    for target in (24.0, 28.0, 24.0):
        search.retarget({"target_psnr": target, "max_bytes": None})
        best = search.smallest_reaching(target, math.inf)
        fresh = encode_target(big, target_psnr=target, codecs="jpeg,webp")
        assert search.file_of(best)[0] == fresh.data and best == fresh.choice
        passes.append(search.model_passes)
    assert passes[0] > 0 and passes[2] == passes[1]  # a target seen before needs no new model pass
