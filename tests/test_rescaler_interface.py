"""The one rescaler interface: every family through the registry, the API and the CLI.

A tiny random FGRN is registered next to conftest's tiny IRNs (with no codecs, so it
is never the default model of its scale) and goes through encode/decode exactly as IRN does.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from irc import api
from irc.errors import IrcError
from irc.models import registry
from irc.models.rescaler import Rescaler

from .conftest import run_cli

FGRN_TINY = {"nf": 8, "down_blocks": 1, "up_blocks": 1, "flow_cells": 1}
TINY_PARAMS = {"irn": {"blocks_per_module": 1}, "fgrn": FGRN_TINY, "irn_color": {"blocks": 1}}  # per family, for build(scale)
CRM_NAME = "tiny-crm-tiny-x2-jpeg"  # conftest's make_tiny_crm(..., base="tiny-x2", ...)


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def tiny_fgrn(tmp_path_factory):
    """A tiny FGRN x2 with random (non-identity) weights, registered as tiny-fgrn-x2."""
    from safetensors.torch import save_file

    from irc.models.fgrn import FGRN

    path = tmp_path_factory.mktemp("fgrn") / "tiny-fgrn-x2.safetensors"
    torch.manual_seed(0)
    model = FGRN(2, **FGRN_TINY)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.01)
    save_file({k: v.half().contiguous() for k, v in model.state_dict().items()}, str(path))
    spec = registry.ModelSpec(name="tiny-fgrn-x2", arch="fgrn", scale=2, params=dict(FGRN_TINY),
                              weights=str(path), codecs=(), description="random-weight test FGRN")
    registry.register(spec)
    try:
        yield registry.get_spec("tiny-fgrn-x2")
    finally:
        registry.unregister("tiny-fgrn-x2")
    assert "tiny-fgrn-x2" not in registry.all_models()


def test_registered_fgrn_is_not_the_default(tiny_fgrn):
    for codec in ("png", "jpeg", "*"):
        assert registry.default_model(2, codec).name == "tiny-x2"


# -- the API ---------------------------------------------------------------------------

@pytest.mark.parametrize("codec", ["png", "jpeg"])
def test_fgrn_round_trips_through_the_api(tiny_fgrn, photo, codec):
    data = api.encode(photo, scale=None, codec=codec, model="tiny-fgrn-x2")
    header = api.read(data).header
    assert header.model == "tiny-fgrn-x2" and header.scale == 2
    assert header.weights_sha256 == tiny_fgrn.sha256()
    assert header.crm is None  # png: lossless; jpeg: no CRM is registered for tiny-fgrn-x2
    assert (header.lr_width, header.lr_height) == (34, 23)
    out = api.decode(data)
    assert out.size == (photo.shape[1], photo.shape[0]) and out.mode == "RGB"
    err = np.abs(np.asarray(out, dtype=np.int16) - photo.astype(np.int16)).mean()
    assert err < 60  # random weights: not good, but an image of the right content range
    assert np.array_equal(np.asarray(api.decode(data)), np.asarray(out))  # deterministic


def test_fgrn_scale_must_match(tiny_fgrn, photo):
    with pytest.raises(IrcError, match="scale 2"):
        api.encode(photo, scale=4, codec="png", model="tiny-fgrn-x2")


def test_fgrn_round_trips_through_the_cli(tiny_fgrn, png, tmp_path):
    irc_file, decoded = tmp_path / "f.irc", tmp_path / "f.png"
    r = run_cli("encode", png, "--model", "tiny-fgrn-x2", "--codec", "png", "-o", irc_file)
    assert r.exit_code == 0, r.output
    assert api.read(irc_file).header.model == "tiny-fgrn-x2"
    r = run_cli("decode", irc_file, "-o", decoded)
    assert r.exit_code == 0, r.output
    with Image.open(decoded) as im:
        assert im.size == (67, 45) and im.mode == "RGB"
    # the same bytes as the in-memory API
    assert np.array_equal(np.asarray(Image.open(decoded)), np.asarray(api.decode(irc_file)))


def test_encode_with_a_restore_model_is_refused(photo):
    with pytest.raises(IrcError, match="not a rescaler"):
        api.encode(photo, scale=None, codec="png", model=CRM_NAME)


@pytest.mark.parametrize("name", ["tiny-x2", "tiny-fgrn-x2"])
def test_downscale_upscale_accept_a_loaded_model(tiny_fgrn, photo, name):
    loaded = registry.load(name)
    lr_name = api.downscale(photo, name)
    lr_loaded = api.downscale(photo, loaded)
    assert lr_name.dtype == np.uint8 and lr_name.shape == (23, 34, 3)
    assert np.array_equal(lr_name, lr_loaded)
    size = (photo.shape[1], photo.shape[0])
    hr_name = api.upscale(lr_name, name, size)
    hr_loaded = api.upscale(lr_name, loaded, size)
    assert hr_name.shape == photo.shape and np.array_equal(hr_name, hr_loaded)


def test_upscale_with_a_loaded_crm(photo):
    lr = api.downscale(photo, "tiny-x2")
    a = api.upscale(lr, "tiny-x2", crm=CRM_NAME, quality=40)
    b = api.upscale(lr, registry.load("tiny-x2"), crm=registry.load(CRM_NAME), quality=40)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, api.upscale(lr, "tiny-x2"))  # the CRM did something


def test_downscale_refuses_a_restore_model(photo):
    with pytest.raises(IrcError, match="not a rescaler"):
        api.downscale(photo, CRM_NAME)
    with pytest.raises(IrcError, match="not a rescaler"):
        api.upscale(photo[:10, :10], registry.load(CRM_NAME))


# -- the registry ----------------------------------------------------------------------

@pytest.mark.parametrize("arch", ["irn", "fgrn", "crm"])
def test_family_modules_define_build(arch):
    module = registry.family(arch)
    assert module.__name__ == f"irc.models.{arch}" and callable(module.build)


@pytest.mark.parametrize("arch", ["nope", "../x", "registry", "rescaler", "layout", "", "IRN", "irn.x"])
def test_unknown_family_is_an_irc_error(arch):
    with pytest.raises(IrcError, match="architecture|build"):
        registry.family(arch)


@pytest.mark.parametrize("arch,role", [("crm", "restore"), ("irn", "rescaler"), ("fgrn", "rescaler")])
def test_role_follows_the_family(arch, role):
    assert registry.ModelSpec(name="x", arch=arch, scale=2).role == role


def test_registered_roles(tiny_fgrn, tiny_models):
    assert tiny_fgrn.role == "rescaler"
    assert registry.get_spec("tiny-x2").role == "rescaler"
    assert registry.get_spec(CRM_NAME).role == "restore"


def test_load_resolves_once_and_passes_through():
    loaded = registry.load("tiny-x2")
    assert isinstance(loaded, registry.Loaded)
    assert loaded.scale == 2 and loaded.key == "tiny-x2" and loaded.device == "cpu"
    # the cached network (lru_cache keys on the call's form: load() passes the device positionally)
    assert loaded.net is registry.load_model("tiny-x2", "cpu")
    assert registry.load("tiny-x2").net is loaded.net
    assert loaded.sha256 == registry.get_spec("tiny-x2").sha256()
    assert isinstance(loaded.net, Rescaler) and not loaded.net.training
    assert registry.load(loaded) is loaded
    assert registry.load(loaded, role="rescaler") is loaded
    assert registry.load(registry.get_spec("tiny-x2")).net is loaded.net
    with pytest.raises(IrcError, match="not a restore model"):
        registry.load(loaded, role="restore")


def test_load_checks_the_role():
    with pytest.raises(IrcError, match="not a rescaler"):
        registry.load(CRM_NAME, role="rescaler")
    with pytest.raises(IrcError, match="not a restore model"):
        registry.load("tiny-x2", role="restore")
    assert registry.load(CRM_NAME, role="restore").spec.role == "restore"
    with pytest.raises(IrcError, match="unknown model"):
        registry.load("no-such-model")


def test_loaded_fgrn_is_the_saved_network(tiny_fgrn):
    from safetensors.torch import load_file

    loaded = registry.load("tiny-fgrn-x2", role="rescaler")
    assert type(loaded.net).__name__ == "FGRN" and loaded.scale == 2
    saved = load_file(str(tiny_fgrn.weights_path))
    for k, v in loaded.net.state_dict().items():
        assert torch.equal(v, saved[k].float()), k


# -- the interface of every family -----------------------------------------------------

def _rescaler_families() -> list[str]:
    shipped = {s.arch for s in registry.all_versions().values() if s.role == "rescaler"}
    return sorted(shipped | {"irn", "fgrn"})


@pytest.mark.parametrize("arch", _rescaler_families())
def test_every_family_builds_a_rescaler(arch):
    """Every shipped family at a scale it has (2, or 1 for a colour model), through the interface:
    ``lr_channels`` image channels, then ``side_channels`` (irc/models/rescaler.py)."""
    torch.manual_seed(0)
    family = registry.family(arch)
    scale = 1 if getattr(family, "LR_CHANNELS", 3) == 1 else 2
    net = family.build(scale, **TINY_PARAMS.get(arch, {}))
    assert isinstance(net, Rescaler) and net.scale == scale
    x = torch.rand(2, 3, 16, 24)
    with torch.no_grad():
        y = net.encode_lr(x)
        lr = net.downscale(x)
        assert y.shape == lr.shape == (2, net.lr_channels + net.side_channels, 16 // scale, 24 // scale)
        assert lr.min() >= 0 and lr.max() <= 1
        torch.testing.assert_close(lr * 255, (lr * 255).round(), atol=1e-4, rtol=0)
        hr = net.upscale(lr)
        assert hr.shape == x.shape
        gen = torch.Generator().manual_seed(1)
        assert net.upscale(lr, 0.5, gen).shape == x.shape  # every family takes the latent arguments


def test_downscale_is_quantized_encode_lr_with_straight_through_gradient():
    from irc.models.rescaler import quantize

    torch.manual_seed(0)
    net = registry.family("fgrn").build(2, **FGRN_TINY)
    x = torch.rand(1, 3, 8, 8, requires_grad=True)
    lr = net.downscale(x)
    torch.testing.assert_close(lr, quantize(net.encode_lr(x)).detach(), atol=0, rtol=0)
    lr.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


# -- IRN through the interface equals its old direct computation ------------------------

@pytest.mark.parametrize("channels_last", [False, True])
def test_irn_interface_equals_forward_and_inverse(channels_last):
    from irc.models.irn import IRN

    torch.manual_seed(0)
    net = IRN(4, blocks_per_module=1)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(torch.randn_like(p) * 0.02)
    net.eval()
    if channels_last:
        net.channels_last()
    x = torch.rand(2, 3, 16, 24)
    with torch.no_grad():
        y_old, z_old = net(x)
        y = net.encode_lr(x)
        assert torch.equal(y, y_old)
        yq = net.downscale(x)
        assert torch.equal(net.upscale(yq), net.inverse(yq))
        assert torch.equal(net.upscale(yq, 0.0, torch.Generator().manual_seed(5)), net.inverse(yq))
        # temperature: z ~ N(0, T^2) from the generator, as the old decode drew it
        shape = (2, net.out_channels - 3, 4, 6)
        z = torch.randn(shape, generator=torch.Generator().manual_seed(7)) * 0.8
        assert torch.equal(net.upscale(yq, 0.8, torch.Generator().manual_seed(7)), net.inverse(yq, z))


def test_registered_irn_interface_equals_forward_and_inverse():
    net = registry.load("tiny-x2").net
    x = torch.rand(1, 3, 10, 14)
    with torch.no_grad():
        y = net.encode_lr(x)
        assert torch.equal(y, net(x)[0])
        assert torch.equal(net.upscale(y), net.inverse(y))
