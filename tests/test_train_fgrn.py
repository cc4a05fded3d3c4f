"""FGRN training on the shared loop, and the `irc train fgrn` command (tiny models, a few steps)."""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch.nn import functional as F

from irc.train.fgrn import FGRNTrainConfig, fgrn_losses, train_fgrn

from .conftest import image_folders, run_cli, synthetic_image as _image  # noqa: F401  (_image: shared)

TINY = {"nf": 8, "down_blocks": 1, "up_blocks": 1, "flow_cells": 1}
TINY_CLI = ["--nf", 8, "--down-blocks", 1, "--up-blocks", 1, "--flow-cells", 1, "--threads", 1]


pytestmark = pytest.mark.usefixtures("one_thread")  # the trainers set --threads 1: restored after


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """(training folder: 3 images 80x80, validation folder: 1 image 64x48)."""
    return image_folders(tmp_path_factory.mktemp("fgrn-data"), (80, 80), (48, 64))


def _records(run_dir) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]


def _config(folders, out, **kw) -> FGRNTrainConfig:
    train, val = folders
    base = dict(scale=2, **TINY, data=[str(train)], out=str(out), iters=6, batch=2, crop=32, warmup=2,
                val_dir=str(val), val_images=1, val_every=3, threads=1)
    return FGRNTrainConfig(**{**base, **kw})


# -- the trainer -----------------------------------------------------------------------

def test_train_log_and_resume(folders, tmp_path):
    out = tmp_path / "run"
    ckpt = train_fgrn(_config(folders, out))
    assert ckpt == out / "last.pt" and ckpt.exists()
    assert (out / "config.json").exists()
    state = torch.load(ckpt, map_location="cpu", weights_only=False)
    assert state["step"] == 6 and "cpu" in state
    recs = [r for r in _records(out) if "loss" in r]
    assert recs and recs[-1]["iter"] == 6
    for key in ("loss", "recon", "guide", "logdet", "cpu", "val_psnr_y", "val_psnr_rgb"):
        assert key in recs[-1], key
    assert all(math.isfinite(recs[-1][k]) for k in ("loss", "recon", "guide", "logdet", "val_psnr_y"))
    assert recs[-1]["val_psnr_y"] > 10  # box down / bilinear up of a smooth image, nearly
    cpu_before = recs[-1]["cpu"]

    ckpt = train_fgrn(_config(folders, out, iters=8), resume=True)
    assert torch.load(ckpt, map_location="cpu", weights_only=False)["step"] == 8
    recs = _records(out)
    resumed = [r for r in recs if r.get("event") == "resumed"]
    assert len(resumed) == 1 and resumed[0]["iter"] == 6
    after = recs[recs.index(resumed[0]) + 1:]
    assert [r["iter"] for r in after if "loss" in r] == [8]
    cpus = [r["cpu"] for r in recs if "cpu" in r]
    assert cpus == sorted(cpus) and cpus[-1] >= cpu_before
    assert "val_psnr_y" in after[-1]


@pytest.mark.parametrize("kw", [{"recon_path": "lr"}, {"lr_degrade": "noise"}])
def test_other_reconstruction_paths_train(folders, tmp_path, kw):
    out = tmp_path / "run"
    train_fgrn(_config(folders, out, iters=2, val_dir=None, **kw))
    rec = [r for r in _records(out) if "loss" in r][-1]
    assert rec["iter"] == 2 and all(math.isfinite(rec[k]) for k in ("loss", "recon", "guide"))


def test_bad_recon_path_is_refused(folders, tmp_path):
    out = tmp_path / "run"
    with pytest.raises(ValueError, match="recon_path"):
        train_fgrn(_config(folders, out, recon_path="bad"))
    assert not (out / "last.pt").exists()


def _smooth_batch(seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    small = torch.rand(2, 3, 6, 6, generator=gen)
    return F.interpolate(small, size=(32, 32), mode="bicubic", align_corners=False).clamp(0, 1)


def test_losses_decrease_on_a_fixed_batch():
    from irc.models.fgrn import build

    torch.manual_seed(0)
    model = build(2, **TINY)
    cfg = FGRNTrainConfig(scale=2, **TINY)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    x = _smooth_batch()
    recons, guides = [], []
    for _ in range(30):
        losses = fgrn_losses(model, x, cfg)
        opt.zero_grad(set_to_none=True)
        losses["loss"].backward()
        opt.step()
        recons.append(float(losses["recon"].detach()))
        guides.append(float(losses["guide"].detach()))
    assert all(math.isfinite(v) for v in recons + guides)
    assert recons[-1] < recons[0], recons
    assert min(recons[-5:]) < 0.9 * recons[0], recons


def test_fgrn_losses_terms_and_paths():
    from irc.models.fgrn import build

    torch.manual_seed(0)
    model = build(2, **TINY)
    x = _smooth_batch(1)
    paper = fgrn_losses(model, x, FGRNTrainConfig(scale=2, **TINY))
    assert set(paper) == {"loss", "recon", "guide", "logdet"}
    assert float(paper["logdet"]) == 0.0  # a fresh flow is the identity
    with torch.no_grad():  # a flow away from the identity (at it, F(rep) is already on the 8-bit grid)
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)

    def flow_grad(cfg) -> float:
        model.zero_grad(set_to_none=True)
        fgrn_losses(model, x, cfg)["recon"].backward()
        return sum(float(p.grad.abs().sum()) for p in model.cells.parameters() if p.grad is not None)

    assert flow_grad(FGRNTrainConfig(scale=2, **TINY)) == 0.0  # Eq. 7 bypasses F
    assert flow_grad(FGRNTrainConfig(scale=2, recon_path="lr", **TINY)) > 0  # through F, Q(F(.)) and F^-1
    assert flow_grad(FGRNTrainConfig(scale=2, lr_degrade="noise", **TINY)) > 0  # noise forces that path


# -- the command line ------------------------------------------------------------------

def _assert_one_line_error(r, needle: str | None = None) -> None:
    assert r.exit_code != 0, r.output
    assert r.exception is None or isinstance(r.exception, SystemExit), repr(r.exception)
    assert "Traceback" not in r.output
    assert r.output.strip().count("\n") == 0, r.output
    assert "error" in r.output.lower(), r.output
    if needle:
        assert needle.lower() in r.output.lower(), r.output


@pytest.fixture(scope="module")
def cli_run(folders, tmp_path_factory):
    """A 2-step `irc train fgrn` run: its folder."""
    out = tmp_path_factory.mktemp("fgrn-cli") / "run"
    r = run_cli("train", "fgrn", "--scale", 2, "--data", folders[0], "--out", out, "--iters", 2,
                "--batch", 2, "--crop", 32, *TINY_CLI)
    assert r.exit_code == 0, r.output
    assert "checkpoint:" in r.output
    return out


def test_cli_trains(cli_run):
    assert (cli_run / "last.pt").exists()
    cfg = json.loads((cli_run / "config.json").read_text())
    assert cfg["scale"] == 2 and cfg["iters"] == 2 and cfg["recon_path"] == "paper"
    assert {k: cfg[k] for k in TINY} == TINY
    assert [r["iter"] for r in _records(cli_run) if "loss" in r] == [2]


@pytest.mark.parametrize("args,needle", [
    (["--scale", 3], "scale"),
    (["NODATA"], "--data"),
    (["--recon-path", "bad"], "--recon-path"),
    (["--precision", "fp16"], "--precision"),
    (["--ema", 1.5], "--ema"),
    (["--ema", -0.1], "--ema"),
    (["--schedule", "nope"], "--schedule"),
    (["--nf", 0], "--nf"),
    (["--up-blocks", -1], "--up-blocks"),
    (["--iters", 0], "--iters"),
    (["--lr-degrade", "gif"], "gif"),
])
def test_cli_bad_options_are_one_clear_line(folders, tmp_path, args, needle):
    out = tmp_path / "run"
    data = [] if args == ["NODATA"] else ["--data", folders[0]]
    args = [] if args == ["NODATA"] else args
    r = run_cli("train", "fgrn", *data, "--out", out, "--iters", 2, "--batch", 2, "--crop", 32,
                *TINY_CLI, *args)
    _assert_one_line_error(r, needle)
    assert not (out / "last.pt").exists()


def test_cli_existing_run_needs_resume(cli_run, folders):
    before = (cli_run / "last.pt").read_bytes()
    r = run_cli("train", "fgrn", "--data", folders[0], "--out", cli_run, "--iters", 2, *TINY_CLI)
    _assert_one_line_error(r, "--resume")
    assert (cli_run / "last.pt").read_bytes() == before


def test_cli_resume_without_a_run_is_one_clear_line(tmp_path):
    r = run_cli("train", "fgrn", "--out", tmp_path / "none", "--resume", "--threads", 1)
    _assert_one_line_error(r, "nothing to resume")


def test_cli_export_loads_into_the_family(cli_run, tmp_path):
    from safetensors.torch import load_file

    from irc.models.fgrn import build

    dest = tmp_path / "fgrn.safetensors"
    r = run_cli("train", "export", cli_run / "last.pt", dest)
    assert r.exit_code == 0, r.output
    state = load_file(str(dest))
    assert all(v.dtype == torch.float16 for v in state.values())
    model = build(2, **TINY)
    model.load_state_dict(state)  # strict: the same tensors, no optimizer state
    raw = torch.load(cli_run / "last.pt", map_location="cpu", weights_only=False)["model"]
    assert set(state) == set(raw)
    for k, v in raw.items():
        assert torch.equal(state[k], v.half()), k
    # exporting over it needs --force
    r = run_cli("train", "export", cli_run / "last.pt", dest)
    _assert_one_line_error(r, "--force")


def test_cli_fgrn_with_ema_exports_the_average(folders, tmp_path):
    from safetensors.torch import load_file

    from irc.models.fgrn import build

    out = tmp_path / "run"
    r = run_cli("train", "fgrn", "--data", folders[0], "--out", out, "--iters", 2, "--batch", 1,
                "--crop", 16, "--precision", "fp32", "--ema", 0.5, *TINY_CLI)
    assert r.exit_code == 0, r.output
    state = torch.load(out / "last.pt", map_location="cpu", weights_only=False)
    assert "ema" in state and state["config"]["ema"] == 0.5 and state["config"]["precision"] == "fp32"
    dest = tmp_path / "ema.safetensors"
    assert run_cli("train", "export", out / "last.pt", dest).exit_code == 0
    exported = load_file(str(dest))
    build(2, **TINY).load_state_dict(exported)
    ema = {k[len("module."):]: v for k, v in state["ema"].items() if k.startswith("module.")}
    assert all(torch.equal(exported[k], v.half()) for k, v in ema.items())
    assert any(not torch.equal(ema[k], state["model"][k]) for k in ema)  # the average, not the raw weights


def test_cli_irn_accepts_precision_and_ema(folders, tmp_path):
    out = tmp_path / "irn"
    r = run_cli("train", "irn", "--scale", 2, "--data", folders[0], "--out", out, "--iters", 2,
                "--batch", 1, "--crop", 16, "--warmup", 1, "--threads", 1, "--precision", "fp32", "--ema", 0.99)
    assert r.exit_code == 0, r.output
    state = torch.load(out / "last.pt", map_location="cpu", weights_only=False)
    assert state["step"] == 2 and "ema" in state
    assert state["config"]["precision"] == "fp32" and state["config"]["ema"] == 0.99
    rec = [r for r in _records(out) if "loss" in r][-1]
    assert rec["iter"] == 2 and "cpu" in rec


@pytest.mark.parametrize("args,needle", [(["--precision", "fp16"], "--precision"), (["--ema", 1.0], "--ema")])
def test_cli_irn_bad_precision_and_ema(folders, tmp_path, args, needle):
    r = run_cli("train", "irn", "--data", folders[0], "--out", tmp_path / "irn", "--iters", 1, *args)
    _assert_one_line_error(r, needle)
    assert not (tmp_path / "irn" / "last.pt").exists()
