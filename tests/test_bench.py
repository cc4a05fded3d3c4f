"""`irc bench`: BD-rate, datasets, and the whole command on small inputs."""

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from irc.bench import datasets
from irc.metrics import bd_psnr, bd_rate
from irc.cli import app
from irc.errors import IrcError
from irc.models import registry

from .conftest import KODAK

runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_paper_figures_stand_beside_each_scales_default_row(monkeypatch):
    from irc.bench.report import PAPER_DIV2K, paper_div2k
    from irc.models import registry
    from irc.models.registry import default_model

    monkeypatch.setattr(registry, "_extra", {})  # the shipped defaults, not the suite's tiny models

    assert paper_div2k(1, "png", None) == "PNG 470 MB"  # the codec alone
    assert paper_div2k(2, "png", "irn-x2") == "131 MB, 40.87 dB, +7.3%"
    assert paper_div2k(4, "png", "irn-x4") == "34.9 MB, 32.95 dB, +11.1%"  # the paper's model, default or not
    for s, codec in ((4, "png"), (8, "jxl")):
        default = default_model(s, "png").name
        assert not default.startswith("irn-")  # today FGRN: its row carries the paper's IRN figures, marked
        assert paper_div2k(s, codec, default) == "IRN: " + PAPER_DIV2K[(s, codec)]
    # x2: fgrn-x2 is the PNG default, irn-x2 (the paper's model) the JPEG XL one
    assert paper_div2k(2, "png", "fgrn-x2") == "IRN: " + PAPER_DIV2K[(2, "png")]
    assert paper_div2k(2, "jxl", "irn-x2") == PAPER_DIV2K[(2, "jxl")]
    assert paper_div2k(2, "jxl", "fgrn-x2") == ""
    for row in ((4, "png", None), (4, "png", "irn-e-x4"), (8, "png", "bdflow-x8"), (3, "png", "irn-ld-x3"),
                (16, "png", "bdflow-x16"), (1, "png", "irn-color"), (2, "jpeg", "irn-x2"),
                (2, "png", "gone-x2")):
        assert paper_div2k(*row) == "", row  # bicubic, an extra model, no paper figure, a lossy codec, or
        # a cached row of a model no longer installed


def test_storage_rows_carry_the_model_so_the_paper_column_needs_no_label(monkeypatch):
    from irc.bench.points import Point, Results
    from irc.bench.report import storage_rows
    from irc.models import registry

    monkeypatch.setattr(registry, "_extra", {})

    def pt(pipeline, scale, codec, model):
        return Point("a", pipeline, scale, codec, None, 100, 1.0, 40.0, 41.0, 0.99, 0.0, 0.0, model=model)

    res = Results("set", ["a"], 800, [pt("PNG lossless", 1, "png", None), pt("Bicubic x4 + PNG", 4, "png", None),
                                      pt("a renamed row", 4, "png", default_model_name(4)),
                                      pt("IRN x4 (irn-x4) + PNG", 4, "png", "irn-x4")])
    paper = {r["pipeline"]: r["paper_div2k"] for r in storage_rows(res)}
    assert paper == {"PNG lossless": "PNG 470 MB", "Bicubic x4 + PNG": "",
                     "a renamed row": "IRN: 34.9 MB, 32.95 dB, +11.1%",
                     "IRN x4 (irn-x4) + PNG": "34.9 MB, 32.95 dB, +11.1%"}


def default_model_name(scale):
    from irc.models.registry import default_model

    return default_model(scale, "png").name


def test_bd_rate():
    anchor = [(0.25, 26.0), (0.5, 29.0), (1.0, 32.0), (2.0, 35.0)]
    assert bd_rate(anchor, anchor) == pytest.approx(0.0, abs=1e-9)
    half = [(r / 2, d) for r, d in anchor]
    assert bd_rate(anchor, half) == pytest.approx(-50.0, abs=1e-6)
    assert bd_rate(anchor, [(0.1, 40.0), (0.2, 41.0)]) is None  # no PSNR overlap
    assert bd_rate(anchor, [(0.3, 27.0)]) is None  # one point is not a curve
    # BD-PSNR: the same curve 1.5 dB higher everywhere gains 1.5 dB; half the rate = +3 dB here
    assert bd_psnr(anchor, [(r, d + 1.5) for r, d in anchor]) == pytest.approx(1.5, abs=1e-9)
    assert bd_psnr(anchor, half) == pytest.approx(3.0, abs=1e-6)
    assert bd_psnr(anchor, [(5.0, 40.0), (9.0, 41.0)]) is None  # no rate overlap


def test_dataset_errors(tmp_path, monkeypatch):
    with pytest.raises(IrcError, match="no such folder"):
        datasets.resolve(str(tmp_path / "nope"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(IrcError, match="no images"):
        datasets.resolve("x", tmp_path / "empty")
    import urllib.request

    def offline(*a, **k):
        raise OSError("network unreachable")

    monkeypatch.setenv("IRC_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(IrcError, match="--data DIR"):
        datasets.resolve("kodak")
    with pytest.raises(IrcError, match="--data DIR"):
        datasets.resolve("div2k")


def test_kodak_cache_is_checked(tmp_path, monkeypatch):
    """A cached file with the wrong content is fetched again and verified."""
    import io
    import urllib.request

    monkeypatch.setenv("IRC_CACHE", str(tmp_path))
    served = []

    class Resp(io.BytesIO):
        headers = {}

        def __enter__(self):
            return self

        def __exit__(self, *a):
            return False

    def fake(url, timeout=0):
        served.append(url)
        return Resp(b"not the kodak image")

    monkeypatch.setattr(urllib.request, "urlopen", fake)
    with pytest.raises(IrcError, match="checksum"):
        datasets.resolve("kodak")
    assert served and served[0].endswith("kodim01.png")
    assert not (tmp_path / "kodak" / "kodim01.png").exists()  # the bad download is removed


@pytest.fixture
def folder(tmp_path, photo):
    d = tmp_path / "imgs"
    d.mkdir()
    for i in range(2):
        Image.fromarray(np.roll(np.tile(photo, (2, 2, 1)), 11 * i, axis=0)).save(d / f"im{i}.png")
    return d


def test_bench_folder_writes_everything_and_reuses_results(tmp_path, folder):
    out = tmp_path / "out"
    args = ["bench", folder, "--out", out, "--scales", "2", "--rd-scales", "2", "--qualities", "20,60"]
    r = run(*args)
    assert r.exit_code == 0, r.output
    summary = json.loads((out / "bench.json").read_text())
    names = [row["pipeline"] for row in summary["storage"]]
    assert names[:2] == ["PNG lossless", "JPEG XL lossless"]
    assert {"Bicubic x2 + PNG", "IRN x2 + PNG", "IRN x2 + JPEG XL"} <= set(names)
    irn = next(row for row in summary["storage"] if row["pipeline"] == "IRN x2 + PNG")
    assert 1 <= irn["matched_jpeg"]["quality"] <= 100 and "delta_vs_matched_jpeg_pct" in irn
    # CompressAI layout, one file per curve
    doc = json.loads((out / "results" / "irn-x2-jpeg-crm.json").read_text())
    assert doc["name"] == "IRN x2 + JPEG + CRM" and doc["results"]["quality"] == [20, 60]
    assert len(doc["results"]["bpp"]) == 2 and all(v > 0 for v in doc["results"]["psnr-rgb"])
    assert "Bicubic x2 + JPEG + CRM" in summary["curves"]
    assert "JPEG" in summary["curves"] and "IRN x2 + JPEG + CRM" in summary["bd_rate_vs_jpeg_pct"]
    rows = (out / "per_image.csv").read_text().splitlines()
    assert rows[0].startswith("image,pipeline,scale,codec,quality,bytes,bpp,psnr_rgb")
    assert (out / "rd_x2.png").stat().st_size > 0 and (out / "rd_x2.svg").exists()
    assert "| IRN x2 + PNG |" in (out / "storage.md").read_text()
    assert "Storage" in r.output and "BD-rate" in r.output
    # every other shipped rescaler family of the scale stands beside IRN (--models auto)
    assert {"FGRN x2 + PNG", "FGRN x2 + JPEG XL"} <= set(names) and "FGRN x2 + JPEG + CRM" in summary["curves"]
    # a second run takes every point from the cache: nothing new is appended
    assert irn["paper_div2k"] == "131 MB, 40.87 dB, +7.3%"
    cached = (out / "cache.jsonl").read_text()
    assert run(*args).exit_code == 0
    assert (out / "cache.jsonl").read_text() == cached
    # a cache written before points carried their model: the engine fills it in from the call
    old = [{k: v for k, v in json.loads(line).items() if k != "model"} for line in cached.splitlines()]
    (out / "cache.jsonl").write_text("".join(json.dumps(rec) + "\n" for rec in old))
    assert run(*args).exit_code == 0
    again = json.loads((out / "bench.json").read_text())
    assert again["storage"] == summary["storage"]
    models = {(row["pipeline"], row["model"]) for row in csv.DictReader((out / "per_image.csv").open())}
    assert {("IRN x2 + PNG", registry.default_model(2, "png").name), ("FGRN x2 + PNG", "fgrn-x2"),
            ("PNG lossless", "")} <= models


def test_storage_rows_follow_each_lossless_codecs_default(tmp_path, folder, tiny_models, monkeypatch):
    """Each lossless codec's rows start with the model `irc encode` picks for it, then show the
    scale's other lossless default beside it (fgrn-x2 for PNG, irn-x2 for JPEG XL, as shipped)."""
    from dataclasses import replace

    monkeypatch.setattr(registry, "_extra", dict(registry._extra))
    registry.register(replace(tiny_models[2], name="tiny-png-x2", codecs=("png",)))
    assert registry.default_model(2, "png").name == "tiny-png-x2"
    assert registry.default_model(2, "jxl").name == "tiny-x2"
    out = tmp_path / "o"
    r = run("bench", folder, "--out", out, "--scales", "2", "--rd-scales", "none", "--models", "none")
    assert r.exit_code == 0, r.output
    rows = [(row["pipeline"], row["model"]) for row in json.loads((out / "bench.json").read_text())["storage"]]
    assert [m for _, m in rows if m] == ["tiny-png-x2", "tiny-x2", "tiny-x2", "tiny-png-x2"]
    assert rows[2:4] == [("Bicubic x2 + PNG", None), ("IRN x2 (tiny-png-x2) + PNG", "tiny-png-x2")]


def test_bench_div2k_with_a_local_folder(tmp_path, folder):
    """`irc bench div2k --data DIR` uses the folder (no download) and names the set div2k."""
    out = tmp_path / "d"
    r = run("bench", "div2k", "--data", folder, "--out", out, "--scales", "2", "--qualities", "30,70")
    assert r.exit_code == 0, r.output
    summary = json.loads((out / "bench.json").read_text())
    assert summary["dataset"] == "div2k" and len(summary["images"]) == 2
    assert "IRN x2 + JPEG XL" in {row["pipeline"] for row in summary["storage"]}


@pytest.mark.parametrize("args,needle", [
    (["--scales", "5"], "no shipped model for scale 5"),
    (["--codecs", "png"], "lossless"),
    (["--qualities", "a,b"], "comma-separated"),
    (["--codecs", "flif"], "JPEG XL"),
])
def test_bench_bad_options(tmp_path, folder, args, needle):
    r = run("bench", folder, "--out", tmp_path / "o", *args)
    assert r.exit_code == 1 and needle in r.output and "Traceback" not in r.output


@pytest.mark.skipif(not KODAK.is_dir(), reason="../shared/data/kodak not present")
def test_bench_kodak_quick_with_shipped_models(tmp_path, monkeypatch):
    monkeypatch.setattr(registry, "_extra", {})  # the shipped models, not the tiny test ones
    registry.load_model.cache_clear()
    out = tmp_path / "q"
    r = run("bench", "kodak", "--data", KODAK, "--out", out, "--quick")
    registry.load_model.cache_clear()
    assert r.exit_code == 0, r.output
    summary = json.loads((out / "bench.json").read_text())
    assert len(summary["images"]) == 3
    storage = {row["pipeline"]: row for row in summary["storage"]}
    # the shipped IRN beats bicubic at every shipped scale, losslessly stored
    for s in (2, 4, 8):
        assert storage[f"IRN x{s} + PNG"]["psnr_rgb"] > storage[f"Bicubic x{s} + PNG"]["psnr_rgb"] + 1.0
    # no wall-clock bound here: the run's seconds are in bench.json; timing is benchmarks/' job


def test_bench_bd_rates_of_every_curve_against_each_codec_alone_at_x2_and_x4(tmp_path, folder):
    out = tmp_path / "bd"
    r = run("bench", folder, "--out", out, "--scales", "none", "--rd-scales", "2,4", "--codecs", "jpeg,webp",
            "--qualities", "20,60,90")
    assert r.exit_code == 0, r.output
    summary = json.loads((out / "bench.json").read_text())
    against = summary["bd_rate_vs_codecs_pct"]
    assert set(against) == {"JPEG", "WebP"}
    assert against["JPEG"] == summary["bd_rate_vs_jpeg_pct"]
    for anchor, row in against.items():
        assert set(row) == set(summary["curves"]) - {anchor}  # every curve, x2 and x4, against each codec
        for name, value in row.items():
            pts = lambda n: [(c["bpp"], c["psnr-rgb"]) for c in summary["curves"][n]]  # noqa: E731
            assert value == bd_rate(pts(anchor), pts(name))
    assert any(name.startswith("IRN x4") for name in against["WebP"]) and "WebP" in against["JPEG"]
    # the PSNR range each BD-rate integrates over: both curves' shared span, None exactly where no BD-rate
    spans = summary["bd_overlap_vs_codecs_db"]
    for anchor, row in against.items():
        a = [c["psnr-rgb"] for c in summary["curves"][anchor]]
        for name, value in row.items():
            t = [c["psnr-rgb"] for c in summary["curves"][name]]
            span = spans[anchor][name]
            assert (span is None) == (value is None)
            if span:
                assert span == pytest.approx([max(min(a), min(t)), min(max(a), max(t))], abs=1e-3)
    assert "PSNR range" in r.output and " dB)" in r.output  # the table printed, with the spans


def test_bench_auto_curve_is_what_rate_control_gives(tmp_path, folder):
    """--auto: one `irc encode --target-psnr T` per image and target, decoded and measured; each
    point reaches its target, and no JPEG/WebP-alone file of the bench that reaches the target is
    smaller than irc auto's whole file less its container (the search covers those settings)."""
    out = tmp_path / "auto"
    r = run("bench", folder, "--out", out, "--scales", "none", "--rd-scales", "none", "--codecs", "jpeg,webp",
            "--auto", "28,24", "--auto-codecs", "jpeg,webp")
    assert r.exit_code == 0, r.output
    summary = json.loads((out / "bench.json").read_text())
    assert summary["storage"] == [] and set(summary["curves"]) == {"JPEG", "WebP", "irc auto"}
    auto = summary["curves"]["irc auto"]
    assert [p["target"] for p in auto] == [24.0, 28.0] and all(p["quality"] is None for p in auto)
    assert sum(auto[0]["chosen"].values()) == 2 and auto[0]["psnr-rgb"] < auto[1]["psnr-rgb"]
    assert set(summary["auto_vs_codecs"]) == {"JPEG", "WebP"}
    for row in summary["auto_vs_codecs"].values():  # both images compared per image, against their own points
        assert row["images"] == 2 and row["points_compared"] >= 1 and "mean_bd_rate_pct" in row
    doc = json.loads((out / "results" / "irc-auto.json").read_text())
    assert doc["results"]["target"] == [24.0, 28.0]
    assert "against each codec alone" in r.output and "T24" in r.output
    import csv

    rows = list(csv.DictReader((out / "per_image.csv").open()))
    mine = [p for p in rows if p["pipeline"] == "irc auto"]
    assert len(mine) == 4
    for p in mine:
        target = float(p["target"])
        assert float(p["psnr_rgb"]) >= target
        alone = [int(q["bytes"]) for q in rows if q["image"] == p["image"] and q["pipeline"] in ("JPEG", "WebP")
                 and float(q["psnr_rgb"]) >= target]
        assert not alone or int(p["bytes"]) - 1000 <= min(alone)
    # a second run takes the auto points from the cache
    cached = (out / "cache.jsonl").read_text()
    assert run("bench", folder, "--out", out, "--scales", "none", "--rd-scales", "none", "--codecs", "jpeg,webp",
               "--auto", "28,24", "--auto-codecs", "jpeg,webp").exit_code == 0
    assert (out / "cache.jsonl").read_text() == cached
    # benchmarks/auto_vs_alone.py reads the same cache: 4 auto points against 2 codecs each
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "auto_vs_alone.py"
    done = subprocess.run([sys.executable, str(script), str(out / "cache.jsonl")], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "4 irc auto points, 2 images; codecs alone: jpeg, webp" in done.stdout
    cases = sum(any(q["image"] == p["image"] and q["pipeline"] == codec and float(q["psnr_rgb"]) >= float(p["target"])
                    for q in rows) for p in mine for codec in ("JPEG", "WebP"))
    assert f"\n{cases} (image, target, codec) cases with a codec-alone file reaching the target" in done.stdout
    # it reads the cache as the bench does: a torn last line (an interrupted run) is skipped
    torn = tmp_path / "torn.jsonl"
    torn.write_text(cached + cached.splitlines()[-1][:40])
    again = subprocess.run([sys.executable, str(script), str(torn)], capture_output=True, text=True)
    assert again.returncode == 0 and again.stdout == done.stdout, again.stderr


@pytest.mark.parametrize("args,needle", [
    (["--auto", "30,x"], "target PSNRs"),
    (["--auto", "70"], "between 10 and 60"),
    (["--auto", "30", "--auto-codecs", "bmp"], "bmp"),
])
def test_bench_auto_bad_options(tmp_path, folder, args, needle):
    r = run("bench", folder, "--out", tmp_path / "o", *args)
    assert r.exit_code == 1 and needle in r.output and "Traceback" not in r.output
