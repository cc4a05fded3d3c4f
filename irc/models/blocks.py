"""Building blocks shared by several model families (so no family imports another)."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


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
        for conv in self.convs:
            nn.init.xavier_normal_(conv.weight)
            conv.weight.data.mul_(0.1)
            nn.init.zeros_(conv.bias)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = [x]
        for conv in self.convs:
            feats.append(F.leaky_relu(conv(torch.cat(feats, 1)), 0.2))
        return self.out(torch.cat(feats, 1))
