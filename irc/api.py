"""encode()/decode() in memory: the one place that orders the pipeline steps.

Encode: load -> pad to a multiple of the scale -> IRN forward (tiled) -> round to
8 bits -> LR codec -> container.  Decode: container (checked) -> LR codec ->
CRM restore (lossy payloads with a CRM named in the header) -> IRN inverse with
z = 0 (tiled) -> crop back.

``downscale`` and ``upscale`` are the two model passes on arrays; the bench
calls them directly so it measures exactly what encode and decode do.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from irc import container, imageio
from irc.errors import IrcError

SCALES = (2, 4, 8)
DEFAULT_TILE = 1024  # HR pixels per tile side; Kodak-size images run in one piece
DEFAULT_OVERLAP = 64  # HR pixels shared between neighbouring tiles


@dataclass
class EncodeInfo:
    """What an encode did, for the CLI and the bench."""

    header: container.Header
    payload_bytes: int
    file_bytes: int
    notes: list[str] = field(default_factory=list)


def resolve_device(device: str = "cpu") -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise IrcError("--device cuda asked for, but no CUDA GPU is available (use --device cpu)")
    if device not in ("cpu",) and not device.startswith("cuda") and device != "mps":
        raise IrcError(f"unknown device {device!r}: use cpu, cuda, cuda:N or auto")
    return device


def _check_tiling(tile: int, overlap: int, scale: int) -> tuple[int, int]:
    if tile < 64 or tile % scale:
        raise IrcError(f"tile must be at least 64 and a multiple of the scale ({scale})")
    if overlap < 0 or overlap % scale or overlap * 2 >= tile:
        raise IrcError("overlap must be a multiple of the scale and less than half the tile")
    return tile // scale, overlap // scale


def _progress_total(lr_h: int, lr_w: int, tile: int, overlap: int) -> int:
    from irc.tiling import tile_count

    return tile_count(lr_h, lr_w, tile, overlap)


def encode_image(
    image,
    scale: int | None = 4,
    codec: str = "jpeg",
    quality: int | None = None,
    lossless: bool | None = None,
    model: str | None = None,
    device: str = "cpu",
    tile: int = DEFAULT_TILE,
    overlap: int = DEFAULT_OVERLAP,
    progress: Callable[[int], Callable[[], None]] | None = None,
    crm: str | None = "auto",
) -> tuple[bytes, EncodeInfo]:
    """Encode to .irc bytes; also returns what was done. See :func:`encode`."""
    from irc.codecs import get_codec
    from irc.models.registry import default_model, get_spec

    codec_obj = get_codec(codec)
    settings = codec_obj.settings(quality, lossless)
    if model:
        spec = get_spec(model)
        if spec.arch != "irn":
            raise IrcError(f"model {spec.name} is a {spec.arch}, not a rescaler; see `irc models`")
        if scale is not None and scale != spec.scale:
            raise IrcError(f"model {spec.name} is for scale {spec.scale}, not {scale}")
    else:
        if scale not in SCALES:
            raise IrcError(f"unsupported scale {scale}; choose one of {', '.join(map(str, SCALES))}")
        spec = default_model(scale, codec_obj.name)
    crm_spec = choose_crm(spec.name, codec_obj.name, settings.lossless, crm)
    device = resolve_device(device)
    img = imageio.load(image)
    h, w = img.rgb.shape[:2]
    _check_tiling(tile, overlap, spec.scale)
    lr = downscale(img.rgb, spec.name, device, tile, overlap, progress)
    payload = codec_obj.encode(lr, settings)

    header = container.Header(
        model=spec.name, weights_sha256=spec.sha256(), scale=spec.scale, codec=codec_obj.name,
        codec_version=codec_obj.version(), quality=settings.quality, width=w, height=h,
        mode=img.mode, source_mode=img.source_mode, lr_width=lr.shape[1], lr_height=lr.shape[0],
        crm=crm_spec.name if crm_spec else None, crm_sha256=crm_spec.sha256() if crm_spec else None,
    )
    alpha = imageio.encode_alpha(img.alpha) if img.alpha is not None else None
    data = container.dumps(container.IrcFile(header, payload, img.icc_profile, alpha))
    return data, EncodeInfo(header, len(payload), len(data), img.notes)


def choose_crm(model: str, codec: str, lossless: bool, crm: str | None = "auto"):
    """The CRM spec an encode records: ``auto`` picks the registered one for
    (model, codec) on lossy payloads, ``none`` (or None) none, a name that one."""
    from irc.models.registry import default_crm, get_spec

    if lossless or crm is None or crm == "none":
        return None
    if crm == "auto":
        return default_crm(model, codec)
    spec = get_spec(crm)
    if spec.arch != "crm":
        raise IrcError(f"{crm} is not a restore model (CRM); see `irc models`")
    if spec.base != model or codec not in spec.codecs:
        raise IrcError(f"CRM {crm} restores {spec.base} LR stored with {', '.join(spec.codecs)}, "
                       f"not {model} with {codec}")
    return spec


def downscale(rgb: np.ndarray, model: str, device: str = "cpu", tile: int = DEFAULT_TILE,
              overlap: int = DEFAULT_OVERLAP, progress=None) -> np.ndarray:
    """(H, W, 3) uint8 -> LR (ceil(H/s), ceil(W/s), 3) uint8 with IRN ``model`` (padded, tiled)."""
    import torch

    from irc.models.registry import get_spec, load_model
    from irc.tiling import pad_to_multiple, run_tiled

    scale = get_spec(model).scale
    lr_tile, lr_overlap = _check_tiling(tile, overlap, scale)
    net = load_model(model, device)
    x = torch.from_numpy(np.array(rgb, dtype=np.uint8)).permute(2, 0, 1)[None].float().div_(255.0)
    x = pad_to_multiple(x, scale)
    lr_h, lr_w = x.shape[2] // scale, x.shape[3] // scale
    on_tile = progress(_progress_total(lr_h, lr_w, lr_tile, lr_overlap)) if progress else None
    with torch.inference_mode():
        y = run_tiled(lambda t: net(t.to(device))[0], x, lr_h, lr_w, scale, 1,
                      lr_tile, lr_overlap, on_tile)
    return (y[0].clamp(0, 1) * 255.0).round().byte().permute(1, 2, 0).numpy()


def _crm_quality(quality: int | None) -> float:
    """The quality a CRM is conditioned on (a file without one counts as mid-range)."""
    return float(50 if quality is None else quality)


def restore(lr: np.ndarray, crm: str, quality: int | None, device: str = "cpu") -> np.ndarray:
    """Apply CRM ``crm`` to a whole decoded LR (uint8 in and out), conditioned on ``quality``."""
    import torch

    from irc.models.registry import load_model

    net = load_model(crm, device)
    with torch.inference_mode():
        t = torch.from_numpy(np.array(lr, dtype=np.uint8)).permute(2, 0, 1)[None].float().div_(255.0)
        r = net(t.to(device), _crm_quality(quality)).clamp(0, 1)
    return (r[0].cpu() * 255.0).round().byte().permute(1, 2, 0).numpy()


def upscale(lr: np.ndarray, model: str, size: tuple[int, int] | None = None, crm: str | None = None,
            quality: int | None = None, device: str = "cpu", temperature: float = 0.0,
            seed: int | None = None, tile: int = DEFAULT_TILE, overlap: int = DEFAULT_OVERLAP,
            progress=None) -> np.ndarray:
    """LR (h, w, 3) uint8 -> HR uint8 cropped to ``size`` (width, height).

    With ``crm``, each LR tile is first restored by that CRM (conditioned on
    ``quality``), then inverted by IRN ``model`` with z = 0 (or z ~ N(0, T^2)).
    """
    import torch

    from irc.models.registry import get_spec, load_model
    from irc.tiling import run_tiled

    scale = get_spec(model).scale
    lr_tile, lr_overlap = _check_tiling(tile, overlap, scale)
    net = load_model(model, device)
    crm_net = load_model(crm, device) if crm else None
    gen = torch.Generator().manual_seed(0 if seed is None else seed)
    lr_h, lr_w = lr.shape[:2]
    y = torch.from_numpy(np.array(lr, dtype=np.uint8)).permute(2, 0, 1)[None].float().div_(255.0)

    def step(t: torch.Tensor) -> torch.Tensor:
        t = t.to(device)
        if crm_net is not None:
            t = crm_net(t, _crm_quality(quality)).clamp(0, 1)
        return net.upscale(t, temperature, gen)

    on_tile = progress(_progress_total(lr_h, lr_w, lr_tile, lr_overlap)) if progress else None
    with torch.inference_mode():
        x = run_tiled(step, y, lr_h, lr_w, 1, scale, lr_tile, lr_overlap, on_tile)
    w, h = size or (lr_w * scale, lr_h * scale)
    return (x[0, :, :h, :w].clamp(0, 1) * 255.0).round().byte().permute(1, 2, 0).numpy()


def encode(image, scale: int | None = 4, codec: str = "jpeg", quality: int | None = None,
           lossless: bool | None = None, model: str | None = None, device: str = "cpu",
           **kwargs) -> bytes:
    """Encode a PIL image, path or numpy array to the bytes of an .irc file.

    ``quality`` is the LR codec's quality (codec default if None); ``lossless``
    asks a codec that has both modes for its lossless one. A lossy payload
    records the registered CRM for (model, codec) unless ``crm="none"``.
    """
    return encode_image(image, scale, codec, quality, lossless, model, device, **kwargs)[0]


def read(data) -> container.IrcFile:
    """Parse .irc bytes or a path (checked: magic, version, checksum)."""
    if isinstance(data, container.IrcFile):
        return data
    if isinstance(data, (bytes, bytearray, memoryview)):
        return container.loads(bytes(data))
    from pathlib import Path

    path = Path(data)
    if not path.is_file():
        raise IrcError(f"no such file: {path}")
    try:
        return container.loads(path.read_bytes())
    except PermissionError:
        raise IrcError(f"cannot read {path}: permission denied") from None


def decode(
    data,
    device: str = "cpu",
    temperature: float = 0.0,
    seed: int | None = None,
    tile: int = DEFAULT_TILE,
    overlap: int = DEFAULT_OVERLAP,
    progress: Callable[[int], Callable[[], None]] | None = None,
    use_crm: bool = True,
):
    """Decode .irc bytes (or a path) to a PIL image of the original size and mode.

    Deterministic by default (z = 0). ``temperature`` > 0 samples z ~ N(0, T^2),
    seeded by ``seed`` (0 if not given) so a result can be reproduced. The CRM
    named in the header restores a lossy LR first unless ``use_crm`` is False.
    """
    from irc.codecs import get_codec
    from irc.models.registry import all_models, get_spec

    f = read(data)
    hd = f.header
    if hd.width * hd.height > imageio.MAX_PIXELS or hd.width <= 0 or hd.height <= 0:
        raise IrcError(f"implausible image size {hd.width}x{hd.height} in header")
    spec = get_spec(hd.model)
    if spec.sha256() != hd.weights_sha256:
        raise IrcError(
            f"file was encoded with other weights for {hd.model} (sha256 {hd.weights_sha256}, "
            f"installed {spec.sha256()}); decode it with the irc version that wrote it"
        )
    if spec.scale != hd.scale or hd.lr_width * hd.scale < hd.width or hd.lr_height * hd.scale < hd.height:
        raise IrcError("corrupt .irc header: sizes do not match the scale")
    if temperature < 0:
        raise IrcError("temperature must be >= 0")
    crm = hd.crm if use_crm and not hd.lossless else None
    if crm:
        if crm not in all_models():
            raise IrcError(f"file asks for restore model {crm}, which is not installed; "
                           "decode with --no-crm, or install the irc version that wrote it")
        if get_spec(crm).sha256() != hd.crm_sha256:
            raise IrcError(f"file was encoded for other weights of {crm}; decode with --no-crm")
    device = resolve_device(device)
    lr = get_codec(hd.codec).decode(f.payload)
    if lr.shape[:2] != (hd.lr_height, hd.lr_width):
        raise IrcError(f"payload is {lr.shape[1]}x{lr.shape[0]}, header says {hd.lr_width}x{hd.lr_height}")
    rgb = upscale(lr, spec.name, (hd.width, hd.height), crm, hd.quality, device, temperature, seed,
                  tile, overlap, progress)
    alpha = imageio.decode_alpha(f.alpha) if f.alpha else None
    if alpha is not None and alpha.shape != rgb.shape[:2]:
        raise IrcError("corrupt .irc file: alpha plane size does not match the image")
    return imageio.to_pil(np.ascontiguousarray(rgb), alpha, hd.mode, f.icc_profile)
