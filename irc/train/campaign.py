"""The quality campaign: one command that continues training a shipped model, a little
more each session, and ships the result only when Kodak says it is better.

A campaign run lives in ``<runs>/<model>/`` (git-ignored). Each invocation:

1. resumes that run when it exists; otherwise starts one from the model's newest
   shipped weights (so a fresh machine loses only the optimizer state);
2. trains under a time budget with the long-run recipe below (constant learning
   rate, an EMA of the weights, crops that grow with the step count), stopping
   cleanly on the budget, on SIGTERM or on Ctrl-C, with a checkpoint;
3. exports the EMA weights, measures them on every image of the Kodak folder
   through the real pipeline (PNG lossless, z = 0), and ships them as a new
   version of the model when they beat the shipped one by ``min_gain`` dB.
   The older version stays installed, so files written with it keep decoding.

``campaign.json`` in the run folder keeps the history of the invocations
(steps, seconds, threads, hardware) so CPU-hours add up across sessions.
"""

from __future__ import annotations

import json
import platform
import shutil
import time
from pathlib import Path

from irc.errors import IrcError

# The long-run recipe per model: what a campaign run trains with.
# crop_stages: [from_step, crop, batch]; about the same HR pixels per step at every stage.
_COMMON = dict(lr=2e-4, warmup=20, schedule="constant", ema=0.998, iters=10**9, grad_clip=1.0,
               val_every=200, val_images=4, checkpoint_minutes=5.0)
# arch: the family, whose trainer is irc.train.<arch> (CONFIG, build_model, train, RECIPE_NOTE).
RECIPES: dict[str, dict] = {
    "irn-x2": dict(scale=2, crop_stages=[[0, 64, 16], [4000, 96, 7], [8000, 128, 4]]),
    "irn-x4": dict(scale=4, crop_stages=[[0, 64, 12], [3000, 96, 5], [6000, 128, 3], [10000, 144, 2]]),
    "irn-e-x4": dict(scale=4, haar_first=True, blocks_per_module=16,
                     crop_stages=[[0, 64, 12], [3000, 96, 5], [6000, 128, 3], [10000, 144, 2]]),
    "irn-x8": dict(scale=8, crop_stages=[[0, 64, 12], [3000, 128, 3], [6000, 144, 2]]),
    "irn-ld-x3": dict(scale=3, downsampling="learned", blocks_per_module=12, lr=3e-4,
                      crop_stages=[[0, 72, 16], [4000, 96, 9], [8000, 144, 4]]),
    "fgrn-x2": dict(arch="fgrn", scale=2, lr=3e-4, crop_stages=[[0, 64, 16], [4000, 96, 7], [8000, 128, 4]]),
    "fgrn-x4": dict(arch="fgrn", scale=4, lr=3e-4,
                    crop_stages=[[0, 64, 12], [3000, 96, 5], [6000, 128, 3], [10000, 144, 2]]),
    # x8: the x4 sizes (irc.models.fgrn.DEFAULTS); LR-size blocks are cheap at x8, so larger crops and batches.
    # lr 3e-4 to step 4200 (v1), then 1.5e-4: the twin at equal CPU time led (docs/CAMPAIGN.md)
    "fgrn-x8": dict(arch="fgrn", scale=8, lr=1.5e-4, crop_stages=[[0, 128, 8], [2000, 192, 4]]),
    "hcflow-x4": dict(arch="hcflow", scale=4, lr=2.5e-4,
                      crop_stages=[[0, 64, 16], [3000, 96, 7], [6000, 128, 4], [10000, 144, 3]]),
    # BDFlow: two InvBlocks per level, so a x8 step at 128^2 x 8 costs about what IRN x8's does at 64^2 x 12
    # (the boundary-aware weight from step 400, as the first runs: about 30 % of an hour's steps, the paper's alpha)
    "bdflow-x8": dict(arch="bdflow", scale=8, bits=2, baw_start_step=400, crop_stages=[[0, 128, 8], [4000, 192, 4]]),
    "bdflow-x16": dict(arch="bdflow", scale=16, bits=2, baw_start_step=400, crop_stages=[[0, 128, 8], [4000, 256, 2]]),
    # scale 1: every pixel runs the network, so a 48x48 crop costs what a 96x96 one does at x2
    "irn-color": dict(arch="irn_color", scale=1, crop_stages=[[0, 48, 8], [4000, 64, 6], [8000, 96, 3]]),
}


def trainer(model: str):
    """The trainer module of ``model``'s family (irc.train.irn, irc.train.fgrn, ...)."""
    import importlib

    if model not in RECIPES:
        raise IrcError(f"no campaign recipe for {model!r}; one of: {', '.join(recipe_names())}")
    return importlib.import_module(f"irc.train.{RECIPES[model].get('arch', 'irn')}")


def recipe_names() -> list[str]:
    return sorted(RECIPES)


def metric(arch: str) -> str:
    """What a family's weights are ranked by: its trainer's ``METRIC`` (IRN_color: ``psnr_rgb``),
    else ``psnr_y`` (the rescaling papers' Y-PSNR)."""
    import importlib

    return getattr(importlib.import_module(f"irc.train.{arch}"), "METRIC", "psnr_y")


def _hardware() -> str:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, torch {torch.__version__}, CPU capability {torch.backends.cpu.get_cpu_capability()}"


def recipe_step(training: dict) -> int:
    """How far into its campaign recipe a shipped version's weights are (its crop stage): the
    ``recipe_step`` its ship recorded, else its run's ``campaign_steps`` (older entries), else 0."""
    return int(training.get("recipe_step", training.get("campaign_steps", 0)))


def start_offset(started_from: dict) -> int:
    """The recipe step a run's first weights had reached: 0 for a run adopted from scratch, else the
    :func:`recipe_step` of the shipped version it started from (its ``started_from`` record)."""
    return 0 if "adopted" in started_from else recipe_step(started_from.get("training", {}))


def shift_stages(stages: list, offset: int) -> list:
    """The recipe's crop stages for a run whose first weights are ``offset`` steps into the recipe
    (a new run from a shipped version): the stage reached there starts at once, the later ones
    ``offset`` steps earlier. A lost run folder then costs the optimizer state, not the crop stage."""
    if offset <= 0:
        return stages
    reached = [s for s in sorted(stages) if s[0] <= offset][-1]
    return [[0, *reached[1:]]] + [[first - offset, c, b] for first, c, b in sorted(stages) if first > offset]


def campaign_config(model: str, run_dir: Path, data: list[str], val_dir: str | None, threads: int,
                    device: str, budget: float | None, overrides: dict | None = None, offset: int = 0):
    """The training config a campaign run of ``model`` uses (the recipe, plus this invocation's
    options); ``offset``: the recipe step its first weights had reached (:func:`shift_stages`)."""
    config = trainer(model).CONFIG
    r = {k: v for k, v in {**_COMMON, **RECIPES[model], **(overrides or {})}.items() if k != "arch"}
    saved = run_dir / "config.json"
    if saved.exists():  # a run's network stays the one it was built with (an adopted run may differ)
        r.update({k: v for k, v in json.loads(saved.read_text()).items() if k in config.MODEL_FIELDS})
    r["crop_stages"] = shift_stages(r["crop_stages"], offset)
    crop, batch = r["crop_stages"][0][1], r["crop_stages"][0][2]
    return config(**r, crop=crop, batch=batch, data=list(data), out=str(run_dir),
                  val_dir=val_dir, threads=threads, device=device, time_budget=budget)


def measure(model_key: str, files: list[Path], device: str = "cpu", progress=None) -> dict:
    """Kodak-style numbers of ``model_key``: the lossless round trip through the real pipeline."""
    from irc.bench.lossless import round_trip

    return round_trip(model_key, files, device, progress)


def _history(run_dir: Path) -> dict:
    p = run_dir / "campaign.json"
    return json.loads(p.read_text()) if p.exists() else {"legs": []}


def _save_history(run_dir: Path, hist: dict) -> None:
    tmp = run_dir / "campaign.json.tmp"
    tmp.write_text(json.dumps(hist, indent=2) + "\n")
    tmp.replace(run_dir / "campaign.json")


def train_leg(model: str, runs: Path, data: list[str], val_dir: str | None, budget: float | None,
              threads: int = 1, device: str = "cpu", progress=None, overrides: dict | None = None) -> Path:
    """Resume (or start from the shipped weights) and train for ``budget`` seconds; returns the checkpoint."""
    import torch

    from irc.models.registry import get_spec

    run_dir = runs / model
    resume = (run_dir / "last.pt").exists()
    hist = _history(run_dir)
    spec = None if resume else get_spec(model)
    offset = start_offset(hist.get("started_from", {})) if resume else recipe_step(spec.training)
    cfg = campaign_config(model, run_dir, data, val_dir, threads, device, budget, overrides, offset)
    if not resume:
        cfg.init_from = str(spec.weights_path)
        hist = {"model": model, "started_from": {"version": spec.version, "sha256": spec.sha256(),
                                                 "kodak": spec.kodak, "training": spec.training}, "legs": []}
        run_dir.mkdir(parents=True, exist_ok=True)
        _save_history(run_dir, hist)  # where it started from survives a leg that is killed
    t0 = time.time()
    step0 = torch.load(run_dir / "last.pt", map_location="cpu", weights_only=False)["step"] if resume else 0
    ckpt = trainer(model).train(cfg, resume=resume, progress=progress)
    step1 = torch.load(ckpt, map_location="cpu", weights_only=False)["step"]
    hist = _history(run_dir)  # as it is now: read again, others may have written it meanwhile
    from irc.train.loop import use_bf16

    hist["legs"].append({"date": time.strftime("%Y-%m-%d %H:%M"), "steps": [step0, step1],
                         "seconds": round(time.time() - t0, 1), "threads": threads, "device": device, "lr": cfg.lr,
                         "precision": "bf16" if use_bf16(cfg, torch.device(device)) else "fp32",
                         "hardware": _hardware()})
    _save_history(run_dir, hist)
    return ckpt


def cpu_hours(run_dir: Path) -> float:
    """Core-hours of a campaign run up to its last checkpoint (a killed leg counts too): the
    process CPU time the loop counts since 2026-11-25 when it covers the whole run, else its
    training wall time x the threads of its latest leg (an upper bound beside other work)."""
    import torch

    state = torch.load(run_dir / "last.pt", map_location="cpu", weights_only=False)
    if "cpu" in state and state.get("cpu_from_step", 0) == 0:
        return state["cpu"] / 3600
    legs = _history(run_dir)["legs"]
    return state.get("elapsed", 0.0) * max(1, legs[-1]["threads"] if legs else 1) / 3600


def _saved_config(family, state: dict):
    """The training config a checkpoint was written with, as its family's CONFIG (unknown keys dropped)."""
    fields = family.CONFIG.__dataclass_fields__
    return family.CONFIG(**{k: v for k, v in state["config"].items() if k in fields})


def pick_weights(ckpt: Path, val_files: list[Path], arch: str = "irn") -> tuple[str, dict]:
    """'ema' or 'raw': the checkpoint's weights that validate better (mean Y-PSNR on ``val_files``,
    or the family's :func:`metric`).

    The EMA is what a long run should export, but while a young run still improves
    fast the average lags behind the newest weights; this measures instead of assuming.
    """
    import torch

    import importlib

    from irc.train.data import load_rgb_uint8
    from irc.train.loop import checkpoint_weights
    from irc.train.rescaling import validate

    state = torch.load(ckpt, map_location="cpu", weights_only=False)
    if "ema" not in state or not val_files:
        return ("ema" if "ema" in state else "raw"), {}
    family = importlib.import_module(f"irc.train.{arch}")
    cfg = _saved_config(family, state)
    images = [load_rgb_uint8(f) for f in val_files]
    scores = {}
    for which in ("ema", "raw"):
        net = family.build_model(cfg)
        net.load_state_dict(checkpoint_weights(ckpt, use_ema=which == "ema"))
        net.eval()
        with torch.no_grad():
            scores[which] = round(validate(net.channels_last(), images, cfg.scale, torch.device("cpu"))[metric(arch)], 3)
    return max(scores, key=scores.get), scores


def family_of(model: str, runs: Path | None = None) -> tuple[str, int, dict]:
    """(arch, scale, constructor params) of ``model``: its shipped entry, else (a family's first
    version, e.g. from an adopted run) its recipe and the network of its campaign run in ``runs``."""
    from irc.models.registry import all_models

    shipped = all_models().get(model)
    if shipped is not None:
        return shipped.arch, shipped.scale, dict(shipped.params)
    cfg = campaign_config(model, (runs or Path("runs/campaign")) / model, [], None, 1, "cpu", None)
    return RECIPES[model].get("arch", "irn"), RECIPES[model]["scale"], cfg.model_params()


def adopt(model: str, source: Path, runs: Path) -> Path:
    """Make the training run in ``source`` (e.g. a from-scratch run of a new family) the campaign
    run of ``model``: copied, never moved, so ``source`` stays as it was. Its history records
    where it came from; its CPU time counts in the shipped model's record."""
    run_dir = runs / model
    if (run_dir / "last.pt").exists():
        raise IrcError(f"{run_dir} already holds a campaign run of {model}; nothing to adopt")
    for name in ("last.pt", "config.json"):
        if not (source / name).is_file():
            raise IrcError(f"{source} is not a training run (no {name})")
    import torch

    family = trainer(model)  # also checks that ``model`` has a recipe
    state = torch.load(source / "last.pt", map_location="cpu", weights_only=False)
    scale = RECIPES[model]["scale"]
    if not set(state["config"]) <= set(family.CONFIG.__dataclass_fields__) or state["config"].get("scale") != scale:
        raise IrcError(f"{source} is not a x{scale} run of {model}'s family ({family.__name__})")
    run_dir.mkdir(parents=True, exist_ok=True)
    for name in ("last.pt", "config.json", "log.jsonl"):
        if (source / name).exists():
            shutil.copyfile(source / name, run_dir / name)
    threads = state["config"].get("threads") or 1
    from irc.train.loop import use_bf16

    cfg = _saved_config(family, state)
    # "auto" resolved as the run resolved it: a run is adopted on the machine that trained it
    precision = "bf16" if use_bf16(cfg, torch.device(cfg.device or "cpu")) else "fp32"
    _save_history(run_dir, {"model": model, "started_from": {"adopted": str(source), "version": 0,
                                                             "training": {"iterations": 0, "cpu_hours_total": 0.0}},
                            "legs": [{"date": time.strftime("%Y-%m-%d %H:%M"), "steps": [0, state["step"]],
                                      "seconds": round(state["elapsed"], 1), "threads": threads,
                                      "device": state["config"].get("device", "cpu"), "hardware": _hardware(),
                                      "precision": precision, "adopted": str(source)}]})
    return run_dir


def export_and_measure(model: str, runs: Path, kodak: list[Path], device: str = "cpu", progress=None,
                       val_images: int = 4) -> tuple[Path, dict]:
    """Export the run's weights (its EMA, unless the raw weights validate better on the first
    ``val_images`` of ``kodak``) to ``candidate.safetensors`` and measure them on all of ``kodak``."""
    from irc.models.registry import ModelSpec, register, unregister
    from irc.train.loop import export_weights

    run_dir = runs / model
    ckpt = run_dir / "last.pt"
    if not ckpt.exists():
        raise IrcError(f"no campaign run for {model} in {run_dir}: nothing to export")
    arch, scale, params = family_of(model, runs)
    which, scores = pick_weights(ckpt, kodak[:val_images], arch)
    cand = run_dir / "candidate.safetensors"
    export_weights(ckpt, cand, force=True, use_ema=which == "ema")
    register(ModelSpec(name=f"{model}-candidate", arch=arch, scale=scale, params=params,
                       weights=str(cand.resolve())))
    try:  # registered only while measured: a run-time model would become the default for its scale
        numbers = measure(f"{model}-candidate", kodak, device, progress)
    finally:
        unregister(f"{model}-candidate")
    return cand, {**numbers, "weights": which, f"validation_{metric(arch)}": scores}


def ship(model: str, candidate: Path, numbers: dict, runs: Path, registry_file: Path | None = None,
         training: dict | None = None) -> str:
    """Install ``candidate`` as the next version of ``model`` (the older versions stay); returns its key.

    ``training``: the training record of weights that did not come from a campaign run in
    ``runs`` (e.g. a GPU run, benchmarks/gpu_campaign.py); it replaces what would be read from
    the run's checkpoint and history. ``numbers["command"]``, when given, names the measurement."""
    import torch

    from irc.models import registry

    reg = Path(registry_file or registry.REGISTRY_FILE)
    entries = json.loads(reg.read_text())
    mine = [e for e in entries if e["name"] == model]
    if mine:
        newest = max(mine, key=lambda e: e.get("version", 1))
    elif model in RECIPES:  # a family's first version: its entry comes from the recipe and the run
        arch, scale, params = family_of(model, runs)
        from irc.models.registry import family

        params = {**getattr(family(arch), "DEFAULTS", {}).get(scale, {}), **params}  # written out: defaults may change
        note = getattr(trainer(model), "REGISTRY_NOTE", "")  # what the family's training leaves out, or how it is used
        newest = {"name": model, "arch": arch, "scale": scale, "params": params, "version": 0,
                  "description": f"{registry.display_name(arch)} x{scale}, fp16 weights{'; ' + note if note else ''} "
                                 "(docs/MODELS.md)",
                  "training": {"data": "BSD200 + T91 + Wikipedia photos (../shared/data/train, 340 images)"},
                  "codecs": []}  # picked with --model; it becomes a default only by a decision in the registry
    else:
        raise IrcError(f"{model} is not in {reg}")
    version = newest.get("version", 1) + 1
    dest = reg.parent / "weights" / (f"{model}.v{version}.safetensors" if version > 1 else f"{model}.safetensors")
    if dest.exists():
        raise IrcError(f"{dest} exists already; refusing to replace shipped weights")
    entry = {**newest, "version": version, "weights": dest.name, "kodak": {
        **numbers, "pipeline": "png lossless (latent z = 0 where the family has one)",
        "command": numbers.get("command", f"irc train campaign {model} (export and measure)")}}
    entry.pop("key", None)
    kept = {k: v for k, v in newest.get("training", {}).items() if k in ("data", "params")}
    if "params" not in kept:
        from irc.models.registry import build
        from irc.models.rescaler import count_parameters

        kept["params"] = count_parameters(build(registry.ModelSpec(name=model, arch=entry["arch"], scale=entry["scale"],
                                                                   params=entry["params"])))
    if training is not None:
        entry["training"] = {**kept, **training}
    else:
        run_dir = runs / model
        hist = _history(run_dir)
        state = torch.load(run_dir / "last.pt", map_location="cpu", weights_only=False)
        base = hist.get("started_from", {})
        base_iters = base.get("training", {}).get("iterations", 0)
        cfg = state["config"]
        entry["training"] = {
            **kept,
            "iterations": base_iters + state["step"],
            "continued_from": (f"{model} version {base.get('version', '?')} ({base_iters} iterations)" if "adopted" not in base
                               else f"the run {base['adopted']} (from scratch), adopted by the campaign"),
            "campaign_steps": state["step"],
            "recipe_step": start_offset(base) + state["step"],
            "cpu_hours": round(cpu_hours(run_dir), 2),
            "cpu_hours_total": round(base.get("training", {}).get("cpu_hours_total", 0.0) + cpu_hours(run_dir), 2),
            "hardware": sorted({leg["hardware"] for leg in hist["legs"]}),
            "precision": sorted({leg.get("precision", "fp32") for leg in hist["legs"]}),
            "recipe": (f"campaign: Adam {cfg['lr']} {cfg.get('schedule', 'constant')} after a {cfg['warmup']}-step warm-up, EMA {cfg['ema']} "
                       f"(shipped: the {numbers.get('weights', 'ema')} weights, the better on validation), "
                       + (f"crop stages {cfg['crop_stages']}" if cfg.get("crop_stages") else f"{cfg.get('crop')}² crops, batch {cfg.get('batch')}")
                       + f", grad clip {cfg['grad_clip']}, {trainer(model).RECIPE_NOTE}"),
            "run": f"irc train campaign {model}",
        }
    shutil.copyfile(candidate, dest.with_suffix(".tmp"))
    dest.with_suffix(".tmp").replace(dest)
    if mine:
        entries.insert(entries.index(newest), entry)  # newest first, the older versions after it
    else:
        entries.append(entry)
    registry.write_entries(entries, reg)
    return model
