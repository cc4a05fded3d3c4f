"""Building blocks shared by several model families (so no family imports another): IRN's dense block and
coupling layer (InvBlock), the Haar transform, ESRGAN's RDB/RRDB."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


def init_subnet(hidden, out: nn.Conv2d) -> None:
    """The start every coupling subnet shares: hidden convolutions Xavier-normal scaled by 0.1 with
    zero biases, the output convolution all zero (so the subnet gives 0 and its InvBlock is the
    identity until it learns)."""
    for conv in hidden:
        nn.init.xavier_normal_(conv.weight)
        conv.weight.data.mul_(0.1)
        nn.init.zeros_(conv.bias)
    nn.init.zeros_(out.weight)
    nn.init.zeros_(out.bias)


class DenseBlock(nn.Module):
    """Five 3x3 convolutions with dense connections (ESRGAN's dense block).

    The last convolution starts at zero so each InvBlock starts as identity.
    """

    def __init__(self, cin: int, cout: int, growth: int = 32):
        super().__init__()
        self.convs = nn.ModuleList(
            nn.Conv2d(cin + i * growth, growth, 3, padding=1) for i in range(4)
        )
        self.out = nn.Conv2d(cin + 4 * growth, cout, 3, padding=1)
        init_subnet(self.convs, self.out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = [x]
        for conv in self.convs:
            feats.append(F.leaky_relu(conv(torch.cat(feats, 1)), 0.2))
        return self.out(torch.cat(feats, 1))


class InvBlock(nn.Module):
    """IRN's coupling layer: additive on the low branch (the first ``split`` channels), enhanced
    affine on the high branch, with a bounded log-scale. ``subnet(cin, cout)`` builds phi, rho and
    eta: IRN's :class:`DenseBlock` by default (IRN, IRN_color), residual subnets in BDFlow (Eq. 6)."""

    def __init__(self, channels: int, split: int = 3, clamp: float = 1.0, subnet=DenseBlock):
        super().__init__()
        self.split = split
        self.clamp = clamp
        high = channels - split
        self.phi = subnet(high, split)  # updates the low branch
        self.eta = subnet(split, high)  # shift of the high branch
        self.rho = subnet(split, high)  # log-scale of the high branch

    def _log_scale(self, y1: torch.Tensor) -> torch.Tensor:
        return self.clamp * (torch.sigmoid(self.rho(y1)) * 2 - 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1, x2 = x[:, : self.split], x[:, self.split :]
        y1 = x1 + self.phi(x2)
        y2 = x2 * torch.exp(self._log_scale(y1)) + self.eta(y1)
        return torch.cat([y1, y2], 1)

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        y1, y2 = y[:, : self.split], y[:, self.split :]
        x2 = (y2 - self.eta(y1)) * torch.exp(-self._log_scale(y1))
        x1 = y1 - self.phi(x2)
        return torch.cat([x1, x2], 1)


class Haar(nn.Module):
    """2x2 Haar transform: (B, C, H, W) -> (B, 4C, H/2, W/2).

    Output channels are ordered [low-pass of every input channel, then the three
    high-pass bands], so the first C channels are the 2x2 box average.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = x[..., 0::2, 0::2]
        b = x[..., 0::2, 1::2]
        c = x[..., 1::2, 0::2]
        d = x[..., 1::2, 1::2]
        ll = (a + b + c + d) * 0.25
        h1 = (a - b + c - d) * 0.25
        h2 = (a + b - c - d) * 0.25
        h3 = (a - b - c + d) * 0.25
        return torch.cat([ll, h1, h2, h3], dim=1)

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        ll, h1, h2, h3 = torch.chunk(y, 4, dim=1)
        a = ll + h1 + h2 + h3
        b = ll - h1 + h2 - h3
        c = ll + h1 - h2 - h3
        d = ll - h1 - h2 + h3
        # interleave back: channel layout (C, [a, b, c, d]) -> pixel_shuffle(2)
        stacked = torch.stack([a, b, c, d], dim=2)  # B, C, 4, h, w
        bsz, ch, _, h, w = stacked.shape
        return F.pixel_shuffle(stacked.reshape(bsz, ch * 4, h, w), 2)


class RDB(nn.Module):
    """Residual dense block: 5 convolutions, each sees all earlier features."""

    def __init__(self, nf: int, gc: int):
        super().__init__()
        self.convs = nn.ModuleList(
            nn.Conv2d(nf + i * gc, gc if i < 4 else nf, 3, padding=1) for i in range(5)
        )
        self.act = nn.LeakyReLU(0.2, inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = [x]
        for i, conv in enumerate(self.convs):
            out = conv(torch.cat(feats, 1))
            if i < 4:
                feats.append(self.act(out))
        return x + 0.2 * out


class RRDB(nn.Module):
    """Residual in residual dense block: three RDBs and a scaled skip."""

    def __init__(self, nf: int, gc: int):
        super().__init__()
        self.body = nn.Sequential(RDB(nf, gc), RDB(nf, gc), RDB(nf, gc))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + 0.2 * self.body(x)
