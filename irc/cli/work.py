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
    scale: int | None
    codec: str
    quality: int | None
    lossless: bool | None
    model: str | None
    device: str
    crm: str
    tile: int
    viewable: bool = False


@dataclass(frozen=True)
class DecodeJob:
    device: str
    temperature: float
    seed: int | None
    use_crm: bool
    tile: int


def check_encode(job: EncodeJob) -> None:
    """Every option check of an encode, once, before any file is read."""
    from irc import api
    from irc.codecs import get_codec
    from irc.models.registry import default_model, get_spec

    codec = get_codec(job.codec)
    settings = codec.settings(job.quality, job.lossless)
    if job.viewable and codec.name not in ("png", "jpeg"):
        raise IrcError(f"--viewable needs --codec png or jpeg (a file viewers show as PNG/JPEG), not {codec.name}")
    if job.model:
        spec = get_spec(job.model)
        if spec.arch != "irn":
            raise IrcError(f"model {spec.name} is a {spec.arch}, not a rescaler; see `irc models`")
        if job.scale is not None and job.scale != spec.scale:
            raise IrcError(f"model {spec.name} is for scale {spec.scale}, not {job.scale}")
    else:
        if job.scale not in api.SCALES:
            raise IrcError(f"unsupported scale {job.scale}; choose one of {', '.join(map(str, api.SCALES))}")
        spec = default_model(job.scale, codec.name)
    api.choose_crm(spec.name, codec.name, settings.lossless, job.crm)
    api._check_tiling(job.tile, api.DEFAULT_OVERLAP, spec.scale)
    api.resolve_device(job.device)


def check_decode(job: DecodeJob) -> None:
    from irc import api

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
    extra = {"layout": "viewable"} if job.viewable else {}
    data, info = api.encode_image(src, job.scale, job.codec, job.quality, job.lossless, job.model, job.device,
                                  tile=job.tile, progress=progress, crm=job.crm, **extra)
    write(dest, data, force)
    h = info.header
    pixels = h.width * h.height
    return {
        "ok": True, "input": str(src), "output": str(dest), "bytes_in": os.path.getsize(src), "bytes_out": len(data),
        "width": h.width, "height": h.height, "mode": h.mode, "scale": h.scale, "model": h.model, "crm": h.crm,
        "codec": h.codec, "quality": h.quality, "lossless": h.quality is None,
        "lr_width": h.lr_width, "lr_height": h.lr_height, "payload_bytes": info.payload_bytes,
        "bpp": round(len(data) * 8 / pixels, 4), "payload_bpp": round(info.payload_bytes * 8 / pixels, 4),
        "layout": "viewable" if job.viewable else "irc", "notes": list(info.notes),
        "seconds": round(time.perf_counter() - t0, 3),
    }


def decode_file(src: Path, dest: Path, force: bool, job: DecodeJob, progress=None) -> dict:
    from irc import api, imageio

    t0 = time.perf_counter()
    parsed = api.read(src)
    image = api.decode(parsed, job.device, job.temperature, job.seed, tile=job.tile, progress=progress,
                       use_crm=job.use_crm)
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
