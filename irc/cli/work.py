"""One file's work for `irc encode` / `irc decode`, in this process or a worker process.

Each task returns a plain dict (what --json prints): ``ok``, ``input``, ``output``,
``bytes_in``, ``bytes_out`` and what was done, or ``ok: False`` and ``error``.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from irc.errors import IrcError

EXPECTED = (IrcError, OSError, ValueError, MemoryError)  # a bad file, not a bug


@dataclass(frozen=True)
class EncodeJob:
    scale: int | float | None
    codec: str
    quality: int | None
    lossless: bool | None
    model: str | None
    device: str
    crm: str
    tile: int
    viewable: bool = False
    target_psnr: float | None = None  # rate control (irc.ratecontrol): codec may then be "auto" or a list
    max_bytes: int | None = None
    max_bpp: float | None = None
    backend: str = "auto"  # inference backend and precision (irc.backends)
    precision: str = "auto"
    gray: bool = False  # a grayscale carrier from a colour model (IRN_color)

    @property
    def rate_controlled(self) -> bool:
        return self.target_psnr is not None or self.max_bytes is not None or self.max_bpp is not None


@dataclass(frozen=True)
class DecodeJob:
    device: str
    temperature: float
    seed: int | None
    use_crm: bool
    tile: int
    backend: str = "auto"
    precision: str = "auto"


def check_encode(job: EncodeJob) -> tuple[str, ...]:
    """Every option check of an encode, once, before any file is read; the codecs it may use."""
    from irc import api

    check_backend(job)

    if job.rate_controlled:
        if job.gray:
            raise IrcError("--gray does not combine with --target-psnr, --max-bytes or --max-bpp: the search "
                           "covers colour payloads; pick the codec and quality of the grayscale image with --codec/-q")
        return tuple(c.name for c in search_plan(job).codecs)
    if job.codec == "auto" or "," in job.codec:
        raise IrcError("--codec auto or a list of codecs needs --target-psnr, --max-bytes or --max-bpp")
    plan = api.plan_encode(job.scale, job.codec, job.quality, job.lossless, job.model, job.crm, job.gray)
    if job.viewable and plan.codec.name not in ("png", "jpeg"):
        raise IrcError(f"--viewable needs --codec png or jpeg (a file viewers show as PNG/JPEG), not {plan.codec.name}")
    api._check_tiling(job.tile, api.DEFAULT_OVERLAP)
    api.resolve_device(job.device)
    return (plan.codec.name,)


def search_plan(job: EncodeJob):
    """The checked rate-control options of an encode (irc.ratecontrol.SearchPlan)."""
    from irc import api, ratecontrol

    if job.quality is not None or job.lossless:
        flag = "-q/--quality" if job.quality is not None else "--lossless"
        raise IrcError(f"{flag} does not combine with --target-psnr, --max-bytes or --max-bpp: the search picks "
                       "the codec's quality or lossless mode itself (restrict it with --codec and -s)")
    plan = ratecontrol.plan_search(job.target_psnr, job.max_bytes, job.max_bpp, job.codec, job.scale, job.model,
                                   job.crm, "viewable" if job.viewable else "irc")
    api._check_tiling(job.tile, api.DEFAULT_OVERLAP)
    api.resolve_device(job.device)
    return plan


def check_decode(job: DecodeJob) -> None:
    from irc import api

    check_backend(job)

    if job.temperature < 0:
        raise IrcError("--temperature must be >= 0")
    if job.tile < 64:
        raise IrcError("--tile must be at least 64")
    api.resolve_device(job.device)


def write(dest: Path, data: bytes, force: bool) -> None:
    from irc import imageio

    try:
        imageio.atomic_write(dest, data, force)
    except IrcError:
        raise
    except OSError as exc:  # name the user's path, never a temporary
        raise IrcError(f"cannot write {dest}: {exc.strerror or exc}") from None


def encode_file(src: Path, dest: Path, force: bool, job: EncodeJob, progress=None) -> dict:
    from irc import api

    t0 = time.perf_counter()
    layout = "viewable" if job.viewable else "irc"
    searched = None
    if job.rate_controlled:
        from irc import ratecontrol

        searched = ratecontrol.encode_target(src, job.target_psnr, job.max_bytes, job.max_bpp, job.codec, job.scale,
                                             job.model, job.device, tile=job.tile, crm=job.crm, layout=layout,
                                             backend=job.backend, precision=job.precision)
        data, info = searched.data, searched.info
    else:
        data, info = api.encode_image(src, job.scale, job.codec, job.quality, job.lossless, job.model, job.device,
                                      tile=job.tile, progress=progress, crm=job.crm, layout=layout,
                                      backend=job.backend, precision=job.precision, gray=job.gray)
    write(dest, data, force)
    h = info.header
    pixels = h.width * h.height
    return {
        "ok": True, "input": str(src), "output": str(dest), "bytes_in": os.path.getsize(src), "bytes_out": len(data),
        "width": h.width, "height": h.height, "mode": h.mode, "scale": h.scale, "model_scale": h.net_scale if h.model else None,
        "resample": h.resample, "model": h.model, "crm": h.crm,
        "codec": h.codec, "quality": h.quality, "lossless": h.quality is None,
        "lr_width": h.lr_width, "lr_height": h.lr_height, "payload_bytes": info.payload_bytes,
        "boundary_bytes": info.boundary_bytes,
        "bpp": round(len(data) * 8 / pixels, 4), "payload_bpp": round(info.payload_bytes * 8 / pixels, 4),
        "layout": layout, "notes": list(info.notes), "precision": h.precision, "lr_mode": h.lr_mode or "RGB",
        **({"rate_control": searched.summary()} if searched else {}),  # psnr_rgb null: exact
        "seconds": round(time.perf_counter() - t0, 3),
    }


def decode_file(src: Path, dest: Path, force: bool, job: DecodeJob, progress=None) -> dict:
    from irc import api, imageio

    t0 = time.perf_counter()
    parsed = api.read(src)
    image = api.decode(parsed, job.device, job.temperature, job.seed, tile=job.tile, progress=progress,
                       use_crm=job.use_crm, backend=job.backend, precision=job.precision)
    data = imageio.save_bytes(image, dest)
    write(dest, data, force)
    return {
        "ok": True, "input": str(src), "output": str(dest), "bytes_in": os.path.getsize(src), "bytes_out": len(data),
        "width": image.width, "height": image.height, "mode": image.mode, "model": parsed.header.model,
        "crm": parsed.header.crm if job.use_crm and parsed.header.quality is not None else None,
        "seconds": round(time.perf_counter() - t0, 3),
    }


def failure(src, message: str, dest=None) -> dict:
    """A failed file's result; the message names the input unless it names the output."""
    if str(src) not in message and (dest is None or str(dest) not in message):
        message = f"{src}: {message}"
    return {"ok": False, "input": str(src), "error": message}


def run_task(fn, src: Path, dest: Path, force: bool, job, progress=None) -> dict:
    """``fn`` on one file; an expected failure (bad file, write error) becomes ``ok: False``."""
    try:
        return fn(src, dest, force, job, progress)
    except EXPECTED as exc:
        if isinstance(exc, OSError) and not isinstance(exc, IrcError):
            text = f"{exc.filename or src}: {exc.strerror or exc}"
        elif isinstance(exc, MemoryError):
            text = "out of memory; try a smaller --tile"
        else:
            text = str(exc)
        return failure(src, text, dest)


def init_worker(threads: int, specs: list) -> None:
    """A worker process: its share of the CPU threads, and the models registered at run time."""
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(threads)
    import torch

    torch.set_num_threads(threads)
    from irc.models import registry

    for spec in specs:
        registry.register(spec)


def check_backend(job) -> None:
    """--backend and --precision: known names, and a backend this machine can run (irc.backends)."""
    from irc import api, backends

    backends.check_precision(job.precision)
    backends.resolve_backend(job.backend, api.resolve_device(job.device))
