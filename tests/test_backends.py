"""Inference backends (irc.backends): torch is the reference, bit for bit the plain network;
OpenVINO (where installed) agrees with it within one 8-bit step on every pixel of an encode
and a decode, for every rescaler family and scale and the CRM; converted models are cached.

The OpenVINO tests skip where the package is absent (CI installs `.[test]` only).
"""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

from irc import api, backends, container
from irc.backends.torch_backend import TorchRunner
from irc.errors import IrcError
from irc.models import registry
from irc.tiling import pad_to_multiple

from .conftest import run_cli

CRM_NAME = "tiny-crm-tiny-x2-jpeg"  # conftest's tiny CRM for tiny-x2
FGRN_NAME = "tiny-fgrn-x2-backends"
TOLERANCE = 1  # OpenVINO vs torch fp32: at most one 8-bit step on any pixel (max |diff| <= 1/255)

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def tiny_fgrn(tmp_path_factory):
    """A tiny FGRN x2 with random (non-identity) weights, never a default model (no codecs)."""
    from safetensors.torch import save_file

    from irc.models.fgrn import FGRN

    params = {"nf": 8, "down_blocks": 1, "up_blocks": 1, "flow_cells": 2}
    path = tmp_path_factory.mktemp("fgrn-backends") / f"{FGRN_NAME}.safetensors"
    torch.manual_seed(1)
    model = FGRN(2, **params)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.01)
    save_file({k: v.half().contiguous() for k, v in model.state_dict().items()}, str(path))
    registry.register(registry.ModelSpec(name=FGRN_NAME, arch="fgrn", scale=2, params=params, weights=str(path),
                                         codecs=(), description="random-weight test FGRN"))
    yield FGRN_NAME
    registry.unregister(FGRN_NAME)


def _rgb(a) -> np.ndarray:
    return np.asarray(a.convert("RGB") if hasattr(a, "convert") else a, dtype=np.int16)


# -- torch: the reference, unchanged ----------------------------------------------------

def test_torch_fp32_runs_the_network_itself():
    loaded = registry.load("tiny-x2", backend="torch", precision="fp32")
    assert loaded.runner is loaded.net is registry.load_model("tiny-x2")
    assert loaded.backend == "torch" and loaded.precision == "fp32"
    assert registry.Loaded(loaded.spec, loaded.net, "cpu").runner is loaded.net  # a hand-made Loaded too


@pytest.mark.parametrize("name", ["tiny-x2", "tiny-x4", FGRN_NAME])
def test_torch_backend_is_bit_identical_to_the_network(tiny_fgrn, photo, name):
    net = registry.load_model(name)
    scale = registry.get_spec(name).scale
    x = pad_to_multiple(torch.from_numpy(photo).permute(2, 0, 1)[None].float() / 255, scale)
    with torch.inference_mode():
        y = net.encode_lr(x)
        hr = net.upscale((y.clamp(0, 1) * 255).round() / 255)
        runner = TorchRunner(net)
        assert torch.equal(runner.encode_lr(x), y) and torch.equal(runner.upscale(y), net.upscale(y))
    expect_lr = (y[0].clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()
    lr = api.downscale(photo, name, backend="torch", precision="fp32")
    assert np.array_equal(lr, expect_lr)
    expect_hr = (hr[0].clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()
    assert np.array_equal(api.upscale(lr, name, backend="torch", precision="fp32"), expect_hr)


def test_torch_bf16_runs_and_is_recorded(photo):
    data = api.encode(photo, scale=2, codec="png", backend="torch", precision="bf16")
    assert api.read(data).header.precision == "bf16"
    ref = api.decode(api.encode(photo, scale=2, codec="png", backend="torch", precision="fp32"))
    out = api.decode(data, backend="torch", precision="bf16")
    assert out.size == ref.size and np.abs(_rgb(out) - _rgb(ref)).mean() < 8  # bf16: close, not equal


def test_header_records_fp32_and_old_readers_ignore_other_values(photo):
    hd = api.read(api.encode(photo, scale=2, codec="png", backend="torch")).header
    assert hd.precision == "fp32"
    raw = {"model": "m", "weights_sha256": "0" * 16, "scale": 2, "codec": "png", "codec_version": "x",
           "quality": None, "width": 4, "height": 4, "mode": "RGB", "source_mode": "RGB", "lr_width": 2,
           "lr_height": 2}
    assert container.check_header(raw).precision is None  # files without it read as before
    assert container.check_header({**raw, "precision": "int8"}).precision == "int8"  # a later value reads too
    with pytest.raises(IrcError, match="precision"):
        container.check_header({**raw, "precision": 16})


# -- choosing a backend and a precision -------------------------------------------------

@pytest.fixture
def no_openvino(monkeypatch):
    """``import openvino`` fails, as where it is not installed."""
    backends.openvino_available.cache_clear()
    monkeypatch.setitem(sys.modules, "openvino", None)
    yield
    backends.openvino_available.cache_clear()


def test_auto_is_torch_without_openvino(no_openvino, monkeypatch):
    monkeypatch.delenv("IRC_BACKEND", raising=False)
    assert not backends.openvino_available()
    assert backends.resolve_backend("auto", "cpu") == "torch"
    assert backends.resolve_backend("auto", "cuda") == "torch"


def test_irc_backend_environment_sets_auto(monkeypatch):
    monkeypatch.setenv("IRC_BACKEND", "torch")
    assert backends.resolve_backend("auto") == "torch"
    monkeypatch.setenv("IRC_BACKEND", "nope")
    with pytest.raises(IrcError, match="IRC_BACKEND"):
        backends.resolve_backend("auto")


def test_openvino_asked_for_but_missing_is_one_clear_line(no_openvino, png, tmp_path):
    with pytest.raises(IrcError, match=r"pip install 'irc\[openvino\]'"):
        api.encode(png, scale=2, codec="png", backend="openvino")
    for args in (("encode", png, "-s", "2", "--codec", "png", "-o", tmp_path / "a.irc"),
                 ("decode", tmp_path / "missing.irc", "-o", tmp_path / "a.png")):
        r = run_cli(*args, "--backend", "openvino")
        assert r.exit_code != 0
        lines = [line for line in r.output.splitlines() if line.strip()]
        assert len(lines) == 1 and "needs the openvino package" in lines[0] and "irc[openvino]" in lines[0], r.output
        assert "Traceback" not in r.output
    assert not (tmp_path / "a.irc").exists()


@pytest.mark.parametrize("option,value,message", [("--backend", "nope", "unknown backend 'nope'"),
                                                   ("--precision", "fp8", "unknown precision 'fp8'")])
def test_unknown_backend_or_precision_is_one_clear_line(png, tmp_path, option, value, message):
    irc_file = tmp_path / "p.irc"
    assert run_cli("encode", png, "-s", "2", "--codec", "png", "-o", irc_file).exit_code == 0
    for args in (("encode", png, "-s", "2", "--codec", "png", "-o", tmp_path / "b.irc"),
                 ("decode", irc_file, "-o", tmp_path / "b.png")):
        r = run_cli(*args, option, value)
        assert r.exit_code != 0 and message in r.output and "Traceback" not in r.output, r.output
        assert len([line for line in r.output.splitlines() if line.strip()]) == 1, r.output
    with pytest.raises(IrcError, match="unknown backend"):
        api.decode(irc_file, backend="nope")


def test_auto_precision_needs_native_bf16_and_a_measured_budget(monkeypatch):
    from dataclasses import replace

    spec = registry.get_spec("tiny-x2")
    monkeypatch.setattr(backends, "native_bf16", lambda backend, device="cpu": True)
    assert backends.resolve_precision("auto", "torch", "cpu", spec) == "fp32"  # nothing measured
    assert backends.resolve_precision("auto", "torch", "cpu", replace(spec, kodak={"bf16_loss_db": 0.05})) == "fp32"
    within = replace(spec, kodak={"bf16_loss_db": 0.01})
    assert backends.resolve_precision("auto", "torch", "cpu", within) == "bf16"
    monkeypatch.setattr(backends, "native_bf16", lambda backend, device="cpu": False)
    assert backends.resolve_precision("auto", "torch", "cpu", within) == "fp32"
    assert backends.resolve_precision("bf16", "torch", "cpu", spec) == "bf16"  # asked for: as asked


def test_auto_precision_is_chosen_per_pass_on_the_measured_backend(monkeypatch):
    from dataclasses import replace

    spec = registry.get_spec("tiny-x2")
    monkeypatch.setattr(backends, "native_bf16", lambda backend, device="cpu": True)
    record = {"bf16": {"backend": "openvino", "loss_db": {"encode_lr": 0.03, "upscale": 0.005}}}
    mixed = replace(spec, kodak=record)
    assert backends.resolve_precision("auto", "openvino", "cpu", mixed) == {"encode_lr": "fp32", "upscale": "bf16"}
    assert backends.resolve_precision("auto", "torch", "cpu", mixed) == "fp32"  # measured on another backend
    both = replace(spec, kodak={"bf16": {"backend": "torch", "loss_db": {"encode_lr": 0.02, "upscale": 0.0}}})
    assert backends.resolve_precision("auto", "torch", "cpu", both) == "bf16"  # the budget is inclusive
    apart = replace(spec, kodak={"bf16": {"backend": "torch",
                                          "loss_db": {"encode_lr": 0.012, "upscale": 0.012, "both": 0.024}}})
    assert backends.resolve_precision("auto", "torch", "cpu", apart) == {"encode_lr": "fp32", "upscale": "bf16"}
    no_pair = replace(spec, kodak={"bf16": {"backend": "torch", "loss_db": {"encode_lr": 0.015, "upscale": 0.01}}})
    assert backends.resolve_precision("auto", "torch", "cpu", no_pair) == {"encode_lr": "fp32", "upscale": "bf16"}
    crm = registry.get_spec(CRM_NAME)
    assert backends.resolve_precision("auto", "torch", "cpu", replace(
        crm, kodak={"bf16": {"backend": "torch", "loss_db": {"restore": 0.001}}})) == "bf16"
    assert backends.resolve_precision("auto", "torch", "cpu", replace(
        crm, kodak={"bf16": {"backend": "torch", "loss_db": {"upscale": 0.001}}})) == "fp32"  # not its pass


def test_mixed_precision_runs_each_pass_as_chosen_and_the_header_records_the_encode(photo, monkeypatch):
    """encode_lr fp32 and upscale bf16 (torch autocast): the file says fp32, the decode runs bf16."""
    from dataclasses import replace

    spec = replace(registry.get_spec("tiny-x2"), name="tiny-x2-mixed",
                   kodak={"bf16": {"backend": "torch", "loss_db": {"encode_lr": 0.5, "upscale": 0.0}}})
    registry.register(spec)
    try:
        monkeypatch.setattr(backends, "native_bf16", lambda backend, device="cpu": True)
        loaded = registry.load("tiny-x2-mixed", backend="torch", precision="auto")
        assert (loaded.precision_of("encode_lr"), loaded.precision_of("upscale")) == ("fp32", "bf16")
        assert loaded.precision == "encode_lr fp32, upscale bf16"
        data = api.encode(photo, scale=None, codec="png", model="tiny-x2-mixed", backend="torch", precision="auto")
        assert api.read(data).header.precision == "fp32"
        lr = api.downscale(photo, "tiny-x2", backend="torch", precision="fp32")
        assert np.array_equal(_lr(data), lr)  # the encode pass ran fp32, bit for bit
        out_auto = _rgb(api.decode(data, backend="torch", precision="auto"))
        out_bf16 = _rgb(api.decode(data, backend="torch", precision="bf16"))
        assert np.array_equal(out_auto, out_bf16)  # the upscale ran bf16
    finally:
        registry.unregister("tiny-x2-mixed")


# -- OpenVINO ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def ov():
    pytest.importorskip("openvino")
    from irc.backends import openvino_backend

    return openvino_backend


@pytest.mark.parametrize("name,codec", [("tiny-x2", "png"), ("tiny-x4", "png"), ("tiny-x8", "png"),
                                        (FGRN_NAME, "png"), ("tiny-x2", "jpeg")])
def test_openvino_agrees_with_torch(ov, tiny_fgrn, photo, name, codec):
    """Encode and decode (jpeg: through the tiny CRM) on both backends, within one 8-bit step."""
    kw = {"scale": None, "codec": codec, "model": name}
    by_torch = api.encode(photo, backend="torch", precision="fp32", **kw)
    by_ov = api.encode(photo, backend="openvino", precision="fp32", **kw)
    ht, ho = api.read(by_torch).header, api.read(by_ov).header
    assert ho.precision == "fp32" and ho.model == ht.model and ho.crm == ht.crm
    assert (ht.crm is not None) == (codec == "jpeg")
    if codec == "png":  # the LR itself, losslessly stored
        lr_t, lr_o = _lr(by_torch), _lr(by_ov)
        assert np.abs(lr_t.astype(np.int16) - lr_o).max() <= TOLERANCE
    out_t = _rgb(api.decode(by_torch, backend="torch", precision="fp32"))
    out_o = _rgb(api.decode(by_torch, backend="openvino", precision="fp32"))
    assert out_t.shape == out_o.shape == photo.shape
    assert np.abs(out_t - out_o).max() <= TOLERANCE
    assert np.array_equal(out_o, _rgb(api.decode(by_torch, backend="openvino")))  # deterministic


def _lr(data: bytes) -> np.ndarray:
    from irc.codecs import get_codec

    f = api.read(data)
    return get_codec(f.header.codec).decode(f.payload, (f.header.lr_width, f.header.lr_height))


def test_openvino_restore_agrees_with_torch(ov, photo):
    lr = api.downscale(photo, "tiny-x2", backend="torch")
    for q in (10, 90):
        a = api.restore(lr, CRM_NAME, q, backend="torch", precision="fp32")
        b = api.restore(lr, CRM_NAME, q, backend="openvino", precision="fp32")
        assert np.abs(a.astype(np.int16) - b).max() <= TOLERANCE
    assert not np.array_equal(api.restore(lr, CRM_NAME, 10, backend="openvino"),
                              api.restore(lr, CRM_NAME, 90, backend="openvino"))  # quality is an input


def test_openvino_temperature_samples_as_torch_does(ov, photo):
    data = api.encode(photo, scale=2, codec="png", backend="torch")
    a = api.decode(data, temperature=0.5, seed=3, backend="torch")
    b = api.decode(data, temperature=0.5, seed=3, backend="openvino")
    assert np.array_equal(_rgb(a), _rgb(b))  # the torch reference samples z


def test_openvino_tiles_agree_with_torch_static_or_dynamic(ov, photo, monkeypatch):
    big = np.tile(photo, (3, 3, 1))  # 135 x 201: several 64-px tiles
    a = api.downscale(big, "tiny-x2", tile=64, overlap=16, backend="torch")
    b = api.downscale(big, "tiny-x2", tile=64, overlap=16, backend="openvino")  # a graph per tile shape
    assert np.abs(a.astype(np.int16) - b).max() <= TOLERANCE
    monkeypatch.setenv("IRC_OPENVINO_SHAPES", "dynamic")  # one graph for every shape
    c = api.downscale(big, "tiny-x2", tile=64, overlap=16, backend="openvino")
    assert np.abs(c.astype(np.int16) - b).max() <= TOLERANCE


def test_openvino_cache_is_reused(ov, photo, monkeypatch, tmp_path):
    monkeypatch.setenv("IRC_CACHE_DIR", str(tmp_path))
    ov.clear_cache()
    before = ov.conversions
    first = api.downscale(photo, "tiny-x2", backend="openvino")
    assert ov.conversions == before + 1
    (xml,) = (tmp_path / "openvino").glob("tiny-x2-*-encode_lr-*.xml")
    assert ov.version() in xml.name and registry.get_spec("tiny-x2").sha256() in xml.name
    assert xml.with_suffix(".bin").exists() and not list((tmp_path / "openvino").glob(".*tmp*"))
    stamp = xml.stat().st_mtime_ns
    ov.clear_cache()  # a new process: only the disk cache is left
    assert np.array_equal(api.downscale(photo, "tiny-x2", backend="openvino"), first)
    assert ov.conversions == before + 1 and xml.stat().st_mtime_ns == stamp  # read, not converted
    xml.write_text("damaged")
    ov.clear_cache()
    assert np.array_equal(api.downscale(photo, "tiny-x2", backend="openvino"), first)
    assert ov.conversions == before + 2  # converted again, and rewritten
    ov.clear_cache()
    api.downscale(photo, "tiny-x2", backend="openvino")
    assert ov.conversions == before + 2
    ov.clear_cache()


def test_openvino_keeps_the_graphs_used_last(ov, photo, monkeypatch):
    """The compiled-graph cache evicts the least recently used graph: a search that keeps
    returning to one model's pass does not compile it again."""
    monkeypatch.setattr(ov, "_MAX_COMPILED", 2)
    ov.clear_cache()
    before = ov.compiles
    a = api.downscale(photo, "tiny-x2", backend="openvino")  # graph 1
    api.downscale(photo, "tiny-x4", backend="openvino")  # graph 2
    assert np.array_equal(api.downscale(photo, "tiny-x2", backend="openvino"), a)  # graph 1 again: kept
    assert ov.compiles == before + 2
    api.downscale(photo, "tiny-x8", backend="openvino")  # graph 3 evicts graph 2, the least recently used
    api.downscale(photo, "tiny-x2", backend="openvino")
    assert ov.compiles == before + 3
    api.downscale(photo, "tiny-x4", backend="openvino")  # evicted: compiled again
    assert ov.compiles == before + 4
    ov.clear_cache()


def test_openvino_bf16_runs_fp32_where_not_native(ov, photo):
    data = api.encode(photo, scale=2, codec="png", backend="openvino", precision="bf16")
    assert api.read(data).header.precision == ("bf16" if ov.native_bf16() else "fp32")


def test_openvino_bf16_stays_bf16_across_passes_and_shapes(ov, photo):
    """A bf16 runner's later graphs (another pass, another tile shape) run bf16 too: the check of
    what a compiled graph runs in once read OpenVINO's 'bfloat16' as not bf16 and fell back to fp32."""
    if not ov.native_bf16():
        pytest.skip("no native bf16 on this CPU")
    ov.clear_cache()
    runs = {p: registry.load("tiny-x2", backend="openvino", precision=p).runner for p in ("fp32", "bf16")}
    x = torch.from_numpy(photo.copy()).permute(2, 0, 1)[None].float().div(255.0)
    x = pad_to_multiple(x, 2)
    for shape_x in (x, x[..., :32, :32]):  # two shapes: a graph each
        y = {p: r.encode_lr(shape_x) for p, r in runs.items()}
        up = {p: r.upscale(y["fp32"]) for p, r in runs.items()}
        assert runs["bf16"].precision_of("encode_lr") == runs["bf16"].precision_of("upscale") == "bf16"
        assert not torch.equal(y["fp32"], y["bf16"]) and not torch.equal(up["fp32"], up["bf16"])
        assert (up["fp32"] - up["bf16"]).abs().max() < 0.05  # bf16, not garbage
    ov.clear_cache()


def test_openvino_through_the_cli(ov, png, tmp_path):
    irc_file, out = tmp_path / "p.irc", tmp_path / "p.png"
    r = run_cli("encode", png, "-s", "2", "--codec", "png", "-o", irc_file, "--backend", "openvino", "--json")
    assert r.exit_code == 0, r.output
    assert api.read(irc_file).header.precision == "fp32"
    r = run_cli("decode", irc_file, "-o", out, "--backend", "openvino", "--precision", "fp32")
    assert r.exit_code == 0, r.output
    ref = _rgb(api.decode(irc_file, backend="torch"))
    from PIL import Image

    with Image.open(out) as im:
        assert np.abs(_rgb(im) - ref).max() <= TOLERANCE


def test_openvino_is_refused_off_the_cpu(ov):
    with pytest.raises(IrcError, match="CPU only"):
        backends.resolve_backend("openvino", "cuda")
