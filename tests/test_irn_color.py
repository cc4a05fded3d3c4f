"""IRN_color: the network (invertibility, the luma at initialisation, tiling), its trainer and
`irc train color`, grayscale payloads in every codec, the container's lr_mode, and a tiny
registered colour model through the API, the CLI (`irc encode --gray`) and the bench."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from irc import api, container
from irc.codecs import CODEC_NAMES, get_codec
from irc.errors import IrcError
from irc.models import registry
from irc.models.irn_color import IRNColor, build
from irc.models.rescaler import count_parameters
from irc.tiling import run_tiled
from irc.train.irn_color import IRNColorTrainConfig, color_losses, luma, train_irn_color

from .conftest import image_folders, run_cli
from .irc_bytes import head_of
from .test_fgrn import _randomise, _smooth

pytestmark = pytest.mark.usefixtures("one_thread")


# -- the network -----------------------------------------------------------------------------

def test_paper_size_and_bad_arguments():
    assert count_parameters(build(1)) == 1_413_592  # the paper's 1.41M (Table 13): 8 InvBlocks, split 1/2
    for kwargs in ({"scale": 2}, {"scale": 1, "blocks": 0}):
        with pytest.raises(ValueError):
            IRNColor(**kwargs)


def test_inverse_with_the_true_latent_is_exact():
    net = _randomise(IRNColor(blocks=3), std=0.05).eval()
    x = _smooth(24, 20)
    with torch.no_grad():
        y, z = net(x)
        assert y.shape == (1, 1, 24, 20) and z.shape == (1, 2, 24, 20)
        assert torch.allclose(net.inverse(y, z), x, atol=1e-5)


def test_untrained_network_stores_the_luma_and_decodes_gray():
    net = IRNColor(blocks=2).eval()
    x = _smooth(16, 16)
    with torch.no_grad():
        y, z = net(x)
        assert torch.allclose(y, luma(x), atol=1e-6)
        gray = net.upscale(y)
    assert torch.allclose(gray[:, 0], gray[:, 1], atol=1e-5) and torch.allclose(gray[:, 1], gray[:, 2], atol=1e-5)
    assert torch.allclose(gray[:, :1], y, atol=1e-5)


def test_the_weights_file_holds_parameters_only():
    """The YCbCr matrices are fixed: not in the state dict, so they cannot drift or be overwritten."""
    assert not any("ycc" in k for k in IRNColor(blocks=1).state_dict())


def test_tiled_upscale_and_channels_last_agree_with_the_whole_image():
    net = _randomise(IRNColor(blocks=2), std=0.01).eval()
    y = _smooth(40, 36)[:, :1]
    with torch.no_grad():
        whole = net.upscale(y)
        tiled = run_tiled(net.upscale, y, 40, 36, 1, 1, 24, 12)
        nhwc = net.channels_last().upscale(y)
    assert tiled.shape == whole.shape == (1, 3, 40, 36)
    assert (tiled - whole).abs().mean() < 0.01 and (tiled - whole).abs().max() < 0.1
    assert (nhwc - whole).abs().max() < 1e-4


def test_losses_and_their_gradients():
    net = _randomise(IRNColor(blocks=2), std=0.02)
    cfg = IRNColorTrainConfig(blocks=2)
    terms = color_losses(net, _smooth(16, 16).repeat(2, 1, 1, 1), cfg)
    assert set(terms) == {"loss", "recon", "guide", "distr"}
    assert all(torch.isfinite(v) for v in terms.values())
    terms["loss"].backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in net.parameters())


# -- training --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    return image_folders(tmp_path_factory.mktemp("color-data"), (48, 48), (24, 32))


def test_train_validate_and_resume(folders, tmp_path):
    train, val = folders
    cfg = IRNColorTrainConfig(blocks=1, data=[str(train)], out=str(tmp_path / "run"), iters=3, batch=2, crop=16,
                              warmup=1, val_dir=str(val), val_images=1, val_every=3, threads=1, precision="fp32")
    ckpt = train_irn_color(cfg)
    recs = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert any("val_psnr_rgb" in r for r in recs)
    cfg.iters = 4
    train_irn_color(cfg, resume=True)
    assert torch.load(ckpt, weights_only=False)["step"] == 4
    with pytest.raises(ValueError, match="scale"):
        train_irn_color(IRNColorTrainConfig(scale=2, blocks=1, out=str(tmp_path / "x")))


def test_cli_trains_and_refuses_bad_options(folders, tmp_path):
    out = tmp_path / "run"
    r = run_cli("train", "color", "--data", folders[0], "--out", out, "--iters", 1, "--batch", 2, "--crop", 16,
                "--blocks", 1, "--threads", 1)
    assert r.exit_code == 0, r.output
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["scale"] == 1 and cfg["blocks"] == 1 and cfg["lambda_guide"] == 9.0
    for args, needle in ((["--blocks", 0], "--blocks"), (["--lambda-guide", -1], "--lambda-guide")):
        r = run_cli("train", "color", "--data", folders[0], "--out", tmp_path / "bad", "--iters", 1, "--batch", 2,
                    "--crop", 16, "--threads", 1, *args)
        assert r.exit_code != 0 and r.output.strip().count("\n") == 0 and needle in r.output, r.output
    assert not (tmp_path / "bad" / "last.pt").exists()


# -- grayscale payloads and the header -----------------------------------------------------------

def _gray(h=40, w=56) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    return np.clip(128 + 80 * np.sin(xx / 6.0) * np.cos(yy / 9.0), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("name", CODEC_NAMES)
def test_every_codec_codes_a_grayscale_image(name):
    codec = get_codec(name)
    if not codec.available():
        pytest.skip(f"{name} is not available here")
    g = _gray()
    if codec.lossless:
        data = codec.encode(g[..., None], codec.settings(None, True))
        assert np.array_equal(codec.decode(data, (56, 40), channels=1)[..., 0], g)
    if codec.lossy:
        lossy = codec.encode(g, codec.settings(50, None))
        dec = codec.decode(lossy, (56, 40), channels=1)
        assert dec.shape == (40, 56, 1) and np.abs(dec[..., 0].astype(int) - g).mean() < 8
        if codec.lossless:  # the quality applies (imagecodecs codes a monochrome AVIF losslessly otherwise)
            assert len(lossy) < len(data)


def _header(**changes) -> dict:
    head = dict(model="irn-color", weights_sha256="0123456789abcdef", scale=1, codec="png", codec_version="x",
                quality=None, width=10, height=8, mode="RGB", source_mode="RGB", lr_width=10, lr_height=8,
                lr_mode="L")
    return {**head, **changes}


def test_header_lr_mode():
    assert container.check_header(_header()).lr_channels == 1
    assert container.check_header(_header(lr_mode=None, model=None, weights_sha256=None)).lr_channels == 3
    for changes, needle in (({"lr_mode": "CMYK"}, "lr_mode"), ({"model": None}, "model"),
                            ({"scale": 2, "lr_width": 5, "lr_height": 4}, "scale 1"),
                            ({"crm": "crm-x2-jpeg", "crm_sha256": "0123456789abcdef"}, "crm")):
        with pytest.raises(IrcError, match=needle):
            container.check_header(_header(**changes))


# -- a tiny colour model in the codec ------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_color(tmp_path_factory):
    """A tiny random-weight IRN_color, registered as tiny-color (the default colour model while it is)."""
    from safetensors.torch import save_file

    path = tmp_path_factory.mktemp("color") / "tiny-color.safetensors"
    model = _randomise(IRNColor(blocks=2), std=0.01)
    save_file({k: v.half().contiguous() for k, v in model.state_dict().items()}, str(path))
    registry.register(registry.ModelSpec(name="tiny-color", arch="irn_color", scale=1, params={"blocks": 2},
                                         weights=str(path), description="random-weight test IRN_color"))
    try:
        yield registry.get_spec("tiny-color")
    finally:
        registry.unregister("tiny-color")


def test_registry_keeps_colour_models_out_of_the_scales(tiny_color):
    assert tiny_color.lr_channels == 1 and registry.get_spec("irn-x2").lr_channels == 3
    assert 1 not in registry.rescaler_scales()
    assert registry.default_color_model().name == "tiny-color"


@pytest.mark.parametrize("codec,quality", [("png", None), ("jpeg", 60), ("webp", 70)])
def test_round_trip_through_the_api(tiny_color, photo, codec, quality):
    data, info = api.encode_image(photo, 1, codec, quality, gray=True)
    header = api.read(data).header
    assert header.lr_mode == "L" and header.model == "tiny-color" and header.crm is None
    assert (header.lr_width, header.lr_height) == (photo.shape[1], photo.shape[0])
    lr = get_codec(codec).decode(api.read(data).payload, channels=1)
    assert lr.shape == (photo.shape[0], photo.shape[1], 1)
    out = api.decode(data)
    assert out.size == (photo.shape[1], photo.shape[0]) and out.mode == "RGB"
    assert np.abs(np.asarray(out, dtype=np.int16) - photo.astype(np.int16)).mean() < 60
    assert np.array_equal(np.asarray(api.decode(data)), np.asarray(out))
    # --model NAME alone is enough: a colour model implies the grayscale carrier
    assert api.read(api.encode(photo, scale=None, codec=codec, quality=quality, model="tiny-color")).header.lr_mode == "L"


def test_viewable_gray_file_is_a_grayscale_jpeg(tiny_color, photo):
    import io

    data = api.encode(photo, scale=1, codec="jpeg", gray=True, layout="viewable")
    with Image.open(io.BytesIO(data)) as im:  # what a viewer shows: the grayscale image itself
        assert (im.format, im.mode, im.size) == ("JPEG", "L", (photo.shape[1], photo.shape[0]))
    assert api.decode(data).mode == "RGB"


def test_alpha_and_gray_inputs(tiny_color, photo):
    rgba = np.dstack([photo, np.full(photo.shape[:2], 200, np.uint8)])
    out = api.decode(api.encode(Image.fromarray(rgba, "RGBA"), scale=1, codec="png", gray=True))
    assert out.mode == "RGBA" and np.asarray(out)[..., 3].min() == 200
    out = api.decode(api.encode(Image.fromarray(photo[..., 0], "L"), scale=1, codec="png", gray=True))
    assert out.mode == "L"


@pytest.mark.parametrize("kwargs,needle", [
    (dict(scale=4, gray=True), "scale 1"),
    (dict(scale=1, gray=True, crm="crm-x2-jpeg"), "CRM"),
    (dict(scale=1, gray=True, model="irn-x2"), "colour model"),
    (dict(scale=2, model="tiny-color"), "scale 1"),
    (dict(scale=1, gray="yes"), "gray"),
])
def test_impossible_gray_encodes_are_one_error(tiny_color, photo, kwargs, needle):
    with pytest.raises(IrcError, match=needle):
        api.encode(photo, codec="jpeg", **kwargs)


def test_a_gray_header_naming_a_colour_rescaler_is_refused(tiny_color, photo):
    """lr_mode L must come with a colour model: naming a 3-channel rescaler is a corrupt header."""
    f = api.read(api.encode(photo, scale=1, codec="png", gray=True))
    spec = registry.get_spec("irn-x2")
    f.header.model, f.header.weights_sha256, f.header.model_version = spec.name, spec.sha256(), spec.version
    with pytest.raises(IrcError, match="corrupt .irc header"):
        api.decode(container.dumps(f))


def test_version_and_old_readers(tiny_color, photo):
    """1.5: a grayscale carrier names a model at scale 1, which a 1.4 reader's schema refuses
    ('model' must be null at scale 1), so it can never misread one as a plain colour image."""
    data = api.encode(photo, scale=1, codec="png", gray=True)
    assert data[8:10] == bytes(container.VERSION) >= b"\x01\x05"
    head = head_of(data)
    assert head["scale"] == 1 and head["model"] == "tiny-color" and head["lr_mode"] == "L"
    plain = head_of(api.encode(photo, scale=1, codec="png"))
    assert "lr_mode" not in plain and plain["model"] is None  # other files keep their bytes


def test_cli_gray_round_trip_info_and_errors(tiny_color, png, tmp_path):
    irc_file = tmp_path / "g.irc"
    r = run_cli("encode", png, "--gray", "--codec", "jpeg", "-q", "80", "-o", irc_file)
    assert r.exit_code == 0, r.output
    assert "grayscale" in r.output
    r = run_cli("info", irc_file, "--json")
    assert json.loads(r.output)["lr_mode"] == "L"
    assert "grayscale" in run_cli("info", irc_file).output
    r = run_cli("decode", irc_file, "-o", tmp_path / "g.png")
    assert r.exit_code == 0, r.output
    with Image.open(tmp_path / "g.png") as im:
        assert im.size == (67, 45) and im.mode == "RGB"
    for args, needle in ((["-s", "4"], "scale 1"), (["--target-psnr", "30"], "--gray"),
                         (["--crm", "crm-x2-jpeg"], "CRM")):
        r = run_cli("encode", png, "--gray", "-o", tmp_path / "bad.irc", *args)
        assert r.exit_code != 0 and "Traceback" not in r.output and needle in r.output, r.output
    assert not (tmp_path / "bad.irc").exists()


def test_bench_storage_rows_of_the_grayscale_image(tiny_color, tmp_path, photo):
    d = tmp_path / "imgs"
    d.mkdir()
    Image.fromarray(photo).save(d / "a.png")
    out = tmp_path / "out"
    r = run_cli("bench", d, "--out", out, "--scales", "2", "--rd-scales", "2", "--qualities", "40",
                "--models", "tiny-color")
    assert r.exit_code == 0, r.output
    rows = {row["pipeline"]: row for row in json.loads((out / "bench.json").read_text())["storage"]}
    gray = rows["IRN_color gray + PNG"]
    assert gray["scale"] == 1 and gray["psnr_rgb"] is not None and "matched_jpeg" in gray
    assert rows["PNG lossless"]["psnr_rgb"] is None  # the codec alone stays exact


@pytest.mark.skipif(not registry.REGISTRY_FILE.exists(), reason="no registry")
def test_openvino_runs_the_one_channel_upscale(tiny_color, photo):
    pytest.importorskip("openvino")
    data = api.encode(photo, scale=1, codec="png", gray=True, backend="torch")
    a = np.asarray(api.decode(data, backend="torch"), dtype=np.int16)
    b = np.asarray(api.decode(data, backend="openvino", precision="fp32"), dtype=np.int16)
    assert np.abs(a - b).max() <= 1
