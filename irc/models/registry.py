"""The one model registry: every shipped network, its architecture and what it measured.

Entries live in ``registry.json`` next to this file; weights in ``weights/``.
Everything else (CLI, pipeline, bench, trainer export) looks models up here.

Versions: when better weights ship for a model, they get a new entry of the same
name with ``version`` one higher, and the old entry and its weights file stay, so
that every .irc file ever written keeps decoding. The newest version answers to
the plain name (``irn-x2``); an older one answers to ``name@version``
(``irn-x2@1``). A file names its weights by model, version and hash;
:func:`for_file` finds them (files from before versions existed give no version:
the hash alone picks one).
"""

from __future__ import annotations

import hashlib
import json
import re
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
    arch: str  # the family: irc/models/<arch>.py ("irn", "fgrn": rescalers; "crm": restore module)
    scale: int
    params: dict = field(default_factory=dict)  # constructor arguments
    weights: str = ""  # file name under weights/, or an absolute path
    description: str = ""
    training: dict = field(default_factory=dict)  # data, iterations, hardware, wall time, recipe
    kodak: dict = field(default_factory=dict)  # measured numbers, e.g. {"psnr_y": .., "psnr_rgb": ..}
    codecs: tuple = ()  # codecs this model is the default for ("*": any)
    base: str = ""  # crm only: the LR producer it restores (an IRN model name, or "bicubic")
    version: int = 1  # weights version; older versions stay installed under ``name@version``
    key: str = ""  # the name it is looked up by: ``name`` for the newest version, else ``name@version``

    @property
    def role(self) -> str:
        """"rescaler" (HR <-> LR) or "restore" (decoded LR -> clean LR)."""
        return "restore" if self.arch in RESTORE_ARCHS else "rescaler"

    @property
    def lr_channels(self) -> int:
        """Channels of the image a rescaler stores: its family's ``LR_CHANNELS`` (1: IRN_color's
        grayscale carrier), else 3."""
        if self.role != "rescaler":
            return 3
        return getattr(family(self.arch), "LR_CHANNELS", 3)

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


_parsed: tuple[tuple, dict[str, ModelSpec], dict[str, ModelSpec]] | None = None  # stamp, newest, older


def _keyed(entries: list[dict]) -> tuple[dict[str, ModelSpec], dict[str, ModelSpec]]:
    """(newest version of each name by name, older versions by ``name@version``)."""
    newest: dict[str, int] = {}
    for e in entries:
        newest[e["name"]] = max(newest.get(e["name"], 0), int(e.get("version", 1)))
    current, older = {}, {}
    for e in entries:
        version = int(e.get("version", 1))
        is_new = version == newest[e["name"]]
        key = e["name"] if is_new else f"{e['name']}@{version}"
        spec = ModelSpec(**{**e, "codecs": tuple(e.get("codecs", ())), "version": version, "key": key})
        (current if is_new else older)[key] = spec
    return current, older


def _read_all() -> tuple[dict[str, ModelSpec], dict[str, ModelSpec]]:
    """The shipped entries, parsed again only when registry.json changes (the bench asks per point)."""
    global _parsed
    try:
        st = REGISTRY_FILE.stat()
        stamp = (REGISTRY_FILE, st.st_mtime_ns, st.st_size)
    except FileNotFoundError:
        return {}, {}
    if _parsed is None or _parsed[0] != stamp:
        _parsed = (stamp, *_keyed(json.loads(REGISTRY_FILE.read_text())))
    return dict(_parsed[1]), dict(_parsed[2])


def _read_registry() -> dict[str, ModelSpec]:
    return _read_all()[0]


def all_models() -> dict[str, ModelSpec]:
    """The newest version of every model, by name (what `irc models` lists and encode picks from)."""
    return {**_read_registry(), **_extra}


def all_versions() -> dict[str, ModelSpec]:
    """Every installed version: the newest by name, older ones by ``name@version``."""
    current, older = _read_all()
    return {**older, **current, **_extra}


def for_file(name: str, version: int | None, sha256: str | None) -> ModelSpec:
    """The installed weights an .irc file was written with: by version when the file records
    one (files since format 1.2), else the version whose hash matches."""
    versions = [s for s in all_versions().values() if s.name == name]
    if not versions:
        raise IrcError(f"file was encoded with model {name!r}, which is not installed; `irc models` lists them")
    if version is not None:
        match = [s for s in versions if s.version == version]
        if not match:
            have = ", ".join(str(s.version) for s in sorted(versions, key=lambda s: s.version))
            raise IrcError(f"file was encoded with {name} version {version}, not installed here "
                           f"(installed: {have}); decode it with a newer irc")
        if match[0].sha256() != sha256:
            raise IrcError(f"file was encoded with other weights for {name} version {version} (sha256 {sha256}) "
                           f"than the installed ones ({match[0].sha256()}); the file or the installation is damaged")
        return match[0]
    for s in versions:
        if s.weights_path.exists() and s.sha256() == sha256:
            return s
    raise IrcError(f"file was encoded with other weights for {name} (sha256 {sha256}); none of the installed "
                   "versions match; decode it with the irc version that wrote it")


def register(spec: ModelSpec) -> None:
    """Add a model at run time (tests, user-trained weights)."""
    from dataclasses import replace

    _extra[spec.name] = replace(spec, key=spec.name)
    load_model.cache_clear()


def register_trial(text: str, crm_codecs: tuple[str, ...] = ()) -> str:
    """``NAME=WEIGHTS:LIKE``: register unshipped weights (an exported checkpoint) under NAME, with the
    family and sizes of the installed model LIKE, for this process only (benchmarks' ``--try``).
    ``crm_codecs``: where LIKE is a CRM, the LR codecs the trial restores (it is then their default
    CRM); a trial rescaler is never a default, whatever is given."""
    from dataclasses import replace
    from pathlib import Path

    name, sep, rest = text.partition("=")
    weights, colon, like = rest.rpartition(":")
    if not (sep and colon and name and weights and like):
        raise IrcError(f"a trial model is NAME=WEIGHTS:LIKE, got {text!r}")
    if not Path(weights).is_file():
        raise IrcError(f"trial weights not found: {weights}")
    spec = get_spec(like)
    codecs = tuple(crm_codecs) if spec.role == "restore" else ()
    register(replace(spec, name=name, weights=str(Path(weights).resolve()), codecs=codecs, version=1,
                     kodak={}, description=f"trial weights {weights}"))
    return name


def unregister(name: str) -> None:
    """Remove a model added with :func:`register` (no-op if absent)."""
    _extra.pop(name, None)
    load_model.cache_clear()


def get_spec(name: str) -> ModelSpec:
    """A model by name (its newest version) or by ``name@version``."""
    models = all_versions()
    if name not in models:
        base, at, version = name.partition("@")
        newest = models.get(base) if at else None
        if newest is not None and version == str(newest.version):  # the newest version, named by its number
            return newest
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
        candidates = [m for m in source if m.role == "rescaler" and m.scale == scale and m.scale >= 2
                      and m.weights_path.exists()]
        for wanted in (codec, "*"):
            for m in candidates:
                if wanted in m.codecs:
                    return m
        if candidates:
            return candidates[0]
    have = sorted({m.scale for m in all_models().values() if m.role == "rescaler"})
    raise IrcError(f"no model for scale {scale}; available scales: {', '.join(map(str, have)) or 'none'}")


def rescaler_scales() -> list[int]:
    """The scales that have an installed rescaler (what `irc encode -s` can use without resampling;
    scale 1 is the image itself, whatever colour models are installed)."""
    return sorted({m.scale for m in _search_order() if m.role == "rescaler" and m.scale >= 2
                   and m.weights_path.exists()})


def default_color_model() -> ModelSpec:
    """The colour model `irc encode --gray` uses: the first installed rescaler that stores a
    grayscale image (run-time registrations first)."""
    for m in _search_order():
        if m.role == "rescaler" and m.scale == 1 and m.weights_path.exists() and m.lr_channels == 1:
            return m
    raise IrcError("no colour model (IRN_color) is installed for --gray; `irc models` lists the installed ones")


def default_crm(base: str, codec: str, scale: int | None = None) -> ModelSpec | None:
    """The CRM that restores LR images of ``base`` stored with ``codec``, if one is installed.

    ``scale`` tells bicubic CRMs apart (an IRN base already implies its scale).
    """
    for m in _search_order():
        if (m.role == "restore" and m.base == base and codec in m.codecs and m.weights_path.exists()
                and (scale is None or m.scale == scale)):
            return m
    return None


_FAMILY_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
RESTORE_ARCHS = ("crm",)  # families that restore a decoded LR; every other family rescales


def family(arch: str):
    """The module of a model family: ``irc/models/<arch>.py``, which defines ``build(scale, **params)``.

    A new family is that one file plus its registry entries; nothing else names it."""
    import importlib

    mod_name = arch.replace("-", "_")
    if not _FAMILY_NAME.match(mod_name) or mod_name in ("registry", "rescaler", "layout", "blocks"):
        raise IrcError(f"unknown model architecture {arch!r}")
    try:
        module = importlib.import_module(f"irc.models.{mod_name}")
    except ModuleNotFoundError as exc:
        if exc.name != f"irc.models.{mod_name}":
            raise
        raise IrcError(f"unknown model architecture {arch!r} (no irc/models/{mod_name}.py)") from None
    if not callable(getattr(module, "build", None)):
        raise IrcError(f"irc/models/{mod_name}.py defines no build(scale, **params)")
    return module


def display_name(arch: str) -> str:
    """How tables and docs write a family: its module's ``NAME`` (``HCFlow``), else the arch in capitals (``IRN``)."""
    return getattr(family(arch), "NAME", arch.upper())


def build(spec: ModelSpec):
    """An untrained network of ``spec``'s family, scale and constructor arguments."""
    return family(spec.arch).build(spec.scale, **spec.params)


def load_model(name: str, device: str = "cpu"):
    """Build a registered model, load its weights (stored fp16, run in fp32), eval mode,
    channels-last; cached per (name, device), however the arguments are spelled."""
    return _load_model(name, str(device))


@lru_cache(maxsize=8)
def _load_model(name: str, device: str):
    from safetensors.torch import load_file

    spec = get_spec(name)
    model = build(spec)
    if not spec.weights_path.exists():
        raise IrcError(f"weights for {name} are missing: {spec.weights_path}")
    state = {k: v.float() for k, v in load_file(str(spec.weights_path)).items()}
    model.load_state_dict(state)
    model.eval().requires_grad_(False)
    return model.to(device).channels_last()


load_model.cache_clear = _load_model.cache_clear  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Loaded:
    """One resolved model: its registry entry and its network, loaded on ``device``.

    What the pipeline passes along instead of a name, so a model is looked up once per call.
    For a rescaler, ``net`` offers the interface of :mod:`irc.models.rescaler`. ``runner``
    runs its passes on ``backend`` (:mod:`irc.backends`) with the same methods; without one
    it is ``net`` itself (torch, fp32)."""

    spec: ModelSpec
    net: object
    device: str
    backend: str = "torch"
    runner: object = None

    def __post_init__(self):
        if self.runner is None:
            object.__setattr__(self, "runner", self.net)

    def precision_of(self, pass_: str) -> str:
        """What pass ``pass_`` (encode_lr, upscale, restore) really runs in: fp32 or bf16."""
        of = getattr(self.runner, "precision_of", None)
        return of(pass_) if of else "fp32"

    @property
    def precision(self) -> str:
        """What its passes really run in: fp32, bf16, or per pass where they differ."""
        from irc.backends import PASSES, summary

        return summary({p: self.precision_of(p) for p in PASSES[self.spec.role]}, PASSES[self.spec.role])

    @property
    def scale(self) -> int:
        return self.spec.scale

    @property
    def key(self) -> str:
        return self.spec.key

    @property
    def sha256(self) -> str:
        return self.spec.sha256()


def write_entries(entries: list[dict], path: Path | None = None) -> None:
    """Write registry ``entries`` to ``path`` (the package's registry.json) atomically."""
    path = Path(path or REGISTRY_FILE)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(entries, indent=2) + "\n")
    tmp.replace(path)


def load(model: str | ModelSpec | Loaded, device: str = "cpu", role: str | None = None,
         backend: str = "torch", precision: str = "fp32") -> Loaded:
    """A model by name (or entry), with its network loaded on ``device`` and run by ``backend``
    (torch, openvino or auto) in ``precision`` (fp32, bf16 or auto; :mod:`irc.backends`); an
    already :class:`Loaded` one passes through. ``role`` ("rescaler" or "restore") checks what it is."""
    from irc import backends

    spec = model.spec if isinstance(model, Loaded) else model if isinstance(model, ModelSpec) else get_spec(model)
    if role is not None and spec.role != role:
        raise IrcError(_ROLE_ERROR[role].format(name=spec.name, arch=spec.arch))
    if isinstance(model, Loaded):
        return model
    backend = backends.resolve_backend(backend, device)
    precision = backends.resolve_precision(precision, backend, device, spec)
    net = load_model(spec.key, device)
    if backend == "torch" and precision == "fp32":
        return Loaded(spec, net, device)
    return Loaded(spec, net, device, backend, backends.make_runner(spec, net, backend, precision, device))


def load_rescaler(spec, device: str = "cpu", backend: str = "auto", precision: str = "auto"):
    """The rescaler ``spec`` (a name, entry or Loaded one) loaded to run on ``backend`` in
    ``precision`` (:mod:`irc.backends`); None for None (scale 1: no model). The backend and
    precision are checked even then, so a bad option is one error whatever the scale."""
    from irc import backends

    if spec is None:
        backends.check_precision(precision)
        backends.resolve_backend(backend, device)
        return None
    return load(spec, device, role="rescaler", backend=backend, precision=precision)


_ROLE_ERROR = {
    "rescaler": "model {name} is a {arch}, not a rescaler; see `irc models`",
    "restore": "{name} is not a restore model (CRM); see `irc models`",
}
