"""The lossy path: CRM model, CRM recorded at encode and applied at decode, training plumbing."""

import json

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from irc import api
from irc.cli import app
from irc.models.crm import CRM
from irc.models.registry import default_crm

runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_untrained_crm_is_identity_and_quality_matters():
    torch.manual_seed(0)
    x = torch.rand(2, 3, 20, 24)
    crm = CRM(nf=8, gc=4, blocks=2)
    assert torch.equal(crm(x, 30.0), x)
    with torch.no_grad():
        for p in crm.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    a, b = crm(x, torch.tensor([10.0, 10.0])), crm(x, torch.tensor([90.0, 90.0]))
    assert a.shape == x.shape and not torch.allclose(a, b)  # conditioned on the quality
    # per-sample qualities: sample 0 at q10 equals a[0]
    mixed = crm(x, torch.tensor([10.0, 90.0]))
    assert torch.allclose(mixed[0], a[0], atol=1e-6) and torch.allclose(mixed[1], b[1], atol=1e-6)
    # channels-last inference (what load_model uses) gives the same restoration
    fast = CRM(nf=8, gc=4, blocks=2)
    fast.load_state_dict(crm.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(fast.channels_last()(x, torch.tensor([10.0, 90.0])), mixed, atol=1e-5, rtol=0)


def test_lossy_encode_records_crm_and_decode_applies_it(photo):
    data = api.encode(photo, scale=2, codec="jpeg", quality=40)
    hd = api.read(data).header
    assert hd.crm == "tiny-crm-tiny-x2-jpeg" and len(hd.crm_sha256) == 16
    with_crm = np.asarray(api.decode(data))
    without = np.asarray(api.decode(data, use_crm=False))
    assert with_crm.shape == photo.shape == without.shape
    assert not np.array_equal(with_crm, without)
    assert np.array_equal(with_crm, np.asarray(api.decode(data)))  # deterministic
    # lossless payloads and --crm none record no CRM
    assert api.read(api.encode(photo, scale=2, codec="png")).header.crm is None
    assert api.read(api.encode(photo, scale=2, codec="jpeg", quality=40, crm="none")).header.crm is None


def test_crm_choice_is_checked(photo):
    from irc.errors import IrcError

    with pytest.raises(IrcError, match="restores tiny-x2"):
        api.encode(photo, scale=4, codec="jpeg", quality=40, crm="tiny-crm-tiny-x2-jpeg")
    with pytest.raises(IrcError, match="not a restore model"):
        api.encode(photo, scale=2, codec="jpeg", quality=40, crm="tiny-x2")
    assert default_crm("tiny-x2", "webp") is None
    assert default_crm("bicubic", "jpeg", scale=2).name == "tiny-crm-bicubic-jpeg"
    assert default_crm("bicubic", "jpeg", scale=8) is None  # none at x8, shipped or test


def test_cli_no_crm_and_missing_crm(tmp_path, photo):
    src = tmp_path / "p.png"
    Image.fromarray(photo).save(src)
    r = run("encode", src, "-s", 2, "--codec", "jpeg", "-q", 30)
    assert r.exit_code == 0 and "+ tiny-crm-tiny-x2-jpeg" in r.output, r.output
    assert run("decode", tmp_path / "p.irc", "-o", tmp_path / "a.png").exit_code == 0
    assert run("decode", tmp_path / "p.irc", "-o", tmp_path / "b.png", "--no-crm").exit_code == 0
    a, b = np.asarray(Image.open(tmp_path / "a.png")), np.asarray(Image.open(tmp_path / "b.png"))
    assert a.shape == b.shape == photo.shape and not np.array_equal(a, b)
    # a file naming a CRM this installation lacks: one clear line, and --no-crm still decodes
    from irc import container

    f = api.read(tmp_path / "p.irc")
    f.header.crm = "crm-from-the-future"
    (tmp_path / "f.irc").write_bytes(container.dumps(f))
    r = run("decode", tmp_path / "f.irc", "-o", tmp_path / "c.png")
    assert r.exit_code == 1 and "--no-crm" in r.output and "Traceback" not in r.output
    assert run("decode", tmp_path / "f.irc", "-o", tmp_path / "c.png", "--no-crm").exit_code == 0


@pytest.fixture
def train_dir(tmp_path, photo):
    data = tmp_path / "data"
    data.mkdir()
    big = np.concatenate([photo, photo[:, ::-1]], 1)
    for i in range(3):
        Image.fromarray(np.roll(big, 9 * i, axis=1)).save(data / f"{i}.png")
    return data


def test_train_crm_resumes_exactly_and_exports(tmp_path, train_dir):
    common = ["train", "crm", "--scale", 2, "--base", "tiny-x2", "--data", train_dir, "--crop", 16,
              "--batch", 2, "--iters", 12, "--warmup", 2, "--nf", 8, "--gc", 4, "--blocks", 1, "--threads", 1]
    r = run(*common, "--out", tmp_path / "full", "--val-dir", train_dir, "--val-every", 10)
    assert r.exit_code == 0, r.output
    assert run(*common, "--out", tmp_path / "split", "--time-budget", 0).exit_code == 0
    r = run("train", "crm", "--out", tmp_path / "split", "--resume")
    assert r.exit_code == 0, r.output
    rows = {}
    for name in ("full", "split"):
        recs = [json.loads(l) for l in (tmp_path / name / "log.jsonl").read_text().splitlines()]
        rows[name] = {r["iter"]: r["loss"] for r in recs if "loss" in r}
        if name == "full":
            assert any("val_lr_gain_q10" in r for r in recs)
    assert rows["full"][12] == pytest.approx(rows["split"][12], rel=1e-5)
    assert run("train", "export", tmp_path / "split" / "last.pt", tmp_path / "c.safetensors").exit_code == 0


def test_crm_hr_target_pairs_aligned_hr_crops(tmp_path, train_dir):
    """With --target hr every LR crop comes with the HR window it was made from, flipped alike."""
    from irc.resample import bicubic_down
    from irc.train.crm import CRMTrainConfig, LRPairSampler

    cfg = CRMTrainConfig(base="bicubic", data=[str(train_dir)], out=str(tmp_path / "s"), crop=16, q_min=95, q_max=95)
    cfg.target = "hr"  # the sampler alone (training refuses it): bicubic is a known LR to check the crops against
    (tmp_path / "s").mkdir()
    degraded, clean, q, hr = LRPairSampler(cfg, log=lambda _: None).sample(6)
    assert hr.shape == (6, 3, 32, 32) and clean.shape == (6, 3, 16, 16) and q.tolist() == [95.0] * 6
    for lr_crop, hr_crop in zip(clean, hr):
        again = bicubic_down((hr_crop.permute(1, 2, 0) * 255).round().byte().numpy(), 2)
        again = torch.from_numpy(np.array(again)).permute(2, 0, 1).float() / 255
        inner = (slice(None), slice(4, -4), slice(4, -4))  # away from the crop's own borders
        err = lambda lr: float((again[inner] - lr[inner]).abs().mean()) * 255  # noqa: E731
        assert err(lr_crop) < 3  # the fixture's noise and the crop border leave about 2 levels
        for wrong in (lr_crop.roll(1, 1), lr_crop.roll(1, 2), lr_crop.flip(1), lr_crop.flip(2)):
            assert err(wrong) > 5  # one LR pixel off, or flipped differently, shows


def test_train_crm_hr_target(tmp_path, train_dir):
    r = run("train", "crm", "--scale", 2, "--base", "tiny-x2", "--data", train_dir, "--crop", 16,
            "--batch", 2, "--iters", 10, "--warmup", 2, "--nf", 8, "--gc", 4, "--blocks", 1, "--threads", 1,
            "--target", "hr", "--val-dir", train_dir, "--val-images", 1, "--val-every", 10, "--out", tmp_path / "r")
    assert r.exit_code == 0, r.output
    assert json.loads((tmp_path / "r" / "config.json").read_text())["target"] == "hr"
    last = json.loads((tmp_path / "r" / "log.jsonl").read_text().splitlines()[-1])
    assert last["loss"] == last["mse_hr"] and "mse" in last
    assert "val_hr_gain" in last and "val_lr_gain" in last


@pytest.mark.parametrize("args,needle", [
    (["--target", "hr", "--base", "bicubic"], "IRN --base"),
    (["--target", "z"], "lr or hr"),
    (["--codec", "png"], "lossless"),
    (["--base", "tiny-x4"], "not a x2 model"),
    (["--q-min", "80", "--q-max", "20"], "--q-min"),
    (["--codec", "flif"], "JPEG XL"),
])
def test_train_crm_bad_options(tmp_path, train_dir, args, needle):
    r = run("train", "crm", "--scale", 2, "--data", train_dir, "--out", tmp_path / "r", *args)
    assert r.exit_code == 1 and needle in r.output and "Traceback" not in r.output


@pytest.mark.parametrize("degrade,rate", [("noise", 0), ("jpeg", 0), ("jpeg", 0.2)])
def test_train_irn_with_lossy_lr_in_the_loop(tmp_path, train_dir, degrade, rate):
    r = run("train", "irn", "--scale", 2, "--data", train_dir, "--crop", 32, "--batch", 2, "--iters", 3,
            "--warmup", 1, "--threads", 1, "--lr-degrade", degrade, "--degrade-q", "20,40",
            "--lambda-rate", rate, "--out", tmp_path / "r", "--init-from", api_weights("tiny-x2"))
    assert r.exit_code == 0, r.output
    cfg = json.loads((tmp_path / "r" / "config.json").read_text())
    assert cfg["lr_degrade"] == degrade and cfg["degrade_q_min"] == 20 and cfg["lambda_rate"] == rate
    log = [json.loads(line) for line in (tmp_path / "r" / "log.jsonl").read_text().splitlines()]
    assert ("rate" in log[-1]) == (rate > 0)  # the rate estimate is logged when it is trained on
    r = run("train", "irn", "--scale", 2, "--data", train_dir, "--lambda-rate", -1, "--out", tmp_path / "n")
    assert r.exit_code == 1 and "--lambda-rate" in r.output


def api_weights(name):
    from irc.models.registry import get_spec

    return get_spec(name).weights_path


def test_straight_through_codec_keeps_gradients():
    from irc.train.irn import IRNTrainConfig, degrade_lr

    y = torch.rand(2, 3, 16, 16, requires_grad=True)
    out = degrade_lr(y, IRNTrainConfig(lr_degrade="jpeg"), [10, 10])
    assert not torch.allclose(out, y)  # the forward value is the decoded JPEG
    out.sum().backward()
    assert torch.equal(y.grad, torch.ones_like(y))  # identity gradient


@pytest.fixture
def robust_model(tmp_path, monkeypatch, tiny_models):
    """A tiny JPEG-specific x2 IRN (as irn-x2-jpeg is) with its own CRM, next to tiny-x2."""
    from dataclasses import replace

    from tests.conftest import make_tiny, make_tiny_crm
    from irc.models import registry

    monkeypatch.setattr(registry, "_extra", dict(registry._extra))
    spec = replace(make_tiny(2, tmp_path / "rob.safetensors", seed=5), name="tiny-x2-jpeg", codecs=("jpeg",))
    crm = replace(make_tiny_crm(tmp_path / "rob-crm.safetensors", "tiny-x2-jpeg", 2, seed=6), name="tiny-crm-rob")
    registry.register(spec)
    registry.register(crm)
    yield spec
    registry.load_model.cache_clear()


def test_codec_specific_model_is_the_default_for_its_codec(robust_model, photo):
    from irc.models.registry import default_model

    assert default_model(2, "jpeg").name == "tiny-x2-jpeg"
    assert default_model(2, "webp").name == default_model(2, "png").name == default_model(2, "*").name == "tiny-x2"
    hd = api.read(api.encode(photo, scale=2, codec="jpeg", quality=40)).header
    assert (hd.model, hd.crm) == ("tiny-x2-jpeg", "tiny-crm-rob")
    assert api.read(api.encode(photo, scale=2, codec="png")).header.model == "tiny-x2"
    # --model still wins, and picks that model's own CRM
    hd = api.read(api.encode(photo, scale=2, codec="jpeg", quality=40, model="tiny-x2")).header
    assert (hd.model, hd.crm) == ("tiny-x2", "tiny-crm-tiny-x2-jpeg")


def test_bench_draws_the_robust_model_next_to_the_general_one(robust_model, tmp_path, photo):
    from irc.bench import engine
    from irc.bench.datasets import Dataset

    Image.fromarray(photo).save(tmp_path / "a.png")
    plan = engine.Plan(storage_scales=[], rd_scales=[2], rd_codecs=["jpeg"], codec_qualities={"jpeg": [30]},
                       rescaled_qualities={"jpeg": [30]}, ablations=True)
    ds = Dataset("t", [tmp_path / "a.png"], "folder")
    names = {p.pipeline for p in engine.Bench(ds, plan).run().points}
    assert {"IRN x2 + JPEG", "IRN x2 + JPEG + CRM", "IRN x2 (tiny-x2-jpeg) + JPEG",
            "IRN x2 (tiny-x2-jpeg) + JPEG + CRM", "Bicubic x2 + JPEG + CRM"} <= names
    # without ablations: only what `irc encode` would do
    plan.ablations = False
    names = {p.pipeline for p in engine.Bench(ds, plan).run().points}
    assert "IRN x2 (tiny-x2-jpeg) + JPEG + CRM" in names and "IRN x2 + JPEG + CRM" not in names


def test_jpeg_rate_estimate_follows_the_real_codec(photo):
    from irc.codecs import get_codec
    from irc.train.rate import _LUMA, jpeg_bits, quant_tables

    luma, chroma = quant_tables(torch.tensor([50.0, 100.0]))
    assert luma[0].flatten().tolist() == _LUMA and chroma[0, 7, 7] == 99  # q50: the Annex K tables
    assert torch.equal(luma[1], torch.ones(8, 8))  # q100: step 1
    flat = torch.full((1, 3, 32, 32), 0.4)
    assert jpeg_bits(flat, torch.tensor([40])).item() < 0.01  # AC only: a flat image costs (nearly) nothing
    c = get_codec("jpeg")
    rng = np.random.default_rng(1)
    smooth = np.asarray(Image.fromarray(photo).resize((64, 48)))
    noisy = np.clip(smooth + rng.normal(0, 25, smooth.shape), 0, 255).astype(np.uint8)
    est, real = [], []
    for img in (smooth, noisy):
        t = torch.from_numpy(img.copy()).permute(2, 0, 1)[None].float() / 255
        for q in (10, 40, 80):
            est.append(jpeg_bits(t, torch.tensor([q])).item())
            real.append(len(c.encode(img, c.settings(q, False))))
    est, real = np.array(est), np.array(real)
    # more bits for higher quality and for a noisier image, as JPEG; and the same ordering overall
    assert (np.diff(est[:3]) > 0).all() and (np.diff(est[3:]) > 0).all() and (est[3:] > est[:3]).all()
    assert np.corrcoef(est, real)[0, 1] > 0.95
    # differentiable: a rate term can pull the LR towards cheaper content
    t = torch.from_numpy(noisy.copy()).permute(2, 0, 1)[None].float().div(255).requires_grad_()
    jpeg_bits(t, torch.tensor([40])).sum().backward()
    assert t.grad.abs().sum() > 0
