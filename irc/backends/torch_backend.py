"""The PyTorch backend: the loaded network itself (fp32: the very same calls, so results
are bit-identical to calling the network directly), or under bf16 autocast."""

from __future__ import annotations

import torch


class TorchRunner:
    backend = "torch"

    def __init__(self, net, precision: str | dict[str, str] = "fp32", device: str = "cpu"):
        from irc.backends import per_pass

        self.net = net
        self.device_type = torch.device(device).type
        self.precisions = per_pass(precision)
        if self.device_type == "cuda" and not torch.cuda.is_bf16_supported():
            self.precisions = per_pass("fp32")  # this GPU has no bf16: say what really runs

    def precision_of(self, pass_: str) -> str:
        return self.precisions[pass_]

    def _run(self, pass_: str, fn, *args):
        if self.precisions[pass_] != "bf16":
            return fn(*args)
        with torch.autocast(self.device_type, dtype=torch.bfloat16):
            return fn(*args).float()  # fp32 out, as the pipeline rounds it to 8 bits

    def encode_lr(self, x: torch.Tensor) -> torch.Tensor:
        return self._run("encode_lr", self.net.encode_lr, x)

    def upscale(self, y: torch.Tensor, temperature: float = 0.0,
                generator: torch.Generator | None = None) -> torch.Tensor:
        return self._run("upscale", self.net.upscale, y, temperature, generator)

    def __call__(self, lr: torch.Tensor, quality) -> torch.Tensor:
        return self._run("restore", self.net, lr, quality)
