"""The CLI contract, through Typer's runner (tiny random-weight models)."""

import json

import numpy as np
import pytest
from PIL import Image

from .conftest import run_cli

run = run_cli


def test_encode_decode_defaults(png, tmp_path):
    r = run("encode", png, "-s", 2, "--codec", "jpeg", "-q", 40)
    assert r.exit_code == 0, r.output
    irc_file = tmp_path / "photo.irc"
    assert irc_file.exists() and "bpp" in r.output
    original = png.read_bytes()
    r = run("decode", irc_file)  # photo.png exists: written beside it, never over it
    assert r.exit_code == 0, r.output
    assert png.read_bytes() == original
    assert Image.open(tmp_path / "photo.decoded.png").size == (67, 45)
    png.unlink()
    r = run("decode", irc_file)
    assert r.exit_code == 0, r.output
    assert Image.open(tmp_path / "photo.png").size == (67, 45)


def test_decode_output_format_follows_suffix(png, tmp_path):
    assert run("encode", png, "-s", 2, "--codec", "png").exit_code == 0
    for name, fmt in [("o.jpg", "JPEG"), ("o.webp", "WEBP"), ("o.tif", "TIFF")]:
        r = run("decode", tmp_path / "photo.irc", "-o", tmp_path / name)
        assert r.exit_code == 0, r.output
        assert Image.open(tmp_path / name).format == fmt


def test_info_json_and_extract_thumbnail(png, tmp_path):
    assert run("encode", png, "-s", 4, "--codec", "webp", "-q", 60).exit_code == 0
    r = run("info", tmp_path / "photo.irc", "--json")
    assert r.exit_code == 0, r.output
    meta = json.loads(r.output)
    assert meta["scale"] == 4 and meta["codec"] == "webp" and meta["width"] == 67 and meta["quality"] == 60
    r = run("extract", tmp_path / "photo.irc")
    assert r.exit_code == 0, r.output
    thumb = tmp_path / "photo.lr.webp"
    assert thumb.stat().st_size == meta["payload_bytes"]
    assert Image.open(thumb).size == (17, 12)
    assert run("info", tmp_path / "photo.irc").exit_code == 0


def test_existing_output_needs_force(png, tmp_path):
    assert run("encode", png, "-s", 2, "--codec", "png").exit_code == 0
    before = (tmp_path / "photo.irc").read_bytes()
    r = run("encode", png, "-s", 2, "--codec", "jpeg", "-q", 10)
    assert r.exit_code != 0 and "--force" in r.output
    assert (tmp_path / "photo.irc").read_bytes() == before
    assert run("encode", png, "-s", 2, "--codec", "jpeg", "-q", 10, "--force").exit_code == 0
    assert (tmp_path / "photo.irc").read_bytes() != before


@pytest.mark.parametrize("args,needle", [
    (["encode", "MISSING.png"], "no such file"),
    (["encode", "PNG", "-s", "17"], "unsupported scale 17"),
    (["encode", "PNG", "--codec", "gif"], "unknown codec"),
    (["encode", "PNG", "--codec", "flif"], "FLIF"),
    (["encode", "PNG", "--codec", "jpeg", "-q", "101"], "out of range"),
    (["encode", "PNG", "--codec", "png", "-q", "50"], "lossless only"),
    (["encode", "PNG", "--device", "cuda:7"], "cuda"),
    (["decode", "PNG"], "magic"),
    (["decode", "MISSING.irc"], "no such file"),
    (["info", "TRUNC"], "checksum"),
])
def test_bad_input_is_one_clear_line(args, needle, png, tmp_path):
    trunc = tmp_path / "t.irc"
    assert run("encode", png, "-s", 2, "--codec", "png", "-o", trunc).exit_code == 0
    trunc.write_bytes(trunc.read_bytes()[:-7])
    subst = {"PNG": png, "MISSING.png": tmp_path / "missing.png", "MISSING.irc": tmp_path / "m.irc", "TRUNC": trunc}
    r = run(*[subst.get(a, a) for a in args])
    assert r.exit_code != 0
    assert needle.lower() in r.output.lower()
    assert "Traceback" not in r.output
    assert r.output.strip().count("\n") == 0, r.output


def test_unknown_version_and_corrupt_files(png, tmp_path):
    f = tmp_path / "v.irc"
    assert run("encode", png, "-s", 2, "--codec", "png", "-o", f).exit_code == 0
    data = bytearray(f.read_bytes())
    data[8] = 9
    f.write_bytes(bytes(data))
    r = run("decode", f, "-o", tmp_path / "x.png")
    assert r.exit_code != 0 and "version 9" in r.output
    assert not (tmp_path / "x.png").exists()


def test_models_lists_registry():
    r = run("models", "--json")
    assert r.exit_code == 0
    names = [m["name"] for m in json.loads(r.output)]
    assert "tiny-x2" in names


def test_help_shows_examples():
    r = run("--help")
    assert r.exit_code == 0 and "irc encode photo.png" in r.output
    r = run("encode", "--help")
    assert r.exit_code == 0 and "Example" in r.output


def test_train_resume_continues_exactly(tmp_path, photo):
    """A run stopped by --time-budget 0 and resumed matches an uninterrupted run step for step."""
    data = tmp_path / "data"
    data.mkdir()
    for i in range(3):
        Image.fromarray(np.roll(photo, 7 * i, axis=1)).save(data / f"{i}.png")
    common = ["train", "irn", "--scale", 2, "--data", data, "--crop", 32, "--batch", 2, "--iters", 20,
              "--warmup", 2, "--threads", 1]
    r = run(*common, "--out", tmp_path / "full")
    assert r.exit_code == 0, r.output
    r = run(*common, "--out", tmp_path / "split", "--time-budget", 0)
    assert r.exit_code == 0, r.output
    r = run("train", "irn", "--out", tmp_path / "split", "--resume")
    assert r.exit_code == 0, r.output

    def losses(run_dir):
        rows = [json.loads(l) for l in (run_dir / "log.jsonl").read_text().splitlines()]
        return {r["iter"]: r["loss"] for r in rows if "loss" in r}

    full, split = losses(tmp_path / "full"), losses(tmp_path / "split")
    assert full[20] == pytest.approx(split[20], rel=1e-5)
    assert run("train", "export", tmp_path / "split" / "last.pt", tmp_path / "w.safetensors").exit_code == 0


def test_train_resume_can_add_an_ema(tmp_path, photo):
    """--resume --ema D gives a run without an EMA one (starting from its weights), recorded in its config;
    an impossible decay is one line and leaves the run as it was."""
    import torch

    data = tmp_path / "data"
    data.mkdir()
    Image.fromarray(photo).save(data / "0.png")
    out = tmp_path / "run"
    r = run("train", "irn", "--scale", 2, "--data", data, "--crop", 32, "--batch", 2, "--iters", 6, "--warmup", 1,
            "--threads", 1, "--out", out, "--time-budget", 0)
    assert r.exit_code == 0, r.output
    assert "ema" not in torch.load(out / "last.pt", weights_only=False)
    before = (out / "last.pt").read_bytes()
    r = run("train", "irn", "--out", out, "--resume", "--ema", 1.5)
    assert r.exit_code != 0 and "--ema" in r.output and "Traceback" not in r.output
    assert (out / "last.pt").read_bytes() == before
    r = run("train", "irn", "--out", out, "--resume", "--ema", 0.5)
    assert r.exit_code == 0, r.output
    assert json.loads((out / "config.json").read_text())["ema"] == 0.5
    state = torch.load(out / "last.pt", weights_only=False)
    assert state["step"] == 6 and int(state["ema"]["n_averaged"]) == 6  # the copy, then 5 updates
    raw, avg = state["model"], {k[len("module."):]: v for k, v in state["ema"].items() if k.startswith("module.")}
    assert any(not torch.equal(raw[k], avg[k]) for k in raw if raw[k].is_floating_point())
