"""BDFlow: the Boundary-aware Mask (irc.bam), the network (sizes, invertibility, the output split, the
identity at initialisation, the side channel), its trainer (Eq. 7 terms, BAW switching, a tiny run
resumed) and `irc train bdflow`."""

from __future__ import annotations

import json

import pytest
import torch
from torch.nn import functional as F

from irc.bam import baw_weight, boundary_mask, boundary_strength, quantize_levels, to_lr_grid
from irc.models.bdflow import DEFAULTS, BDFlow, build
from irc.models.rescaler import count_parameters
from irc.train.bdflow import BDFlowTrainConfig, bdflow_losses, train_bdflow
from irc.train.rescaling import validate

from .conftest import image_folders, run_cli
from .test_fgrn import _randomise, _smooth

TINY = {"blocks_per_level": 1, "nf": 8, "res_blocks": 1}
TINY_CLI = ["--blocks-per-level", 1, "--nf", 8, "--res-blocks", 1, "--threads", 1]

pytestmark = pytest.mark.usefixtures("one_thread")


def _step_image(h=16, w=24, col=12, contrast=0.8, channels=3):
    """Dark left of ``col``, ``contrast`` from ``col`` on: one vertical step edge."""
    x = torch.zeros(1, channels, h, w)
    x[..., col:] = contrast
    return x


# -- the Boundary-aware Mask -------------------------------------------------------------------

def test_step_edge_gives_one_thin_boundary_column():
    b_s = boundary_strength(_step_image())
    assert b_s.shape == (1, 1, 16, 24) and b_s.dtype == torch.float32
    cols = (b_s[0, 0] > 0).nonzero()[:, 1]
    assert (b_s[0, 0] > 0).sum(1).tolist() == [1] * 16  # every row: exactly one pixel (NMS thins the edge)
    assert set(cols.tolist()) <= {11, 12}  # on the edge, nowhere else
    assert (b_s[b_s > 0] > 50).all() and (b_s[b_s > 0] < 4 * 255).all()  # 0-255 scale magnitudes
    # axis-aligned edge: no vertical gradient, so the 1-norm equals the 2-norm
    assert torch.allclose(boundary_strength(_step_image(), norm=1), b_s)


def test_nothing_below_the_threshold():
    assert boundary_strength(_step_image(contrast=0.05)).abs().sum() == 0  # ~33 on the 0-255 scale < T = 50
    assert boundary_strength(_step_image(contrast=0.05), threshold=20).gt(0).any()
    strong = boundary_strength(_step_image())
    assert boundary_strength(_step_image(), threshold=float(strong.max()) + 1).abs().sum() == 0
    assert boundary_strength(torch.full((2, 3, 12, 12), 0.4)).abs().sum() == 0  # flat: no boundary


def test_gray_input_equals_its_rgb_luma_and_batches_are_independent():
    gray = _step_image(channels=1)
    assert torch.allclose(boundary_strength(gray), boundary_strength(gray.repeat(1, 3, 1, 1)), atol=1e-3)
    batch = torch.cat([_step_image(), torch.full((1, 3, 16, 24), 0.3)])
    b_s = boundary_strength(batch)
    assert torch.equal(b_s[:1], boundary_strength(_step_image())) and b_s[1].abs().sum() == 0
    with pytest.raises(ValueError):
        boundary_strength(torch.rand(1, 2, 8, 8))


def test_mask_levels_for_one_and_two_bits():
    binary = boundary_mask(_step_image(), bits=1)
    assert set(binary.unique().tolist()) == {0.0, 1.0}
    assert torch.equal(binary > 0, boundary_strength(_step_image()) > 0)
    steps = torch.zeros(1, 1, 8, 64)  # four bands of rising contrast (26 to 255 on the 0-255 scale) on black
    for i, level in enumerate((0.1, 0.3, 0.6, 1.0)):
        steps[..., 16 * i + 8:16 * i + 16] = level
    two = boundary_mask(steps, bits=2)
    assert torch.allclose(two.unique(), torch.tensor([0, 1 / 3, 2 / 3, 1]))
    three = boundary_mask(steps, bits=3)
    assert torch.equal(three > 0, two > 0) and len(three.unique()) <= 8
    assert torch.allclose(three * 7, (three * 7).round(), atol=1e-6)
    with pytest.raises(ValueError):
        boundary_mask(steps, bits=4)


def test_quantize_levels_and_its_straight_through_gradient():
    b = torch.tensor([-0.3, 0.0, 0.1, 0.2, 0.49, 0.51, 0.9, 1.0, 1.7], requires_grad=True)
    for bits in (1, 2, 3):
        n = 2**bits - 1
        q = quantize_levels(b, bits)
        assert torch.allclose(q * n, (q * n).round(), atol=1e-6) and q.min() >= 0 and q.max() <= 1
        assert len(quantize_levels(torch.linspace(0, 1, 101), bits).unique()) == 2**bits
    assert quantize_levels(b, 1).tolist() == [0, 0, 0, 0, 0, 1, 1, 1, 1]
    quantize_levels(b, 2).sum().backward()
    assert b.grad.tolist() == [0, 1, 1, 1, 1, 1, 1, 1, 0]  # identity inside [0, 1], clamped outside


def test_to_lr_grid_is_a_block_max():
    mask = torch.zeros(1, 1, 16, 16)
    mask[0, 0, 5, 6], mask[0, 0, 4, 4] = 1 / 3, 1.0
    lr = to_lr_grid(mask, 4)
    assert lr.shape == (1, 1, 4, 4)
    assert lr[0, 0, 1, 1] == 1.0 and lr.sum() == 1.0
    mask[0, 0, 4, 4] = 0
    assert to_lr_grid(mask, 4)[0, 0, 1, 1] == pytest.approx(1 / 3) and to_lr_grid(mask, 8).shape == (1, 1, 2, 2)


def test_baw_weight_spans_lambda2_to_lambda2_plus_one_per_image():
    b_s = torch.rand(2, 1, 8, 8) * 300
    b_s[1] *= 0.1
    w = baw_weight(b_s, 2.0)
    for i in range(2):
        assert w[i].min() == pytest.approx(2.0) and w[i].max() == pytest.approx(3.0)
    assert torch.equal(baw_weight(torch.zeros(1, 1, 4, 4), 2.0), torch.full((1, 1, 4, 4), 2.0))  # max == min


# -- the network -------------------------------------------------------------------------------

def test_paper_size():
    assert count_parameters(build(8)) == 3_155_670  # paper Table 2: 3.16M
    assert count_parameters(build(16)) == 4_610_616  # paper Table 2: 4.58M
    assert DEFAULTS[8]["blocks_per_level"] == DEFAULTS[16]["blocks_per_level"] == 2  # section 4.2
    assert build(16, bits=3).side_bits == 3 and build(8).side_bits == 1 and BDFlow.side_channels == 1


@pytest.mark.parametrize("kwargs", [{"scale": 3}, {"scale": 6}, {"scale": 1}, {"scale": 2.0},
                                    {"scale": 8, "bits": 0}, {"scale": 8, "bits": 4}])
def test_bad_arguments_rejected(kwargs):
    with pytest.raises(ValueError):
        BDFlow(**{**TINY, **kwargs})


@pytest.mark.parametrize("scale", [2, 4, 8])
def test_inverse_with_the_true_outputs_is_exact_and_the_split(scale):
    model = _randomise(BDFlow(scale, **{**TINY, "blocks_per_level": 2})).eval()
    x = torch.rand(2, 3, 4 * scale, 3 * scale)
    with torch.no_grad():
        y, b, z = model(x)
        assert y.shape == (2, 3, 4, 3) and b.shape == (2, 1, 4, 3) and z.shape == (2, 3 * 4**model.levels - 4, 4, 3)
        assert (model.inverse(y, b, z) - x).abs().max() < 1e-4
        assert 0.01 < (model.inverse(y, b) - x).abs().mean()  # z carries information


def test_untrained_network_is_box_down_and_nearest_up():
    model = BDFlow(4, **TINY).eval()
    x = torch.rand(1, 3, 16, 12)
    with torch.no_grad():
        y, b, z = model(x)
        up = model.upscale(torch.cat([y, torch.zeros_like(b)], 1))
    assert torch.allclose(y, F.avg_pool2d(x, 4), atol=1e-6)
    assert torch.allclose(up, F.interpolate(y, scale_factor=4, mode="nearest"), atol=1e-6)
    # b is Haar detail: at x2 the first horizontal band of the red channel
    y2, b2, _ = BDFlow(2, **TINY).eval()(x)
    r = x[:, :1]
    band = (r[..., 0::2, 0::2] - r[..., 0::2, 1::2] + r[..., 1::2, 0::2] - r[..., 1::2, 1::2]) / 4
    assert torch.allclose(b2, band, atol=1e-6)


def test_side_channel_quantisation_and_straight_through():
    for bits in (1, 2, 3):
        model = BDFlow(2, bits=bits, **TINY)
        b = torch.linspace(-0.5, 1.5, 81).view(1, 1, 9, 9).requires_grad_()
        q = model.quantize_side(b)
        n = 2**bits - 1
        assert sorted(set((q * n).round().int().flatten().tolist())) == list(range(n + 1))
        assert torch.allclose(q * n, (q * n).round(), atol=1e-6)
        q.sum().backward()
        inside = (b >= 0) & (b <= 1)
        assert torch.equal(b.grad, inside.float())


def test_downscale_is_what_the_decoder_receives():
    model = _randomise(BDFlow(4, bits=2, **TINY), std=0.02).eval()
    x = _smooth(32, 24)
    with torch.no_grad():
        lr = model.downscale(x)
        y, b, _ = model(x)
        assert lr.shape == (1, 4, 8, 6)
        assert torch.equal(lr[:, :3] * 255, (y.clamp(0, 1) * 255).round())
        assert torch.equal(lr[:, 3:], model.quantize_side(b))
        assert torch.equal(model.upscale(lr), model.inverse(lr[:, :3], lr[:, 3:]))
        assert torch.equal(model.encode_lr(x), torch.cat([y, model.quantize_side(b)], 1))
        assert torch.equal(model.encode_side(x), b)
        # 8-bit values of the levels (2 bits: 0, 85, 170, 255; 3 bits would round) snap back exactly
        assert torch.equal(model.upscale((lr * 255).round() / 255), model.upscale(lr))
        with pytest.raises(ValueError):
            model.upscale(lr[:, :3])


def test_temperature_sampling_is_seeded_and_channels_last_agrees():
    model = _randomise(BDFlow(4, **TINY), std=0.02).eval()
    lr = torch.rand(1, 4, 6, 6)
    with torch.no_grad():
        mode = model.upscale(lr)
        a = model.upscale(lr, 0.8, torch.Generator().manual_seed(3))
        b = model.upscale(lr, 0.8, torch.Generator().manual_seed(3))
        c = model.upscale(lr, 0.8, torch.Generator().manual_seed(4))
        assert torch.equal(a, b) and not torch.equal(a, c) and not torch.allclose(a, mode)
        x = _smooth(24, 24)
        y = model.encode_lr(x)
        model.channels_last()
        assert (model.upscale(lr) - mode).abs().max() < 1e-4
        assert (model.encode_lr(x) - y).abs().max() < 1e-5


# -- the trainer -------------------------------------------------------------------------------

def _cfg(**kw):
    return BDFlowTrainConfig(scale=4, **TINY, **kw)


def test_loss_terms_are_finite_and_reach_every_parameter():
    model = _randomise(BDFlow(4, **TINY), std=0.02)
    x = torch.cat([_smooth(32, 32), _step_image(32, 32, 13)])
    terms = bdflow_losses(model, x, _cfg())
    assert {"loss", "forw", "back", "bam", "latent"} <= set(terms)
    assert all(torch.isfinite(v).all() for v in terms.values())
    expected = 2 * terms["forw"] + terms["back"] + 16 * terms["bam"] + 4 * terms["latent"]
    assert torch.allclose(terms["loss"], expected)
    terms["loss"].backward()
    dead = [name for name, p in model.named_parameters() if p.grad is None or p.grad.abs().sum() == 0]
    assert not dead, dead


def test_bam_target_is_the_max_pooled_mask():
    model = BDFlow(4, **TINY)
    x = _step_image(32, 32, 13)
    with torch.no_grad():
        b = model(x)[1]
        bam = bdflow_losses(model, x, _cfg())["bam"]
    target = to_lr_grid(boundary_mask(x), 4)
    assert target.sum() > 0 and torch.allclose(bam, ((b - target) ** 2).mean())


def test_baw_switches_on_at_baw_start_step():
    model = _randomise(BDFlow(4, **TINY), std=0.02).eval()
    x = _step_image(32, 32, 13) * 0.5 + _smooth(32, 32) * 0.5
    cfg = _cfg(baw_start_step=5)
    with torch.no_grad():
        before, at, after = (bdflow_losses(model, x, cfg, step=s) for s in (4, 5, 50))
        y, b, _ = model(x)
        from irc.models.rescaler import quantize

        err = (model.inverse(quantize(y), model.quantize_side(b)) - x).abs()
    assert torch.allclose(before["back"], 2 * err.mean())
    weight = baw_weight(boundary_strength(x), 2.0)
    assert torch.allclose(at["back"], (weight * err).mean()) and torch.allclose(after["back"], at["back"])
    assert at["back"] > before["back"] and before["baw"] == 0 and at["baw"] == 1
    assert torch.allclose(before["bam"], at["bam"]) and torch.allclose(before["forw"], at["forw"])


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """(training folder: 3 images 80x80, validation folder: 1 image 48x64)."""
    return image_folders(tmp_path_factory.mktemp("bdflow-data"), (80, 80), (48, 64))


def test_train_validate_and_resume(folders, tmp_path):
    train, val = folders
    cfg = BDFlowTrainConfig(scale=8, **TINY, bits=2, data=[str(train)], out=str(tmp_path / "run"), iters=4, batch=2,
                            crop=32, warmup=1, val_dir=str(val), val_images=1, val_every=2, threads=1,
                            precision="fp32", baw_start_step=3)
    ckpt = train_bdflow(cfg)
    recs = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    last = [r for r in recs if "val_psnr_y" in r][-1]
    assert last["iter"] == 4 and last["baw"] == 1.0 and {"forw", "back", "bam", "latent"} <= set(last)
    state = torch.load(ckpt, weights_only=False)
    assert state["bdflow_clock"] == {"step": 4}
    assert not any("clock" in k or "step" in k for k in state["model"])  # the weights hold parameters only
    cfg.iters = 6
    train_bdflow(cfg, resume=True)
    state = torch.load(ckpt, weights_only=False)
    assert state["step"] == 6 and state["bdflow_clock"] == {"step": 6}
    model = BDFlow(8, bits=2, **TINY)
    model.load_state_dict(state["model"])
    from irc.train.rescaling import load_val_images

    assert validate(model.eval(), load_val_images(str(val), 1), 8, torch.device("cpu"))["psnr_y"] > 10


def test_bad_trainer_options_refused(tmp_path):
    for kw in ({"norm": 3}, {"sigma": -1.0}, {"baw_start_step": -1}, {"lambda4": -1.0}):
        with pytest.raises(ValueError):
            train_bdflow(BDFlowTrainConfig(scale=8, **TINY, out=str(tmp_path / "r"), **kw))
    assert not (tmp_path / "r").exists()


def test_cli_trains_and_refuses_bad_options(folders, tmp_path):
    out = tmp_path / "run"
    r = run_cli("train", "bdflow", "--data", folders[0], "--out", out, "--iters", 2, "--batch", 2, "--crop", 32,
                "--bits", 2, "--threshold", 40, "--baw-start-step", 1, *TINY_CLI)
    assert r.exit_code == 0, r.output
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["scale"] == 8 and {k: cfg[k] for k in TINY} == TINY and cfg["lr"] == 2e-4
    assert (cfg["bits"], cfg["threshold"], cfg["baw_start_step"], cfg["lambda4"]) == (2, 40.0, 1, 16.0)
    for args, needle in ((["--scale", 3], "scale"), (["--bits", 4], "--bits"), (["--crop", 36], "multiple"),
                         (["--res-blocks", -1], "--res-blocks"), (["--lambda4", -1], "--lambda4"),
                         (["--threshold", -5], "--threshold")):
        r = run_cli("train", "bdflow", "--data", folders[0], "--out", tmp_path / "bad", "--iters", 1,
                    "--batch", 2, "--crop", 32, *TINY_CLI, *args)
        assert r.exit_code != 0 and r.output.strip().count("\n") == 0, r.output
        assert needle in r.output, r.output
    assert not (tmp_path / "bad" / "last.pt").exists()
