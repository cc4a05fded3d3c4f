"""Old .irc files keep decoding: weight versions in the registry, and files from earlier releases."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from irc import api, container
from irc.errors import IrcError
from irc.metrics import psnr_rgb
from irc.models import registry

LEGACY = Path(__file__).parent / "data" / "legacy"
GOLDEN = json.loads((LEGACY / "golden.json").read_text())


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_files_of_earlier_releases_decode(name):
    """Every file an earlier release wrote decodes to what that release decoded it to."""
    data = (LEGACY / f"{name}.irc").read_bytes()
    out = np.asarray(api.decode(data)).astype(int)
    expected = np.asarray(Image.open(LEGACY / f"{name}.expected.png")).astype(int)
    src = np.asarray(Image.open(LEGACY / "source.png"))
    assert out.shape == expected.shape == src.shape
    assert np.abs(out - expected).max() <= 2  # float rounding on another CPU, nothing more
    assert psnr_rgb(src, out.astype(np.uint8)) == pytest.approx(GOLDEN[name]["psnr_rgb"], abs=0.05)


def _perturbed_copy(src: Path, dest: Path) -> None:
    from safetensors.torch import load_file, save_file

    state = load_file(str(src))
    first = sorted(k for k in state if k.endswith("weight"))[0]
    state[first] = state[first] * 1.01
    save_file(state, str(dest))


def test_shipping_a_new_version_keeps_old_files_decoding(private_registry, tmp_path):
    from irc.train.campaign import ship

    old_file = (LEGACY / "irn-x2-png.irc").read_bytes()
    before = np.asarray(api.decode(old_file))
    cur = registry.get_spec("irn-x2").version  # the newest shipped version before this test ships one
    old_sha = registry.get_spec("irn-x2").sha256()

    # a finished campaign run, as train_leg leaves it
    runs = tmp_path / "runs"
    (runs / "irn-x2").mkdir(parents=True)
    cand = tmp_path / "candidate.safetensors"
    _perturbed_copy(registry.get_spec("irn-x2").weights_path, cand)
    import torch

    torch.save({"step": 123, "elapsed": 3600.0, "config": {"lr": 2e-4, "warmup": 20, "ema": 0.998, "crop_stages": [[0, 64, 16]],
                                        "grad_clip": 1.0}}, runs / "irn-x2" / "last.pt")
    (runs / "irn-x2" / "campaign.json").write_text(json.dumps({
        "started_from": {"version": 1, "training": {"iterations": 1000}},
        "legs": [{"seconds": 3600, "threads": 1, "hardware": "test"}]}))
    ship("irn-x2", cand, {"psnr_y": 40.0, "psnr_rgb": 37.0, "images": 24}, runs)

    new, old = registry.get_spec("irn-x2"), registry.get_spec(f"irn-x2@{cur}")
    assert (new.version, old.version) == (cur + 1, cur) and new.sha256() != old_sha == old.sha256()
    assert new.training["iterations"] == 1123 and new.training["cpu_hours"] == 1.0
    assert new.training["recipe_step"] == 123  # where a new run from it starts its crop stages
    assert f"irn-x2@{cur}" not in registry.all_models()  # `irc models` lists the newest only
    assert not (registry.WEIGHTS_DIR / f"irn-x2.v{cur + 1}.safetensors").is_symlink()

    # the oldest file (format 1.1, no version: found by its hash) decodes exactly as before
    assert np.array_equal(np.asarray(api.decode(old_file)), before)
    # new files name the new version and decode with it; version 1 can still be asked for by name
    src = np.asarray(Image.open(LEGACY / "source.png"))
    new_file = api.encode(src, scale=None, codec="png", model="irn-x2")
    hd = api.read(new_file).header
    assert (hd.model, hd.model_version, hd.weights_sha256) == ("irn-x2", cur + 1, new.sha256())
    assert api.decode(new_file).size == (80, 64)
    v1_file = api.encode(src, scale=None, codec="png", model="irn-x2@1")
    assert api.read(v1_file).header.model_version == 1
    assert np.array_equal(np.asarray(api.decode(v1_file)), before)

    with pytest.raises(IrcError, match="refusing to replace"):  # a version is written once
        (registry.WEIGHTS_DIR / f"irn-x2.v{cur + 2}.safetensors").write_bytes(b"x")
        ship("irn-x2", cand, {"psnr_y": 40.1}, runs)


def test_a_file_naming_a_missing_version_or_other_weights_fails_clearly():
    data = (LEGACY / "irn-x2-png.irc").read_bytes()
    f = container.loads(data)
    f.header.model_version = 9
    with pytest.raises(IrcError, match="version 9, not installed"):
        api.decode(container.dumps(f))
    f.header.model_version = None
    f.header.weights_sha256 = "0123456789abcdef"
    with pytest.raises(IrcError, match="none of the installed versions"):
        api.decode(container.dumps(f))
    f.header.model_version = 1
    with pytest.raises(IrcError, match="other weights for irn-x2 version 1"):
        api.decode(container.dumps(f))


def test_the_newest_version_answers_to_its_number_too():
    """`--model fgrn-x4@N` works for every installed N, the newest included; other numbers fail clearly."""
    newest = registry.get_spec("fgrn-x4")
    assert registry.get_spec(f"fgrn-x4@{newest.version}") == newest
    with pytest.raises(IrcError, match="unknown model"):
        registry.get_spec(f"fgrn-x4@{newest.version + 1}")
    with pytest.raises(IrcError, match="unknown model"):
        registry.get_spec("nosuch@1")


def test_trial_weights_register_under_a_new_name_for_the_process(tiny_models, photo):
    name = registry.register_trial(f"trial-x2={tiny_models[2].weights_path}:tiny-x2", crm_codecs=("png",))
    try:
        spec = registry.get_spec(name)
        assert (spec.scale, spec.arch, spec.version) == (2, tiny_models[2].arch, 1)
        assert spec.codecs == ()  # crm_codecs concern a trial CRM only: a trial rescaler is never a default
        assert spec.weights_path == tiny_models[2].weights_path.resolve() and not spec.kodak
        data = api.encode(photo, scale=None, codec="png", model=name)
        assert np.asarray(api.decode(data)).shape == photo.shape
    finally:
        registry.unregister(name)
    # a trial CRM made for a codec restores that codec's LR of its base, ahead of any shipped CRM
    crm = registry.register_trial(f"trial-crm={tiny_models['crm'].weights_path}:{tiny_models['crm'].name}", crm_codecs=("avif",))
    try:
        assert registry.default_crm("tiny-x2", "avif").name == crm
        assert registry.default_crm("tiny-x2", "webp") is None or registry.default_crm("tiny-x2", "webp").name != crm
    finally:
        registry.unregister(crm)
    assert registry.default_crm("tiny-x2", "avif") is None or registry.default_crm("tiny-x2", "avif").name != crm
    for bad, needle in (("no-equals", "NAME=WEIGHTS:LIKE"), ("a=weights-without-like", "NAME=WEIGHTS:LIKE"),
                        ("a=/no/such/file.safetensors:tiny-x2", "not found"),
                        (f"a={tiny_models[2].weights_path}:no-such-model", "unknown model")):
        with pytest.raises(IrcError, match=needle):
            registry.register_trial(bad)
