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

Precision: ``fp32``, ``bf16`` or ``auto``, chosen **per pass** (``encode_lr`` and
``upscale`` of a rescaler, ``restore`` of a CRM). ``auto`` runs a pass in bf16 only where
the backend computes bf16 natively (AVX512_BF16 or AMX on the CPU) *and* the model's
registry entry records a measured bf16 loss of that pass within :data:`BF16_BUDGET_DB`
on that backend (``kodak.bf16``, written by ``benchmarks/bf16_precision.py``: the worst
of the RGB and Y-PSNR losses, lossless and JPEG); every other pass runs fp32. An
explicit ``bf16`` runs every pass in bf16 where the backend can (torch: autocast,
emulated and slow without native support; OpenVINO: only natively, else it runs fp32
and says so). A runner's ``precision_of(pass)`` says what a pass really runs in.
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


ALL_PASSES = ("encode_lr", "upscale", "restore")
PASSES = {"rescaler": ("encode_lr", "upscale"), "restore": ("restore",)}


def bf16_within_budget(spec, pass_: str, backend: str) -> bool:
    """Whether ``spec``'s registry entry records a measured bf16 loss of ``pass_`` (or ``both``:
    encode_lr and upscale together) on ``backend`` within the budget (``kodak.bf16``; an older
    single ``kodak.bf16_loss_db`` covers every pass)."""
    kodak = spec.kodak or {}
    record = kodak.get("bf16")
    if isinstance(record, dict):
        losses = record.get("loss_db", {}) if record.get("backend") == backend else {}
        if pass_ == "both" and pass_ not in losses:  # an older record without the pair: the sum bounds it
            parts = [losses.get("encode_lr"), losses.get("upscale")]
            losses = {"both": sum(parts)} if all(isinstance(v, (int, float)) for v in parts) else {}
        loss = losses.get(pass_)
    else:
        loss = kodak.get("bf16_loss_db")
    return isinstance(loss, (int, float)) and not isinstance(loss, bool) and loss <= BF16_BUDGET_DB


def resolve_precision(precision: str, backend: str, device: str, spec) -> str | dict[str, str]:
    """fp32 or bf16, as asked; ``auto``: per pass of ``spec`` (a dict where the passes differ),
    bf16 where native and measured within budget on ``backend``, else fp32."""
    precision = check_precision(precision)
    if precision != "auto":
        return precision
    if not native_bf16(backend, device):
        return "fp32"
    chosen = {p: "bf16" if bf16_within_budget(spec, p, backend) else "fp32"
              for p in PASSES.get(spec.role, ALL_PASSES)}
    if chosen.get("encode_lr") == chosen.get("upscale") == "bf16" and not bf16_within_budget(spec, "both", backend):
        chosen["encode_lr"] = "fp32"  # within budget one at a time, not together: the decode (run at every view) keeps bf16
    values = set(chosen.values())
    return values.pop() if len(values) == 1 else chosen


def per_pass(precision: str | dict[str, str]) -> dict[str, str]:
    """``precision`` (one for all passes, or per pass) as a dict over every pass."""
    if isinstance(precision, dict):
        return {p: precision.get(p, "fp32") for p in ALL_PASSES}
    return dict.fromkeys(ALL_PASSES, precision)


def summary(precisions: dict[str, str], passes=ALL_PASSES) -> str:
    """One word for the precisions of ``passes``: fp32, bf16, or e.g. ``encode_lr fp32, upscale bf16``."""
    values = {precisions[p] for p in passes}
    return values.pop() if len(values) == 1 else ", ".join(f"{p} {precisions[p]}" for p in passes)


def make_runner(spec, net, backend: str, precision: str, device: str):
    """The runner of torch model ``net`` (registry entry ``spec``) on ``backend``."""
    if backend == "openvino":
        from irc.backends.openvino_backend import OpenVINORunner

        return OpenVINORunner(spec, net, precision)
    from irc.backends.torch_backend import TorchRunner

    return TorchRunner(net, precision, device)
