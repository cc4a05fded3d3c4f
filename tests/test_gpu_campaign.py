"""The GPU campaign (benchmarks/gpu_campaign.py, docs/GPU.md), every step on CPU with tiny sizes:
packing, crops, setting files aside and back on a throwaway git repo, a 2-step train, collect and ship."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from irc.models import registry
from irc.train.data import augment
from irc.train.gpu import join_file, split_file
from irc.train.pack import PackedSampler, decode_pack, pack_images, read_manifest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import gpu_campaign  # noqa: E402
import gpu_stash  # noqa: E402

SOURCE = Path(__file__).parent / "data" / "legacy" / "source.png"


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """1 torch thread: with both cores busy training, 2 threads made these steps 30x slower here."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _images(folder: Path, n: int, h0: int = 60, w: int = 90, seed: int = 0) -> list[Path]:
    """Smooth images with some noise (they compress, but not to nothing), heights h0, h0+5, ..."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    files = []
    for i in range(n):
        y, x = np.mgrid[0:h0 + 5 * i, 0:w]
        a = np.stack([(x * 3 + i) % 256, (y * 2) % 256, (x + y) % 256], -1) + rng.integers(0, 12, (*x.shape, 3))
        files.append(folder / f"im{i:02d}.png")
        Image.fromarray(np.clip(a, 0, 255).astype(np.uint8)).save(files[-1])
    return files


def test_pack_round_trip_within_a_byte_budget(tmp_path):
    files = _images(tmp_path / "train", 20)  # 20 images: the factor is first guessed from every 8th
    big = pack_images(files, tmp_path / "big.irpack", 10**7, min_side=64)
    assert [d["height"] for d in big["dropped"]] == [60]  # short side under min_side: left out
    assert big["factor"] == 1.0 and len(big["images"]) == 19
    for arr, f in zip(decode_pack(tmp_path / "big.irpack"), files[1:]):  # lossless at full size
        assert np.array_equal(arr, np.asarray(Image.open(f)))
    budget = (tmp_path / "big.irpack").stat().st_size // 2
    small = pack_images(files, tmp_path / "small.irpack", budget, min_side=64)
    assert (tmp_path / "small.irpack").stat().st_size <= budget and small["factor"] < 1
    assert all(min(e["width"], e["height"]) >= 64 for e in small["images"])
    assert read_manifest(tmp_path / "small.irpack")[0] == small
    arrays = decode_pack(tmp_path / "small.irpack")
    assert [a.shape[:2] for a in arrays] == [(e["height"], e["width"]) for e in small["images"]]
    jpeg = pack_images(files, tmp_path / "q.irpack", 10**7, codec="jpeg", quality=90, min_side=64)
    assert {e["format"] for e in jpeg["images"]} == {"jpeg"}

    data = bytearray((tmp_path / "small.irpack").read_bytes())
    data[-10] ^= 0xFF
    (tmp_path / "bad.irpack").write_bytes(bytes(data))
    with pytest.raises(ValueError, match="damaged"):
        decode_pack(tmp_path / "bad.irpack")
    kdk = _images(tmp_path / "Kodak", 1, h0=64)
    with pytest.raises(ValueError, match="Kodak"):  # never trained on
        pack_images(kdk, tmp_path / "k.irpack", 10**7)
    pack_images(kdk, tmp_path / "val.irpack", 10**7, role="val", center_crop=32, min_side=0)
    with pytest.raises(ValueError, match="not training data"):
        PackedSampler([tmp_path / "val.irpack"], crop=16)


def test_packed_sampler_cuts_the_crops_it_draws(tmp_path):
    g = torch.Generator().manual_seed(0)
    images = [torch.randint(0, 256, (3, h, w), generator=g, dtype=torch.uint8) for h, w in [(20, 30), (40, 24), (12, 50)]]
    s = PackedSampler(images=images, crop=16, seed=3)
    assert len(s) == 2  # the 12-pixel-high image gives no 16 x 16 crop
    state = s.state_dict()
    draws = [d.tolist() for d in s.draw(64)]
    s.load_state_dict(state)
    batch = s.sample(64)
    assert batch.shape == (64, 3, 16, 16) and batch.dtype == torch.float32
    assert batch.is_contiguous(memory_format=torch.channels_last)
    assert set(draws[0]) == {0, 1} and set(draws[3]) == set(range(8))
    for k, (i, top, left, aug) in enumerate(zip(*draws)):
        expected = augment(images[i][:, top:top + 16, left:left + 16], aug).float() / 255
        assert torch.equal(batch[k], expected)
    s.load_state_dict(state)
    assert torch.equal(s.sample(64), batch)  # resumable
    s.set_crop(22)
    assert len(s) == 1 and s.crop == 22 and set(s.draw(8)[0].tolist()) == {1}
    with pytest.raises(ValueError):
        s.set_crop(60)
    s.set_crop(8)
    assert len(s) == 3


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), "-c", "user.email=t@t", "-c", "user.name=t", *args],
                          capture_output=True, text=True, check=True).stdout


@pytest.fixture
def toy_repo(tmp_path):
    """A small git repo shaped like this one: weights, registry, docs, code, data_pack ignored."""
    repo = tmp_path / "repo"
    w = repo / "irc" / "models" / "weights"
    w.mkdir(parents=True)
    rng = np.random.default_rng(1)
    for name, n in [("irn-x2.safetensors", 30_000), ("irn-x4.safetensors", 50_000), ("crm-x2-jpeg.safetensors", 20_000)]:
        (w / name).write_bytes(rng.bytes(n))
    (repo / "irc" / "models" / "registry.json").write_text(json.dumps(
        [{"name": m, "weights": f"{m}.safetensors"} for m in ("irn-x2", "irn-x4", "crm-x2-jpeg")]))
    (repo / "docs" / "logs").mkdir(parents=True)
    (repo / "docs" / "plot.png").write_bytes(rng.bytes(40_000))
    (repo / "docs" / "logs" / "run.jsonl").write_text("{}\n" * 100)
    (repo / "docs" / "GPU.md").write_text("# GPU\n")
    (repo / "code.py").write_text("print('hi')\n")
    (repo / ".gitignore").write_text("/data_pack/\n/runs/\n")
    _git(repo, "init", "-q")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "toy")
    (repo / "notes.txt").write_text("untracked, not ignored: it travels\n")
    (repo / "runs").mkdir()
    (repo / "runs" / "big.bin").write_bytes(rng.bytes(10_000))  # ignored: does not travel
    return repo


def _hashes(repo: Path) -> dict[str, str]:
    return {f: gpu_stash.sha256(repo / f) for f in gpu_stash.tracked(repo) + gpu_stash.untracked(repo)}


def test_prepare_sets_aside_fills_the_budget_and_restore_puts_everything_back(toy_repo, tmp_path, monkeypatch):
    data, val = _images(tmp_path / "data" / "train", 6, h0=150, w=160), _images(tmp_path / "data" / "val", 2, h0=70)
    original = _hashes(toy_repo)
    stash = tmp_path / "stash"
    kept = sum((toy_repo / f).stat().st_size for f in original) - 40_000 - 50_000 - 20_000 - 300
    monkeypatch.setattr(gpu_stash, "LIMIT", kept + 2000 + 150_000)  # about 150 kB left for data
    rep = gpu_campaign.prepare(toy_repo, [str(data[0].parent)], str(val[0].parent), ["irn-x2"], stash, margin=2000,
                               min_side=64, min_data=10_000, log=lambda s: None)
    moved = {e["path"] for e in json.loads((stash / "manifest.json").read_text())["files"]}
    assert moved == {"irc/models/weights/irn-x4.safetensors", "irc/models/weights/crm-x2-jpeg.safetensors",
                     "docs/plot.png", "docs/logs/run.jsonl"}
    assert (toy_repo / "irc/models/weights/irn-x2.safetensors").exists() and (toy_repo / "docs/GPU.md").exists()
    # the count is what travels: tracked + untracked-not-ignored + carried data_pack, never runs/
    sent = sum((toy_repo / f).stat().st_size for f in gpu_stash.tracked(toy_repo) + gpu_stash.untracked(toy_repo)
               if (toy_repo / f).exists())
    sent += sum(f.stat().st_size for f in (toy_repo / "data_pack").rglob("*") if f.is_file())
    assert rep["sent"]["total"] == sent <= gpu_stash.LIMIT - 2000
    assert rep["sent"]["carried"] > 100_000  # the data filled the room that was left
    assert rep["device_call"]["carry"] == ["data_pack"] and len(rep["device_call"]["command"]) < 2000
    assert sorted(p.name for p in (toy_repo / "data_pack").iterdir()) == ["train.irpack", "val.irpack"]

    with pytest.raises(SystemExit, match="refusing"):  # a stash that was not restored blocks the next call
        gpu_campaign.prepare(toy_repo, [str(data[0].parent)], None, ["irn-x2"], stash, log=lambda s: None)
    # the call failed, and someone put a different plot where the stashed one was: a conflict, nothing lost
    (toy_repo / "docs/plot.png").write_bytes(b"other")
    assert gpu_campaign.main(["--repo", str(toy_repo), "--stash", str(stash), "restore"]) == 1
    assert (stash / "files" / "docs/plot.png").exists() and (toy_repo / "irc/models/weights/irn-x4.safetensors").exists()
    (toy_repo / "docs/plot.png").unlink()
    assert gpu_campaign.main(["--repo", str(toy_repo), "--stash", str(stash), "restore"]) == 0
    assert not stash.exists() and _hashes(toy_repo) == original
    assert _git(toy_repo, "status", "--porcelain", "--untracked-files=no") == ""  # no deletion left
    assert gpu_campaign.main(["--repo", str(toy_repo), "--stash", str(stash), "restore"]) == 0  # idempotent
    packed = gpu_stash.sha256(toy_repo / "data_pack" / "train.irpack")
    again = gpu_campaign.prepare(toy_repo, [str(data[0].parent)], None, ["irn-x2"], stash, margin=2000,
                                 dry_run=True, keep_pack=True, log=lambda s: None)  # the next call: no repacking
    assert gpu_stash.sha256(toy_repo / "data_pack" / "train.irpack") == packed and not stash.exists()
    assert again["sent"]["total"] == rep["sent"]["total"]


def test_a_stash_cut_short_is_restored(toy_repo, tmp_path, monkeypatch):
    original = _hashes(toy_repo)
    plan = gpu_stash.stash_plan(toy_repo, {"irc/models/weights/irn-x2.safetensors"})
    calls = []

    def copy_then_fail(src, dst):  # the machine dies while the third file is being copied
        calls.append(src)
        if len(calls) == 3:
            Path(dst).write_bytes(b"half")
            raise OSError("disk went away")
        return real_copy(src, dst)

    real_copy = shutil.copy2
    monkeypatch.setattr(gpu_stash.shutil, "copy2", copy_then_fail)
    with pytest.raises(OSError):
        gpu_stash.stash(toy_repo, tmp_path / "stash", plan)
    monkeypatch.setattr(gpu_stash.shutil, "copy2", real_copy)
    assert sum(not (toy_repo / p).exists() for p in plan) == 2
    with pytest.raises(RuntimeError, match="restore first"):
        gpu_stash.stash(toy_repo, tmp_path / "stash", plan)
    out = gpu_stash.restore(toy_repo, tmp_path / "stash", log=lambda s: None)
    assert out == {"restored": 2, "already": 2, "problems": []}
    assert _hashes(toy_repo) == original and _git(toy_repo, "status", "--porcelain", "--untracked-files=no") == ""
    with pytest.raises(RuntimeError, match="outside"):
        gpu_stash.stash(toy_repo, toy_repo / "stash", plan)


def test_split_and_join_check_every_hash(tmp_path):
    src = tmp_path / "w.bin"
    src.write_bytes(np.random.default_rng(0).bytes(2500))
    entry = split_file(src, tmp_path / "out", "w.safetensors", part_bytes=1000)
    assert [p["name"] for p in entry["parts"]] == [f"w.safetensors.part{i}" for i in range(3)]
    assert join_file(entry, [tmp_path / "nowhere", tmp_path / "out"], tmp_path / "back.bin").read_bytes() == src.read_bytes()
    (tmp_path / "out" / "w.safetensors.part1").write_bytes(b"x" * 1000)
    with pytest.raises(ValueError, match="sha256"):
        join_file(entry, [tmp_path / "out"], tmp_path / "back2.bin")
    assert split_file(src, tmp_path / "one", "w.safetensors", part_bytes=4000)["parts"][0]["name"] == "w.safetensors"


def _private_registry(tmp_path: Path, mp: pytest.MonkeyPatch, drop: tuple = (), kodak: dict | None = None) -> Path:
    """A copy of the shipped registry (weights linked) to train from and ship into."""
    weights = tmp_path / "weights"
    weights.mkdir()
    for f in registry.WEIGHTS_DIR.glob("*.safetensors"):
        if f.name not in drop:
            (weights / f.name).symlink_to(f)
    entries = json.loads(registry.REGISTRY_FILE.read_text())
    for e in entries:
        if kodak and e["name"] in kodak:
            e["kodak"] = {**e["kodak"], **kodak[e["name"]]}
    reg = tmp_path / "registry.json"
    reg.write_text(json.dumps(entries, indent=2))
    mp.setattr(registry, "REGISTRY_FILE", reg)
    mp.setattr(registry, "WEIGHTS_DIR", weights)
    mp.setattr(registry, "_parsed", None)
    registry.load_model.cache_clear()
    return reg


@pytest.fixture(scope="module")
def gpu_out(tmp_path_factory):
    """What a call returns: `train` run for 2 steps per model on CPU, x4's shipped weights absent
    (so it starts from the x2 of this call), parts forced small, torch.compile broken; then a
    second call that resumes x2 as a warm machine would."""
    tmp = tmp_path_factory.mktemp("gpu")
    pack_images(_images(tmp / "train", 4, h0=20, w=24), tmp / "train.irpack", 10**6, min_side=16)
    pack_images([SOURCE], tmp / "val.irpack", 10**6, role="val", min_side=0, center_crop=32)
    with pytest.MonkeyPatch.context() as mp:
        _private_registry(tmp, mp, drop=("irn-x4.safetensors",))
        with pytest.raises(ValueError, match="files would come back"):  # checked before any training
            gpu_campaign.main(["train", "--models", "irn-x2,irn-x4,irn-x8", "--out", str(tmp / "x"),
                               "--init-dir", "", "--part-bytes", "1000000"])

        def broken_compiler(fn, **kw):  # torch.compile failing on the day: the call trains on without it
            def fails(*a, **k):
                raise RuntimeError("inductor exploded")
            return fails

        mp.setattr(torch, "compile", broken_compiler)
        gpu_campaign.main(["train", "--models", "irn-x2,irn-x4", "--out", str(tmp / "out"), "--runs", str(tmp / "runs"),
                           "--pack", str(tmp / "train.irpack"), "--val-pack", str(tmp / "val.irpack"), "--init-dir", "",
                           "--device", "cpu", "--precision", "fp32", "--crop", "16", "--batch", "2",
                           "--steps", "2", "--part-bytes", str(2_500_000), "--threads", "1"])
        common = ["--pack", str(tmp / "train.irpack"), "--val-pack", str(tmp / "val.irpack"), "--init-dir", "",
                  "--device", "cpu", "--precision", "fp32",
                  "--no-compile", "--crop", "16", "--batch", "2", "--steps", "4", "--threads", "1", "--expect-resume"]
        with pytest.raises(SystemExit, match="fresh one"):  # a later call that finds a cold machine stops at once
            gpu_campaign.main(["train", "--models", "irn-x2", "--out", str(tmp / "x"), "--runs", str(tmp / "cold"),
                               *common])
        # a later call on the warm machine continues the checkpoint (optimizer and EMA included)
        gpu_campaign.main(["train", "--models", "irn-x2", "--out", str(tmp / "out2"), "--runs", str(tmp / "runs"),
                           *common])
    registry.load_model.cache_clear()
    return tmp / "out"


def test_train_two_steps_on_cpu_returns_split_ema_weights(gpu_out):
    result = json.loads((gpu_out / "gpu_result.json").read_text())
    files = sorted(p.name for p in gpu_out.iterdir())
    assert len(files) + 1 <= 8  # + the command's log
    assert files == ["gpu_result.json"] + [f"irn-x2.safetensors.part{i}" for i in range(2)] + [
        f"irn-x4.safetensors.part{i}" for i in range(4)]
    x2, x4 = result["models"]["irn-x2"], result["models"]["irn-x4"]
    assert x2["steps"] == x4["steps"] == 2 and x2["steps_per_s"] > 0 and x2["loss_last"] > 0
    assert x2["lineage"]["init"].startswith("shipped irn-x2 v") and x4["lineage"]["init"] == "irn-x2 trained in this call"
    assert x2["exported"] in ("ema", "raw") and x2["val_psnr_y"]["after"] == x2["val_psnr_y"][x2["exported"]]
    assert x2["val_psnr_y"]["images"] == 1 and x2["val_psnr_y"]["before"] > 20  # the shipped x2 on a 32 px crop
    assert result["settings"]["precision"] == "fp32" and result["packs"][0]["images"] == 4
    assert result["settings"]["compile"] == "failed, then off"
    assert all(p["bytes"] <= 2_500_000 for p in x4["weights"]["parts"])
    again = json.loads((gpu_out.parent / "out2" / "gpu_result.json").read_text())["models"]["irn-x2"]
    assert (again["steps"], again["steps_run"], again["steps_total"]) == (2, 4, 4)
    assert again["lineage"] == x2["lineage"] and again["val_psnr_y"]["before"] == x2["val_psnr_y"]["after"]


def test_collect_joins_measures_and_ships_only_a_real_gain(gpu_out, tmp_path, monkeypatch):
    from irc import api

    bench = tmp_path / "bench"
    bench.mkdir()
    shutil.copy(SOURCE, bench / "a.png")
    _private_registry(tmp_path, monkeypatch, kodak={"irn-x2": {"psnr_y": 1.0, "images": 1},
                                                    "irn-x4": {"psnr_y": 99.0, "images": 1}})
    work, x4_version = tmp_path / "work", registry.get_spec("irn-x4").version
    gpu_campaign.main(["collect", str(gpu_out), "--kodak", str(bench), "--work", str(work)])
    summary = json.loads((work / "collect.json").read_text())
    assert summary["irn-x2"]["verdict"].startswith("shipped as irn-x2 v")
    assert "below 0.2 dB" in summary["irn-x4"]["verdict"]
    result = json.loads((gpu_out / "gpu_result.json").read_text())["models"]
    new, base = registry.get_spec("irn-x2"), result["irn-x2"]["lineage"]["base"]
    assert new.version == base["version"] + 1 and registry.get_spec(f"irn-x2@{base['version']}").sha256() == base["sha256"]
    assert new.training["gpu_steps"] == 2 and new.training["iterations"] == base["iterations"] + 2
    assert registry.get_spec("irn-x4").version == x4_version  # not shipped: no new version
    assert "bf16" not in new.training["recipe"] and new.kodak["images"] == 1
    assert new.kodak["command"] == "python benchmarks/gpu_campaign.py collect"
    assert gpu_stash.sha256(new.weights_path) == result["irn-x2"]["weights"]["sha256"]
    assert "irn-x2-gpu-candidate" not in registry.all_models()  # measured, then unregistered
    assert api.decode(api.encode(np.asarray(Image.open(SOURCE)), scale=None, codec="png", model="irn-x2")).size == (80, 64)
