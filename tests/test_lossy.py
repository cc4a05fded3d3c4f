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
    assert default_crm("bicubic", "jpeg", scale=4) is None


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


@pytest.mark.parametrize("args,needle", [
    (["--codec", "png"], "lossless"),
    (["--base", "tiny-x4"], "not a x2 model"),
    (["--q-min", "80", "--q-max", "20"], "--q-min"),
    (["--codec", "flif"], "JPEG XL"),
])
def test_train_crm_bad_options(tmp_path, train_dir, args, needle):
    r = run("train", "crm", "--scale", 2, "--data", train_dir, "--out", tmp_path / "r", *args)
    assert r.exit_code == 1 and needle in r.output and "Traceback" not in r.output


@pytest.mark.parametrize("degrade", ["noise", "jpeg"])
def test_train_irn_with_lossy_lr_in_the_loop(tmp_path, train_dir, degrade):
    r = run("train", "irn", "--scale", 2, "--data", train_dir, "--crop", 32, "--batch", 2, "--iters", 3,
            "--warmup", 1, "--threads", 1, "--lr-degrade", degrade, "--degrade-q", "20,40",
            "--out", tmp_path / "r", "--init-from", api_weights("tiny-x2"))
    assert r.exit_code == 0, r.output
    cfg = json.loads((tmp_path / "r" / "config.json").read_text())
    assert cfg["lr_degrade"] == degrade and cfg["degrade_q_min"] == 20


def api_weights(name):
    from irc.models.registry import get_spec

    return get_spec(name).weights_path


def test_straight_through_codec_keeps_gradients():
    from irc.train.irn import IRNTrainConfig, degrade_lr

    y = torch.rand(2, 3, 16, 16, requires_grad=True)
    out = degrade_lr(y, IRNTrainConfig(lr_degrade="jpeg", degrade_q_min=10, degrade_q_max=10))
    assert not torch.allclose(out, y)  # the forward value is the decoded JPEG
    out.sum().backward()
    assert torch.equal(y.grad, torch.ones_like(y))  # identity gradient
