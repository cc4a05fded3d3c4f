"""The bench engine: every pipeline point on every image, computed once.

Work that rows share is done once and reused: the IRN LR of an image (for
all codecs and qualities), the bicubic LR, the lossless IRN upscale (shared by
the PNG and JPEG XL rows), codec-alone JPEG results (shared by the R-D curve
and the matched-PSNR search). Per-image results are also kept in
``<out>/cache.jsonl`` keyed by image content, pipeline, setting and weight
hashes, so a rerun (another codec, more qualities) computes only what is new.

The model passes are the library's own ``irc.api.downscale`` / ``upscale``,
so the bench measures exactly what ``irc encode`` / ``irc decode`` do.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from irc.bench.points import CODEC_LABEL, Point, Results  # noqa: F401  (also irc.bench.engine's)
from irc.errors import IrcError

LOSSLESS_CODECS = ("png", "jxl")
# codec alone: many points (cheap); rescaled rows: fewer (each costs a model pass per image)
CODEC_QUALITIES = {
    "jpeg": [5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95],
    "webp": [5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95],
    "avif": [10, 20, 30, 40, 50, 60, 70, 80, 90],
    "jxl": [10, 20, 30, 40, 50, 60, 70, 80, 90],
}
RESCALED_QUALITIES = {"jpeg": [10, 40], "webp": [10, 40], "avif": [30, 60], "jxl": [40, 70]}
FULL_RESCALED_QUALITIES = {"jpeg": [5, 10, 20, 30, 40, 60, 80, 95], "webp": [5, 10, 20, 30, 40, 60, 80, 95],
                           "avif": [20, 40, 60, 80, 90], "jxl": [20, 40, 60, 80, 90]}
QUICK_QUALITIES = {"jpeg": [20, 60], "webp": [20, 60], "avif": [40, 70], "jxl": [50, 80]}


@dataclass
class Plan:
    storage_scales: list[int | float]  # a fraction (2.5) runs the next larger model on a resampled HR
    rd_scales: list[int]
    rd_codecs: list[str]
    codec_qualities: dict[str, list[int]]
    rescaled_qualities: dict[str, list[int]]
    # also IRN + codec without the CRM when a CRM exists, and the general IRN where the codec has its own
    ablations: bool = False
    scale_qualities: dict[int, list[int]] = field(default_factory=dict)  # per-scale override of rescaled_qualities
    crop: int = 0  # centre crop side (0: whole images); --quick uses one
    # more IRN models for the R-D curves (e.g. a noise-robust baseline), each with its CRM if one exists
    extra_models: list[str] = field(default_factory=list)
    # colour models (IRN_color): a storage row per lossless codec of their grayscale image, at scale 1
    color_models: list[str] = field(default_factory=list)
    # irc auto: `irc encode --target-psnr T --codec auto_codecs` per image, for each T (irc.bench.auto)
    auto_targets: list[float] = field(default_factory=list)
    auto_codecs: str = "auto"


def _psnr(ref: np.ndarray, test: np.ndarray) -> float:
    from irc.metrics import psnr_rgb

    return psnr_rgb(ref, test)


def read_cache(path: Path) -> dict[str, dict]:
    """The records of a bench cache (``OUT/cache.jsonl``) by key; none if it does not exist.
    A line that does not parse (the torn last line of an interrupted run) is skipped."""
    records: dict[str, dict] = {}
    if not path.exists():
        return records
    for line in path.read_text().splitlines():
        try:
            rec = json.loads(line)
            records[rec.pop("key")] = rec
        except (ValueError, KeyError, AttributeError):
            continue
    return records


class Bench:
    def __init__(self, dataset, plan: Plan, device: str = "cpu", cache: Path | None = None,
                 progress: Callable[[str, int], Callable[[], None]] | None = None):
        from irc.imageio import load

        self.plan, self.device, self.progress = plan, device, progress
        self.names, self.images = [], []
        for f in dataset.files:
            rgb = load(f).rgb
            if plan.crop:
                c = plan.crop
                top, left = max(0, (rgb.shape[0] - c) // 2), max(0, (rgb.shape[1] - c) // 2)
                rgb = np.ascontiguousarray(rgb[top : top + c, left : left + c])
            self.names.append(Path(f).name)
            self.images.append(rgb)
        self.ids = [hashlib.sha256(im.tobytes() + bytes(str(im.shape), "ascii")).hexdigest()[:16]
                    for im in self.images]
        self.results = Results(dataset.name, self.names, sum(im.shape[0] * im.shape[1] for im in self.images))
        self.cache_path = cache
        self.cache: dict[str, dict] = read_cache(cache) if cache else {}
        self._lr: dict[tuple, tuple[np.ndarray, float]] = {}
        self._up_lossless: dict[tuple, tuple[np.ndarray, float]] = {}
        self._probes: dict[int, tuple[float, int]] = {}  # irc.bench.matched's JPEG probes

    # ---- bookkeeping -------------------------------------------------------------------------

    def _cached(self, key: str, compute: Callable[[], Point], **known) -> Point:
        """The cached point of ``key``, else ``compute()``'s. ``known``: fields the caller knows
        for sure (the model), filled into records written before the field existed."""
        if key in self.cache:
            return Point(**{**self.cache[key], **known})
        p = compute()
        self.cache[key] = asdict(p)
        if self.cache_path:
            with open(self.cache_path, "a") as fh:
                fh.write(json.dumps({"key": key, **asdict(p)}) + "\n")
        return p

    def _point(self, i: int, pipeline: str, scale: int, codec: str, quality, payload: int,
               out: np.ndarray, enc_s: float, dec_s: float, model: str | None = None) -> Point:
        from irc.metrics import bpp, psnr_y, ssim

        ref = self.images[i]
        h, w = ref.shape[:2]
        return Point(self.names[i], pipeline, scale, codec, quality, payload, bpp(payload, w, h),
                     _psnr(ref, out), psnr_y(ref, out, crop=math.ceil(scale) if scale > 1 else 0),
                     ssim(ref, out), enc_s, dec_s, model=model)

    def _run(self, label: str, jobs: list[Callable[[], Point]]) -> list[Point]:
        tick = self.progress(label, len(jobs)) if self.progress and jobs else None
        out = []
        for job in jobs:
            out.append(job())
            if tick:
                tick()
        self.results.points += out
        return out

    # ---- building blocks ---------------------------------------------------------------------

    def _codec(self, name: str):
        from irc.codecs import get_codec

        return get_codec(name)

    def _irn_lr(self, i: int, model: str, scale: int | float) -> tuple[np.ndarray, float]:
        key = (i, model, scale)
        if key not in self._lr:
            from irc import api

            t = time.perf_counter()
            lr = api.lr_of(self.images[i], model, self.device, scale=scale)
            self._lr[key] = (lr, time.perf_counter() - t)
        return self._lr[key]

    def _bicubic_lr(self, i: int, scale: int) -> tuple[np.ndarray, float]:
        key = (i, f"bicubic-x{scale}")
        if key not in self._lr:
            from irc.container import lr_size
            from irc.resample import bicubic_down, bicubic_up

            t = time.perf_counter()
            h, w = self.images[i].shape[:2]  # a fraction: the LR size irc encode gives at that scale
            lr = bicubic_down(self.images[i], scale) if isinstance(scale, int) else bicubic_up(
                self.images[i], lr_size(w, h, scale, resampled=True))
            self._lr[key] = (lr, time.perf_counter() - t)
        return self._lr[key]

    def _model_key(self, *names: str | None) -> str:
        from irc.models.registry import get_spec

        return ",".join(f"{n}:{get_spec(n).sha256()}" for n in names if n)

    # ---- pipelines ---------------------------------------------------------------------------

    def codec_alone(self, i: int, codec: str, quality: int | None) -> Point:
        label = CODEC_LABEL[codec] + (" lossless" if quality is None else "")

        def compute() -> Point:
            c = self._codec(codec)
            settings = c.settings(quality, quality is None)
            t0 = time.perf_counter()
            data = c.encode(self.images[i], settings)
            t1 = time.perf_counter()
            out = c.decode(data)
            t2 = time.perf_counter()
            return self._point(i, label, 1, codec, quality, len(data), out, t1 - t0, t2 - t1)

        return self._cached(f"{self.ids[i]}|{label}|{quality}|{c_version(codec)}", compute)

    def rescaled(self, i: int, scale: int | float, codec: str, quality: int | None, model: str | None,
                 crm: str | None) -> Point:
        """model None: bicubic down/up. crm: restore the decoded LR first. A ``scale`` other than
        the model's resamples the HR around it, as `irc encode -s 2.5` does."""
        pipeline = rescaled_label(scale, codec, model, crm)

        def compute() -> Point:
            from irc import api
            from irc.models.registry import get_spec, load
            from irc.resample import bicubic_up

            lr, t_down = self._irn_lr(i, model, scale) if model else self._bicubic_lr(i, scale)
            c = self._codec(codec)
            settings = c.settings(quality, quality is None)
            loaded = load(model, self.device) if model else None
            t0 = time.perf_counter()
            data, side = api.code_lr(c, settings, lr, loaded)  # side: BDFlow's boundary map (bits, PNG)
            t1 = time.perf_counter()
            size = (lr.shape[1], lr.shape[0])
            dec = api.decode_lr(c, data, size, loaded.spec.lr_channels if loaded else 3, side)
            t2 = time.perf_counter()
            h, w = self.images[i].shape[:2]

            def up() -> tuple[np.ndarray, float]:
                t = time.perf_counter()
                if model:
                    out = api.upscale(dec, model, (w, h), crm, quality, self.device,
                                      resample=get_spec(model).scale != scale)
                else:
                    restored = api.restore(dec, crm, quality, self.device) if crm else dec
                    out = bicubic_up(restored, (w, h))
                return out, time.perf_counter() - t

            if quality is None:  # lossless: every codec decodes the same LR, upscale it once
                memo = (i, model or "bicubic", scale)
                if memo not in self._up_lossless:
                    self._up_lossless[memo] = up()
                out, t_up = self._up_lossless[memo]
            else:
                out, t_up = up()
            stored = len(data) + (len(side[1]) if side else 0)
            return self._point(i, pipeline, scale, codec, quality, stored, out, t_down + t1 - t0, t2 - t1 + t_up,
                               model=model)

        key = f"{self.ids[i]}|{pipeline}|{quality}|{c_version(codec)}|{self._model_key(model, crm)}"
        return self._cached(key, compute, model=model)

    # ---- the plan ----------------------------------------------------------------------------

    def run(self) -> Results:
        from irc.api import model_scale_for
        from irc.models.registry import default_crm, default_model, get_spec

        t_start = time.perf_counter()
        n = range(len(self.images))
        plan = self.plan
        # storage: originals, then bicubic and IRN with each lossless codec
        for codec in LOSSLESS_CODECS if plan.storage_scales else ():
            self._run(f"{CODEC_LABEL[codec]} lossless", [lambda i=i, c=codec: self.codec_alone(i, c, None) for i in n])
        for s in plan.storage_scales:
            # each lossless codec's default model first, then the other lossless codecs' defaults
            # of the scale (FGRN x2 for PNG, IRN x2 for JPEG XL: each row set shows the choice), then extras
            defaults = [default_model(model_scale_for(s), c).name for c in LOSSLESS_CODECS]
            extra = [m for m in plan.extra_models if get_spec(m).scale == s]
            for codec, own in zip(LOSSLESS_CODECS, defaults):
                for m in (None, *dict.fromkeys([own, *defaults, *extra])):
                    self._run(rescaled_label(s, codec, m, None),
                              [lambda i=i, c=codec, m=m: self.rescaled(i, s, c, None, m, None) for i in n])
        for m in plan.color_models:  # a grayscale image at full size, the colours restored by the model
            for codec in LOSSLESS_CODECS:
                self._run(rescaled_label(1, codec, m, None),
                          [lambda i=i, c=codec, m=m: self.rescaled(i, 1, c, None, m, None) for i in n])
        from irc.bench.matched import match_jpeg

        match_jpeg(self)
        # rate-distortion
        for codec in plan.rd_codecs:
            jobs = [lambda i=i, q=q: self.codec_alone(i, codec, q)
                    for q in plan.codec_qualities[codec] for i in n]
            self._run(f"{CODEC_LABEL[codec]}", jobs)
            for s in plan.rd_scales:
                qs = plan.scale_qualities.get(s) or plan.rescaled_qualities[codec]
                bic_crm = default_crm("bicubic", codec, scale=s)
                variants = [(None, None)] + ([(None, bic_crm.name)] if bic_crm else [])
                # the model `irc encode` picks for this codec (a codec-robust one if registered); with
                # ablations also the general model it replaces; then any extra models
                extra = [m for m in plan.extra_models if get_spec(m).scale == s]
                general = [default_model(s, "*").name] if plan.ablations else []
                models = [*general, default_model(s, codec).name, *extra]
                for model in dict.fromkeys(models):
                    crm = default_crm(model, codec)
                    if crm is None or plan.ablations:
                        variants.append((model, None))
                    if crm:
                        variants.append((model, crm.name))
                for m, r in variants:
                    jobs = [lambda i=i, q=q, m=m, r=r: self.rescaled(i, s, codec, q, m, r) for q in qs for i in n]
                    self._run(rescaled_label(s, codec, m, r), jobs)
        if plan.auto_targets:
            from irc.bench.auto import run_auto

            run_auto(self, plan.auto_targets, plan.auto_codecs)
        self.results.seconds = time.perf_counter() - t_start
        return self.results

_VERSIONS: dict[str, str] = {}


def rescaled_label(scale: int | float, codec: str, model: str | None, crm: str | None) -> str:
    """Curve name: "Bicubic x2 + JPEG", "IRN x2 + JPEG + CRM", "FGRN x2 + PNG", "HCFlow x4 + PNG" (the
    family's display name), with the model's name added for one other than the scale's general model
    ("IRN x2 (irn-x2-jpeg) + JPEG + CRM") or one resampled ("IRN x2.5 (irn-x4, resampled) + PNG")."""
    from irc.models.registry import default_model, display_name, get_spec

    if model is None:
        rescaler = f"Bicubic x{scale:g}"
    elif get_spec(model).lr_channels == 1:  # a colour model: the codec stores its grayscale image
        rescaler = f"{display_name(get_spec(model).arch)} gray"
    elif get_spec(model).scale != scale:
        rescaler = f"{display_name(get_spec(model).arch)} x{scale:g} ({model}, resampled)"
    else:
        spec = get_spec(model)
        family = display_name(spec.arch)
        general = model == default_model(scale, "*").name or (
            spec.arch != default_model(scale, "*").arch and spec.key == f"{spec.arch}-x{scale}")
        rescaler = f"{family} x{scale}" if general else f"{family} x{scale} ({model})"
    return f"{rescaler} + {CODEC_LABEL[codec]}" + (" + CRM" if crm else "")


def c_version(codec: str) -> str:
    """Codec library version, part of the cache key (a new libjpeg gives new numbers)."""
    if codec not in _VERSIONS:
        from irc.codecs import get_codec

        _VERSIONS[codec] = get_codec(codec).version()
    return _VERSIONS[codec]


def check_codecs(names: list[str]) -> list[str]:
    from irc.codecs import get_codec

    out = []
    for name in names:
        c = get_codec(name)
        if not c.lossy:
            raise IrcError(f"--codecs takes lossy codecs for the R-D curves; {c.name} is lossless "
                           "(it is in the storage table already)")
        out.append(c.name)
    return out
