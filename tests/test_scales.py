"""Issue 17: any scale. A scale no installed model has (2.5, 3, 6) resamples the HR around the
next larger model's scale (format 1.4: ``model_scale`` and ``resample`` in the header).

Runs on the tiny random-weight models (x2, x4, x8): the plumbing, sizes, header and errors.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from irc import api, container
from irc.bench.engine import rescaled_label
from irc.errors import IrcError, IrcTypeError
from irc.metrics import psnr_rgb
from irc.ratecontrol import encode_target
from tests.irc_bytes import head_of, with_head

from .conftest import run_cli


pytestmark = pytest.mark.usefixtures("one_thread")  # tiny images: one torch thread is fastest


@pytest.fixture(autouse=True)
def tiny_models_only(monkeypatch):
    """Only the tiny models (x2, x4, x8) are installed: the shipped ones (irn-ld-x3 serves 2.5) stay out."""
    from irc.models import registry

    monkeypatch.setattr(registry, "_read_registry", lambda: {})
    registry.load_model.cache_clear()
    yield
    registry.load_model.cache_clear()


@pytest.mark.parametrize(("scale", "model_scale"), [(2.5, 4), (1.5, 2), (3.5, 4), (6, 8), (3.7, 4)])
def test_fractional_round_trip_sizes_and_header(photo, scale, model_scale):
    data = api.encode(photo, scale=scale, codec="png")
    h = api.read(data).header
    assert (h.scale, h.model_scale, h.resample, h.model) == (scale, model_scale, "bicubic-antialias",
                                                              f"tiny-x{model_scale}")
    w, hh = photo.shape[1], photo.shape[0]  # 67 x 45
    assert (h.lr_width, h.lr_height) == (int(w / scale + 0.5), int(hh / scale + 0.5))  # the size asked for
    out = np.asarray(api.decode(data))
    assert out.shape == photo.shape
    assert psnr_rgb(photo, out) > 15  # random weights: only that the image comes back in place


def test_model_scales_do_not_resample_and_keep_their_bytes(photo):
    data = api.encode(photo, scale=4.0, codec="png")  # 4.0 is 4
    head = head_of(data)
    assert head["scale"] == 4 and "model_scale" not in head and "resample" not in head
    assert data == api.encode(photo, scale=4, codec="png")


def test_resampled_model_matches_its_own_scale_on_exact_multiples():
    """At the model's scale the resample is the identity: the same LR as the padded path."""
    rng = np.random.default_rng(1)
    img = rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)
    padded = api.lr_of(img, "tiny-x4", scale=4)
    assert np.array_equal(padded, api.downscale(img, "tiny-x4"))


def test_pinned_model_serves_smaller_scales_only(photo):
    h = api.read(api.encode(photo, scale=3, codec="png", model="tiny-x8")).header
    assert (h.scale, h.model_scale, h.model) == (3, 8, "tiny-x8")
    with pytest.raises(IrcError, match="tiny-x2 is for scale 2; it can serve scales from 1 to 2"):
        api.encode(photo, scale=2.5, codec="png", model="tiny-x2")


@pytest.mark.parametrize(("scale", "message"), [
    (0.5, "scale must be a number >= 1"), (0, "scale must be a number >= 1"), (-2, "scale must be a number >= 1"),
    (float("nan"), "scale must be a number >= 1"), (float("inf"), "scale must be a number >= 1"),
    (9, "unsupported scale 9: the largest installed model scale is 8"),
    (8.5, "unsupported scale 8.5"),
])
def test_impossible_scales(photo, scale, message):
    with pytest.raises(IrcError, match=message):
        api.encode(photo, scale=scale, codec="png")


def test_scale_type_errors(photo):
    for bad in ("2.5", True, [2]):
        with pytest.raises(IrcTypeError, match="scale must be a number"):
            api.encode(photo, scale=bad, codec="png")


# ---- the header (format 1.4) --------------------------------------------------------------------

@pytest.mark.parametrize(("edit", "message"), [
    (dict(model_scale=None, resample=None), "not an integer, so 'model_scale' and 'resample' must be set"),
    (dict(resample=None), "must be set together"),
    (dict(model_scale=2), "'model_scale' 2 must be above the scale 2.5"),
    (dict(model_scale=3.0), "'model_scale' must be null or an integer"),
    (dict(resample="lanczos"), "'resample' must be null or bicubic-antialias"),
    (dict(scale=2.0), "'scale' must be an integer"),
    (dict(scale=17), "'scale' must be an integer 1-16"),
    (dict(lr_width=26), "does not match"),
    (dict(scale=1, model=None, weights_sha256=None, model_version=None), "must be null at scale 1"),
])
def test_header_rules(photo, edit, message):
    data = api.encode(photo, scale=2.5, codec="png")
    with pytest.raises(IrcError, match=message):
        api.decode(with_head(data, lambda h: h.update(edit)))


def test_header_model_scale_must_match_the_model(photo):
    data = api.encode(photo, scale=2.5, codec="png")
    with pytest.raises(IrcError, match="tiny-x4 is a x4 model, the header says x8"):
        api.decode(with_head(data, lambda h: h.update(model_scale=8)))


def test_version_and_old_readers(photo):
    """1.4 files: the version byte says so; a scale an old reader does not know is one it refuses
    (its scale check lists 1, 2, 4 and 8), so it can never misread a resampled file."""
    data = api.encode(photo, scale=2.5, codec="png")
    assert data[8:10] == bytes(container.VERSION) and container.VERSION >= (1, 4)
    assert head_of(data)["scale"] not in (1, 2, 4, 8)


def test_lr_size_rounding():
    assert container.lr_size(768, 512, 2.5, True) == (307, 205)  # 307.2, 204.8
    assert container.lr_size(5, 5, 2, True) == (3, 3)  # halves round up
    assert container.lr_size(1, 1, 8, True) == (1, 1)  # never empty
    assert container.lr_size(67, 45, 4, False) == (17, 12)  # padded: ceil


# ---- rate control, bench, CLI -------------------------------------------------------------------

def test_rate_control_at_a_pinned_fractional_scale_keeps_its_promise(photo):
    res = encode_target(photo, max_bytes=3000, codecs="webp", scale=2.5)
    h = api.read(res.data).header
    assert (h.scale, h.model_scale) == (2.5, 4) and len(res.data) <= 3000
    assert psnr_rgb(photo, np.asarray(api.decode(res.data))) == pytest.approx(res.choice.psnr_rgb, abs=1e-9)


def test_bench_label_of_a_resampled_row():
    assert rescaled_label(2.5, "png", "tiny-x4", None) == "IRN x2.5 (tiny-x4, resampled) + PNG"
    assert rescaled_label(2.5, "png", None, None) == "Bicubic x2.5 + PNG"


def test_cli_fractional_scale_info_and_errors(png, tmp_path):
    r = run_cli("encode", png, "-s", "2.5", "--codec", "png")
    assert r.exit_code == 0, r.output
    assert "resampled around its x4" in r.output
    meta = json.loads(run_cli("info", tmp_path / "photo.irc", "--json").output)
    assert (meta["scale"], meta["model_scale"], meta["resample"], meta["lr_width"]) == (2.5, 4, "bicubic-antialias", 27)
    table = run_cli("info", tmp_path / "photo.irc").output
    assert "model_scale" in table and "bicubic-antialias" in table
    r = run_cli("decode", tmp_path / "photo.irc", "-o", tmp_path / "back.png")
    assert r.exit_code == 0, r.output
    from PIL import Image

    assert Image.open(tmp_path / "back.png").size == (67, 45)
    for bad, message in (("0.5", "scale must be a number >= 1"), ("12", "unsupported scale 12")):
        r = run_cli("encode", png, "-s", bad, "--codec", "png", "-o", tmp_path / "bad.irc")
        assert r.exit_code != 0 and message in r.output and not (tmp_path / "bad.irc").exists()
        assert r.output.strip().count("\n") == 0
    r = run_cli("encode", png, "-s", "two", "-o", tmp_path / "bad.irc")
    assert r.exit_code == 2 and not (tmp_path / "bad.irc").exists()  # Typer's usage error


@pytest.fixture
def tiny_x3(tmp_path, monkeypatch):
    """A random-weight IRN_LD x3 (one InvBlock) registered as the only x3 model."""
    from safetensors.torch import save_file

    from irc.models import registry
    from irc.models.irn import IRN

    torch.manual_seed(3)
    net = IRN(3, blocks_per_module=1, downsampling="learned")
    with torch.no_grad():
        for p in net.parameters():
            p.add_(torch.randn_like(p) * 0.01)
    path = tmp_path / "tiny-x3.safetensors"
    save_file({k: v.half().contiguous() for k, v in net.state_dict().items()}, str(path))
    monkeypatch.setattr(registry, "_extra", dict(registry._extra))
    registry.register(registry.ModelSpec(name="tiny-x3", arch="irn", scale=3, weights=str(path), codecs=("*",),
                                         params={"blocks_per_module": 1, "downsampling": "learned"}))
    yield "tiny-x3"
    registry.load_model.cache_clear()


def test_scale_3_model_pads_tiles_and_serves_fractions(photo, tiny_x3):
    """-s 3 with an x3 model: padded to a multiple of 3, no resampling; tiles (tile 1024 is not a
    multiple of 3) agree with the whole image; -s 2.5 now resamples around x3 (the paper's ceil)."""
    data = api.encode(photo, scale=3, codec="png")
    h = api.read(data).header
    assert (h.model, h.scale, h.model_scale, h.resample) == ("tiny-x3", 3, None, None)
    assert (h.lr_width, h.lr_height) == (23, 15)  # ceil(67 / 3), 45 / 3
    whole = np.asarray(api.decode(data)).astype(float)
    assert whole.shape == photo.shape
    tiled = np.asarray(api.decode(data, tile=64, overlap=12)).astype(float)  # 3 x 2 tiles of 21 LR pixels
    assert np.abs(tiled - whole).mean() < 1.0
    lr_tiled = api.downscale(photo, "tiny-x3", tile=64, overlap=12).astype(float)
    assert np.abs(lr_tiled - api.downscale(photo, "tiny-x3").astype(float)).mean() < 1.0
    h = api.read(api.encode(photo, scale=2.5, codec="png")).header
    assert (h.model, h.model_scale) == ("tiny-x3", 3)
