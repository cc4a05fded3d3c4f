"""Golden numbers for the shipped weights on small Kodak crops (lossless PNG round trip).

The golden values were measured with the shipped weight files; a change of more
than the tolerance means the model, the pipeline or the metric changed.
"""

import json

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from irc import api
from irc.cli import app
from irc.metrics import psnr_y
from irc.models import registry
from irc.resample import bicubic_round_trip

from .conftest import KODAK

SHIPPED = json.loads(registry.REGISTRY_FILE.read_text())
CROPS = {"kodim03": (128, 256, 256, 256), "kodim23": (192, 320, 256, 256)}  # top, left, h, w

# (model, image) -> Y-PSNR in dB, measured with the shipped weights (see module docstring)
GOLDEN = {
    ("irn-x2", "kodim03"): 42.170,  # version 3 (campaign in bf16, 2026-12-07, eighth session)
    ("irn-x2", "kodim23"): 45.135,
    ("irn-x2@2", "kodim03"): 40.988,  # version 2 (campaign, 2026-11-25) stays for old files
    ("irn-x2@2", "kodim23"): 43.926,
    ("irn-x2@1", "kodim03"): 40.543,  # version 1 stays installed for old files
    ("irn-x2@1", "kodim23"): 44.009,
    ("irn-x4", "kodim03"): 33.347,
    ("irn-x4", "kodim23"): 34.866,
    ("irn-e-x4", "kodim03"): 33.599,  # version 4 (campaign in fp32, lr 1e-4, 2026-12-07, fourteenth session)
    ("irn-e-x4", "kodim23"): 35.923,
    ("irn-e-x4@3", "kodim03"): 33.417,  # version 3 (campaign in bf16, 2026-12-07) stays for old files
    ("irn-e-x4@3", "kodim23"): 35.650,
    ("irn-e-x4@2", "kodim03"): 32.570,  # version 2 (campaign, 2026-11-25) stays for old files
    ("irn-e-x4@2", "kodim23"): 34.778,
    ("irn-e-x4@1", "kodim03"): 31.305,
    ("irn-e-x4@1", "kodim23"): 32.339,
    ("irn-x8", "kodim03"): 30.709,  # version 3 (campaign in bf16, 2026-12-06, sixth session)
    ("irn-x8", "kodim23"): 30.364,
    ("irn-x8@2", "kodim03"): 30.257,  # version 2 stays installed for old files
    ("irn-x8@2", "kodim23"): 29.959,
    ("irn-x8@1", "kodim03"): 29.774,  # version 1 stays installed for old files
    ("irn-x8@1", "kodim23"): 29.627,
    ("irn-x2-noise", "kodim03"): 40.181,
    ("irn-x2-noise", "kodim23"): 43.418,
    ("fgrn-x2", "kodim03"): 43.374,  # FGRN, version 3 (campaign, fp32, 2026-12-07, thirteenth session)
    ("fgrn-x2", "kodim23"): 45.797,
    ("fgrn-x2@2", "kodim03"): 42.848,  # version 2 (campaign, fp32, 2026-12-07, eleventh session) stays for old files
    ("fgrn-x2@2", "kodim23"): 45.739,
    ("fgrn-x2@1", "kodim03"): 41.436,  # version 1 (2026-11-25) stays for old files
    ("fgrn-x2@1", "kodim23"): 45.064,
    ("fgrn-x4", "kodim03"): 34.508,  # FGRN x4, version 3 (campaign in bf16, 2026-12-07)
    ("fgrn-x4", "kodim23"): 36.504,
    ("fgrn-x4@2", "kodim03"): 34.098,  # version 2 (2026-12-06) stays for old files
    ("fgrn-x4@2", "kodim23"): 36.109,
    ("fgrn-x4@1", "kodim03"): 33.631,  # version 1 (2026-11-25, the x4 shoot-out run) stays for old files
    ("fgrn-x4@1", "kodim23"): 35.416,
    ("fgrn-x8", "kodim03"): 30.735,  # FGRN x8, version 1 (from fgrn-x4 v3, fp32, 2026-12-07; irn-x8 v3: 30.709)
    ("fgrn-x8", "kodim23"): 31.148,  # (irn-x8 v3: 30.364)
    ("hcflow-x4", "kodim03"): 33.017,  # HCFlow x4, version 2 (campaign in bf16, 2026-12-06)
    ("hcflow-x4", "kodim23"): 34.416,
    ("hcflow-x4@1", "kodim03"): 32.684,  # version 1 (from scratch, bf16, 2026-12-06) stays for old files
    ("hcflow-x4@1", "kodim23"): 34.024,
    ("irn-ld-x3", "kodim03"): 34.984,  # IRN_LD x3, version 1 (2026-11-25)
    ("irn-ld-x3", "kodim23"): 38.084,
    ("bdflow-x8", "kodim03"): 29.210,  # BDFlow x8, version 1 (from scratch, bf16, 2026-12-06)
    ("bdflow-x8", "kodim23"): 29.459,
    ("bdflow-x16", "kodim03"): 25.767,  # BDFlow x16, version 1 (from scratch, bf16, 2026-12-06)
    ("bdflow-x16", "kodim23"): 27.407,
}
# how far above bicubic a shipped model must be on a golden crop: 256 px crops leave a 32 px (x8)
# or 16 px (x16) LR, where every method is near the bicubic floor; Kodak-24 numbers are in the registry
BICUBIC_MARGIN_DB = {2: 1.0, 3: 1.0, 4: 1.0, 8: 0.5, 16: 0.5}
# a lossy LR at x2 with each model's own CRM for the codec, if any:
# (model, image, codec, quality) -> (CRM, RGB PSNR, file bytes)
# (file bytes: format 1.6 deflates the header, about 290 bytes less than 1.5's plain HEAD)
LOSSY_GOLDEN = {
    ("irn-x2", "kodim03", "jpeg", 40): ("crm-x2-jpeg", 28.481, 1871),  # irn-x2 version 3 (v2: 28.432 / 29.733 dB)
    ("irn-x2", "kodim23", "jpeg", 40): ("crm-x2-jpeg", 29.785, 1770),
    ("irn-x2-jpeg", "kodim03", "jpeg", 40): (None, 28.757, 1941),
    ("irn-x2-jpeg", "kodim23", "jpeg", 40): (None, 30.472, 1842),
    # fgrn-x2 v3 with the CRM trained on v1's LR: less JPEG-robust again (without the CRM: 27.625, 29.107)
    ("fgrn-x2", "kodim03", "jpeg", 40): ("crm-fgrn-x2-jpeg", 28.224, 1911),
    ("fgrn-x2", "kodim23", "jpeg", 40): ("crm-fgrn-x2-jpeg", 29.577, 1793),
    # v2 (without the CRM: 27.718, 29.332)
    ("fgrn-x2@2", "kodim03", "jpeg", 40): ("crm-fgrn-x2-jpeg", 28.325, 1911),
    ("fgrn-x2@2", "kodim23", "jpeg", 40): ("crm-fgrn-x2-jpeg", 29.716, 1796),
    ("fgrn-x2@1", "kodim03", "jpeg", 40): ("crm-fgrn-x2-jpeg", 28.505, 1933),  # v1, its own CRM (without: 27.856)
    ("fgrn-x2@1", "kodim23", "jpeg", 40): ("crm-fgrn-x2-jpeg", 29.912, 1813),  # (without: 29.588)
    ("irn-x2", "kodim03", "avif", 30): ("crm-x2-avif", 28.365, 985),  # 2026-12-07, tenth session (without: 28.067)
    ("irn-x2", "kodim23", "avif", 30): ("crm-x2-avif", 28.670, 960),  # (without: 28.426)
    ("irn-x2", "kodim03", "webp", 30): ("crm-x2-webp", 28.657, 1037),  # 2026-12-07, thirteenth session (without: 28.080)
    ("irn-x2", "kodim23", "webp", 30): ("crm-x2-webp", 29.792, 1021),  # (without: 29.341)
}
# colour models (IRN_color, `--gray`): (model, image) -> RGB PSNR of the colours restored from the gray image
COLOR_GOLDEN = {
    ("irn-color", "kodim03"): 16.201,  # IRN_color, version 1 (from scratch, bf16, 2026-12-06; plain luma: 15.033)
    ("irn-color", "kodim23"): 19.053,  # (plain luma: 17.196)
}
TOLERANCE_DB = 0.05


def crop(name):
    top, left, h, w = CROPS[name]
    return np.asarray(Image.open(KODAK / f"{name}.png").convert("RGB"))[top : top + h, left : left + w]


def test_registry_entries_are_complete():
    assert {e["name"] for e in SHIPPED} >= {"irn-x2", "irn-x4", "irn-x8", "irn-e-x4", "fgrn-x2", "fgrn-x4", "irn-ld-x3", "hcflow-x4",
                                            "irn-color", "bdflow-x8", "bdflow-x16", "crm-x2-avif", "crm-x2-webp", "fgrn-x8"}
    versions = [s for s in registry.all_versions().values() if s.name in {e["name"] for e in SHIPPED}]
    assert len(versions) == len(SHIPPED)  # every version of every model is installed and reachable
    for spec in versions:
        assert spec.weights_path.is_file()
        assert len(spec.sha256()) == 16
        for key in ("data", "iterations", "hardware", "params"):
            assert key in spec.training, (spec.key, key)
        if spec.role == "restore":  # restores the LR of a shipped model (or bicubic), measured on Kodak
            assert spec.base == "bicubic" or registry.get_spec(spec.base).scale == spec.scale
            assert spec.codecs and "mean_gain_db" in spec.kodak
        else:
            assert spec.kodak["psnr_y"] > 0 and spec.kodak["psnr_rgb"] > 0
        model = registry.load_model(spec.key)
        assert sum(p.numel() for p in model.parameters()) == spec.training["params"]


@pytest.mark.skipif(not KODAK.is_dir(), reason="../shared/data/kodak not present")
@pytest.mark.parametrize("model,image", sorted(GOLDEN))
def test_golden_psnr_on_kodak_crops(model, image):
    s = registry.get_spec(model).scale
    rgb = crop(image)
    out = np.asarray(api.decode(api.encode(rgb, codec="png", model=model, scale=None)))
    got = psnr_y(rgb, out, s)
    assert got == pytest.approx(GOLDEN[(model, image)], abs=TOLERANCE_DB)
    assert got > psnr_y(rgb, bicubic_round_trip(rgb, s), s) + BICUBIC_MARGIN_DB[s]  # above the non-learned baseline


@pytest.mark.skipif(not KODAK.is_dir(), reason="../shared/data/kodak not present")
@pytest.mark.parametrize("model,image", sorted(COLOR_GOLDEN))
def test_golden_colour_restored_from_gray(model, image):
    from irc.metrics import psnr_rgb

    rgb = crop(image)
    data = api.encode(rgb, codec="png", model=model, scale=None)
    assert api.read(data).header.lr_mode == "L"
    got = psnr_rgb(rgb, np.asarray(api.decode(data)))
    assert got == pytest.approx(COLOR_GOLDEN[(model, image)], abs=TOLERANCE_DB)
    luma = np.rint(rgb @ np.array([0.299, 0.587, 0.114])).clip(0, 255).astype(np.uint8)
    assert got > psnr_rgb(rgb, np.repeat(luma[..., None], 3, 2))  # above storing the plain luma


@pytest.mark.skipif(not KODAK.is_dir(), reason="../shared/data/kodak not present")
@pytest.mark.parametrize("model,image,codec,quality", sorted(LOSSY_GOLDEN))
def test_golden_lossy_round_trip_on_kodak_crops(model, image, codec, quality):
    from irc.metrics import psnr_rgb

    rgb = crop(image)
    data = api.encode(rgb, codec=codec, quality=quality, model=model, scale=None)
    crm, want_psnr, want_bytes = LOSSY_GOLDEN[(model, image, codec, quality)]
    hd = api.read(data).header
    assert hd.crm == crm
    assert len(data) == pytest.approx(want_bytes, rel=0.02)
    assert psnr_rgb(rgb, np.asarray(api.decode(data))) == pytest.approx(want_psnr, abs=TOLERANCE_DB)


def test_jpeg_defaults(monkeypatch):
    """JPEG at x2 stays irn-x2 + its CRM, applied at decode; the robust irn-x2-jpeg (+0.11 dB at
    0.2 bpp, no CRM, docs/LOSSY.md) is opt-in with --model."""
    monkeypatch.setattr(registry, "_extra", {})  # the shipped models, not the tiny test ones
    assert registry.default_model(2, "jpeg").name == registry.default_model(2, "*").name == "irn-x2"
    assert registry.default_crm("irn-x2", "jpeg").name == "crm-x2-jpeg"
    assert registry.default_crm("irn-x4", "jpeg").name == "crm-x4-jpeg"
    assert registry.default_crm("irn-x2-jpeg", "jpeg") is None
    assert registry.default_crm("irn-x2", "avif").name == "crm-x2-avif"  # AVIF at x2 has its own (LOSSY.md)
    assert registry.default_crm("irn-x2", "webp").name == "crm-x2-webp"  # and WebP (LOSSY.md, 2026-12-07)
    assert registry.default_crm("irn-x4", "webp") is None
    # x4: FGRN (ahead on Kodak in luma and colour) for the lossless codecs; JPEG keeps irn-x4 and its CRM
    assert registry.default_model(4, "png").name == registry.default_model(4, "jxl").name == "fgrn-x4"
    assert registry.default_model(4, "jpeg").name == registry.default_model(4, "*").name == "irn-x4"
    # x8: FGRN likewise (Kodak +0.41 dB Y, +0.37 dB RGB over irn-x8 v3); the lossy codecs keep irn-x8
    # (under JPEG fgrn-x8 is BD-rate +57.9 % against it, docs/TRAINING.md)
    assert registry.default_model(8, "png").name == registry.default_model(8, "jxl").name == "fgrn-x8"
    assert registry.default_model(8, "jpeg").name == registry.default_model(8, "*").name == "irn-x8"
    # x2: fgrn-x2 (v3: 40.71 / 37.96 dB Y / RGB against 40.31 / 37.70, faster) for PNG, where its
    # storage row is also nearer the matched JPEG (+68.7 % against +71.1 %); under JPEG XL its LR
    # costs 7.3 % more bytes (+50.2 % against +48.6 %), so JPEG XL keeps irn-x2 (README, MODELS.md)
    assert registry.default_model(2, "png").name == "fgrn-x2"
    assert registry.default_model(2, "jxl").name == registry.default_model(2, "avif").name == "irn-x2"
    # the paper's Bicubic + JPEG + CRM ablation at both scales
    assert registry.default_crm("bicubic", "jpeg", scale=2).name == "crm-bicubic-x2-jpeg"
    assert registry.default_crm("bicubic", "jpeg", scale=4).name == "crm-bicubic-x4-jpeg"


def test_models_command_says_what_each_rescaler_is_used_for(monkeypatch):
    """`irc models` names the codecs `irc encode -s SCALE` picks each model for, as default_model does."""
    from irc.cli.tools import _defaults, _used_for

    monkeypatch.setattr(registry, "_extra", {})
    defaults = _defaults()
    used = {name: _used_for(registry.get_spec(name), defaults) for name in
            ("irn-x2", "fgrn-x2", "fgrn-x4", "irn-x8", "irn-e-x4", "irn-ld-x3", "irn-color")}
    assert used == {"irn-x2": "jpeg/webp/jxl/avif", "fgrn-x2": "png", "fgrn-x4": "png/jxl",
                    "irn-x8": "jpeg/webp/avif", "irn-e-x4": "--model", "irn-ld-x3": "any codec",
                    "irn-color": "--model"}


def test_models_command_lists_shipped_numbers():
    r = CliRunner().invoke(app, ["models"])
    assert r.exit_code == 0
    newest = {}
    for e in SHIPPED:
        if e.get("version", 1) >= newest.get(e["name"], {}).get("version", 1):
            newest[e["name"]] = e
    for e in newest.values():
        assert e["name"] in r.output
        if e["arch"] != "crm":  # a rescaler (irn, fgrn): its Kodak Y-PSNR
            assert f"{e['kodak']['psnr_y']:.2f}" in r.output
        else:
            assert f"{e['kodak']['mean_gain_db']:+.2f}" in r.output
    assert "any codec" in r.output  # what `irc encode` uses each model for
    assert "irn-x2@1" in r.output  # older versions are named, not hidden


def test_scale_3_and_fractions_use_irn_ld_x3(monkeypatch):
    """-s 3 runs irn-ld-x3 as it is; -s 2.5 resamples around it (the next larger shipped scale)."""
    monkeypatch.setattr(registry, "_extra", {})
    three, frac, six = api.plan_encode(3, "png"), api.plan_encode(2.5, "png"), api.plan_encode(6, "png")
    assert (three.model.name, three.resample) == ("irn-ld-x3", False)
    assert (frac.model.name, frac.resample) == ("irn-ld-x3", True)
    assert (six.model.scale, six.resample) == (8, True)
