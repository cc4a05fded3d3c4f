"""IRN_LD: IRN with learned downsampling (squeeze + invertible 1x1 convolution, IRN paper 3.3.2),
its training at scale 3, and --init-from a network of another shape (partial initialisation)."""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch.nn import functional as F

from irc.models import registry
from irc.models.irn import IRN, Haar, LearnedDownsampling, count_parameters
from irc.train.irn import IRNTrainConfig, irn_losses, train_irn
from irc.train.loop import init_message, init_partial
from irc.train.rescaling import bicubic_down

from .conftest import run_cli
from .conftest import image_folders
from .test_train_fgrn import _assert_one_line_error, _records

pytestmark = pytest.mark.usefixtures("one_thread")  # the trainers set --threads 1: restored after

LD = {"downsampling": "learned"}


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """(training folder: 3 images 80x80, validation folder: 1 image 64x48, 64 not a multiple of 3)."""
    return image_folders(tmp_path_factory.mktemp("irn-ld-data"), (80, 80), (48, 64))


def _perturb(model: torch.nn.Module, std: float = 0.02, seed: int = 0) -> torch.nn.Module:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * std)
    return model


# -- the learned downsampling ------------------------------------------------------------

@pytest.mark.parametrize("factor", [2, 3, 4])
def test_learned_downsampling_is_exactly_invertible_with_its_log_det(factor):
    torch.manual_seed(0)
    down = _perturb(LearnedDownsampling(factor), 0.02)
    x = torch.rand(2, 3, 6 * factor, 5 * factor)
    y = down(x)
    assert y.shape == (2, 3 * factor * factor, 6, 5)
    torch.testing.assert_close(down.inverse(y), x, atol=1e-5, rtol=0)
    w = down.matrix()
    assert w.shape == (3 * factor**2, 3 * factor**2)
    assert abs(float(down.log_det().detach()) - float(torch.linalg.slogdet(w.detach()).logabsdet)) < 1e-4
    torch.testing.assert_close(down.matrix(inverse=True) @ w, torch.eye(len(w), dtype=w.dtype), atol=1e-9, rtol=0)


@pytest.mark.parametrize("factor", [2, 3, 5])
def test_learned_downsampling_starts_as_the_box_average(factor):
    x = torch.rand(2, 3, 4 * factor, 3 * factor)
    down = LearnedDownsampling(factor)
    y = down(x)
    torch.testing.assert_close(y[:, :3], F.avg_pool2d(x, factor), atol=1e-6, rtol=0)
    torch.testing.assert_close(down.inverse(y), x, atol=1e-5, rtol=0)
    assert abs(float(down.log_det().detach()) - 3 * factor**2 * math.log(1 / factor)) < 1e-4  # orthogonal / f
    if factor == 2:  # the 2x2 DCT-II basis is the Haar basis: the same bands, same order
        torch.testing.assert_close(y, Haar()(x), atol=1e-6, rtol=0)


def test_learned_downsampling_gradients_reach_its_factors():
    down = LearnedDownsampling(3)
    x = torch.rand(1, 3, 9, 9)
    down.inverse(down(x) * 1.5).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in down.parameters())
    assert torch.count_nonzero(torch.triu(down.lower.grad)) == 0  # only the strict triangles are used
    assert torch.count_nonzero(torch.tril(down.upper.grad)) == 0


# -- IRN_LD ------------------------------------------------------------------------------

def test_irn_ld_round_trip_shapes_and_fresh_box_average():
    torch.manual_seed(0)
    fresh = IRN(3, blocks_per_module=2, **LD)
    x = torch.rand(2, 3, 18, 24)
    torch.testing.assert_close(fresh.encode_lr(x), F.avg_pool2d(x, 3), atol=1e-6, rtol=0)
    model = _perturb(IRN(3, blocks_per_module=2, **LD))
    y, z = model(x)
    assert y.shape == (2, 3, 6, 8) and z.shape == (2, 24, 6, 8)
    assert model.encode_lr(x).shape == (2, 3, 6, 8)
    torch.testing.assert_close(model.inverse(y, z), x, atol=1e-4, rtol=0)
    assert model.upscale(model.downscale(x)).shape == x.shape


def test_irn_ld_traces_with_the_matrices_as_constants():
    """The exporters (OpenVINO) trace the passes: W and W^-1 must come in as constants."""
    import warnings

    model = _perturb(IRN(3, blocks_per_module=1, **LD)).eval()
    y = torch.rand(1, 3, 5, 6)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit.trace's deprecation and its notes on constants
        traced = torch.jit.trace_module(model, {"upscale": (y,)}, check_trace=False)
        graph = str(traced.upscale.graph)
        assert "linalg" not in graph and "matmul" not in graph and "pixel_shuffle" in graph
        torch.testing.assert_close(traced.upscale(y), model.upscale(y), atol=1e-6, rtol=0)


def test_irn_ld_parameter_count_and_registry_build():
    spec = registry.ModelSpec(name="ld", arch="irn", scale=3, params={"downsampling": "learned",
                                                                       "blocks_per_module": 12})
    net = registry.build(spec)
    assert isinstance(net, IRN) and net.downsampling == "learned" and net.out_channels == 27
    assert len(net.stages) == 1 and len(net.stages[0]) == 12
    assert count_parameters(net) == 3_140_433  # paper: 3.14M


def test_haar_irn_keeps_its_state_dict_names():
    keys = list(IRN(2).state_dict())
    assert len(keys) == 240
    assert keys[:3] == ["stages.0.0.phi.convs.0.weight", "stages.0.0.phi.convs.0.bias",
                        "stages.0.0.phi.convs.1.weight"]
    for k in ("stages.0.7.rho.out.bias", "stages.0.3.eta.convs.3.weight", "stages.0.5.phi.out.weight"):
        assert k in keys
    assert not any(k.startswith(("down.", "haar.")) for k in keys)
    assert len(IRN(4, blocks_per_module=1).state_dict()) == 60


def test_bad_irn_options_are_refused():
    with pytest.raises(ValueError, match="power of two"):
        IRN(3)
    with pytest.raises(ValueError, match="downsampling"):
        IRN(2, downsampling="bicubic")
    with pytest.raises(ValueError, match="haar_first"):
        IRN(4, haar_first=True, **LD)
    with pytest.raises(ValueError, match=">= 2"):
        IRN(1, **LD)


# -- training at scale 3 -----------------------------------------------------------------

def test_bicubic_guide_at_scale_3():
    x = torch.rand(1, 3, 66, 48)
    assert bicubic_down(x, 3).shape == (1, 3, 22, 16)
    cfg = IRNTrainConfig(scale=3, blocks_per_module=1, **LD)
    terms = irn_losses(IRN(3, blocks_per_module=1, **LD), x, cfg)
    assert all(math.isfinite(float(v.detach())) for v in terms.values())
    assert float(terms["guide"].detach()) < 1e-3  # the box average is close to the bicubic one


def _config(folders, out, **kw) -> IRNTrainConfig:
    train, val = folders
    base = {"scale": 3, "blocks_per_module": 1, "downsampling": "learned", "data": [str(train)], "out": str(out),
            "iters": 3, "batch": 2, "crop": 24, "warmup": 1, "val_dir": str(val), "val_images": 1, "val_every": 3,
            "threads": 1}
    return IRNTrainConfig(**{**base, **kw})


def test_train_irn_ld_at_scale_3(folders, tmp_path):
    out = tmp_path / "run"
    ckpt = train_irn(_config(folders, out))
    state = torch.load(ckpt, map_location="cpu", weights_only=False)
    assert state["step"] == 3 and "down.lower" in state["model"]
    assert state["config"]["downsampling"] == "learned" and state["config"]["scale"] == 3
    rec = [r for r in _records(out) if "loss" in r][-1]
    assert rec["iter"] == 3 and all(math.isfinite(rec[k]) for k in ("loss", "recon", "guide", "val_psnr_y"))
    assert rec["val_psnr_y"] > 15  # the 64x48 validation image, cut to 63x48


def test_crop_not_a_multiple_of_the_scale_is_refused(folders, tmp_path):
    with pytest.raises(ValueError, match="multiple of the scale 3"):
        train_irn(_config(folders, tmp_path / "a", crop=32))
    with pytest.raises(ValueError, match="multiple of the scale 3"):
        train_irn(_config(folders, tmp_path / "b", crop_stages=[[0, 24, 2], [2, 40, 1]]))
    assert not (tmp_path / "a" / "last.pt").exists()


# -- partial initialisation from another shape --------------------------------------------

def test_partial_init_copies_the_matching_tensors(tmp_path):
    from safetensors.torch import save_file

    src = _perturb(IRN(2, blocks_per_module=2), 0.05, seed=3)
    path = tmp_path / "x2.safetensors"
    save_file({k: v.contiguous() for k, v in src.state_dict().items()}, str(path))
    torch.manual_seed(1)
    model = IRN(3, blocks_per_module=3, **LD)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    report = init_partial(model, str(path))
    # per InvBlock: the first four convolutions of eta and rho (3 input channels at x2 and x3) and
    # phi's biases (32 channels; its output: 3); phi's weights (input 9 vs 24 channels) and the
    # last convolutions of eta and rho (output 9 vs 24) differ in shape
    copied = [f"stages.0.{b}.{net}.convs.{i}.{t}" for b in range(2) for net in ("eta", "rho")
              for i in range(4) for t in ("weight", "bias")]
    copied += [f"stages.0.{b}.phi.{conv}.bias" for b in range(2)
               for conv in ("convs.0", "convs.1", "convs.2", "convs.3", "out")]
    after, source = model.state_dict(), src.state_dict()
    for k in after:
        assert torch.equal(after[k], source[k] if k in copied else before[k]), k
    assert report["copied"] == len(copied) == 42
    assert report["left"] == len(after) - 42 and report["unused"] == len(source) - 42
    assert report["copied_params"] == sum(source[k].numel() for k in copied)
    assert report["copied_params"] + report["left_params"] == count_parameters(model)
    message = init_message(report, str(path))
    assert "partial initialisation" in message and "copied 42 of" in message
    assert "left at init" in message


def test_cli_trains_irn_ld_initialised_from_an_x2_model(folders, tmp_path):
    out = tmp_path / "ld"
    r = run_cli("train", "irn", "--scale", 3, "--downsampling", "learned", "--blocks-per-module", 1,
                "--data", folders[0], "--out", out, "--iters", 2, "--batch", 1, "--crop", 24, "--warmup", 1,
                "--threads", 1, "--init-from", "tiny-x2")
    assert r.exit_code == 0, r.output
    assert "partial initialisation from" in r.output and "copied 21 of" in r.output, r.output
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["downsampling"] == "learned" and cfg["blocks_per_module"] == 1 and cfg["scale"] == 3
    assert cfg["init_from"] == str(registry.get_spec("tiny-x2").weights_path)
    dest = tmp_path / "ld.safetensors"
    assert run_cli("train", "export", out / "last.pt", dest).exit_code == 0
    from safetensors.torch import load_file

    IRN(3, blocks_per_module=1, **LD).load_state_dict(load_file(str(dest)))  # strict


@pytest.mark.parametrize("args,needle", [
    (["--scale", 3], "scale"),  # Haar needs a power of two
    (["--scale", 3, "--downsampling", "learned", "--crop", 32], "--crop 30 or 33"),
    (["--downsampling", "wavelet"], "--downsampling"),
    (["--arch", "irn-e", "--downsampling", "learned"], "irn-e"),
    (["--blocks-per-module", 0], "--blocks-per-module"),
    (["--init-from", "no-such-model"], "--init-from"),
])
def test_cli_irn_ld_bad_options_are_one_clear_line(folders, tmp_path, args, needle):
    out = tmp_path / "run"
    r = run_cli("train", "irn", "--data", folders[0], "--out", out, "--iters", 1, "--crop", 24, "--threads", 1,
                *args)
    _assert_one_line_error(r, needle)
    assert not (out / "last.pt").exists()


def test_campaign_recipe_builds_the_papers_x3():
    """`irc train campaign irn-ld-x3` trains IRN_LD x3 as the paper's (one module, 12 InvBlocks)."""
    from pathlib import Path

    from irc.train import campaign

    cfg = campaign.campaign_config("irn-ld-x3", Path("/nonexistent/irn-ld-x3"), [], None, 1, "cpu", None)
    net = campaign.trainer("irn-ld-x3").build_model(cfg)
    assert (cfg.scale, cfg.model_params()) == (3, {"blocks_per_module": 12, "haar_first": False,
                                                   "downsampling": "learned"})
    assert sum(p.numel() for p in net.parameters()) == 3_140_433
    assert all(crop % 3 == 0 for _, crop, _ in cfg.crop_stages)
