"""HCFlow: the network (invertibility, shapes, the LR at initialisation, sampling, tiling),
its trainer and `irc train hcflow`, and a tiny registered HCFlow through the codec."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from torch.nn import functional as F

from irc import api
from irc.models import registry
from irc.models.hcflow import DEFAULTS, HCFlow, build
from irc.models.rescaler import count_parameters
from irc.tiling import run_tiled
from irc.train.hcflow import HCFlowTrainConfig, hcflow_losses, train_hcflow

from .conftest import image_folders, run_cli
from .test_fgrn import _randomise, _smooth  # perturbed weights (a fresh flow is the identity), a smooth image

TINY = {"flow_steps": 2, "cond_steps": 1, "hidden": 8, "nf": 8, "gc": 4, "rrdb": 1}
TINY_CLI = ["--flow-steps", 2, "--cond-steps", 1, "--hidden", 8, "--nf", 8, "--gc", 4, "--rrdb", 1,
            "--threads", 1]

pytestmark = pytest.mark.usefixtures("one_thread")


# -- the network -----------------------------------------------------------------------

@pytest.mark.parametrize("scale", [2, 4, 8])
def test_inverse_with_the_true_latents_is_exact(scale):
    model = _randomise(HCFlow(scale, **TINY)).eval()
    x = torch.rand(2, 3, 8 * scale, 6 * scale)
    with torch.no_grad():
        y, zs = model(x)
        back = model.inverse(y, zs)
    assert (back - x).abs().max() < 1e-4
    assert y.shape == (2, 3, 8, 6)
    assert [tuple(z.shape) for z in zs] == model.latent_shapes(y)


def test_latent_layout_of_the_paper_model():
    model = build(4)
    y = torch.zeros(1, 3, 10, 12)
    # level 1: 12 Haar channels, 6 kept, 6 latent at LR x 2; level 2: 24 channels, 3 kept (the LR), 21 latent
    assert model.latent_shapes(y) == [(1, 6, 20, 24), (1, 21, 10, 12)]
    assert (model.levels, model.keep) == (2, [6, 3])


def test_paper_size():
    assert DEFAULTS[4]["flow_steps"] == 8 and DEFAULTS[4]["cond_steps"] == 6 and DEFAULTS[4]["rrdb"] == 3
    assert abs(count_parameters(build(4)) / 4.4e6 - 1) < 0.05  # the paper's 4.4M


@pytest.mark.parametrize("scale", [1, 3, 6, 2.0])
def test_bad_scale_rejected(scale):
    with pytest.raises(ValueError, match="power of two"):
        HCFlow(scale, **TINY)


def test_untrained_network_is_box_down_and_nearest_up():
    model = HCFlow(4, **TINY).eval()
    x = torch.rand(1, 3, 32, 24)
    with torch.no_grad():
        lr = model.encode_lr(x)
        up = model.upscale(lr)
    assert torch.allclose(lr, F.avg_pool2d(x, 4), atol=1e-6)
    assert torch.allclose(up, F.interpolate(lr, scale_factor=4, mode="nearest"), atol=1e-6)


def test_encoding_runs_no_feature_extractor():
    """The LR comes from the main flow alone: changing the extractors and latent flows leaves it as it was."""
    model = _randomise(HCFlow(4, **TINY)).eval()
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        before = model.encode_lr(x)
        _randomise(model.phi, seed=5), _randomise(model.cond, seed=6)
        assert torch.equal(model.encode_lr(x), before)


def test_temperature_sampling_is_seeded():
    model = _randomise(HCFlow(4, **TINY)).eval()
    y = torch.rand(1, 3, 8, 8)
    with torch.no_grad():
        mode = model.upscale(y)
        a = model.upscale(y, 0.8, torch.Generator().manual_seed(3))
        b = model.upscale(y, 0.8, torch.Generator().manual_seed(3))
        c = model.upscale(y, 0.8, torch.Generator().manual_seed(4))
    assert torch.equal(a, b) and not torch.equal(a, c) and not torch.allclose(a, mode)
    assert torch.equal(model.upscale(y, 0.0), mode)


def test_channels_last_gives_the_same_passes():
    model = _randomise(HCFlow(4, **TINY)).eval()
    x = torch.rand(1, 3, 32, 40)
    with torch.no_grad():
        lr, up = model.encode_lr(x), model.upscale(model.downscale(x))
        model.channels_last()
        assert (model.encode_lr(x) - lr).abs().max() < 1e-5
        assert (model.upscale(model.downscale(x)) - up).abs().max() < 1e-4


def test_tiled_upscale_agrees_with_whole_image():
    model = _randomise(HCFlow(4, **TINY), std=0.02).eval()
    y = _smooth(32, 32, seed=1)
    with torch.no_grad():
        whole = model.upscale(y)
        tiled = run_tiled(model.upscale, y, 32, 32, 1, 4, 16, 8)
    assert tiled.shape == whole.shape == (1, 3, 128, 128)
    assert (tiled - whole).abs().mean() < 1e-2


# -- the trainer -----------------------------------------------------------------------

def test_losses_terms_and_latent_paths():
    torch.manual_seed(0)
    model = _randomise(build(4, **TINY), std=0.02)
    x = _smooth(32, 32)
    zero = hcflow_losses(model, x, HCFlowTrainConfig(scale=4, **TINY))
    assert set(zero) == {"loss", "recon", "guide", "latent"}
    expected = zero["recon"] + 5e-2 * zero["guide"] + 1e-5 * zero["latent"]
    assert torch.allclose(zero["loss"], expected)
    torch.manual_seed(1)
    sampled = hcflow_losses(model, x, HCFlowTrainConfig(scale=4, z_mode="sample", **TINY))
    assert torch.allclose(sampled["guide"], zero["guide"]) and not torch.allclose(sampled["recon"], zero["recon"])
    zero["loss"].backward()  # every part learns from the loss: the main flow, the latent flows, the extractors
    for part in (model.main, model.cond, model.phi):
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in part.parameters())


def test_bad_z_mode_is_refused(tmp_path):
    with pytest.raises(ValueError, match="z_mode"):
        train_hcflow(HCFlowTrainConfig(scale=4, **TINY, z_mode="mean", out=str(tmp_path / "r")))


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """(training folder: 3 images 80x80, validation folder: 1 image 64x48)."""
    return image_folders(tmp_path_factory.mktemp("hcflow-data"), (80, 80), (48, 64))


def test_train_validate_and_resume(folders, tmp_path):
    train, val = folders
    cfg = HCFlowTrainConfig(scale=4, **TINY, data=[str(train)], out=str(tmp_path / "run"), iters=4, batch=2,
                            crop=32, warmup=1, val_dir=str(val), val_images=1, val_every=2, threads=1,
                            precision="fp32", ema=0.5)
    ckpt = train_hcflow(cfg)
    recs = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert [r["iter"] for r in recs if "val_psnr_y" in r][-1] == 4
    cfg.iters = 6
    train_hcflow(cfg, resume=True)
    assert torch.load(ckpt, weights_only=False)["step"] == 6


def test_cli_trains_and_refuses_bad_options(folders, tmp_path):
    out = tmp_path / "run"
    r = run_cli("train", "hcflow", "--data", folders[0], "--out", out, "--iters", 2, "--batch", 2, "--crop", 32,
                *TINY_CLI)
    assert r.exit_code == 0, r.output
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["scale"] == 4 and {k: cfg[k] for k in TINY} == TINY and cfg["lr"] == 2.5e-4
    for args, needle in ((["--scale", 3], "scale"), (["--crop", 30], "multiple"), (["--z", "mean"], "--z"),
                         (["--rrdb", 0], "--rrdb"), (["--lambda-lr", -1], "--lambda-lr")):
        r = run_cli("train", "hcflow", "--data", folders[0], "--out", tmp_path / "bad", "--iters", 1,
                    "--batch", 2, "--crop", 32, *TINY_CLI, *args)
        assert r.exit_code != 0 and r.output.strip().count("\n") == 0, r.output
        assert needle in r.output, r.output
    assert not (tmp_path / "bad" / "last.pt").exists()


# -- a tiny HCFlow in the codec ----------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_hcflow(tmp_path_factory):
    """A tiny random-weight HCFlow x4, registered as tiny-hcflow-x4 (no codecs: never a default)."""
    from safetensors.torch import save_file

    path = tmp_path_factory.mktemp("hcflow") / "tiny-hcflow-x4.safetensors"
    model = _randomise(HCFlow(4, **TINY), std=0.01)
    save_file({k: v.half().contiguous() for k, v in model.state_dict().items()}, str(path))
    registry.register(registry.ModelSpec(name="tiny-hcflow-x4", arch="hcflow", scale=4, params=dict(TINY),
                                         weights=str(path), codecs=(), description="random-weight test HCFlow"))
    try:
        yield registry.get_spec("tiny-hcflow-x4")
    finally:
        registry.unregister("tiny-hcflow-x4")


@pytest.mark.parametrize("codec", ["png", "jpeg"])
def test_round_trip_through_the_api(tiny_hcflow, photo, codec):
    data = api.encode(photo, scale=None, codec=codec, model="tiny-hcflow-x4")
    header = api.read(data).header
    assert header.model == "tiny-hcflow-x4" and header.scale == 4
    out = api.decode(data)
    assert out.size == (photo.shape[1], photo.shape[0])
    err = np.abs(np.asarray(out, dtype=np.int16) - photo.astype(np.int16)).mean()
    assert err < 60
    assert np.array_equal(np.asarray(api.decode(data)), np.asarray(out))


def test_cli_round_trip_and_seeded_temperature(tiny_hcflow, png, tmp_path):
    irc_file = tmp_path / "h.irc"
    r = run_cli("encode", png, "--model", "tiny-hcflow-x4", "--codec", "png", "-o", irc_file)
    assert r.exit_code == 0, r.output
    outs = {}
    for name, args in (("mode", []), ("a", ["-t", 0.8, "--seed", 1]), ("b", ["-t", 0.8, "--seed", 1]),
                       ("c", ["-t", 0.8, "--seed", 2])):
        r = run_cli("decode", irc_file, "-o", tmp_path / f"{name}.png", *args)
        assert r.exit_code == 0, r.output
        with Image.open(tmp_path / f"{name}.png") as im:
            assert im.size == (67, 45)
            outs[name] = np.asarray(im)
    assert np.array_equal(outs["a"], outs["b"]) and not np.array_equal(outs["a"], outs["c"])
    assert not np.array_equal(outs["a"], outs["mode"])


def test_bench_compares_the_shipped_hcflow_at_x4():
    """`irc bench --models auto` puts one model of every other shipped family beside the x4 default."""
    from irc.cli.bench import other_families

    if "hcflow-x4" not in registry.all_models():
        pytest.skip("hcflow-x4 is not shipped in this checkout")
    assert "hcflow-x4" in other_families([4])


def test_tables_name_the_family_as_the_docs_do(tiny_hcflow):
    from irc.bench.engine import rescaled_label

    assert registry.display_name("hcflow") == "HCFlow" and registry.display_name("irn") == "IRN"
    assert rescaled_label(4, "png", "tiny-hcflow-x4", None) == "HCFlow x4 (tiny-hcflow-x4) + PNG"
