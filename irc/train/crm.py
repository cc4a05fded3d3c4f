"""CRM training: learn to undo a real lossy codec on the LR images of a rescaler.

Pairs are made on the fly: the clean LR of every training image is computed
once with the base rescaler (a registered IRN model, or ``bicubic`` for the
paper's ablation) and cached in the run folder; each step cuts random LR crops,
flips/rotates them, and stores each crop with the real codec (Pillow JPEG,
WebP, AVIF...) at a random quality in ``[q_min, q_max]``. The loss is L2
between the restored and the clean LR (IRN paper, section 3.5).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch.nn import functional as F

from irc.models.crm import CRM
from irc.train.data import list_images, load_rgb_uint8, random_patch
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
    out: str = "runs/crm-x2-jpeg"
    crop: int = 64  # LR crop side
    val_qualities: tuple[int, ...] = (10, 30, 60, 90)
    val_every: int = 100
    val_images: int = 4


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
        if spec.arch != "irn" or spec.scale != scale:
            raise ValueError(f"base {base} is not an IRN model for scale {scale}")
        lr = api.downscale(arr, base, str(device))
    return torch.from_numpy(np.array(lr)).permute(2, 0, 1).contiguous()


def codec_round_trip(codec, lr: np.ndarray, quality: int) -> np.ndarray:
    """Store an (h, w, 3) uint8 LR with the real codec at ``quality`` and decode it (writable copy)."""
    return np.array(codec.decode(codec.encode(lr, codec.settings(quality, False))))


class LRPairSampler:
    """(degraded LR, clean LR, quality) batches from cached clean LR images."""

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
        c = cfg.crop
        self.images = [im for im in state["images"] if im.shape[1] >= c and im.shape[2] >= c]
        if not self.images:
            raise ValueError(f"no training image gives an LR of at least {c}x{c}")
        w = torch.tensor([float((im.shape[1] - c + 1) * (im.shape[2] - c + 1)) for im in self.images])
        self.weights = w / w.sum()
        self.generator = torch.Generator().manual_seed(cfg.seed)

    def sample(self, batch: int):
        g, c = self.generator, self.cfg.crop
        idx = torch.multinomial(self.weights, batch, replacement=True, generator=g)
        degraded, clean, quality = [], [], []
        for i in idx.tolist():
            patch = random_patch(self.images[i], c, g)
            q = int(torch.randint(self.cfg.q_min, self.cfg.q_max + 1, (1,), generator=g))
            arr = np.ascontiguousarray(patch.permute(1, 2, 0).numpy())
            degraded.append(torch.from_numpy(codec_round_trip(self.codec, arr, q)).permute(2, 0, 1))
            clean.append(patch)
            quality.append(float(q))
        to_float = lambda ts: torch.stack(ts).float().div_(255.0)  # noqa: E731
        return to_float(degraded), to_float(clean), torch.tensor(quality)

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

    device, model = start(cfg, build_model)
    model = model.channels_last()  # NHWC throughout (1.45x faster CRM pass on CPU)
    Path(cfg.out).mkdir(parents=True, exist_ok=True)
    sampler = LRPairSampler(cfg)
    prepare_run(cfg, model, resume)

    # validation: whole LR images of the first val images, stored at fixed qualities
    val_pairs = []
    if cfg.val_dir:
        codec = get_codec(cfg.codec)
        for f in list_images([cfg.val_dir])[: cfg.val_images]:
            clean = make_lr(cfg.base, cfg.scale, load_rgb_uint8(f))
            arr = np.ascontiguousarray(clean.permute(1, 2, 0).numpy())
            for q in cfg.val_qualities:
                deg = torch.from_numpy(codec_round_trip(codec, arr, q)).permute(2, 0, 1)
                val_pairs.append((q, deg[None].float().div(255), clean[None].float().div(255)))

    def loss_fn(batch) -> dict[str, torch.Tensor]:
        degraded, clean, q = (t.to(device) for t in batch)
        restored = model(degraded, q)
        mse = F.mse_loss(restored, clean)
        return {"loss": mse, "mse": mse}

    def val() -> dict[str, float]:
        gains = {}
        for q, deg, clean in val_pairs:
            restored = model(deg.to(device), float(q)).cpu()
            gains.setdefault(q, []).append(lr_psnr(restored, clean) - lr_psnr(deg, clean))
        per_q = {f"lr_gain_q{q}": float(np.mean(v)) for q, v in gains.items()}
        return {"lr_gain": float(np.mean(list(per_q.values()))), **per_q}

    return run_loop(cfg, model, sampler, loss_fn, val if val_pairs else None, resume, progress)
