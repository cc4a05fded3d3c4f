"""Adversarial training pieces: the discriminator T and the two sides of the GAN loss.

:class:`Discriminator` follows Ledig et al. (SRGAN), as the IRN paper's IRN+ stage does:
eight 3x3 convolutions whose channels go 64, 64, 128, 128, 256, 256, 512, 512 (stride 2 on
every second one), LeakyReLU(0.2), then two dense layers with 100 hidden units, giving one
logit T(x) per image. SRGAN flattens the last feature map into its first dense layer, which
ties the network to one crop size; here a global average pool comes first, so any crop works
(the same weights score 96x96 training crops and 144x144 ones). 4,736,777 parameters
(4,685,376 in the convolutions, 51,401 in the dense layers) without normalisation; 4,738,633
with ``norm="batch"`` (the convolutions after the first lose their biases to the BatchNorm's).

No BatchNorm by default (``norm="batch"`` adds SRGAN's, after every convolution but the
first): a CPU run trains on batches of 4-8 crops, whose batch statistics are noisy, and the
real and the generated crops go through T in separate batches, so each would be normalised
by its own statistics: T could tell the two apart by those alone, and its eval-mode running
statistics would differ again from what it was trained with. Without it T sees every image
on its own, and a shallow LeakyReLU network with Adam at 1e-4 trains stably. Without a
normalisation, PyTorch's default initialisation shrinks the signal about 2-2.5x per layer (the
features' standard deviation fell from 0.23 to 0.006 over the eight convolutions on random crops,
and every crop got the same logit to 1e-4): such a T stayed at chance (d_loss 1.386) for 250
warm-up steps at 4e-4 on real crops against irn-x4's. So the weights start as He's (fan-in,
LeakyReLU 0.2), which keeps the scale of the signal through the stack.

:class:`Adversary` holds T, its Adam optimizer and its step count: one object the shared
training loop checkpoints beside the generator (``run_loop(..., extra=...)``).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

CHANNELS = (64, 64, 128, 128, 256, 256, 512, 512)


class Discriminator(nn.Module):
    """SRGAN-like T: (B, 3, H, W) in [0, 1] -> (B,) logits, for any H, W >= 16."""

    def __init__(self, hidden: int = 100, norm: str = "none", in_channels: int = 3):
        super().__init__()
        if norm not in ("none", "batch"):
            raise ValueError(f"discriminator norm must be none or batch, got {norm!r}")
        layers: list[nn.Module] = []
        prev = in_channels
        for i, ch in enumerate(CHANNELS):
            layers.append(nn.Conv2d(prev, ch, 3, stride=1 + i % 2, padding=1, bias=norm == "none" or i == 0))
            if norm == "batch" and i > 0:
                layers.append(nn.BatchNorm2d(ch))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
            prev = ch
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Linear(prev, hidden), nn.LeakyReLU(0.2, inplace=True), nn.Linear(hidden, 1))
        for m in self.modules():  # He initialisation for LeakyReLU(0.2), so the signal keeps its scale
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight, a=0.2, nonlinearity="leaky_relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.features(x * 2 - 1)  # [-1, 1], centred for the first layer
        return self.head(h.mean(dim=(2, 3))).squeeze(1)


class Adversary:
    """The discriminator side of a GAN: T, its Adam optimizer, and how many steps it has taken.

    :meth:`d_step` trains T to tell real images from generated ones (BCE with logits: it
    maximises log sigma(T(x)) + log(1 - sigma(T(x'))); the generated ones are detached, so no
    gradient reaches the generator). :meth:`g_loss` is the generator's non-saturating loss
    -log sigma(T(x')), with T's parameters frozen, so the generator's backward pass leaves no
    gradient on T and its optimizer cannot move it.
    """

    def __init__(self, disc: nn.Module, lr: float = 1e-4, betas: tuple[float, float] = (0.9, 0.999)):
        self.disc = disc
        self.opt = torch.optim.Adam(disc.parameters(), lr=lr, betas=betas)
        self.steps = 0

    def d_step(self, real: torch.Tensor, fake: torch.Tensor) -> dict[str, torch.Tensor]:
        """One Adam step of T on a real and a generated batch; returns its loss and how well it
        tells them apart before the step: ``d_real`` / ``d_fake`` (mean sigma(T) of each),
        ``d_acc`` (the fraction it classifies right) and ``gan`` (the generator's loss on ``fake``)."""
        self.disc.requires_grad_(True)
        t_real, t_fake = self.disc(real).float(), self.disc(fake.detach()).float()
        loss = (F.binary_cross_entropy_with_logits(t_real, torch.ones_like(t_real))
                + F.binary_cross_entropy_with_logits(t_fake, torch.zeros_like(t_fake)))
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        self.opt.zero_grad(set_to_none=True)  # nothing left over for the generator's pass to add to
        self.steps += 1
        self.disc.requires_grad_(False)
        t_real, t_fake = t_real.detach(), t_fake.detach()
        return {"d_loss": loss.detach(), "d_real": torch.sigmoid(t_real).mean(),
                "d_fake": torch.sigmoid(t_fake).mean(),
                "d_acc": ((t_real > 0).float().mean() + (t_fake < 0).float().mean()) / 2,
                "gan": F.softplus(-t_fake).mean()}

    def g_loss(self, fake: torch.Tensor) -> torch.Tensor:
        """The generator's non-saturating loss, mean over the batch of -log sigma(T(x'))."""
        self.disc.requires_grad_(False)
        return F.softplus(-self.disc(fake).float()).mean()

    def state_dict(self) -> dict:
        return {"disc": self.disc.state_dict(), "opt": self.opt.state_dict(), "steps": self.steps}

    def load_state_dict(self, state: dict) -> None:
        self.disc.load_state_dict(state["disc"])
        self.opt.load_state_dict(state["opt"])
        self.steps = int(state["steps"])
