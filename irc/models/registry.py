"""The one model registry: every shipped network, its architecture and what it measured.

Entries live in ``registry.json`` next to this file; weights in ``weights/``.
Everything else (CLI, pipeline, bench, trainer export) looks models up here.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from irc.errors import IrcError

HERE = Path(__file__).parent
REGISTRY_FILE = HERE / "registry.json"
WEIGHTS_DIR = HERE / "weights"


@dataclass(frozen=True)
class ModelSpec:
    name: str
    arch: str  # "irn" (invertible rescaler) or "crm" (compression restore module)
    scale: int
    params: dict = field(default_factory=dict)  # constructor arguments
    weights: str = ""  # file name under weights/, or an absolute path
    description: str = ""
    training: dict = field(default_factory=dict)  # data, iterations, hardware, wall time, recipe
    kodak: dict = field(default_factory=dict)  # measured numbers, e.g. {"psnr_y": .., "psnr_rgb": ..}
    codecs: tuple = ()  # codecs this model is the default for ("*": any)
    base: str = ""  # crm only: the LR producer it restores (an IRN model name, or "bicubic")

    @property
    def weights_path(self) -> Path:
        p = Path(self.weights)
        return p if p.is_absolute() else WEIGHTS_DIR / p

    def sha256(self) -> str:
        return _file_sha256(str(self.weights_path))


@lru_cache(maxsize=None)
def _file_sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:16]


_extra: dict[str, ModelSpec] = {}


_parsed: tuple[tuple, dict[str, ModelSpec]] | None = None  # (file, mtime, size) and its entries


def _read_registry() -> dict[str, ModelSpec]:
    """The shipped entries, parsed again only when registry.json changes (the bench asks per point)."""
    global _parsed
    try:
        st = REGISTRY_FILE.stat()
        stamp = (REGISTRY_FILE, st.st_mtime_ns, st.st_size)
    except FileNotFoundError:
        return {}
    if _parsed is None or _parsed[0] != stamp:
        entries = json.loads(REGISTRY_FILE.read_text())
        _parsed = stamp, {e["name"]: ModelSpec(**{**e, "codecs": tuple(e.get("codecs", ()))}) for e in entries}
    return dict(_parsed[1])


def all_models() -> dict[str, ModelSpec]:
    return {**_read_registry(), **_extra}


def register(spec: ModelSpec) -> None:
    """Add a model at run time (tests, user-trained weights)."""
    _extra[spec.name] = spec
    load_model.cache_clear()


def get_spec(name: str) -> ModelSpec:
    models = all_models()
    if name not in models:
        raise IrcError(f"unknown model {name!r}; `irc models` lists the installed ones")
    return models[name]


def _sources() -> list[list[ModelSpec]]:
    """Run-time registrations (tests, user weights) first, then the shipped entries."""
    return [list(_extra.values()), list(_read_registry().values())]


def _search_order() -> list[ModelSpec]:
    return [m for source in _sources() for m in source]


def default_model(scale: int, codec: str) -> ModelSpec:
    """The model `irc encode` uses for a scale and codec unless --model says otherwise.

    Within the first source that has a model for the scale: one made for the codec
    (e.g. a JPEG-robust IRN), else a general one (``"*"``). So run-time weights
    override every shipped model of their scale. ``codec="*"`` asks for the general one.
    """
    for source in _sources():
        candidates = [m for m in source if m.arch == "irn" and m.scale == scale and m.weights_path.exists()]
        for wanted in (codec, "*"):
            for m in candidates:
                if wanted in m.codecs:
                    return m
        if candidates:
            return candidates[0]
    have = sorted({m.scale for m in all_models().values() if m.arch == "irn"})
    raise IrcError(f"no model for scale {scale}; available scales: {', '.join(map(str, have)) or 'none'}")


def default_crm(base: str, codec: str, scale: int | None = None) -> ModelSpec | None:
    """The CRM that restores LR images of ``base`` stored with ``codec``, if one is installed.

    ``scale`` tells bicubic CRMs apart (an IRN base already implies its scale).
    """
    for m in _search_order():
        if (m.arch == "crm" and m.base == base and codec in m.codecs and m.weights_path.exists()
                and (scale is None or m.scale == scale)):
            return m
    return None


def build(spec: ModelSpec):
    if spec.arch == "irn":
        from irc.models.irn import IRN

        return IRN(spec.scale, **spec.params)
    if spec.arch == "crm":
        from irc.models.crm import CRM

        return CRM(**spec.params)
    raise IrcError(f"model {spec.name}: unknown architecture {spec.arch!r}")


@lru_cache(maxsize=8)
def load_model(name: str, device: str = "cpu"):
    """Build a registered model, load its weights (stored fp16, run in fp32), eval mode, channels-last."""
    from safetensors.torch import load_file

    spec = get_spec(name)
    model = build(spec)
    if not spec.weights_path.exists():
        raise IrcError(f"weights for {name} are missing: {spec.weights_path}")
    state = {k: v.float() for k, v in load_file(str(spec.weights_path)).items()}
    model.load_state_dict(state)
    model.eval().requires_grad_(False)
    return model.to(device).channels_last()
