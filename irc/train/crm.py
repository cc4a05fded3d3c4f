"""CRM training: learn to undo a real lossy codec on the LR images of a rescaler.

Pairs are made on the fly: the clean LR of every training image is computed
once with the base rescaler (a registered IRN model, or ``bicubic`` for the
paper's ablation) and cached in the run folder; each step cuts random LR crops,
flips/rotates them, and stores each crop with the real codec (Pillow JPEG,
WebP, AVIF...) at a random quality in ``[q_min, q_max]``.

Two targets: ``lr`` (the IRN paper, section 3.5) is L2 between the restored and
the clean LR; ``hr`` is L2 between the original HR crop and what decoding
outputs, i.e. the restored LR (clamped) through the frozen inverse of the base
IRN with z = 0. ``hr`` spends the CRM's capacity on the LR errors the inverse
amplifies, and fits a base whose inverse was itself trained on codec-damaged LR
(``irn-x2-jpeg``), which a clean-LR target does not.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch.nn import functional as F

from irc.models.crm import CRM
from irc.train.data import augment, list_images, load_rgb_uint8, random_window
from irc.train.loop import TrainConfig, prepare_run, run_loop, start


@dataclass
class CRMTrainConfig(TrainConfig):
    scale: int = 2
    base: str = "irn-x2"  # LR producer: a registered IRN model, or "bicubic"
    codec: str = "jpeg"
    q_min: int = 5
    q_max: int = 95
    nf: int = 32
    gc: int = 16
    blocks: int = 3
    conditioned: bool = True
    target: str = "lr"  # lr: L2 to the clean LR (paper); hr: L2 of the decoded HR (frozen base IRN)
    out: str = "runs/crm-x2-jpeg"
    crop: int = 64  # LR crop side
    val_qualities: tuple[int, ...] = (10, 30, 60, 90)
    val_every: int = 100
    val_images: int = 4

    def __post_init__(self) -> None:
        if self.target not in ("lr", "hr"):
            raise ValueError(f"CRM target must be lr or hr, got {self.target!r}")
        if self.target == "hr" and self.base == "bicubic":
            raise ValueError("target hr needs an IRN --base (decoding runs its inverse; bicubic has none)")


def make_lr(base: str, scale: int, rgb: torch.Tensor, device="cpu") -> torch.Tensor:
    """Clean LR (3, h, w) uint8 of a (3, H, W) uint8 image, made as ``irc encode`` makes it."""
    arr = rgb.permute(1, 2, 0).numpy()
    if base == "bicubic":
        from irc.resample import bicubic_down

        lr = bicubic_down(arr, scale)
    else:
        from irc import api
        from irc.models.registry import get_spec

        spec = get_spec(base)
        if spec.role != "rescaler" or spec.scale != scale:
            raise ValueError(f"base {base} is not a rescaler for scale {scale}")
        lr = api.downscale(arr, base, str(device))
    return torch.from_numpy(np.array(lr)).permute(2, 0, 1).contiguous()


def codec_round_trip(codec, lr: np.ndarray, quality: int) -> np.ndarray:
    """Store an (h, w, 3) uint8 LR with the real codec at ``quality`` and decode it (writable copy)."""
    return np.array(codec.decode(codec.encode(lr, codec.settings(quality, False))))


class LRPairSampler:
    """(degraded LR, clean LR, quality) batches from cached clean LR images, plus the
    aligned HR crops when ``cfg.target`` is ``hr``."""

    def __init__(self, cfg: CRMTrainConfig, log: Callable[[str], None] = print):
        from irc.codecs import get_codec

        self.cfg = cfg
        self.codec = get_codec(cfg.codec)
        files = list_images(cfg.data)
        cache = Path(cfg.out) / "lr_cache.pt"
        key = {"base": cfg.base, "scale": cfg.scale, "files": [str(f) for f in files]}
        if cfg.base != "bicubic":
            from irc.models.registry import get_spec

            key["weights"] = get_spec(cfg.base).sha256()
        state = torch.load(cache, weights_only=False) if cache.exists() else None
        if state is None or state["key"] != key:
            images = []
            for i, f in enumerate(files):
                images.append(make_lr(cfg.base, cfg.scale, load_rgb_uint8(f)))
                if (i + 1) % 25 == 0 or i + 1 == len(files):
                    log(f"clean LR by {cfg.base}: {i + 1}/{len(files)} images")
            state = {"key": key, "images": images}
            torch.save(state, cache)
        c, s = cfg.crop, cfg.scale
        lrs, hrs = state["images"], [None] * len(files)
        if cfg.target == "hr":
            # the LR rows/columns that come from whole HR pixels (not the encoder's padding)
            hrs = [load_rgb_uint8(f) for f in files]
            lrs = [lr[:, : hr.shape[1] // s, : hr.shape[2] // s] for lr, hr in zip(lrs, hrs)]
            hrs = [hr[:, : lr.shape[1] * s, : lr.shape[2] * s] for lr, hr in zip(lrs, hrs)]
        keep = [i for i, lr in enumerate(lrs) if lr.shape[1] >= c and lr.shape[2] >= c]
        if not keep:
            raise ValueError(f"no training image gives an LR of at least {c}x{c}")
        self.images = [lrs[i] for i in keep]
        self.hr = [hrs[i] for i in keep]
        w = torch.tensor([float((im.shape[1] - c + 1) * (im.shape[2] - c + 1)) for im in self.images])
        self.weights = w / w.sum()
        self.generator = torch.Generator().manual_seed(cfg.seed)

    def sample(self, batch: int):
        g, c, s = self.generator, self.cfg.crop, self.cfg.scale
        idx = torch.multinomial(self.weights, batch, replacement=True, generator=g)
        degraded, clean, quality, hr = [], [], [], []
        for i in idx.tolist():
            lr = self.images[i]
            top, left, aug = random_window(lr.shape[1], lr.shape[2], c, g)
            patch = augment(lr[:, top : top + c, left : left + c], aug)
            if self.hr[i] is not None:
                hr.append(augment(self.hr[i][:, top * s : (top + c) * s, left * s : (left + c) * s], aug))
            q = int(torch.randint(self.cfg.q_min, self.cfg.q_max + 1, (1,), generator=g))
            arr = np.ascontiguousarray(patch.permute(1, 2, 0).numpy())
            degraded.append(torch.from_numpy(codec_round_trip(self.codec, arr, q)).permute(2, 0, 1))
            clean.append(patch)
            quality.append(float(q))
        to_float = lambda ts: torch.stack(ts).float().div_(255.0)  # noqa: E731
        batch_ = (to_float(degraded), to_float(clean), torch.tensor(quality))
        return batch_ + (to_float(hr),) if hr else batch_

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])


def build_model(cfg: CRMTrainConfig) -> CRM:
    return CRM(nf=cfg.nf, gc=cfg.gc, blocks=cfg.blocks, conditioned=cfg.conditioned)


def lr_psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = F.mse_loss(a.clamp(0, 1), b).item()
    return 10 * np.log10(1.0 / max(mse, 1e-12))


def train_crm(cfg: CRMTrainConfig, resume: bool = False,
              progress: Callable[[dict], None] | None = None) -> Path:
    """Run (or continue) CRM training; returns the checkpoint path."""
    from irc.codecs import get_codec
    from irc.models.registry import load

    device, model = start(cfg, build_model)
    model = model.channels_last()  # NHWC throughout (1.45x faster CRM pass on CPU)
    Path(cfg.out).mkdir(parents=True, exist_ok=True)
    sampler = LRPairSampler(cfg)
    prepare_run(cfg, model, resume)
    # the base rescaler's upscale, frozen: the hr loss and the validation's HR gain run through it
    base = None if cfg.base == "bicubic" else load(cfg.base, str(device), role="rescaler").net.requires_grad_(False)

    def decoded(lr: torch.Tensor) -> torch.Tensor:
        return base.upscale(lr.clamp(0, 1))

    def hr_psnr(lr: torch.Tensor, hr: torch.Tensor) -> float | None:
        """RGB PSNR of the HR decoded from ``lr`` (None without an IRN base)."""
        if base is None:
            return None
        with torch.no_grad():
            return lr_psnr(decoded(lr.to(device)).cpu()[..., : hr.shape[2], : hr.shape[3]], hr)

    # validation: whole LR images of the first val images, stored at fixed qualities
    val_pairs = []
    if cfg.val_dir:
        codec = get_codec(cfg.codec)
        for f in list_images([cfg.val_dir])[: cfg.val_images]:
            hr = load_rgb_uint8(f)
            clean = make_lr(cfg.base, cfg.scale, hr)
            arr = np.ascontiguousarray(clean.permute(1, 2, 0).numpy())
            for q in cfg.val_qualities:
                deg = torch.from_numpy(codec_round_trip(codec, arr, q)).permute(2, 0, 1)[None].float().div(255)
                val_pairs.append((q, deg, clean[None].float().div(255), hr[None].float().div(255),
                                  hr_psnr(deg, hr[None].float().div(255))))

    def loss_fn(batch) -> dict[str, torch.Tensor]:
        degraded, clean, q, *hr = (t.to(device) for t in batch)
        restored = model(degraded, q)
        mse = F.mse_loss(restored, clean)
        if cfg.target == "lr":
            return {"loss": mse, "mse": mse}
        mse_hr = F.mse_loss(decoded(restored), hr[0])
        return {"loss": mse_hr, "mse_hr": mse_hr, "mse": mse.detach()}

    def val() -> dict[str, float]:
        gains: dict[str, list[float]] = {}
        for q, deg, clean, hr, hr_without in val_pairs:
            restored = model(deg.to(device), float(q)).cpu()
            gains.setdefault(f"lr_gain_q{q}", []).append(lr_psnr(restored, clean) - lr_psnr(deg, clean))
            if hr_without is not None:  # what the user sees: the decoded HR with against without the CRM
                gains.setdefault(f"hr_gain_q{q}", []).append(hr_psnr(restored, hr) - hr_without)
        out = {k: float(np.mean(v)) for k, v in gains.items()}
        for kind in ("lr", "hr"):
            per_q = [v for k, v in out.items() if k.startswith(f"{kind}_gain_q")]
            if per_q:
                out[f"{kind}_gain"] = float(np.mean(per_q))
        return out

    return run_loop(cfg, model, sampler, loss_fn, val if val_pairs else None, resume, progress)
