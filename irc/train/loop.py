"""The training loop shared by every model: resumable, time-budgeted, logged.

A run lives in one folder: ``config.json`` (what was asked), ``last.pt`` (model,
optimizer, sampler and RNG state, step, wall time; written atomically every few
minutes, at the time budget and at the end) and ``log.jsonl`` (one record per
10 steps: loss terms, learning rate, seconds per step, validation numbers; ``wall``
is training wall time and ``cpu`` the process's CPU seconds, all threads, both summed
over resumed invocations: the fair clock for runs that shared cores).
``--resume`` reloads all of it, so a stopped run continues exactly.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Protocol

import torch


@dataclass
class TrainConfig:
    """Options every trainer has; model-specific configs extend it."""

    data: list[str] = field(default_factory=list)
    out: str = "runs/model"
    crop: int = 64
    batch: int = 16
    iters: int = 2000
    lr: float = 2e-4
    warmup: int = 50
    schedule: str = "cosine"  # cosine | step (halve every iters/5, the paper's shape) | constant
    grad_clip: float = 1.0
    seed: int = 0
    device: str = "cpu"
    threads: int = 0  # 0: torch default
    val_dir: str | None = None
    val_images: int = 6
    val_every: int = 200
    checkpoint_minutes: float = 5.0
    time_budget: float | None = None  # seconds of this invocation
    init_from: str | None = None  # weights file or checkpoint: copy every tensor whose name and shape match
    ema: float = 0.0  # decay of an exponential moving average of the weights (0: off); exported when on
    precision: str = "auto"  # fp32 | bf16 (autocast, fp32 master weights) | auto: bf16 on CUDA and native-bf16 CPUs
    # crops that grow as training goes on: [[from_step, crop, batch], ...] (empty: crop and batch above)
    crop_stages: list = field(default_factory=list)


class Sampler(Protocol):
    def sample(self, batch: int): ...
    def state_dict(self) -> dict: ...
    def load_state_dict(self, state: dict) -> None: ...


def lr_at(step: int, cfg: TrainConfig) -> float:
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    if cfg.schedule == "constant":
        return cfg.lr
    if cfg.schedule == "step":
        return cfg.lr * 0.5 ** (step // max(1, cfg.iters // 5))
    t = (step - cfg.warmup) / max(1, cfg.iters - cfg.warmup)
    return cfg.lr * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * min(1.0, t))))


def crop_at(step: int, cfg: TrainConfig) -> tuple[int, int]:
    """(crop, batch) in force at ``step``: the last stage that has begun, else ``cfg.crop``/``cfg.batch``."""
    crop, batch = cfg.crop, cfg.batch
    for first, c, b in sorted(cfg.crop_stages):
        if step >= first:
            crop, batch = int(c), int(b)
    return crop, batch


def use_bf16(cfg: TrainConfig, device: torch.device) -> bool:
    """Whether to autocast to bfloat16. ``auto``: on CUDA, and on a CPU with native bf16
    (avx512_bf16 or amx_bf16), where a step costs 1.5-1.7x less than fp32 and learns as much
    per step (docs/PRECISION.md); not on a CPU without it, where bf16 is emulated and slow
    (11x slower per x2 step on an AVX2 machine, docs/CAMPAIGN.md)."""
    if cfg.precision not in ("auto", "fp32", "bf16"):
        raise ValueError(f"precision must be auto, fp32 or bf16, got {cfg.precision!r}")
    if cfg.precision == "auto":
        return device.type == "cuda" or (device.type == "cpu" and cpu_has_native_bf16())
    if cfg.precision == "bf16" and device.type == "cpu" and not cpu_has_native_bf16():
        import warnings

        warnings.warn("bf16 on a CPU without avx512_bf16/amx_bf16 is emulated: about 10x slower than fp32 "
                      "(docs/TRAINING.md); use --precision fp32", stacklevel=2)
    return cfg.precision == "bf16"


def cpu_has_native_bf16() -> bool:
    """Whether this CPU advertises bfloat16 arithmetic (Linux: /proc/cpuinfo flags)."""
    from irc.backends import cpu_flags

    return bool(cpu_flags() & {"avx512_bf16", "amx_bf16"})


def make_ema(model: torch.nn.Module, decay: float):
    """An exponential moving average of ``model``'s weights (torch's AveragedModel)."""
    from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

    return AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)


def init_matching(model: torch.nn.Module, source: str) -> int:
    """Copy every tensor of ``source`` whose name and shape match; returns the count."""
    return init_partial(model, source)["copied"]


def init_partial(model: torch.nn.Module, source: str) -> dict:
    """Copy every tensor of ``source`` (weights file or checkpoint) whose name and shape match
    ``model``'s; the rest of ``model`` keeps its initialisation. Returns the counts: tensors
    ``copied`` / ``left`` at init / source tensors ``unused`` (name absent or shape differs), and
    the parameters (values of trainable tensors) ``copied_params`` / ``left_params``."""
    if str(source).endswith(".safetensors"):
        from safetensors.torch import load_file

        state = load_file(str(source))
    else:
        state = torch.load(source, map_location="cpu", weights_only=False)["model"]
    own = model.state_dict()
    hits = {k: v.float() for k, v in state.items() if k in own and own[k].shape == v.shape}
    own.update(hits)
    model.load_state_dict(own)
    params = dict(model.named_parameters())
    return {"copied": len(hits), "left": len(own) - len(hits), "unused": len(state) - len(hits),
            "copied_params": sum(p.numel() for k, p in params.items() if k in hits),
            "left_params": sum(p.numel() for k, p in params.items() if k not in hits)}


def init_message(report: dict, source: str) -> str:
    """What --init-from did, in one line: all copied, or which part (a partial initialisation)."""
    r = report
    total, total_params = r["copied"] + r["left"], r["copied_params"] + r["left_params"]
    if r["copied"] == 0:
        return (f"warning: --init-from {source}: no tensor matches this network by name and shape; "
                "nothing copied, all of it starts at its initialisation")
    if r["left"] == 0 and r["unused"] == 0:
        return f"initialised all {total} tensors ({total_params:,} parameters) from {source}"
    return (f"partial initialisation from {source}: copied {r['copied']} of {total} tensors "
            f"({r['copied_params']:,} of {total_params:,} parameters) whose name and shape match; "
            f"left at init: {r['left']} tensors ({r['left_params']:,} parameters); "
            f"not used from the source: {r['unused']} tensors (name absent or shape differs)")


def _atomic_save(obj, path: Path) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def start(cfg: TrainConfig, build: Callable[[TrainConfig], torch.nn.Module]):
    """Threads, seed, device; then the model, built after seeding so its init is reproducible."""
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = torch.device(cfg.device)
    torch.manual_seed(cfg.seed)
    return device, build(cfg).to(device)


def prepare_run(cfg: TrainConfig, model: torch.nn.Module, resume: bool) -> None:
    """Seeded start: check the run folder; on a fresh run copy --init-from tensors."""
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    if resume and not (out / "last.pt").exists():
        raise FileNotFoundError(f"nothing to resume: {out / 'last.pt'} does not exist")
    if not resume and (out / "last.pt").exists():
        raise FileExistsError(f"{out} already holds a run: resume it, or train into another folder")
    if not resume and cfg.init_from:
        print(init_message(init_partial(model, cfg.init_from), cfg.init_from))


def run_loop(
    cfg: TrainConfig,
    model: torch.nn.Module,
    sampler: Sampler,
    loss_fn: Callable[[object], dict[str, torch.Tensor]],
    validate: Callable[[], dict[str, float]] | None = None,
    resume: bool = False,
    progress: Callable[[dict], None] | None = None,
    extra: dict | None = None,
) -> Path:
    """Optimise ``loss_fn(sampler.sample(cfg.batch))["loss"]`` with Adam; returns the checkpoint path.

    ``extra``: more state to checkpoint and restore with the run, ``{key: object with state_dict()
    and load_state_dict()}`` (e.g. a GAN's discriminator and its optimizer, which ``loss_fn`` steps
    itself), saved under ``key`` beside the model's. A step whose ``"loss"`` carries no gradient
    (a step that trains only such an extra part, e.g. a discriminator's warm-up) leaves the model,
    its optimizer and its EMA as they are."""
    out = Path(cfg.out)
    ckpt_path, log_path = out / "last.pt", out / "log.jsonl"
    device = torch.device(cfg.device)
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=cfg.lr, betas=(0.9, 0.999))
    step, elapsed, cpu, cpu_from = 0, 0.0, 0.0, 0
    ema = make_ema(model, cfg.ema) if cfg.ema else None
    extra = extra or {}
    taken = {"model", "opt", "sampler", "rng", "step", "elapsed", "cpu", "cpu_from_step", "config", "ema"}
    if taken & set(extra):
        raise ValueError(f"extra checkpoint keys {sorted(taken & set(extra))} are the loop's own")
    if resume:
        state = torch.load(ckpt_path, map_location=device, weights_only=False)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        sampler.load_state_dict(state["sampler"])
        torch.set_rng_state(state["rng"])
        step, elapsed, cpu = state["step"], state["elapsed"], state.get("cpu", 0.0)
        cpu_from = state.get("cpu_from_step", 0 if "cpu" in state else step)  # older runs counted no CPU time
        if ema is not None and "ema" in state:
            ema.load_state_dict(state["ema"])
        for key, obj in extra.items():
            if key not in state:
                raise ValueError(f"{ckpt_path} holds no {key!r} state: it is not a run of this trainer")
            obj.load_state_dict(state[key])
        (out / "config.json").write_text(json.dumps(asdict(cfg), indent=2))  # the options now in force
    else:
        (out / "config.json").write_text(json.dumps(asdict(cfg), indent=2))
    if ema is not None and int(ema.n_averaged) == 0:
        ema.update_parameters(model)  # starts as a copy (also for a run resumed without an EMA)

    def save() -> None:
        _atomic_save({"model": model.state_dict(), "opt": opt.state_dict(),
                      "sampler": sampler.state_dict(), "rng": torch.get_rng_state(),
                      "step": step, "elapsed": elapsed, "cpu": cpu, "cpu_from_step": cpu_from,
                      "config": asdict(cfg), **{key: obj.state_dict() for key, obj in extra.items()},
                      **({"ema": ema.state_dict()} if ema is not None else {})}, ckpt_path)

    def run_validation() -> dict[str, float]:
        """Validation numbers of the exported weights (the EMA when on), plus the raw ones as val_raw_*."""
        model.eval()
        with torch.no_grad():
            raw = validate()
            if ema is None:
                rec = {f"val_{k}": round(v, 3) for k, v in raw.items()}
            else:
                backup = {k: v.clone() for k, v in model.state_dict().items()}
                model.load_state_dict(ema.module.state_dict())
                rec = {f"val_{k}": round(v, 3) for k, v in validate().items()}
                rec.update({f"val_raw_{k}": round(v, 3) for k, v in raw.items()})
                model.load_state_dict(backup)
        model.train()
        return rec

    def log(rec: dict) -> None:
        with open(log_path, "a") as fh:
            fh.write(json.dumps(rec) + "\n")
        if progress:
            progress(rec)

    if resume:
        log({"iter": step, "wall": round(elapsed, 1), "event": "resumed"})
    model.train()
    stop = _StopOnSignal()
    t_start = t_ckpt = time.time()
    elapsed0, cpu0, p_start = elapsed, cpu, time.process_time()
    step_times: list[float] = []
    while step < cfg.iters:
        t0 = time.time()
        for g in opt.param_groups:
            g["lr"] = lr_at(step, cfg)
        crop, batch = crop_at(step, cfg)
        if cfg.crop_stages and crop != sampler.crop:
            sampler.set_crop(crop)
            log({"iter": step, "wall": round(elapsed, 1), "event": f"crop {crop}, batch {batch}"})
        losses = loss_fn(sampler.sample(batch))
        gnorm = None
        if losses["loss"].requires_grad:
            opt.zero_grad(set_to_none=True)
            losses["loss"].backward()
            gnorm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip) if cfg.grad_clip else None
            opt.step()
            if ema is not None:
                ema.update_parameters(model)
        step += 1
        step_times.append(time.time() - t0)
        elapsed = elapsed0 + (time.time() - t_start)
        cpu = cpu0 + (time.process_time() - p_start)
        if step % 10 == 0 or step == cfg.iters:
            rec = {"iter": step, "wall": round(elapsed, 1), "cpu": round(cpu, 1), "lr": opt.param_groups[0]["lr"],
                   "sec_per_step": round(sum(step_times) / len(step_times), 3),
                   **{k: float(f"{float(v.detach()):.6g}") for k, v in losses.items()}}  # 6 significant digits
            if gnorm is not None:
                rec["grad_norm"] = round(float(gnorm), 4)
            step_times.clear()
            if validate and (step % cfg.val_every == 0 or step == cfg.iters):
                rec.update(run_validation())
            log(rec)
        over_budget = cfg.time_budget is not None and time.time() - t_start >= cfg.time_budget
        if time.time() - t_ckpt >= cfg.checkpoint_minutes * 60 or over_budget or stop.asked or step == cfg.iters:
            save()
            t_ckpt = time.time()
        if over_budget or stop.asked:
            log({"iter": step, "wall": round(elapsed, 1),
                 "event": f"stopped by {stop.asked}" if stop.asked else "time budget reached"})
            break
    stop.restore()
    return ckpt_path


class _StopOnSignal:
    """SIGTERM or Ctrl-C while training: finish the step, checkpoint, return. A second one acts as usual."""

    def __init__(self) -> None:
        import signal
        import threading

        self.asked: str | None = None
        self.previous: dict = {}
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                self.previous[sig] = signal.signal(sig, self._handle)

    def _handle(self, signum, frame) -> None:
        import signal

        self.asked = signal.Signals(signum).name
        self.restore()

    def restore(self) -> None:
        import signal

        for sig, handler in self.previous.items():
            signal.signal(sig, handler)
        self.previous = {}


def checkpoint_weights(ckpt: str | Path, use_ema: bool = True) -> dict[str, torch.Tensor]:
    """The model tensors of a checkpoint: its EMA when it has one (and ``use_ema``), else the raw weights."""
    state = torch.load(ckpt, map_location="cpu", weights_only=False)
    if use_ema and "ema" in state:
        prefix = "module."
        return {k[len(prefix):]: v for k, v in state["ema"].items() if k.startswith(prefix)}
    return state["model"]


def export_weights(ckpt: str | Path, dest: str | Path, dtype=torch.float16, force: bool = False,
                   use_ema: bool = True) -> None:
    """Write only the model tensors (no optimizer state; the EMA when the run keeps one) as
    safetensors, atomically, with the usual file permissions (safetensors' own writer leaves 0600)."""
    from safetensors.torch import save

    from irc.imageio import atomic_write

    state = checkpoint_weights(ckpt, use_ema)
    atomic_write(dest, save({k: v.to(dtype).contiguous() for k, v in state.items()}), force)
