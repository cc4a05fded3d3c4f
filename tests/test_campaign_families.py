"""The campaign across families: adopting a new family's from-scratch run, and shipping
its first version (tiny FGRN, a private copy of the registry)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from irc import api
from irc.errors import IrcError
from irc.models import registry
from irc.train import campaign

from .conftest import run_cli
from .conftest import synthetic_image as _image
from .test_train_fgrn import TINY


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def without_fgrn_x2(private_registry):
    """The private registry as it was before fgrn-x2 shipped: a family with nothing shipped yet."""
    _without(private_registry, "fgrn-x2")
    return private_registry


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A finished 4-step tiny FGRN x2 run (with an EMA), and a folder of 2 'Kodak' images."""
    from irc.train.fgrn import FGRNTrainConfig, train_fgrn

    root = tmp_path_factory.mktemp("adopt")
    data, kodak = root / "train", root / "kodak"
    data.mkdir()
    kodak.mkdir()
    for i in range(2):
        Image.fromarray(_image(64, 64, i)).save(data / f"t{i}.png")
        Image.fromarray(_image(40, 56, 5 + i)).save(kodak / f"k{i}.png")
    src = root / "fgrn-x2-scratch"
    train_fgrn(FGRNTrainConfig(scale=2, **TINY, data=[str(data)], out=str(src), iters=4, batch=2, crop=32,
                               warmup=1, ema=0.9, threads=1))
    return src, data, kodak


def test_adopt_then_ship_a_first_version(tiny_run, tmp_path, without_fgrn_x2):
    src, _, kodak = tiny_run
    runs = tmp_path / "runs"
    assert "fgrn-x2" not in registry.all_versions()
    run_dir = campaign.adopt("fgrn-x2", src, runs)
    assert (run_dir / "last.pt").exists() and (src / "last.pt").exists()  # copied, not moved
    hist = json.loads((run_dir / "campaign.json").read_text())
    assert hist["started_from"]["adopted"] == str(src) and hist["legs"][0]["steps"] == [0, 4]
    with pytest.raises(IrcError, match="already holds"):
        campaign.adopt("fgrn-x2", src, runs)

    files = sorted(kodak.glob("*.png"))
    cand, numbers = campaign.export_and_measure("fgrn-x2", runs, files)
    assert numbers["images"] == 2 and numbers["weights"] in ("ema", "raw") and "fgrn-x2-candidate" not in registry.all_versions()
    campaign.ship("fgrn-x2", cand, numbers, runs)

    spec = registry.get_spec("fgrn-x2")
    assert (spec.arch, spec.scale, spec.version, spec.params, spec.codecs) == ("fgrn", 2, 1, TINY, ())
    assert spec.weights_path.name == "fgrn-x2.safetensors" and spec.training["campaign_steps"] == 4
    assert spec.training["params"] == sum(p.numel() for p in registry.load_model("fgrn-x2").parameters())
    assert "adopted" in spec.training["continued_from"] and spec.kodak["psnr_y"] == numbers["psnr_y"]
    assert registry.default_model(2, "png").arch == "irn"  # a new family is never the default by itself
    img = np.asarray(Image.open(files[0]))
    data = api.encode(img, scale=None, codec="png", model="fgrn-x2")
    assert api.read(data).header.model_version == 1 and api.decode(data).size == (56, 40)


def test_adopt_refuses_another_family_or_scale(tiny_run, tmp_path):
    src, _, _ = tiny_run
    with pytest.raises(IrcError, match="not a x4 run"):
        campaign.adopt("fgrn-x4", src, tmp_path / "runs")
    with pytest.raises(IrcError, match="not a x2 run"):
        campaign.adopt("irn-x2", src, tmp_path / "runs")
    with pytest.raises(IrcError, match="not a training run"):
        campaign.adopt("fgrn-x2", tmp_path, tmp_path / "runs")


def test_cli_adopt_measures_and_ships(tiny_run, tmp_path, without_fgrn_x2):
    src, _, kodak = tiny_run
    runs = tmp_path / "runs"
    res = run_cli("train", "campaign", "fgrn-x2", "--kodak", kodak, "--runs", runs, "--no-train")
    assert res.exit_code != 0 and "--adopt" in res.output  # nothing shipped, nothing to resume
    res = run_cli("train", "campaign", "fgrn-x2", "--adopt", src, "--kodak", kodak, "--runs", runs, "--no-train")
    assert res.exit_code == 0, res.output
    assert "nothing shipped yet" in res.output and "shipped fgrn-x2 v1" in res.output
    assert registry.get_spec("fgrn-x2").version == 1


def test_auto_training_precision_is_bf16_where_the_cpu_has_it(monkeypatch):
    """auto: bf16 on CUDA and on a CPU with native bf16 (1.5-1.7x cheaper steps, docs/PRECISION.md),
    fp32 on a CPU that would emulate it; fp32 and bf16 as asked."""
    import torch

    from irc.train import loop
    from irc.train.fgrn import FGRNTrainConfig

    cfg = FGRNTrainConfig(scale=2)
    monkeypatch.setattr(loop, "cpu_has_native_bf16", lambda: True)
    assert loop.use_bf16(cfg, torch.device("cpu")) and loop.use_bf16(cfg, torch.device("cuda"))
    assert not loop.use_bf16(FGRNTrainConfig(scale=2, precision="fp32"), torch.device("cpu"))
    monkeypatch.setattr(loop, "cpu_has_native_bf16", lambda: False)
    assert not loop.use_bf16(cfg, torch.device("cpu")) and loop.use_bf16(cfg, torch.device("cuda"))


def test_campaign_leg_records_its_precision_and_learning_rate(tiny_run, tmp_path, without_fgrn_x2):
    src, data, kodak = tiny_run
    runs = tmp_path / "runs"
    campaign.adopt("fgrn-x2", src, runs)
    campaign.train_leg("fgrn-x2", runs, [str(data)], None, 0.01, overrides={"precision": "fp32", "lr": 7e-5})
    leg = json.loads((runs / "fgrn-x2" / "campaign.json").read_text())["legs"][-1]
    assert leg["precision"] == "fp32" and leg["steps"][1] > leg["steps"][0] and leg["lr"] == 7e-5
    steps = [json.loads(line) for line in (runs / "fgrn-x2" / "log.jsonl").read_text().splitlines()]
    assert 0 < [r["lr"] for r in steps if "lr" in r][-1] <= 7e-5  # at it (in the warm-up: below), not the recipe's 3e-4
    for flag, value, needle in (("--precision", "half", "--precision must be auto, fp32 or bf16"),
                                ("--lr", "0", "--lr must be between 0 and 1")):
        res = run_cli("train", "campaign", "fgrn-x2", "--kodak", kodak, "--runs", runs, flag, value)
        assert res.exit_code != 0 and needle in res.output
        assert len([line for line in res.output.splitlines() if line.strip()]) == 1, res.output


def _without(private_registry, name: str):
    """The private registry without ``name`` (a family with nothing shipped yet)."""
    entries = [e for e in json.loads(private_registry.read_text()) if e["name"] != name]
    private_registry.write_text(json.dumps(entries))
    (registry.WEIGHTS_DIR / f"{name}.safetensors").unlink(missing_ok=True)  # the private copy's link, not the file
    registry._parsed = None
    registry.load_model.cache_clear()


@pytest.mark.parametrize("model,arch,config,metric,note", [
    ("irn-color", "irn_color", dict(blocks=1, crop=16), "psnr_rgb", "grayscale"),
    ("bdflow-x8", "bdflow", dict(scale=8, nf=8, res_blocks=1, bits=2, crop=64), "psnr_y", "LPIPS"),
])
def test_new_families_adopt_and_ship_by_their_own_metric(tiny_run, tmp_path, private_registry, model, arch,
                                                        config, metric, note):
    """IRN_color ranks and ships by RGB PSNR (its luma is nearly exact by construction); BDFlow by Y-PSNR;
    each first version's entry says what its training leaves out or how it is used."""
    import importlib

    _, data, kodak = tiny_run
    _without(private_registry, model)
    family = importlib.import_module(f"irc.train.{arch}")
    src = tmp_path / "scratch"
    family.train(family.CONFIG(**config, data=[str(data)], out=str(src), iters=2, batch=2, warmup=1, ema=0.9,
                               threads=1, precision="fp32"))
    assert campaign.metric(arch) == metric
    runs = tmp_path / "runs"
    campaign.adopt(model, src, runs)
    cand, numbers = campaign.export_and_measure(model, runs, sorted(kodak.glob("*.png")))
    assert set(numbers[f"validation_{metric}"]) == {"ema", "raw"}
    campaign.ship(model, cand, numbers, runs)
    spec = registry.get_spec(model)
    assert spec.arch == arch and spec.version == 1 and note in spec.description and spec.codecs == ()


def test_a_new_run_from_a_shipped_version_keeps_its_crop_stage(tmp_path, monkeypatch):
    """A lost run folder costs the optimizer state, not the crop stage: a new run from a shipped
    version starts at the stage its weights had reached, and its ship records where that is."""
    import types

    import torch

    stages = [[0, 64, 12], [3000, 128, 3], [6000, 144, 2]]
    assert campaign.shift_stages(stages, 0) == stages
    assert campaign.shift_stages(stages, 4745) == [[0, 128, 3], [1255, 144, 2]]
    assert campaign.shift_stages(stages, 3000) == [[0, 128, 3], [3000, 144, 2]]
    assert campaign.shift_stages(stages, 9000) == [[0, 144, 2]]
    assert campaign.recipe_step({}) == 0
    assert campaign.recipe_step({"campaign_steps": 4745}) == 4745  # entries shipped before recipe_step
    assert campaign.recipe_step({"campaign_steps": 30, "recipe_step": 4775}) == 4775

    configs = []

    def train(cfg, resume=False, progress=None):  # the trainer as train_leg calls it: one step more
        configs.append((cfg, resume))
        ckpt = Path(cfg.out) / "last.pt"
        step = torch.load(ckpt, weights_only=False)["step"] + 1 if resume else 1
        torch.save({"step": step}, ckpt)
        return ckpt

    real = campaign.trainer("irn-x8")
    monkeypatch.setattr(campaign, "trainer", lambda m: types.SimpleNamespace(CONFIG=real.CONFIG, train=train))
    shipped = registry.get_spec("irn-x8").training
    want = campaign.shift_stages(campaign.RECIPES["irn-x8"]["crop_stages"], campaign.recipe_step(shipped))
    for resume in (False, True):  # new, then resumed: the same stages
        campaign.train_leg("irn-x8", tmp_path, [], None, 1.0)
        cfg, resumed = configs[-1]
        assert resumed == resume and cfg.crop_stages == want and (cfg.crop, cfg.batch) == tuple(want[0][1:])
    if campaign.recipe_step(shipped) >= 3000:  # irn-x8 v3 reached the 128² stage (step 4745)
        assert want[0] != [0, 64, 12]
