"""BDFlow in the codec: the boundary map as side information (irc.boundary, the BNDY chunk of
format 1.5), its corruption, a tiny registered BDFlow through the API, the CLI, `-s 16`, rate
control and the bench."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from irc import api, boundary, container
from irc.errors import IrcError, IrcFormatError
from irc.models import registry
from irc.models.bdflow import BDFlow

from .conftest import run_cli
from .irc_bytes import chunks_of, head_of, with_chunk, with_head
from .test_fgrn import _randomise

pytestmark = pytest.mark.usefixtures("one_thread")
TINY = {"nf": 8, "res_blocks": 1, "bits": 2}


def _register(name: str, scale: int, folder, bits: int = 2) -> registry.ModelSpec:
    from safetensors.torch import save_file

    params = {**TINY, "bits": bits}
    path = folder / f"{name}.safetensors"
    model = _randomise(BDFlow(scale, **params), std=0.02)
    save_file({k: v.half().contiguous() for k, v in model.state_dict().items()}, str(path))
    registry.register(registry.ModelSpec(name=name, arch="bdflow", scale=scale, params=params, weights=str(path),
                                         description="random-weight test BDFlow"))
    return registry.get_spec(name)


@pytest.fixture(scope="module")
def tiny_bdflow(tmp_path_factory):
    """A tiny random-weight BDFlow x4 with a 2-bit boundary map, registered as tiny-bd-x4 (never a default:
    tiny-x4 is registered first)."""
    spec = _register("tiny-bd-x4", 4, tmp_path_factory.mktemp("bdflow"))
    try:
        yield spec
    finally:
        registry.unregister("tiny-bd-x4")


# -- the map and the chunk ------------------------------------------------------------------------

@pytest.mark.parametrize("bits", [1, 2, 3])
def test_boundary_map_round_trip(bits):
    rng = np.random.default_rng(bits)
    levels = (rng.random((9, 13)) < 0.2) * rng.integers(1, 2**bits, (9, 13))
    channel = boundary.channel_of(levels.astype(np.uint8), bits)
    data = boundary.encode(channel, bits)
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    back = boundary.decode(data, bits, (13, 9))
    assert back.shape == (9, 13, 1) and np.array_equal(back[..., 0], channel)
    assert np.array_equal(boundary.levels_of(back[..., 0], bits), levels)


def test_damaged_boundary_maps_are_refused():
    data = boundary.encode(np.zeros((4, 6), np.uint8), 1)
    for bad, size, needle in ((data, (4, 6), "map is 6x4, the LR 4x6"), (data[:45], (6, 4), "cannot be decoded"),
                              (b"junk", (6, 4), "cannot be decoded"),
                              (boundary.encode(np.full((4, 6), 255, np.uint8), 3), (6, 4), "level above 1")):
        with pytest.raises(IrcFormatError, match=needle):
            boundary.decode(bad, 1, size)
    with pytest.raises(ValueError):
        boundary.encode(np.zeros((2, 2), np.uint8), 4)


# -- a tiny BDFlow in the codec --------------------------------------------------------------------

@pytest.mark.parametrize("codec,quality", [("png", None), ("jpeg", 60), ("webp", 60)])
def test_round_trip_stores_the_map_and_counts_it(tiny_bdflow, photo, codec, quality):
    data, info = api.encode_image(photo, None, codec, quality, None, "tiny-bd-x4")
    f = container.loads(data)
    assert f.header.boundary_bits == 2 and f.header.scale == 4 and f.boundary is not None
    assert info.boundary_bytes == len(f.boundary) > 0 and info.file_bytes == len(data)
    assert [t for t, _ in chunks_of(data)] == [b"HEDZ", b"LRIM", b"BNDY"]
    out = api.decode(data)
    assert out.size == (photo.shape[1], photo.shape[0])
    assert np.array_equal(np.asarray(api.decode(data)), np.asarray(out))
    # the decode reads the stored map: another map gives another image
    other = 255 - boundary.decode(f.boundary, 2, (17, 12))[..., 0]
    changed = with_chunk(data, b"BNDY", boundary.encode(other, 2))
    assert not np.array_equal(np.asarray(api.decode(changed)), np.asarray(out))


def test_a_file_without_its_map_or_with_a_wrong_one_is_one_error(tiny_bdflow, photo):
    data = api.encode(photo, scale=None, codec="png", model="tiny-bd-x4")
    cases = (
        (with_chunk(data, b"BNDY", None), "BNDY"),
        (with_head(data, lambda h: h.pop("boundary_bits")), "BNDY"),
        (with_head(data, lambda h: h.update(boundary_bits=3)), "3-bit|2-bit"),
        (with_head(data, lambda h: h.update(boundary_bits=5)), "boundary_bits"),
        (with_chunk(data, b"BNDY", b"\x89PNG broken"), "boundary map"),
        (with_chunk(data, b"BNDY", boundary.encode(np.zeros((5, 5), np.uint8), 2)), "boundary map is 5x5"),
    )
    for bad, needle in cases:
        with pytest.raises(IrcError, match=needle):
            api.decode(bad)
    # a model without a map named in a file with one
    plain = registry.get_spec("tiny-x4")
    swapped = with_head(data, lambda h: h.update(model=plain.name, weights_sha256=plain.sha256(), model_version=1))
    with pytest.raises(IrcError, match="no boundary map"):
        api.decode(swapped)
    with pytest.raises(IrcError, match="scale 1"):
        container.check_header({**head_of(api.encode(photo, scale=1, codec="png")), "boundary_bits": 1})


def test_cli_reports_the_map(tiny_bdflow, png, tmp_path):
    out = tmp_path / "b.irc"
    r = run_cli("encode", png, "--model", "tiny-bd-x4", "--codec", "jpeg", "-q", "70", "-o", out)
    assert r.exit_code == 0, r.output
    assert "boundary map" in r.output
    info = json.loads(run_cli("info", out, "--json").output)
    assert info["boundary_bits"] == 2 and info["boundary_bytes"] > 0
    r = run_cli("decode", out, "-o", tmp_path / "b.png")
    assert r.exit_code == 0, r.output


def test_scale_16_uses_a_x16_model(tmp_path, photo):
    spec = _register("tiny-bd-x16", 16, tmp_path, bits=1)
    try:
        data = api.encode(photo, scale=16, codec="png")
        h = api.read(data).header
        assert (h.model, h.scale, h.boundary_bits, h.lr_width, h.lr_height) == (spec.name, 16, 1, 5, 3)
        assert api.decode(data).size == (67, 45)
        r = run_cli("encode", "--help")
        assert "16" in r.output
    finally:
        registry.unregister("tiny-bd-x16")


def test_rate_control_with_a_pinned_bdflow_keeps_its_promise(tiny_bdflow, photo):
    from irc.metrics import psnr_rgb
    from irc.ratecontrol import encode_target

    res = encode_target(photo, max_bytes=1500, codecs="webp", model="tiny-bd-x4")
    assert len(res.data) <= 1500 and api.read(res.data).header.boundary_bits == 2
    assert psnr_rgb(photo, np.asarray(api.decode(res.data))) == pytest.approx(res.choice.psnr_rgb, abs=1e-9)


def test_bench_counts_the_map_in_its_bytes(tiny_bdflow, tmp_path, photo):
    from PIL import Image

    d = tmp_path / "imgs"
    d.mkdir()
    Image.fromarray(photo).save(d / "a.png")
    out = tmp_path / "out"
    r = run_cli("bench", d, "--out", out, "--scales", "4", "--rd-scales", "4", "--qualities", "40",
                "--models", "tiny-bd-x4")
    assert r.exit_code == 0, r.output
    rows = {row["pipeline"]: row for row in json.loads((out / "bench.json").read_text())["storage"]}
    row = next(v for k, v in rows.items() if "tiny-bd-x4" in k and "PNG" in k)
    png = api.encode(photo, scale=None, codec="png", model="tiny-bd-x4")
    f = container.loads(png)
    assert row["total_mb"] * 1e6 == pytest.approx(len(f.payload) + len(f.boundary))


def test_openvino_runs_the_four_channel_upscale(tiny_bdflow, photo):
    pytest.importorskip("openvino")
    data = api.encode(photo, scale=None, codec="png", model="tiny-bd-x4", backend="torch")
    a = np.asarray(api.decode(data, backend="torch"), dtype=np.int16)
    b = np.asarray(api.decode(data, backend="openvino", precision="fp32"), dtype=np.int16)
    assert np.abs(a - b).max() <= 1


def test_the_tiled_encode_snaps_the_blended_map_to_its_levels(tiny_bdflow, photo):
    lr = api.lr_of(np.tile(photo, (3, 3, 1)), registry.load("tiny-bd-x4"), tile=64, overlap=16)
    assert lr.shape[2] == 4
    levels = boundary.levels_of(lr[..., 3], 2)
    assert np.array_equal(boundary.channel_of(levels, 2), boundary.channel_of(boundary.levels_of(
        boundary.channel_of(levels, 2), 2), 2))
    assert torch.is_tensor(torch.from_numpy(lr))
