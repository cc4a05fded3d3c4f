"""IRN+ (the GAN stage from a registered IRN): the discriminator, the split of the two
optimisation steps, a tiny run with resume and export, and the `irc train irn-plus` command."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from irc.errors import IrcError
from irc.models.irn import IRN
from irc.train.gan import Adversary, Discriminator
from irc.train.irn_plus import IRNPlusTrainConfig, irn_plus_losses, train_irn_plus

from .conftest import run_cli
from .conftest import image_folders, synthetic_image as _image
from .test_train_fgrn import _assert_one_line_error, _records

pytestmark = pytest.mark.usefixtures("one_thread")  # the trainers set --threads 1: restored after

SMALL_D = {"d_hidden": 8}  # the dense head only; the convolutions keep the paper's widths


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """(training folder: 3 images 64x64, validation folder: 1 image 48x40)."""
    return image_folders(tmp_path_factory.mktemp("irn-plus-data"), (64, 64), (40, 48))


def _config(folders, out, **kw) -> IRNPlusTrainConfig:
    train, val = folders
    base = dict(base="tiny-x2", data=[str(train)], out=str(out), iters=3, d_warmup=1, batch=2, crop=32,
                val_dir=str(val), val_images=1, val_every=3, threads=1, **SMALL_D)
    return IRNPlusTrainConfig(**{**base, **kw})


def _load(path):
    return torch.load(path, map_location="cpu", weights_only=False)


def _snapshot(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _same(module: torch.nn.Module, snap: dict[str, torch.Tensor]) -> bool:
    return all(torch.equal(v, snap[k]) for k, v in module.state_dict().items())


def _batch(seed: int = 0) -> torch.Tensor:
    return torch.from_numpy(np.stack([_image(32, 32, seed + i) for i in range(2)])).permute(0, 3, 1, 2) / 255.0


# -- the discriminator and the two steps ------------------------------------------------

def test_discriminator_takes_any_crop_and_has_the_documented_size():
    disc = Discriminator()
    assert sum(p.numel() for p in disc.parameters()) == 4_736_777  # as irc.train.gan says
    for side, n in ((32, 2), (48, 3)):
        assert disc(torch.rand(n, 3, side, side)).shape == (n,)
    assert Discriminator(norm="batch")(torch.rand(2, 3, 40, 40)).shape == (2,)
    with pytest.raises(ValueError, match="norm"):
        Discriminator(norm="layer")


def test_d_step_moves_only_the_discriminator_and_lowers_its_loss():
    torch.manual_seed(0)
    gen, adversary = IRN(2, blocks_per_module=1), Adversary(Discriminator(hidden=8), lr=1e-4)
    x = _batch()
    y, z = gen(x)
    fake = gen.inverse(y, torch.randn_like(z))  # with a graph back to the generator
    g_before, d_before = _snapshot(gen), _snapshot(adversary.disc)
    first = adversary.d_step(x, fake)
    assert _same(gen, g_before) and all(p.grad is None for p in gen.parameters())
    assert not _same(adversary.disc, d_before)
    later = [adversary.d_step(x, fake) for _ in range(4)][-1]  # Adam's first step may overshoot
    assert float(later["d_loss"]) < float(first["d_loss"]) - 0.2
    assert adversary.steps == 5
    assert set(first) == {"d_loss", "d_real", "d_fake", "d_acc", "gan"}


def test_g_step_moves_only_the_generator():
    torch.manual_seed(0)
    gen, adversary = IRN(2, blocks_per_module=1), Adversary(Discriminator(hidden=8))
    cfg = IRNPlusTrainConfig(scale=2, d_warmup=0, **SMALL_D)
    losses = irn_plus_losses(gen, adversary, _batch(), cfg)
    assert losses["loss"].requires_grad
    d_after_its_step = _snapshot(adversary.disc)
    losses["loss"].backward()
    assert all(p.grad is None for p in adversary.disc.parameters())  # frozen for the generator's pass
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in gen.parameters())
    g_before = _snapshot(gen)
    torch.optim.Adam(gen.parameters(), lr=1e-3).step()
    assert _same(adversary.disc, d_after_its_step) and not _same(gen, g_before)
    # the balance: the GAN term counts 1 / (144 * 144 * 3) against the mean pixel terms
    expected = 0.01 * losses["recon"] + 4 * losses["guide"] + losses["gan"] / (144 * 144 * 3)
    assert float(losses["loss"].detach()) == pytest.approx(float(expected.detach()), rel=1e-5)


def test_the_lowpass_term_is_off_by_default_and_weighs_in_when_asked():
    torch.manual_seed(0)
    gen, adversary = IRN(2, blocks_per_module=1), Adversary(Discriminator(hidden=8))
    assert "lowpass" not in irn_plus_losses(gen, adversary, _batch(), IRNPlusTrainConfig(scale=2, d_warmup=0, **SMALL_D))
    cfg = IRNPlusTrainConfig(scale=2, d_warmup=0, lambda_lowpass=0.5, **SMALL_D)
    losses = irn_plus_losses(gen, adversary, _batch(), cfg)
    assert float(losses["lowpass"].detach()) > 0  # an untrained IRN's decode is not the original at the LR's resolution
    expected = 0.01 * losses["recon"] + 4 * losses["guide"] + losses["gan"] / (144 * 144 * 3) + 0.5 * losses["lowpass"]
    assert float(losses["loss"].detach()) == pytest.approx(float(expected.detach()), rel=1e-5)
    grads = torch.autograd.grad(losses["lowpass"], [p for p in gen.parameters() if p.requires_grad], allow_unused=True)
    assert any(g is not None and g.abs().sum() > 0 for g in grads)  # it trains the generator


def test_warm_up_trains_the_discriminator_alone():
    torch.manual_seed(0)
    gen, adversary = IRN(2, blocks_per_module=1), Adversary(Discriminator(hidden=8))
    cfg = IRNPlusTrainConfig(scale=2, d_warmup=1, **SMALL_D)
    first = irn_plus_losses(gen, adversary, _batch(), cfg)
    assert not first["loss"].requires_grad and math.isfinite(float(first["gan"]))
    assert irn_plus_losses(gen, adversary, _batch(), cfg)["loss"].requires_grad


def test_z_ramp_eases_the_temperature_in():
    from irc.train.irn_plus import z_temperature_at

    cfg = IRNPlusTrainConfig(d_warmup=2, z_ramp=4, z_temperature=1.0)
    assert [z_temperature_at(s, cfg) for s in range(8)] == [0, 0, 0, 0.25, 0.5, 0.75, 1.0, 1.0]
    assert z_temperature_at(0, IRNPlusTrainConfig(d_warmup=2, z_temperature=0.8)) == 0.8  # no ramp


@pytest.mark.parametrize("kw,needle", [({"lambda_percp": 0.01}, "VGG"), ({"d_norm": "layer"}, "d_norm"),
                                       ({"z_temperature": -1.0}, "z_temperature")])
def test_bad_config_is_refused(folders, tmp_path, kw, needle):
    with pytest.raises(ValueError, match=needle):
        train_irn_plus(_config(folders, tmp_path / "run", **kw))
    assert not (tmp_path / "run" / "last.pt").exists()


# -- a run: log, resume, export ---------------------------------------------------------

def test_train_resume_and_export(folders, tmp_path, tiny_models):
    from safetensors.torch import load_file

    from irc.train.loop import export_weights

    out = tmp_path / "run"
    ckpt = train_irn_plus(_config(folders, out))
    state = _load(ckpt)
    assert state["step"] == 3 and state["adversary"]["steps"] == 3
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["scale"] == 2 and cfg["base_params"] == {"blocks_per_module": 1} and cfg["base"] == "tiny-x2"
    rec = [r for r in _records(out) if "loss" in r][-1]
    assert rec["iter"] == 3
    for key in ("loss", "recon", "guide", "gan", "d_loss", "d_real", "d_fake", "d_acc", "z_t", "cpu",
                "sec_per_step", "val_psnr_y"):
        assert key in rec and math.isfinite(rec[key]), key
    # the generator trained in steps 2 and 3 only (step 1 was the discriminator's warm-up)
    g_steps = {int(s["step"]) for s in state["opt"]["state"].values()}
    d_steps = {int(s["step"]) for s in state["adversary"]["opt"]["state"].values()}
    assert g_steps == {2} and d_steps == {3}
    base = {k: v.float() for k, v in load_file(str(tiny_models[2].weights_path)).items()}
    assert any(not torch.equal(state["model"][k], v) for k, v in base.items())

    ckpt = train_irn_plus(_config(folders, out, iters=5), resume=True)
    state = _load(ckpt)
    assert state["step"] == 5 and state["adversary"]["steps"] == 5
    # both optimizers went on from their saved state (fresh ones would count 2 steps each)
    assert {int(s["step"]) for s in state["opt"]["state"].values()} == {4}
    assert {int(s["step"]) for s in state["adversary"]["opt"]["state"].values()} == {5}
    recs = _records(out)
    resumed = [r for r in recs if r.get("event") == "resumed"]
    assert len(resumed) == 1 and resumed[0]["iter"] == 3

    dest = tmp_path / "irn-plus.safetensors"
    export_weights(ckpt, dest)
    exported = load_file(str(dest))
    IRN(2, blocks_per_module=1).load_state_dict(exported)  # strict: the generator, nothing of the discriminator
    assert set(exported) == set(base)


def test_warm_up_only_leaves_the_base_weights(folders, tmp_path, tiny_models):
    from safetensors.torch import load_file

    ckpt = train_irn_plus(_config(folders, tmp_path / "run", iters=1, d_warmup=5, val_dir=None))
    state = _load(ckpt)
    base = {k: v.float() for k, v in load_file(str(tiny_models[2].weights_path)).items()}
    assert all(torch.equal(state["model"][k], v) for k, v in base.items())
    assert state["opt"]["state"] == {} and state["adversary"]["steps"] == 1


def test_init_from_replaces_the_registered_weights(folders, tmp_path, tiny_models):
    """A first stage of the base's architecture (e.g. trained with sampled z) is the start,
    and the base's architecture still comes from the registry."""
    from safetensors.torch import load_file, save_file

    base = load_file(str(tiny_models[2].weights_path))
    other = {k: (v.float() + 0.01).to(v.dtype) for k, v in base.items()}
    save_file(other, str(tmp_path / "stage1.safetensors"))
    ckpt = train_irn_plus(_config(folders, tmp_path / "run", iters=1, d_warmup=5, val_dir=None,
                                  init_from=str(tmp_path / "stage1.safetensors")))
    state = _load(ckpt)
    assert all(torch.equal(state["model"][k], v.float()) for k, v in other.items())
    assert state["config"]["base"] == "tiny-x2" and state["config"]["init_from"].endswith("stage1.safetensors")


def test_d_init_from_starts_the_discriminator_from_another_run(folders, tmp_path, tiny_models):
    """A trained discriminator (weights and Adam moments) carries over to a new run of the same base;
    the new run counts its warm-up afresh, and a file without one is one clear error."""
    first = _load(train_irn_plus(_config(folders, tmp_path / "a", iters=2, d_warmup=5, val_dir=None)))
    ckpt = train_irn_plus(_config(folders, tmp_path / "b", iters=1, d_warmup=5, val_dir=None, d_lr=3e-4,
                                  d_init_from=str(tmp_path / "a" / "last.pt")))
    second = _load(ckpt)
    assert second["adversary"]["steps"] == 1  # one step here, on top of the loaded weights
    assert second["adversary"]["opt"]["state"][0]["step"] == first["adversary"]["opt"]["state"][0]["step"] + 1
    assert second["adversary"]["opt"]["param_groups"][0]["lr"] == 3e-4
    fresh = _load(train_irn_plus(_config(folders, tmp_path / "c", iters=1, d_warmup=5, val_dir=None, d_lr=3e-4)))
    key = next(iter(first["adversary"]["disc"]))
    assert not torch.equal(second["adversary"]["disc"][key], fresh["adversary"]["disc"][key])
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(1)}, str(tmp_path / "g.safetensors"))
    torch.save({"model": {}}, tmp_path / "nod.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    for bad, needle in ((tmp_path / "junk.pt", "cannot read"), (tmp_path / "g.safetensors", "no discriminator"),
                        (tmp_path / "nod.pt", "no discriminator")):
        with pytest.raises(IrcError, match=needle):
            train_irn_plus(_config(folders, tmp_path / f"r-{bad.stem}", iters=1, val_dir=None, d_init_from=str(bad)))


# -- the command ------------------------------------------------------------------------

TINY_CLI = ["--base", "tiny-x2", "--batch", 2, "--crop", 32, "--threads", 1]


def test_cli_trains_and_exports(folders, tmp_path):
    out = tmp_path / "run"
    r = run_cli("train", "irn-plus", "--data", folders[0], "--out", out, "--iters", 2, "--d-warmup", 1,
                "--lambda-recon", 0.02, *TINY_CLI)
    assert r.exit_code == 0, r.output
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["lambda_recon"] == 0.02 and cfg["d_warmup"] == 1 and cfg["gan_norm_pixels"] == 144 * 144 * 3
    dest = tmp_path / "g.safetensors"
    assert run_cli("train", "export", out / "last.pt", dest).exit_code == 0
    from safetensors.torch import load_file

    IRN(2, blocks_per_module=1).load_state_dict(load_file(str(dest)))
    r = run_cli("train", "irn-plus", "--data", folders[0], "--out", out, "--iters", 2, *TINY_CLI)
    _assert_one_line_error(r, "--resume")


@pytest.mark.parametrize("args,needle", [
    (["--base", "no-such-model"], "unknown model"),
    (["--base", "tiny-crm-tiny-x2-jpeg"], "not an IRN"),
    (["--crop", 33], "--crop"),
    (["--d-norm", "layer"], "--d-norm"),
    (["--d-warmup", -1], "--d-warmup"),
    (["--d-lr", 0], "--d-lr"),
    (["--lambda-lowpass", -0.1], "--lambda-lowpass"),
    (["--z-ramp", -5], "--z-ramp"),
    (["--init-from", "no/such/stage1.pt"], "--init-from"),
    (["--d-init-from", "no/such/last.pt"], "--d-init-from"),
])
def test_cli_bad_options_are_one_clear_line(folders, tmp_path, args, needle):
    out = tmp_path / "run"
    r = run_cli("train", "irn-plus", "--data", folders[0], "--out", out, "--iters", 2, *TINY_CLI, *args)
    _assert_one_line_error(r, needle)
    assert not (out / "last.pt").exists()


def test_the_discriminator_keeps_the_signal_through_its_layers():
    """He initialisation: without a normalisation, PyTorch's default one shrank the features'
    standard deviation about 40x over the eight convolutions and gave every crop the same logit."""
    torch.manual_seed(0)
    disc = Discriminator()
    h = torch.rand(4, 3, 64, 64) * 2 - 1
    stds = []
    with torch.no_grad():
        for layer in disc.features:
            h = layer(h)
            if isinstance(layer, torch.nn.LeakyReLU):
                stds.append(float(h.std()))
    assert min(stds) > 0.5 * stds[0]
