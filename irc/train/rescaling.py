"""What every rescaler trainer shares (IRN, FGRN, ...): the options that apply to any
family, the bicubic guide, the lossy LR storage in the loop, and the validation, which
uses only the rescaler interface (``downscale`` then ``upscale``, as the codec does)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch.nn import functional as F

from irc.train.data import CropSampler, list_images, load_rgb_uint8
from irc.train.loop import TrainConfig, prepare_run, run_loop, start, use_bf16


@dataclass
class RescalerTrainConfig(TrainConfig):
    scale: int = 2
    # robustness to lossy LR storage: "none", "noise" (Gaussian, the paper's baseline) or a
    # codec name ("jpeg", ...): the real codec in the loop with a straight-through gradient
    lr_degrade: str = "none"
    degrade_q_min: int = 10
    degrade_q_max: int = 90
    noise_std: float = 0.02  # for "noise", in [0, 1] units
    compile: bool = False

    MODEL_FIELDS = ()  # the fields that are constructor arguments of the family's network (build(scale, **them))

    def model_params(self) -> dict:
        """The network's constructor arguments (None: the family's default for the scale)."""
        return {k: getattr(self, k) for k in self.MODEL_FIELDS if getattr(self, k) is not None}


def bicubic_down(x: torch.Tensor, scale: int) -> torch.Tensor:
    """Antialiased bicubic downscale to (H // scale, W // scale): sized, not by the factor 1/scale,
    so that no float rounding of 1/3 and the like can change the size (same values for 2, 4, 8)."""
    size = (x.shape[-2] // scale, x.shape[-1] // scale)
    return F.interpolate(x, size=size, mode="bicubic", antialias=True, align_corners=False).clamp(0, 1)


def check_crops(cfg: RescalerTrainConfig) -> None:
    """Every HR crop (``crop`` and those of ``crop_stages``) must be a multiple of the scale."""
    for crop in [cfg.crop] + [int(c) for _, c, _ in cfg.crop_stages]:
        if crop % cfg.scale:
            lower, upper = crop - crop % cfg.scale, crop - crop % cfg.scale + cfg.scale
            raise ValueError(f"crop {crop} is not a multiple of the scale {cfg.scale}: the HR crop must divide "
                             f"into LR pixels (use {lower or upper} or {upper})")


def draw_qualities(n: int, cfg: RescalerTrainConfig) -> list[int]:
    """One codec quality per crop, for the codec in the loop and the rate estimate."""
    if cfg.lr_degrade in ("none", "noise"):
        return [50] * n
    return torch.randint(cfg.degrade_q_min, cfg.degrade_q_max + 1, (n,)).tolist()


def degrade_lr(yq: torch.Tensor, cfg: RescalerTrainConfig, qs: list[int]) -> torch.Tensor:
    """What the decoder sees of the LR: unchanged, plus noise, or stored by the real codec.

    The codec path is straight-through: the forward value is the decoded LR, the
    gradient flows as if the codec were the identity, so the network learns an
    LR whose reconstruction survives the codec's error.
    """
    if cfg.lr_degrade == "none":
        return yq
    if cfg.lr_degrade == "noise":
        return yq + torch.randn_like(yq) * cfg.noise_std
    from irc.codecs import get_codec
    from irc.train.crm import codec_round_trip

    codec = get_codec(cfg.lr_degrade)
    arr = (yq.detach().float().clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).cpu().numpy()
    dec = np.stack([codec_round_trip(codec, a, q) for a, q in zip(arr, qs)])
    stored = torch.from_numpy(dec).permute(0, 3, 1, 2).to(yq.device, yq.dtype) / 255.0
    return yq + (stored - yq).detach()



def load_val_images(val_dir: str, count: int) -> list[torch.Tensor]:
    files = list_images([val_dir])[:count]
    return [load_rgb_uint8(f) for f in files]


@torch.no_grad()
def validate(model, images: list[torch.Tensor], scale: int, device) -> dict[str, float]:
    """Lossless round trip of a rescaler (LR rounded to 8 bits, latent z = 0 where there is one):
    mean Y-PSNR (crop = scale) and RGB PSNR, each image cut to its top-left part whose sides are
    multiples of the scale (Kodak 768x512 at x3: 768x510)."""
    from irc.metrics import psnr_rgb, psnr_y

    ys, rgbs = [], []
    for img in images:
        h, w = (img.shape[1] // scale) * scale, (img.shape[2] // scale) * scale
        x = img[:, :h, :w].float().div(255).unsqueeze(0).to(device)
        x_hat = model.upscale(model.downscale(x)).clamp(0, 1)
        ref = x[0].permute(1, 2, 0).cpu()
        out = x_hat[0].permute(1, 2, 0).float().cpu()
        ys.append(psnr_y(ref, out, crop=scale))
        rgbs.append(psnr_rgb(ref, out))
    return {"psnr_y": sum(ys) / len(ys), "psnr_rgb": sum(rgbs) / len(rgbs)}


def train_rescaler(cfg: RescalerTrainConfig, build_model: Callable, losses: Callable, resume: bool = False,
                   progress: Callable[[dict], None] | None = None, sampler=None, extra: dict | None = None) -> Path:
    """The run every rescaler trainer makes: ``build_model(cfg)`` trained on
    ``losses(model, hr_batch, cfg)["loss"]`` by the shared loop, NHWC, bf16 autocast where
    ``cfg.precision`` says so, ``torch.compile`` with ``cfg.compile``, validated through the
    interface. ``sampler``: crops from elsewhere than ``cfg.data`` (same interface as CropSampler);
    ``extra``: more state the checkpoint keeps (:func:`irc.train.loop.run_loop`)."""
    check_crops(cfg)
    device, model = start(cfg, build_model)
    if sampler is None:
        sampler = CropSampler(cfg.data, cfg.crop, seed=cfg.seed, device=device)
    prepare_run(cfg, model, resume)
    val_images = load_val_images(cfg.val_dir, cfg.val_images) if cfg.val_dir else []
    model = model.channels_last()  # NHWC throughout: faster on CUDA and on CPU (1.2x per IRN x4 step, 2 cores)
    fwd = torch.compile(losses) if cfg.compile else losses
    use_amp = use_bf16(cfg, device)

    def loss_fn(x: torch.Tensor) -> dict[str, torch.Tensor]:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
            return fwd(model, x, cfg)

    def val() -> dict[str, float]:
        return validate(model, val_images, cfg.scale, device)

    return run_loop(cfg, model, sampler, loss_fn, val if val_images else None, resume, progress, extra)
