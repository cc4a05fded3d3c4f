"""Compression Restore Module (CRM): maps a decoded lossy LR back to the clean LR.

The IRN paper (section 3.5) uses 8 RRDB blocks (ESRGAN's residual-in-residual
dense blocks, nf 64, gc 32), one network per JPEG quality. Here one network
serves every quality of a codec: the quality setting enters as an extra input
plane (quality / 100) and as a per-block scale/shift (FiLM) of the trunk
features, so the restoration strength follows the codec setting.

The last convolution starts at zero, so an untrained CRM is the identity.
"""

from __future__ import annotations

import torch
from torch import nn

from irc.models.blocks import RRDB
from irc.models.layout import ChannelsLast


class CRM(ChannelsLast):
    """Quality-conditioned RRDB restorer working at LR resolution.

    ``forward(lr, quality)``: ``lr`` is (B, 3, h, w) in [0, 1], ``quality`` a
    float or a (B,) tensor of codec quality settings (0-100).
    """

    def __init__(self, nf: int = 32, gc: int = 16, blocks: int = 3, conditioned: bool = True):
        super().__init__()
        self.conditioned = conditioned
        self.head = nn.Conv2d(4 if conditioned else 3, nf, 3, padding=1)
        self.blocks = nn.ModuleList(RRDB(nf, gc) for _ in range(blocks))
        # FiLM: quality -> per-block, per-channel (scale, shift), starting at (1, 0)
        self.film = nn.Linear(1, 2 * nf * blocks) if conditioned else None
        if self.film is not None:
            nn.init.zeros_(self.film.weight)
            nn.init.zeros_(self.film.bias)
        self.trunk = nn.Conv2d(nf, nf, 3, padding=1)
        self.tail = nn.Sequential(nn.Conv2d(nf, nf, 3, padding=1), nn.LeakyReLU(0.2, inplace=True),
                                  nn.Conv2d(nf, 3, 3, padding=1))
        nn.init.zeros_(self.tail[-1].weight)
        nn.init.zeros_(self.tail[-1].bias)
        self.nf = nf

    def forward(self, lr: torch.Tensor, quality: float | torch.Tensor = 50.0) -> torch.Tensor:
        b, _, h, w = lr.shape
        inp = lr
        if self.conditioned:
            q = torch.as_tensor(quality, dtype=lr.dtype, device=lr.device).reshape(-1, 1) / 100.0
            q = q.expand(b, 1)
            inp = torch.cat([lr, q[:, :, None, None].expand(b, 1, h, w)], 1)
            film = self.film(q).view(b, len(self.blocks), 2, self.nf, 1, 1)
        feat = self.head(self._layout(inp))
        body = feat
        for i, block in enumerate(self.blocks):
            body = block(body)
            if self.conditioned:
                body = body * (1 + film[:, i, 0]) + film[:, i, 1]
        feat = feat + self.trunk(body)
        return lr + self.tail(feat)


def build(scale: int, **params) -> CRM:
    """The registry's constructor for ``arch: "crm"`` entries (the CRM works on the LR: any scale)."""
    return CRM(**params)
