"""IRN training loop: resumable, time-budgeted, CPU or CUDA.

Loss (IRN paper Eq. 12, lambda_1 = 1, lambda_2 = s^2, lambda_3 = 1), each term a
per-image sum as in the paper, all divided by the number of HR values (a
constant, so the balance is the paper's):

* reconstruction: L1 between x and inverse(round(y), z)
* guidance: L2 between y and the bicubic (antialiased) downscale of x, weight s^2
* distribution: sum z^2 (pushes z towards the mode the decoder uses)

By default the backward pass uses z = 0, the value the decoder uses (see FGRN
section 4.5: z carries no image-specific information); ``z_mode="sample"``
draws z ~ N(0, 1) as the original IRN does.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import torch
from torch.nn import functional as F

from irc.models.irn import IRN, quantize
from irc.train.data import CropSampler, list_images, load_rgb_uint8


@dataclass
class IRNTrainConfig:
    scale: int = 2
    data: list[str] = field(default_factory=list)
    out: str = "runs/irn-x2"
    blocks_per_module: int = 8
    haar_first: bool = False
    crop: int = 64
    batch: int = 16
    iters: int = 2000
    lr: float = 2e-4
    warmup: int = 50
    schedule: str = "cosine"  # cosine | step (halve every iters/5, the paper's shape)
    lambda_recon: float = 1.0
    lambda_guide: float | None = None  # default s^2
    lambda_distr: float = 1.0
    z_mode: str = "zero"  # zero | sample
    grad_clip: float = 1.0
    seed: int = 0
    device: str = "cpu"
    threads: int = 0  # 0: torch default
    val_dir: str | None = None
    val_images: int = 6
    val_every: int = 200
    checkpoint_minutes: float = 5.0
    time_budget: float | None = None  # seconds of this invocation
    init_from: str | None = None  # weights file or checkpoint: copy every tensor whose shape matches
    amp: bool = True  # bf16 autocast on CUDA
    compile: bool = False

    def guide_weight(self) -> float:
        return float(self.scale**2) if self.lambda_guide is None else self.lambda_guide


def bicubic_down(x: torch.Tensor, scale: int) -> torch.Tensor:
    return F.interpolate(x, scale_factor=1 / scale, mode="bicubic", antialias=True,
                         align_corners=False).clamp(0, 1)


def irn_losses(model: IRN, x: torch.Tensor, cfg: IRNTrainConfig) -> dict[str, torch.Tensor]:
    y, z = model(x)
    n = x[0].numel() * x.shape[0]
    guide = ((y - bicubic_down(x, cfg.scale)) ** 2).sum() / n
    distr = (z.float() ** 2).sum() / n
    yq = quantize(y)
    z_back = torch.randn_like(z) if cfg.z_mode == "sample" else torch.zeros_like(z)
    x_hat = model.inverse(yq, z_back)
    recon = (x_hat - x).abs().sum() / n
    total = (cfg.lambda_recon * recon + cfg.guide_weight() * guide + cfg.lambda_distr * distr)
    return {"loss": total, "recon": recon, "guide": guide, "distr": distr}


def lr_at(step: int, cfg: IRNTrainConfig) -> float:
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    if cfg.schedule == "step":
        return cfg.lr * 0.5 ** (step // max(1, cfg.iters // 5))
    t = (step - cfg.warmup) / max(1, cfg.iters - cfg.warmup)
    return cfg.lr * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * min(1.0, t))))


def load_val_images(val_dir: str, count: int) -> list[torch.Tensor]:
    files = list_images([val_dir])[:count]
    return [load_rgb_uint8(f) for f in files]


@torch.no_grad()
def validate(model: IRN, images: list[torch.Tensor], scale: int, device) -> dict[str, float]:
    """Lossless round trip (round LR to 8 bits, z = 0): mean Y-PSNR (crop = scale) and RGB PSNR."""
    from irc.metrics import psnr_rgb, psnr_y

    model.eval()
    ys, rgbs = [], []
    for img in images:
        h, w = (img.shape[1] // scale) * scale, (img.shape[2] // scale) * scale
        x = img[:, :h, :w].float().div(255).unsqueeze(0).to(device)
        x_hat = model.inverse(quantize(model(x)[0])).clamp(0, 1)
        ref = x[0].permute(1, 2, 0).cpu()
        out = x_hat[0].permute(1, 2, 0).float().cpu()
        ys.append(psnr_y(ref, out, crop=scale))
        rgbs.append(psnr_rgb(ref, out))
    model.train()
    return {"psnr_y": sum(ys) / len(ys), "psnr_rgb": sum(rgbs) / len(rgbs)}


def build_model(cfg: IRNTrainConfig) -> IRN:
    return IRN(cfg.scale, blocks_per_module=cfg.blocks_per_module, haar_first=cfg.haar_first)


def init_matching(model: torch.nn.Module, source: str) -> int:
    """Copy every tensor of ``source`` whose name and shape match; returns the count."""
    if source.endswith(".safetensors"):
        from safetensors.torch import load_file

        state = load_file(source)
    else:
        state = torch.load(source, map_location="cpu", weights_only=False)["model"]
    own = model.state_dict()
    hits = {k: v.float() for k, v in state.items() if k in own and own[k].shape == v.shape}
    own.update(hits)
    model.load_state_dict(own)
    return len(hits)


def _atomic_save(obj, path: Path) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def train_irn(cfg: IRNTrainConfig, resume: bool = False,
              progress: Callable[[dict], None] | None = None) -> Path:
    """Run (or continue) training; returns the checkpoint path."""
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    ckpt_path = out / "last.pt"
    log_path = out / "log.jsonl"
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = torch.device(cfg.device)
    torch.manual_seed(cfg.seed)

    model = build_model(cfg).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, betas=(0.9, 0.999))
    sampler = CropSampler(cfg.data, cfg.crop, seed=cfg.seed, device=device)
    step, elapsed = 0, 0.0
    if resume:
        if not ckpt_path.exists():
            raise FileNotFoundError(f"nothing to resume: {ckpt_path} does not exist")
        state = torch.load(ckpt_path, map_location=device, weights_only=False)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        sampler.load_state_dict(state["sampler"])
        torch.set_rng_state(state["rng"])
        step, elapsed = state["step"], state["elapsed"]
    else:
        if cfg.init_from:
            n = init_matching(model, cfg.init_from)
            print(f"initialised {n} tensors from {cfg.init_from}")
        (out / "config.json").write_text(json.dumps(asdict(cfg), indent=2))

    val_images = load_val_images(cfg.val_dir, cfg.val_images) if cfg.val_dir else []
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    fwd = torch.compile(irn_losses) if cfg.compile else irn_losses
    use_amp = cfg.amp and device.type == "cuda"

    def save() -> None:
        _atomic_save({"model": model.state_dict(), "opt": opt.state_dict(),
                      "sampler": sampler.state_dict(), "rng": torch.get_rng_state(),
                      "step": step, "elapsed": elapsed, "config": asdict(cfg)}, ckpt_path)

    def log(rec: dict) -> None:
        with open(log_path, "a") as fh:
            fh.write(json.dumps(rec) + "\n")
        if progress:
            progress(rec)

    model.train()
    t_start = time.time()
    t_ckpt = time.time()
    elapsed0 = elapsed
    step_times: list[float] = []
    while step < cfg.iters:
        t0 = time.time()
        for g in opt.param_groups:
            g["lr"] = lr_at(step, cfg)
        x = sampler.sample(cfg.batch)
        if device.type == "cuda":
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
            losses = fwd(model, x, cfg)
        opt.zero_grad(set_to_none=True)
        losses["loss"].backward()
        gnorm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip) if cfg.grad_clip else None
        opt.step()
        step += 1
        step_times.append(time.time() - t0)
        elapsed = elapsed0 + (time.time() - t_start)
        if step % 10 == 0 or step == cfg.iters:
            rec = {"iter": step, "wall": round(elapsed, 1), "lr": opt.param_groups[0]["lr"],
                   "sec_per_step": round(sum(step_times) / len(step_times), 3),
                   **{k: round(float(v.detach()), 6) for k, v in losses.items()}}
            if gnorm is not None:
                rec["grad_norm"] = round(float(gnorm), 4)
            step_times.clear()
            if val_images and (step % cfg.val_every == 0 or step == cfg.iters):
                rec.update({f"val_{k}": round(v, 3) for k, v in
                            validate(model, val_images, cfg.scale, device).items()})
            log(rec)
        over_budget = cfg.time_budget is not None and time.time() - t_start >= cfg.time_budget
        if time.time() - t_ckpt >= cfg.checkpoint_minutes * 60 or over_budget or step == cfg.iters:
            save()
            t_ckpt = time.time()
        if over_budget:
            log({"iter": step, "wall": round(elapsed, 1), "event": "time budget reached"})
            break
    return ckpt_path


def export_weights(ckpt: str | Path, dest: str | Path, dtype=torch.float16) -> None:
    """Write only the model tensors (no optimizer state) as safetensors."""
    from safetensors.torch import save_file

    state = torch.load(ckpt, map_location="cpu", weights_only=False)["model"]
    save_file({k: v.to(dtype).contiguous() for k, v in state.items()}, str(dest))
