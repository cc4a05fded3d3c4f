"""Outputs of the command line: --force never reaches a file the user did not name, every
output is checked before the model runs, the sample photo, and the help text (issue 12)."""

import os
import re
import shlex
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from .conftest import run_cli

ROOT = Path(__file__).resolve().parents[1]


run = run_cli


@pytest.fixture
def no_model(monkeypatch):
    """Fail the test if a model pass starts: the checks must come first."""
    from irc import api

    def ran(*a, **k):
        raise AssertionError("the model ran before the output was checked")

    monkeypatch.setattr(api, "downscale", ran)
    monkeypatch.setattr(api, "upscale", ran)


def one_error(r, *needles):
    assert r.exit_code == 1, r.output
    assert r.output.startswith("error:") and r.output.strip().count("\n") == 0, r.output
    for needle in needles:
        assert str(needle) in r.output, (needle, r.output)
    assert "Traceback" not in r.output and ".irc-tmp-" not in r.output and ".part" not in r.output


# ---- defect 1: --force replaces only the file the default would have written --------------

def test_decode_force_never_replaces_the_original(png, tmp_path):
    original = png.read_bytes()
    assert run("encode", png, "-s", 2, "--codec", "png").exit_code == 0
    r = run("decode", tmp_path / "photo.irc")
    assert r.exit_code == 0 and "photo.decoded.png" in r.output, r.output
    one_error(run("decode", tmp_path / "photo.irc"), tmp_path / "photo.decoded.png", "--force")
    (tmp_path / "photo.decoded.png").write_bytes(b"stale")
    r = run("decode", tmp_path / "photo.irc", "--force")
    assert r.exit_code == 0, r.output
    assert png.read_bytes() == original  # the user's photo.png is untouched
    assert Image.open(tmp_path / "photo.decoded.png").size == (67, 45)


def test_decode_into_a_folder_keeps_the_same_rule(png, tmp_path):
    assert run("encode", png, "-s", 2, "--codec", "png").exit_code == 0
    out = tmp_path / "out"
    out.mkdir()
    (out / "photo.png").write_bytes(b"mine")
    r = run("decode", tmp_path / "photo.irc", "-o", out, "--force")
    assert r.exit_code == 0, r.output
    assert (out / "photo.png").read_bytes() == b"mine" and (out / "photo.decoded.png").exists()


def test_encode_never_writes_over_its_input(png, tmp_path, no_model):
    disguised = tmp_path / "pic.irc"  # a PNG named .irc: the default output is the input itself
    disguised.write_bytes(png.read_bytes())
    one_error(run("encode", disguised, "--force"), disguised, "input")
    assert disguised.read_bytes() == png.read_bytes()


def test_two_inputs_with_one_output_name_are_refused(png, tmp_path, no_model):
    Image.open(png).save(tmp_path / "photo.jpg")
    one_error(run("encode", png, tmp_path / "photo.jpg", "-s", 2), "photo.irc", "both")
    assert not (tmp_path / "photo.irc").exists()


def test_extract_default_and_suffix(png, tmp_path):
    assert run("encode", png, "-s", 2, "--codec", "jpeg", "-q", 50).exit_code == 0
    irc_file = tmp_path / "photo.irc"
    assert run("extract", irc_file).exit_code == 0 and (tmp_path / "photo.lr.jpg").exists()
    one_error(run("extract", irc_file), tmp_path / "photo.lr.jpg", "--force")
    one_error(run("extract", irc_file, "-o", tmp_path / "t.png"), tmp_path / "t.png", ".jpg")
    assert run("extract", irc_file, "-o", tmp_path / "t.jpeg").exit_code == 0


# ---- defect 4: every output is checked before the work starts ------------------------------

@pytest.fixture
def encoded(png, tmp_path):
    assert run("encode", png, "-s", 2, "--codec", "png").exit_code == 0
    return tmp_path / "photo.irc"


def test_missing_output_folder_is_found_first(png, encoded, tmp_path, no_model):
    missing = tmp_path / "nope"
    one_error(run("encode", png, "-o", missing / "x.irc"), "does not exist", missing)
    one_error(run("decode", encoded, "-o", missing / "x.png"), "does not exist", missing)
    one_error(run("encode", png, tmp_path / "photo.irc", "-o", missing / "deeper"), "does not exist", missing)


def test_unknown_suffix_and_wrong_kind_of_output(png, encoded, tmp_path, no_model):
    one_error(run("decode", encoded, "-o", tmp_path / "x.xyz"), tmp_path / "x.xyz", "image format")
    one_error(run("decode", encoded, "-o", tmp_path / "x"), tmp_path / "x", "suffix")
    one_error(run("decode", encoded, "-o", tmp_path / "x.irc"), "encode")
    one_error(run("encode", png, "-o", tmp_path / "x.png"), tmp_path / "x.png", ".irc")


def test_rgba_to_jpeg_is_refused_before_decoding(photo, tmp_path, monkeypatch):
    rgba = np.dstack([photo, np.linspace(0, 255, photo.shape[1], dtype=np.uint8)[None].repeat(photo.shape[0], 0)])
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    assert run("encode", tmp_path / "a.png", "-s", 2, "--codec", "png").exit_code == 0
    from irc import api

    monkeypatch.setattr(api, "upscale", lambda *a, **k: pytest.fail("decoded before the check"))
    one_error(run("decode", tmp_path / "a.irc", "-o", tmp_path / "a.jpg"), tmp_path / "a.jpg", "alpha")
    assert not (tmp_path / "a.jpg").exists()


def test_read_only_folder_is_found_first(png, tmp_path, monkeypatch, no_model):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    real_access = os.access
    if os.geteuid() == 0:  # root may write anywhere: pretend the folder is read-only to it too
        monkeypatch.setattr(os, "access", lambda p, m, **k: False if Path(p) == locked else real_access(p, m, **k))
    try:
        one_error(run("encode", png, "-o", locked / "x.irc"), locked, "permission denied")
    finally:
        locked.chmod(0o755)


def test_existing_output_is_found_first(png, encoded, tmp_path, no_model):
    (tmp_path / "taken.png").write_bytes(b"x")
    one_error(run("decode", encoded, "-o", tmp_path / "taken.png"), tmp_path / "taken.png", "--force")
    assert (tmp_path / "taken.png").read_bytes() == b"x"


def test_a_failed_write_names_the_users_path(png, tmp_path, monkeypatch):
    def refuse(src, dst, *a, **k):
        raise PermissionError(13, "Permission denied", str(src))

    monkeypatch.setattr(os, "replace", refuse)
    monkeypatch.setattr(os, "link", refuse)
    (tmp_path / "photo.irc").write_bytes(b"old")
    one_error(run("encode", png, "-s", 2, "--codec", "png", "--force"), tmp_path / "photo.irc", "Permission denied")


def test_a_directory_as_input_says_so(tmp_path):
    (tmp_path / "d").mkdir()
    one_error(run("encode", tmp_path / "d"), "is a directory")
    one_error(run("decode", tmp_path / "d"), "is a directory")


# ---- defect 3: a quick start that needs nothing outside the package ------------------------

def test_sample_writes_the_packaged_photo(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    r = run("sample")
    assert r.exit_code == 0, r.output
    with Image.open(tmp_path / "photo.png") as im:
        assert im.format == "PNG" and im.size == (451, 300) and im.mode == "RGB"
    one_error(run("sample"), "photo.png", "--force")
    assert run("sample", "--force").exit_code == 0
    assert run("sample", "-o", "s.jpg").exit_code == 0 and Image.open(tmp_path / "s.jpg").format == "JPEG"
    data = ROOT / "irc" / "data"
    assert (data / "sample.png").stat().st_size < 400_000
    assert "public domain" in (data / "SOURCE.md").read_text().lower()
    assert '"irc.data"' in (ROOT / "pyproject.toml").read_text()


def test_readme_quick_start_runs_in_an_empty_folder(tmp_path, monkeypatch):
    """The README's round trip, from `irc sample` on, in a folder with nothing in it."""
    text = (ROOT / "README.md").read_text()
    quick = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    assert "../shared" not in quick and "download.pytorch.org/whl/cpu" in quick
    line = next(l for l in quick.splitlines() if "irc sample" in l)
    commands = [shlex.split(c) for c in line[line.index("irc sample"):].split("&&")]
    monkeypatch.chdir(tmp_path)
    for cmd in commands:
        if cmd[0] == "irc":
            r = run(*cmd[1:])
            assert r.exit_code == 0, (cmd, r.output)
    assert Image.open(tmp_path / "photo.decoded.png").size == (451, 300)


# ---- defect 8: help and --version ------------------------------------------------------------

def flat(text: str) -> str:
    return " ".join(re.sub(r"[│╭╮╰╯─]", " ", text).split())


def test_help_shows_defaults_and_quality_ranges():
    from irc.codecs import CODEC_NAMES, get_codec

    text = flat(run("encode", "--help").output)
    assert ("Downscale factor: a model's own (2, 3, 4, 8, 16 with BDFlow: see `irc models`), any other up to the "
            "largest such as 2.5 or 6 (the HR is resampled around the next larger model's scale), or 1: the image "
            "itself with the codec (no model). [default: (4, or the --model's; searched with rate control)]") in text
    assert "[default: (jpeg; auto with rate control)]" in text
    for name in CODEC_NAMES:
        c = get_codec(name)
        lo, hi = c.quality_range
        if c.lossy and not c.default_lossless:
            assert f"{name}: {c.default_quality} ({lo}-{hi}" in text, name
        elif c.lossy:
            assert f"{name}: lossless unless -q {lo}-{hi}" in text, name
        else:
            assert f"{name}: lossless only" in text, name
    assert "[default: (every shipped scale and 2.5)]" in flat(run("bench", "--help").output)


def test_version():
    from importlib.metadata import version

    r = run("--version")
    assert r.exit_code == 0 and r.output == f"irc {version('irc')}\n"
