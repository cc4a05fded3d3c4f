"""Many files at once: -o DIR, --jobs, a bad file in the batch, --json, --viewable (issue 12)."""

import json
import re

import numpy as np
import pytest
from PIL import Image

from .conftest import run_cli

run = run_cli


@pytest.fixture
def folder(tmp_path, photo):
    """Three small photos and one corrupt .png (a truncated PNG)."""
    d = tmp_path / "in"
    d.mkdir()
    for i in range(3):
        Image.fromarray(np.roll(photo, 9 * i, axis=1)).save(d / f"im{i}.png")
    (d / "broken.png").write_bytes((d / "im0.png").read_bytes()[:300])
    return d


def summary_numbers(text: str):
    m = re.search(r"(\d+) of (\d+) files (\w+)(?:, (\d+) failed)?; ([\d,]+) bytes in, ([\d,]+) bytes out, ratio ([\d.]+):1",
                  text)
    assert m, text
    ok, total, verb, failed, b_in, b_out, ratio = m.groups()
    return int(ok), int(total), verb, int(failed or 0), int(b_in.replace(",", "")), int(b_out.replace(",", "")), float(ratio)


def test_encode_glob_with_jobs_2_and_a_corrupt_file(folder, tmp_path):
    """`irc encode *.png -o out/ --jobs 2` on a folder with one corrupt file (the issue's "done when")."""
    files = sorted(folder.glob("*.png"))
    out = tmp_path / "out"
    r = run("encode", *files, "-o", f"{out}/", "--jobs", 2, "-s", 2, "--codec", "png")
    assert r.exit_code == 1, r.output
    good = [f for f in files if f.name != "broken.png"]
    assert sorted(p.name for p in out.iterdir()) == sorted(f.stem + ".irc" for f in good)
    errors = [l for l in r.output.splitlines() if l.startswith("error:")]
    assert len(errors) == 1 and "broken.png" in errors[0], r.output
    ok, total, verb, failed, b_in, b_out, ratio = summary_numbers(r.stdout)
    assert (ok, total, verb, failed) == (3, 4, "encoded", 1)
    assert b_in == sum(f.stat().st_size for f in good)
    assert b_out == sum((out / (f.stem + ".irc")).stat().st_size for f in good)
    assert ratio == pytest.approx(b_in / b_out, abs=0.01)
    for f in good:  # what the workers wrote decodes to the original size
        assert run("decode", out / (f.stem + ".irc"), "-o", tmp_path / f"{f.stem}.png").exit_code == 0
        assert Image.open(tmp_path / f"{f.stem}.png").size == (67, 45)


def test_batch_in_one_process_goes_on_past_bad_inputs(folder, tmp_path):
    (tmp_path / "sub").mkdir()
    inputs = [folder / "im0.png", tmp_path / "missing.png", tmp_path / "sub", folder / "broken.png", folder / "im1.png"]
    r = run("encode", *inputs, "-s", 2, "--codec", "png")  # no -o: each beside its input
    assert r.exit_code == 1, r.output
    assert (folder / "im0.irc").exists() and (folder / "im1.irc").exists() and not (folder / "broken.irc").exists()
    errors = [l for l in r.output.splitlines() if l.startswith("error:")]
    assert len(errors) == 3 and "no such file" in r.output and "is a directory" in r.output
    assert summary_numbers(r.stdout)[:4] == (2, 5, "encoded", 3)


def test_decode_many_as_json_lines(folder, tmp_path):
    files = [folder / "im0.png", folder / "im1.png"]
    assert run("encode", *files, "-o", tmp_path / "enc", "-s", 2, "--codec", "jpeg", "-q", 60).exit_code == 0
    ircs = sorted((tmp_path / "enc").glob("*.irc"))
    (tmp_path / "enc" / "bad.irc").write_bytes(b"not an irc file")
    r = run("decode", *ircs, tmp_path / "enc" / "bad.irc", "-o", tmp_path / "dec", "--json")
    assert r.exit_code == 1
    rows = [json.loads(line) for line in r.stdout.splitlines()]  # stdout holds JSON and nothing else
    assert len(rows) == 3
    good = [row for row in rows if row["ok"]]
    assert sorted(row["output"] for row in good) == sorted(str(tmp_path / "dec" / (p.stem + ".png")) for p in ircs)
    for row in good:
        assert (row["width"], row["height"], row["mode"]) == (67, 45, "RGB")
        assert row["bytes_out"] == (tmp_path / "dec" / (row["input"].rsplit("/", 1)[1][:-4] + ".png")).stat().st_size
    bad = next(row for row in rows if not row["ok"])
    assert bad["input"].endswith("bad.irc") and "bad.irc" in bad["error"]
    assert "2 of 3 files decoded, 1 failed" in r.stderr


def test_encode_json_one_object(folder):
    r = run("encode", folder / "im2.png", "-s", 2, "--codec", "webp", "-q", 70, "--json")
    assert r.exit_code == 0, r.output
    (row,) = [json.loads(line) for line in r.stdout.splitlines()]
    irc_file = folder / "im2.irc"
    assert row["ok"] and row["output"] == str(irc_file) and row["bytes_out"] == irc_file.stat().st_size
    assert row["bytes_in"] == (folder / "im2.png").stat().st_size
    assert (row["codec"], row["quality"], row["scale"], row["width"], row["height"]) == ("webp", 70, 2, 67, 45)
    assert row["bpp"] == pytest.approx(irc_file.stat().st_size * 8 / (67 * 45), abs=1e-3)
    assert row["payload_bytes"] < row["bytes_out"]


@pytest.mark.parametrize("args,needle", [
    (["-o", "FILE"], "names a folder"),
    (["--jobs", "0"], "--jobs"),
])
def test_batch_usage_errors(folder, tmp_path, args, needle):
    (tmp_path / "f.irc").write_bytes(b"")
    args = [tmp_path / "f.irc" if a == "FILE" else a for a in args]
    r = run("encode", folder / "im0.png", folder / "im1.png", *args)
    assert r.exit_code == 1 and needle in r.output and r.output.count("\n") == 1, r.output
    assert not (folder / "im0.irc").exists()


def test_viewable_file_is_an_image_viewers_open(folder, tmp_path):
    src = folder / "im0.png"
    r = run("encode", src, "--viewable", "--codec", "png", "-s", 2, "-o", tmp_path / "v.irc.png")
    assert r.exit_code == 0, r.output
    with Image.open(tmp_path / "v.irc.png") as im:
        assert im.format == "PNG" and im.size == (34, 23)
    assert run("decode", tmp_path / "v.irc.png", "-o", tmp_path / "v.png").exit_code == 0
    assert Image.open(tmp_path / "v.png").size == (67, 45)
    r = run("encode", src, "--viewable", "--codec", "webp")
    assert r.exit_code == 1 and "png or jpeg" in r.output
    r = run("encode", src, "--codec", "jpeg", "-o", tmp_path / "x.jpg")  # not viewable: an .irc is no JPEG
    assert r.exit_code == 1 and "--viewable" in r.output
