"""Train IRN x2/x4/x8 on a lent GPU (30 device-minutes, 10 per command, 64 MiB up, 8 files of
16 MiB back), then measure the result on Kodak here and ship it if better. See docs/GPU.md.

    python benchmarks/gpu_campaign.py prepare     # pack data, set aside what the run does not need,
                                                  # print the bytes sent and the device call to make
    (the device call)                             # runs `gpu_campaign.py train` there
    python benchmarks/gpu_campaign.py restore     # ALWAYS, even when the call failed
    python benchmarks/gpu_campaign.py collect FILES_AT   # join, check, measure on Kodak, ship if >= 0.2 dB

Everything but ``train`` runs here; ``train`` runs on the GPU machine (Python 3.12, torch
2.11 there; irc is imported from the uploaded tree with PYTHONPATH).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import gpu_stash  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
MODELS = "irn-x2,irn-x4,irn-x8"
PACK_DIR = "data_pack"
PACKS = ("train.irpack", "val.irpack")


def default_stash(repo: Path) -> Path:
    return repo.resolve().parent / f".{repo.resolve().name}-gpu-stash"


def device_command(models: list[str], total_s: int) -> str:
    cmd = ("set -o pipefail; export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD; nvidia-smi -L; "
           f"python3 benchmarks/gpu_campaign.py train --models {','.join(models)} --total-s {total_s} "
           "--out $OUT 2>&1 | tee $OUT/train.log")
    assert len(cmd) < 2000
    return cmd


def prepare(repo: Path, data: list[str], kodak: str | None, models: list[str], stash_dir: Path,
            margin: int = 3 * 2**20, init_dir: str | None = None, extra: list[str] = (), val_images: int = 4,
            val_crop: int = 256, min_side: int = 144, total_s: int = 530, dry_run: bool = False,
            codec: str = "webp-lossless", quality: int = 95, min_data: int = 2**20, from_smaller: list[str] = (),
            keep_pack: bool = False, log=print) -> dict:
    """Pack the data into ``repo/data_pack`` to fill what the upload leaves, then set aside the
    files the run does not need; returns the byte counts and the device call. Models in
    ``from_smaller`` leave their shipped weights here and start from the smaller scale trained
    in the same call (irn-x8's 22 MB become training data). ``keep_pack``: reuse the packs already
    in data_pack when they still fit (packing takes about a CPU-minute)."""
    from irc.train.data import list_images
    from irc.train.pack import pack_images

    repo = Path(repo)
    if gpu_stash.stash_exists(stash_dir):
        raise SystemExit(f"refusing: {stash_dir} holds files set aside by an earlier call. "
                         f"Run `python benchmarks/gpu_campaign.py restore` first.")
    pack_dir = repo / PACK_DIR
    pack_dir.mkdir(exist_ok=True)
    for f in pack_dir.iterdir():  # only what this call needs travels
        if not (keep_pack and f.name in PACKS):
            shutil.rmtree(f) if f.is_dir() else f.unlink()
    brought = [m for m in models if init_dir and (Path(init_dir) / f"{m}.safetensors").exists()]
    if brought:  # weights returned by an earlier call: they travel instead of the shipped ones
        (pack_dir / "init").mkdir()
        for m in brought:
            shutil.copy2(Path(init_dir) / f"{m}.safetensors", pack_dir / "init" / f"{m}.safetensors")
        if (Path(init_dir) / "gpu_result.json").exists():
            shutil.copy2(Path(init_dir) / "gpu_result.json", pack_dir / "init" / "gpu_result.json")
    keep = gpu_stash.needed_weights(repo, [m for m in models if m not in brought and m not in from_smaller])
    plan = gpu_stash.stash_plan(repo, keep, extra)
    now = gpu_stash.travel_bytes(repo, [PACK_DIR])
    aside = sum((repo / p).stat().st_size for p in plan)
    packed = sum(f.stat().st_size for f in pack_dir.glob("*.irpack"))
    budget = gpu_stash.LIMIT - margin - (now["total"] - aside - packed)
    if keep_pack and (pack_dir / "train.irpack").exists() and packed <= budget:
        log(f"keeping the packs in {pack_dir} ({packed:,} bytes; room for {budget:,})")
    else:
        for f in pack_dir.glob("*.irpack"):
            f.unlink()
        if budget < min_data:
            raise SystemExit(f"only {budget} bytes left for training data; set aside more (--set-aside PATTERN)")
        if kodak:
            vfiles = list_images([kodak])[:val_images]
            pack_images(vfiles, pack_dir / "val.irpack", min(2**21, budget // 4), min_side=0, role="val",
                        center_crop=val_crop, root=repo.parent, log=log)
        budget -= sum(f.stat().st_size for f in pack_dir.glob("*.irpack"))
        pack_images(list_images(data), pack_dir / "train.irpack", budget, codec=codec, quality=quality,
                    min_side=min_side, root=repo.parent, log=log)
    if not dry_run:
        try:
            gpu_stash.stash(repo, stash_dir, plan)
        except BaseException:
            log("setting files aside failed: `python benchmarks/gpu_campaign.py restore` puts back what moved")
            raise
    sent = gpu_stash.travel_bytes(repo, [PACK_DIR])
    if dry_run:  # what it would send once the files are set aside
        sent = {**sent, "tracked": sent["tracked"] - aside, "total": sent["total"] - aside}
    report = {"set_aside": {"files": len(plan), "bytes": aside, "stash": str(stash_dir)},
              "kept_weights": sorted(keep) + [f"{PACK_DIR}/init/{m}.safetensors" for m in brought],
              "sent": sent, "limit": gpu_stash.LIMIT, "dry_run": dry_run,
              "device_call": {"command": device_command(models, total_s), "carry": [PACK_DIR], "timeout_s": 600}}
    mib = lambda n: f"{n:,} bytes ({n / 2**20:.2f} MiB)"  # noqa: E731
    log(f"set aside{' (dry run: would set aside)' if dry_run else ''}: {len(plan)} files, {mib(aside)} -> {stash_dir}")
    log("kept weights: " + ", ".join(report["kept_weights"]))
    for k in ("tracked", "untracked", "shared", "carried"):
        log(f"  {k:9s} {mib(sent[k])}")
    spare = (gpu_stash.LIMIT - sent["total"]) / 2**20
    log(f"sends: {mib(sent['total'])} of {mib(gpu_stash.LIMIT)} ({spare:.2f} MiB spare)")
    if sent["total"] > gpu_stash.LIMIT:
        if not dry_run:
            gpu_stash.restore(repo, stash_dir, log)
        raise SystemExit("over the 64 MiB limit; nothing is set aside now")
    log("device call (then, whatever happens, `python benchmarks/gpu_campaign.py restore`):")
    log(json.dumps(report["device_call"], indent=1))
    return report


def collect(src_dirs: list[str], kodak: str, work: Path, ship: bool = True, min_gain: float = 0.2,
            device: str = "cpu", models: list[str] | None = None, measure: bool = True, log=print) -> dict:
    """Join and check the returned weights, measure each on every Kodak image through the real
    pipeline, and ship it as a new version when it beats the shipped one by ``min_gain`` dB."""
    from irc.models import registry
    from irc.train import campaign
    from irc.train.data import list_images
    from irc.train.gpu import RESULT, join_file

    found = [Path(d) / RESULT for d in src_dirs if (Path(d) / RESULT).is_file()]
    if not found:
        raise SystemExit(f"no {RESULT} in {src_dirs}: nothing came back")
    result = json.loads(found[0].read_text())
    work.mkdir(parents=True, exist_ok=True)
    shutil.copy2(found[0], work / RESULT)
    files = list_images([kodak]) if measure else []
    summary = {}
    for model, r in result["models"].items():
        if "weights" not in r or (models and model not in models):
            continue
        path = join_file(r["weights"], src_dirs, work / f"{model}.safetensors")
        log(f"{model}: {len(r['weights']['parts'])} part(s) joined, sha256 ok -> {path}")
        if not measure:
            continue
        spec = registry.get_spec(model)
        key = f"{model}-gpu-candidate"
        registry.register(registry.ModelSpec(name=key, arch=spec.arch, scale=spec.scale, params=spec.params,
                                             weights=str(path.resolve())))
        try:
            numbers = campaign.measure(key, files, device)
        finally:  # a run-time model would otherwise be every later encode's default for its scale
            registry._extra.pop(key, None)
            registry.load_model.cache_clear()
        old = spec.kodak.get("psnr_y")
        base = (r.get("lineage") or {}).get("base") or {}
        if base.get("name") == model and base.get("version") != spec.version:
            log(f"note: the GPU run continued {model} v{base.get('version')}; v{spec.version} shipped since: "
                f"compared with v{spec.version}")
        gain = numbers["psnr_y"] - old if old is not None else float("inf")
        log(f"{model} v{spec.version} (shipped): Y-PSNR {old} dB on {spec.kodak.get('images')} images")
        log(f"{model} GPU weights ({r.get('exported', 'ema')}): Y-PSNR {numbers['psnr_y']} dB, "
            f"RGB {numbers['psnr_rgb']} dB on "
            f"{numbers['images']} images ({gain:+.3f} dB; {r['steps']} steps at {r['steps_per_s']} steps/s)")
        verdict = "shipped"
        if len(files) != spec.kodak.get("images"):
            verdict = "not shipped: measured on another number of images than the shipped numbers"
        elif gain < min_gain:
            verdict = f"not shipped: {gain:+.3f} dB is below {min_gain} dB"
        elif not ship:
            verdict = "not shipped: --no-ship"
        else:
            campaign.ship(model, path, {**numbers, "command": "python benchmarks/gpu_campaign.py collect"},
                          Path("."), training=training_record(model, r, result))
            verdict = f"shipped as {model} v{registry.get_spec(model).version}; v{spec.version} stays installed"
        log(f"{model}: {verdict}")
        summary[model] = {"before": old, "after": numbers, "gain": round(gain, 3), "verdict": verdict}
    (work / "collect.json").write_text(json.dumps(summary, indent=1))
    return summary


def training_record(model: str, r: dict, result: dict) -> dict:
    """The registry's ``training`` entry for weights trained by ``train`` on a GPU."""
    s, lin = result["settings"], r["lineage"]
    base = lin.get("base") or {}
    base_iters = base.get("iterations", 0) if base.get("name") == model else 0
    packs = "; ".join(f"{p['file']}: {p['images']} images, {p['pixels'] / 1e6:.1f} MP, {p['codec']} at factor "
                      f"{p['factor']}" for p in result["packs"])
    return {
        "data": f"BSD200 + T91 + Wikipedia photos (../shared/data/train), packed for the upload ({packs})",
        "iterations": base_iters + r["steps_total"],
        "continued_from": (f"{model} version {base['version']} ({base_iters} iterations)" if base_iters
                           else lin.get("init", "?")),
        **({"cpu_hours_total": base["cpu_hours_total"]} if base.get("cpu_hours_total") is not None else {}),
        "gpu_steps": r["steps_total"], "gpu_seconds": r["seconds_total"], "gpu_steps_per_s": r["steps_per_s"],
        "hardware": [result["device"]],
        "recipe": (f"GPU: Adam {s['lr']} constant after a 20-step warm-up, EMA {s['ema']} (shipped: the "
                   f"{r.get('exported', 'ema')} weights, the better on the validation crops), "
                   f"{s['crop']}x{s['crop']} crops x {s['batch']}, "
                   f"{'bf16 autocast' if s['precision'] == 'bf16' else 'fp32'}, "
                   "channels-last"
                   f"{', torch.compile' if s['compile'] else ''}, grad clip 1, z = 0 in the backward pass, "
                   "lambda = 1 / s^2 / 1"),
        "run": "python benchmarks/gpu_campaign.py train (docs/GPU.md)",
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repo", type=Path, default=REPO)
    ap.add_argument("--stash", type=Path, default=None, help="default: .<repo name>-gpu-stash beside the repo")
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("prepare", help="pack data, set files aside, print bytes and the device call")
    p.add_argument("--data", nargs="+", default=["../shared/data/train"])
    p.add_argument("--kodak", default="../shared/data/kodak", help="validation crops come from its first images")
    p.add_argument("--models", default=MODELS)
    p.add_argument("--init-dir", help="weights returned by an earlier call (collect's folder) to start from")
    p.add_argument("--set-aside", nargs="*", default=[], help="more repo paths (fnmatch patterns) to set aside")
    p.add_argument("--margin-mib", type=float, default=3.0)
    p.add_argument("--total-s", type=int, default=530, help="the train command's own deadline (the tool's is 600)")
    p.add_argument("--codec", default="webp-lossless", choices=["webp-lossless", "jpeg"])
    p.add_argument("--quality", type=int, default=95, help="for --codec jpeg")
    p.add_argument("--dry-run", action="store_true", help="pack and count, move nothing")
    p.add_argument("--keep-pack", action="store_true", help="reuse data_pack's packs when they still fit")
    p.add_argument("--from-smaller", nargs="*", default=[],
                   help="models to start from the smaller scale of the call, not their shipped weights (e.g. irn-x8)")
    sub.add_parser("restore", help="put the set-aside files back (run it even when the call failed)")
    t = sub.add_parser("train", help="ON THE GPU MACHINE: train, write EMA weights and gpu_result.json")
    t.add_argument("--models", default=MODELS)
    t.add_argument("--out", required=True)
    t.add_argument("--pack", nargs="+", default=[f"{PACK_DIR}/train.irpack"])
    t.add_argument("--val-pack", default=f"{PACK_DIR}/val.irpack")
    t.add_argument("--init-dir", default=f"{PACK_DIR}/init")
    t.add_argument("--runs", default="runs/gpu", help="checkpoints; a later call on a warm machine resumes them")
    t.add_argument("--total-s", type=float, default=530.0)
    t.add_argument("--device", default="cuda")
    t.add_argument("--precision", default="bf16", choices=["bf16", "fp32"])
    t.add_argument("--no-compile", action="store_true")
    t.add_argument("--crop", type=int, default=144)
    t.add_argument("--batch", type=int, default=16)
    t.add_argument("--lr", type=float, default=2e-4)
    t.add_argument("--ema", type=float, default=0.998)
    t.add_argument("--steps", type=int, default=None, help="cap per model (tests)")
    t.add_argument("--part-bytes", type=int, default=None)
    t.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch's default)")
    t.add_argument("--expect-resume", action="store_true",
                   help="a later call: stop at once unless the checkpoints of an earlier call are on this machine")
    c = sub.add_parser("collect", help="join, check, measure on Kodak and ship what came back")
    c.add_argument("src", nargs="+", help="the folder(s) the device call returned (files_at)")
    c.add_argument("--kodak", default="../shared/data/kodak")
    c.add_argument("--work", type=Path, default=None, help="default: runs/gpu-collect/<date-time>")
    c.add_argument("--models", default=None)
    c.add_argument("--min-gain", type=float, default=0.2)
    c.add_argument("--no-ship", action="store_true")
    c.add_argument("--no-measure", action="store_true", help="only join and check the files (for prepare --init-dir)")
    c.add_argument("--device", default="cpu")
    a = ap.parse_args(argv)
    stash_dir = a.stash or default_stash(a.repo)
    if a.cmd == "prepare":
        prepare(a.repo, a.data, a.kodak, a.models.split(","), stash_dir, int(a.margin_mib * 2**20), a.init_dir,
                a.set_aside, total_s=a.total_s, dry_run=a.dry_run, codec=a.codec, quality=a.quality,
                from_smaller=a.from_smaller, keep_pack=a.keep_pack)
    elif a.cmd == "restore":
        return 1 if gpu_stash.restore(a.repo, stash_dir)["problems"] else 0
    elif a.cmd == "train":
        from irc.train.gpu import PART_BYTES, train_models

        init = Path(a.init_dir) if a.init_dir and Path(a.init_dir).is_dir() else None
        val = a.val_pack if a.val_pack and Path(a.val_pack).exists() else None
        train_models(a.models.split(","), a.pack, a.out, a.runs, val, init, a.total_s, a.device, a.precision,
                     not a.no_compile, a.crop, a.batch, a.steps, a.ema, a.lr, a.part_bytes or PART_BYTES,
                     threads=a.threads, expect_resume=a.expect_resume, log=lambda s: print(s, flush=True))
    elif a.cmd == "collect":
        work = a.work or Path("runs/gpu-collect") / time.strftime("%Y%m%d-%H%M%S")
        collect(a.src, a.kodak, work, not a.no_ship, a.min_gain, a.device,
                a.models.split(",") if a.models else None, measure=not a.no_measure)
    return 0


if __name__ == "__main__":
    sys.exit(main())
