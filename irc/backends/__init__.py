"""Inference backends: what runs a loaded model's passes.

* ``torch``: the reference. Training, CUDA, every pass (and the only one with
  ``temperature`` > 0 sampling, which the others hand back to it).
* ``openvino``: CPU inference through OpenVINO (``pip install 'irc[openvino]'``).
  Each pass (rescaler ``encode_lr`` / ``upscale`` at z = 0, CRM restore) is converted
  once per machine and cached on disk, keyed by the weights hash, the model code and
  the OpenVINO version (:mod:`irc.backends.openvino_backend`).

``auto`` (the default) is OpenVINO on the CPU when it imports, else PyTorch; the
environment variable ``IRC_BACKEND`` (auto, torch or openvino) changes what ``auto``
picks. A backend wraps a loaded torch model in a *runner* with the same methods on
tensors: ``encode_lr(x)``, ``upscale(y, temperature, generator)`` for rescalers,
``runner(lr, quality)`` for CRMs, and ``precision``, the precision it really runs in.

Precision: ``fp32``, ``bf16`` or ``auto``. ``auto`` is bf16 only where the CPU has it
natively (AVX512_BF16 or AMX) *and* the model's registry entry records a measured
bf16 loss within :data:`BF16_BUDGET_DB` (``kodak.bf16_loss_db``); everything else runs
fp32. An explicit ``bf16`` runs bf16 where the backend can (torch: autocast, emulated
and slow without native support; OpenVINO: only natively, else it runs fp32 and says so).
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from irc.errors import IrcError

BACKENDS = ("torch", "openvino")
PRECISIONS = ("fp32", "bf16")
BF16_BUDGET_DB = 0.02  # most mean Kodak PSNR a model may lose in bf16 for `auto` to pick it
MISSING_OPENVINO = ("--backend openvino needs the openvino package, which is not installed: "
                    "pip install 'irc[openvino]' (or use --backend torch)")


@lru_cache(maxsize=1)
def openvino_available() -> bool:
    """Whether ``import openvino`` works here (checked once per process)."""
    try:
        import openvino  # noqa: F401
    except Exception:  # not installed, or a broken install: either way not usable
        return False
    return True


def check_backend(name, what: str = "backend") -> str:
    """``name`` if it is auto or a known backend, else one clear IrcError."""
    if not isinstance(name, str) or name not in ("auto", *BACKENDS):
        raise IrcError(f"unknown {what} {name!r:.40}: use auto, {', '.join(BACKENDS)}")
    return name


def check_precision(precision) -> str:
    if not isinstance(precision, str) or precision not in ("auto", *PRECISIONS):
        raise IrcError(f"unknown precision {precision!r:.40}: use auto, {', '.join(PRECISIONS)}")
    return precision


def resolve_backend(name: str = "auto", device: str = "cpu") -> str:
    """The backend that runs on ``device``: ``auto`` is openvino on the CPU where it is
    installed (``IRC_BACKEND`` overrides), else torch. Raises IrcError for an unknown
    name, openvino off the CPU, or openvino asked for but missing."""
    name = check_backend(name)
    if name == "auto" and os.environ.get("IRC_BACKEND"):
        name = check_backend(os.environ["IRC_BACKEND"], "IRC_BACKEND value")
    if name == "auto":
        return "openvino" if str(device) == "cpu" and openvino_available() else "torch"
    if name == "openvino":
        if str(device) != "cpu":
            raise IrcError(f"--backend openvino runs on the CPU only, not {device}; use --backend torch there")
        if not openvino_available():
            raise IrcError(MISSING_OPENVINO)
    return name


@lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """The CPU feature flags of /proc/cpuinfo (empty where there is none)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return frozenset()
    return frozenset(next((line.split(":", 1)[1].split() for line in text.splitlines()
                           if line.startswith("flags")), []))


def native_bf16(backend: str, device: str = "cpu") -> bool:
    """Whether ``backend`` computes bf16 natively on ``device`` (not emulated)."""
    if str(device).startswith("cuda"):
        import torch

        return torch.cuda.is_bf16_supported()
    if backend == "openvino":
        from irc.backends.openvino_backend import native_bf16 as ov_native

        return ov_native()
    return bool(cpu_flags() & {"avx512_bf16", "amx_bf16"})


def bf16_within_budget(spec) -> bool:
    """Whether ``spec``'s registry entry records a measured bf16 loss within the budget."""
    loss = (spec.kodak or {}).get("bf16_loss_db")
    return isinstance(loss, (int, float)) and loss <= BF16_BUDGET_DB


def resolve_precision(precision: str, backend: str, device: str, spec) -> str:
    """fp32 or bf16, as asked; ``auto``: bf16 where native and within budget, else fp32."""
    precision = check_precision(precision)
    if precision == "auto":
        return "bf16" if bf16_within_budget(spec) and native_bf16(backend, device) else "fp32"
    return precision


def make_runner(spec, net, backend: str, precision: str, device: str):
    """The runner of torch model ``net`` (registry entry ``spec``) on ``backend``."""
    if backend == "openvino":
        from irc.backends.openvino_backend import OpenVINORunner

        return OpenVINORunner(spec, net, precision)
    from irc.backends.torch_backend import TorchRunner

    return TorchRunner(net, precision, device)
