"""A few minutes of IRN training on a lent GPU, and the way its weights come back.

Run there by ``benchmarks/gpu_campaign.py train`` (docs/GPU.md). Each model trains with
the campaign trainer (:func:`irc.train.irn.train_irn`: bf16 autocast, channels-last,
``torch.compile``, an EMA of the weights) on crops cut on the GPU from a training pack
(:mod:`irc.train.pack`), under its share of one time limit for the whole command. It
starts from, in this order: its own checkpoint in ``runs`` (a previous call on a machine
still warm), weights brought along in ``init_dir`` (returned by an earlier call), the
shipped weights, or the smaller scale trained earlier in the same call.

What comes back is limited to 8 files of 16 MiB: the EMA weights (or the raw ones when they
validate better, as the CPU campaign does) as fp16 safetensors,
split into parts when larger than ``part_bytes``, and ``gpu_result.json`` (sha256 of every
file and part, steps, steps/s, loss, validation). :func:`join_file` puts a file back
together and checks every hash.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import time
from pathlib import Path
from typing import Callable

PART_BYTES = 15 * 2**20  # a returned file may be 16 MiB
MAX_FILES = 8  # files back from one call, gpu_result.json and the command's log included
RESULT = "gpu_result.json"


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def split_file(src: str | Path, out_dir: str | Path, name: str, part_bytes: int = PART_BYTES) -> dict:
    """Copy ``src`` into ``out_dir`` as ``name``, or as ``name.part0``, ``name.part1``, ... when larger
    than ``part_bytes``; returns the entry that :func:`join_file` checks."""
    data = Path(src).read_bytes()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    chunks = [data] if len(data) <= part_bytes else [data[i:i + part_bytes] for i in range(0, len(data), part_bytes)]
    parts = []
    for i, chunk in enumerate(chunks):
        part = name if len(chunks) == 1 else f"{name}.part{i}"
        (out_dir / part).write_bytes(chunk)
        parts.append({"name": part, "bytes": len(chunk), "sha256": hashlib.sha256(chunk).hexdigest()})
    return {"file": name, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest(), "parts": parts}


def join_file(entry: dict, src_dirs: list[str | Path], dest: str | Path) -> Path:
    """Reassemble ``entry`` (from :func:`split_file`) from parts found in ``src_dirs``; every hash checked."""
    chunks = []
    for part in entry["parts"]:
        found = [Path(d) / part["name"] for d in src_dirs if (Path(d) / part["name"]).is_file()]
        if not found:
            raise FileNotFoundError(f"part {part['name']} of {entry['file']} is in none of {list(map(str, src_dirs))}")
        chunk = found[0].read_bytes()
        if len(chunk) != part["bytes"] or hashlib.sha256(chunk).hexdigest() != part["sha256"]:
            raise ValueError(f"{found[0]}: size or sha256 differs from the manifest (damaged in transfer?)")
        chunks.append(chunk)
    data = b"".join(chunks)
    if len(data) != entry["bytes"] or hashlib.sha256(data).hexdigest() != entry["sha256"]:
        raise ValueError(f"{entry['file']}: the joined parts do not give the file's sha256")
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, dest)
    return dest


def weight_bytes(model: str) -> int:
    """Size of a model's fp16 safetensors (parameters x 2 bytes, plus a header under 64 KiB)."""
    import torch

    from irc.models.registry import get_spec
    from irc.train.campaign import RECIPES
    from irc.train.irn import IRNTrainConfig, build_model

    params = get_spec(model).training.get("params")  # recorded for every shipped model
    if params:
        return 2 * params + 65536
    r = RECIPES[model]
    cfg = IRNTrainConfig(scale=r["scale"], haar_first=r.get("haar_first", False),
                         blocks_per_module=r.get("blocks_per_module", 8))
    with torch.device("meta"):  # shapes only: nothing allocated or initialised
        return 2 * sum(t.numel() for t in build_model(cfg).state_dict().values()) + 65536


def planned_files(models: list[str], part_bytes: int) -> int:
    """Files one call returns: the parts of every model, gpu_result.json and the command's log."""
    return sum(-(-weight_bytes(m) // part_bytes) for m in models) + 2


def _device_name(device) -> str:
    import torch

    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)}, torch {torch.__version__}"
    return f"{platform.machine()} CPU, torch {torch.__version__}"


def _val_psnr(weights: str | Path, cfg, images: list, device) -> float | None:
    """Y-PSNR of ``weights`` on the validation crops (lossless round trip, z = 0)."""
    from irc.train.irn import build_model, validate
    from irc.train.loop import init_matching

    if not images or not weights:
        return None
    model = build_model(cfg).to(device)
    if init_matching(model, str(weights)) == 0:
        return None
    model = model.channels_last().eval()
    return round(validate(model, images, cfg.scale, device)["psnr_y"], 3)


def _init_source(model: str, init_dir: Path | None, trained: dict[str, tuple[int, bool, Path]], scale: int,
                 haar_first: bool) -> tuple[str | None, dict]:
    """(weights to start from, lineage): brought along, else shipped, else the smaller scale of this call."""
    from irc.models.registry import get_spec

    spec = get_spec(model)
    shipped = {"name": model, "version": spec.version, "iterations": spec.training.get("iterations", 0),
               "cpu_hours_total": spec.training.get("cpu_hours_total"),
               "sha256": spec.sha256() if spec.weights_path.exists() else None}
    if init_dir is not None and (init_dir / f"{model}.safetensors").exists():
        prior = {}
        if (init_dir / RESULT).exists():
            prior = json.loads((init_dir / RESULT).read_text()).get("models", {}).get(model, {})
        return str(init_dir / f"{model}.safetensors"), {
            "base": prior.get("lineage", {}).get("base", shipped), "init": f"{init_dir}/{model}.safetensors",
            "prior_steps": prior.get("steps_total", 0), "prior_seconds": prior.get("seconds_total", 0.0)}
    if spec.weights_path.exists():
        return str(spec.weights_path), {"base": shipped, "init": f"shipped {model} v{spec.version}",
                                        "prior_steps": 0, "prior_seconds": 0.0}
    smaller = [(s, m, p) for m, (s, haar, p) in trained.items() if s < scale and not (haar or haar_first)]
    if smaller:
        s, m, p = max(smaller)
        return str(p), {"base": None, "init": f"{m} trained in this call", "prior_steps": 0, "prior_seconds": 0.0}
    return None, {"base": None, "init": "from scratch", "prior_steps": 0, "prior_seconds": 0.0}


def train_models(models: list[str], packs: list[str | Path], out: str | Path, runs: str | Path = "runs/gpu",
                 val_pack: str | Path | None = None, init_dir: str | Path | None = None, total_s: float = 530.0,
                 device: str = "cuda", precision: str = "bf16", compile: bool = True, crop: int = 144,
                 batch: int = 16, steps: int | None = None, ema: float = 0.998, lr: float = 2e-4,
                 part_bytes: int = PART_BYTES, reserve_s: float = 15.0, threads: int = 0,
                 expect_resume: bool = False, log: Callable[[str], None] = print) -> dict:
    """Train ``models`` one after another within ``total_s`` seconds from now; write their EMA weights
    and ``gpu_result.json`` into ``out`` after each model (so a call cut short still returns the
    finished ones). ``steps`` caps the steps per model (tests; no time limit then); ``reserve_s`` is
    kept per model for the final validation and export; ``threads``: CPU threads (0: torch's default).
    ``expect_resume``: stop at once unless every model has a checkpoint in ``runs`` (a later call that
    must continue on the same warm machine, not start again from the shipped weights)."""
    import torch

    from irc.train.campaign import campaign_config
    from irc.train.irn import load_val_images, train_irn
    from irc.train.loop import export_weights
    from irc.train.pack import PackedSampler, read_manifest, unpack

    t0 = time.time()
    out, runs = Path(out), Path(runs)
    init_dir = Path(init_dir) if init_dir else None
    missing = [m for m in models if not (runs / m / "last.pt").exists()]
    if expect_resume and missing:
        raise SystemExit(f"nothing to resume for {', '.join(missing)} in {runs}: this machine is a fresh one. "
                         "Bring the returned weights along instead (docs/GPU.md, 'cold machine').")
    n_files = planned_files(models, part_bytes)
    if n_files > MAX_FILES:
        raise ValueError(f"{n_files} files would come back (limit {MAX_FILES}): fewer models or larger parts")
    dev = torch.device(device)
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    out.mkdir(parents=True, exist_ok=True)
    runs.mkdir(parents=True, exist_ok=True)
    sampler = PackedSampler([str(p) for p in packs], crop, seed=0, device=dev)
    manifests = [read_manifest(p)[0] for p in packs]
    pack_info = [{"file": Path(p).name, "bytes": Path(p).stat().st_size, "images": len(m["images"]),
                  **{k: m[k] for k in ("codec", "factor", "pixels", "sources") if k in m}}
                 for p, m in zip(packs, manifests)]
    val_dir = None
    if val_pack:
        val_dir = runs / "val"
        shutil.rmtree(val_dir, ignore_errors=True)
        unpack(val_pack, val_dir)
    val_images = [im.to(dev) for im in load_val_images(str(val_dir), 8)] if val_dir else []
    log(f"{_device_name(dev)}; {sampler.flat.numel() / 3e6:.1f} MP of training images on {dev} "
        f"({len(sampler)} images >= {crop} px), {len(val_images)} validation crops, ready in {time.time() - t0:.1f} s")
    result = {"device": _device_name(dev), "started": time.strftime("%Y-%m-%d %H:%M:%S"), "packs": pack_info,
              "settings": {"precision": precision, "compile": compile, "crop": crop, "batch": batch, "lr": lr,
                           "ema": ema, "total_s": total_s}, "models": {}}
    trained: dict[str, tuple[int, bool, Path]] = {}
    for i, model in enumerate(models):
        left = len(models) - i
        budget = (t0 + total_s - time.time()) / left - reserve_s
        if budget < 20 and steps is None:
            log(f"{model}: skipped, {budget:.0f} s left for it")
            result["models"][model] = {"skipped": f"{budget:.0f} s left"}
            continue
        run_dir = runs / model
        resume = (run_dir / "last.pt").exists()
        overrides = dict(crop_stages=[[0, crop, batch]], precision=precision, lr=lr, ema=ema,
                         val_every=500, val_images=8, checkpoint_minutes=4.0, iters=steps or 10**9)
        cfg = campaign_config(model, run_dir, [str(p) for p in packs], str(val_dir) if val_dir else None,
                              threads, device, budget if steps is None else None, overrides)
        cfg.compile = compile
        if resume:
            lineage = json.loads((run_dir / "lineage.json").read_text())
            step0 = int(torch.load(run_dir / "last.pt", map_location="cpu", weights_only=False)["step"])
            before = _val_psnr(run_dir / "export.safetensors", cfg, val_images, dev)
        else:
            shutil.rmtree(run_dir, ignore_errors=True)
            run_dir.mkdir(parents=True)
            cfg.init_from, lineage = _init_source(model, init_dir, trained, cfg.scale, cfg.haar_first)
            (run_dir / "lineage.json").write_text(json.dumps(lineage, indent=2))
            step0, before = 0, _val_psnr(cfg.init_from, cfg, val_images, dev)
            sampler.generator.manual_seed(cfg.seed)
        log(f"{model}: {'resuming at step ' + str(step0) if resume else 'from ' + lineage['init']}, "
            f"{f'{budget:.0f} s' if steps is None else f'{steps} steps'}, {crop}^2 x {batch}, {precision}"
            f"{', compiled' if compile else ''}; val {before} dB")
        records: list[dict] = []
        tm = time.time()

        def progress(rec: dict, model=model, tm=tm, records=records) -> None:
            records.append(rec)
            n = len([r for r in records if "sec_per_step" in r])
            if "event" in rec or n in (1, 2, 5) or rec["iter"] % 500 == 0 or any(k.startswith("val_") for k in rec):
                sps = f"{1 / rec['sec_per_step']:.2f} steps/s" if rec.get("sec_per_step") else rec.get("event", "")
                extra = f", loss {rec['loss']:.5f}" if "loss" in rec else ""
                extra += f", val {rec['val_psnr_y']} dB" if "val_psnr_y" in rec else ""
                log(f"{model} step {rec['iter']} ({time.time() - tm:.0f} s): {sps}{extra}"
                    + (" (the first steps: compiling included)" if n == 1 and "sec_per_step" in rec else ""))

        try:
            ckpt = train_irn(cfg, resume=resume, progress=progress, sampler=sampler)
        except Exception as exc:  # noqa: BLE001 - a compiler failure must not cost the whole call
            if not compile:
                raise
            log(f"{model}: failed with torch.compile ({type(exc).__name__}: {str(exc)[:300]}); "
                "training this model and the next ones without it")
            compile = cfg.compile = False
            result["settings"]["compile"] = "failed, then off"
            if cfg.time_budget is not None:
                cfg.time_budget = max(20.0, (t0 + total_s - time.time()) / left - reserve_s)
            again = (run_dir / "last.pt").exists()
            if not again:
                sampler.generator.manual_seed(cfg.seed)
            records.clear()
            ckpt = train_irn(cfg, resume=again, progress=progress, sampler=sampler)
        seconds = time.time() - tm
        scores = {}
        for which in ("ema", "raw"):  # the EMA, unless the raw weights validate better (a young run)
            export_weights(ckpt, run_dir / f"{which}.safetensors", force=True, use_ema=which == "ema")
            scores[which] = _val_psnr(run_dir / f"{which}.safetensors", cfg, val_images, dev)
        which = "raw" if None not in scores.values() and scores["raw"] > scores["ema"] else "ema"
        shutil.copyfile(run_dir / f"{which}.safetensors", run_dir / "export.safetensors")
        after = scores[which]
        step1 = int(torch.load(ckpt, map_location="cpu", weights_only=False)["step"])
        timed = [r["sec_per_step"] for r in records if "sec_per_step" in r]
        first = next((r for r in records if "sec_per_step" in r), {"iter": step0})  # its steps include compiling
        steady = timed[1:] or timed
        losses = [r["loss"] for r in records if "loss" in r]
        entry = split_file(run_dir / "export.safetensors", out, f"{model}.safetensors", part_bytes)
        result["models"][model] = {
            "weights": entry, "steps": step1 - step0, "steps_run": step1,
            "steps_total": lineage["prior_steps"] + step1, "seconds": round(seconds, 1),
            "seconds_total": round(lineage["prior_seconds"] + seconds, 1),
            "steps_per_s": round(len(steady) / sum(steady), 3) if steady else None,
            "first_record_s": round(timed[0] * (first["iter"] - step0), 1) if timed else None,
            "loss_last": round(sum(losses[-5:]) / len(losses[-5:]), 6) if losses else None,
            "exported": which, "val_psnr_y": {"before": before, "after": after, **scores, "images": len(val_images)},
            "lineage": lineage, "scale": cfg.scale, "log": records[-400:]}
        trained[model] = (cfg.scale, cfg.haar_first, run_dir / "export.safetensors")
        tmp = out / (RESULT + ".tmp")
        tmp.write_text(json.dumps(result, indent=1))
        os.replace(tmp, out / RESULT)
        r = result["models"][model]
        log(f"{model}: {r['steps']} steps in {seconds:.0f} s ({r['steps_per_s']} steps/s steady), "
            f"loss {r['loss_last']}, val {before} -> {after} dB, {len(entry['parts'])} file(s) back")
    return result
