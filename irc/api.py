"""encode()/decode() in memory: the one place that orders the pipeline steps.

Encode: load -> pad to a multiple of the scale -> rescaler downscale (tiled) ->
round to 8 bits -> LR codec -> container.  Decode: container (checked) -> LR codec ->
CRM restore (lossy payloads with a CRM named in the header) -> rescaler upscale
(latent z = 0 where the family has one; tiled) -> crop back. Each model is resolved
once per call (:func:`irc.models.registry.load`) and passed along as that object.
Scale 1 has no model: the LR is the image. Encode = :func:`plan_encode` -> :func:`lr_of`
-> codec -> :func:`pack`; irc.ratecontrol runs these steps and decode's :func:`hr_from_lr`.

``downscale`` and ``upscale`` are the two model passes on arrays; the bench
calls them directly so it measures exactly what encode and decode do.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from irc import container, imageio
from irc.args import check_tiling as _check_tiling, check_type as _check_type, int_arg as _int_arg
from irc.args import resolve_device  # irc.api.resolve_device is public
from irc.reading import read  # irc.api.read is public
from irc.errors import IrcError, IrcTypeError

SCALES = (2, 4, 8)  # the scales of the rescaler models
ENCODE_SCALES = (1,) + SCALES  # 1: no model, the codec alone
DEFAULT_TILE = 1024  # HR pixels per tile side; Kodak-size images run in one piece
DEFAULT_OVERLAP = 64  # HR pixels shared between neighbouring tiles


@dataclass
class EncodeInfo:
    """What an encode did, for the CLI and the bench.

    ``file_bytes`` is every byte of the .irc file (header, LR, alpha, ICC profile);
    ``bpp`` is computed from it. ``payload_bytes`` / ``payload_bpp`` count the LR
    bitstream alone (what `irc extract` writes; the papers' rate measure).
    """

    header: container.Header
    payload_bytes: int
    file_bytes: int
    notes: list[str] = field(default_factory=list)
    alpha_bytes: int = 0
    icc_profile_bytes: int = 0

    @property
    def bpp(self) -> float:
        """Bits per original pixel of the whole file."""
        return self.file_bytes * 8.0 / (self.header.width * self.header.height)

    @property
    def payload_bpp(self) -> float:
        """Bits per original pixel of the LR bitstream alone."""
        return self.payload_bytes * 8.0 / (self.header.width * self.header.height)


def _progress_total(lr_h: int, lr_w: int, tile: int, overlap: int) -> int:
    from irc.tiling import tile_count

    return tile_count(lr_h, lr_w, tile, overlap)


@dataclass(frozen=True)
class EncodePlan:
    """What an encode will do, every option checked: the codec and its settings, the
    rescaler (None at scale 1, where the LR is the image) and the CRM the header names."""

    scale: int
    codec: object  # irc.codecs.Codec
    settings: object  # irc.codecs.CodecSettings
    model: object | None  # irc.models.registry.ModelSpec
    crm: object | None


def plan_encode(scale: int | None = 4, codec: str = "jpeg", quality: int | None = None,
                lossless: bool | None = None, model: str | None = None, crm: str | None = "auto") -> EncodePlan:
    """Check the options of an encode (no image is read) and resolve the model and CRM."""
    from irc.codecs import get_codec
    from irc.models.registry import default_model, get_spec

    scale, quality = _int_arg("scale", scale, optional=True), _int_arg("quality", quality, optional=True)
    _check_type("codec", codec, (str,), "a codec name")
    _check_type("lossless", lossless, (bool,), "True, False or None", optional=True)
    _check_type("model", model, (str,), "a model name or None", optional=True)
    _check_type("crm", crm, (str,), "'auto', 'none', a model name or None", optional=True)
    codec_obj = get_codec(codec)
    settings = codec_obj.settings(quality, lossless)
    if scale == 1:
        if model:
            raise IrcError("scale 1 stores the image itself, with no model: drop the model option (--model)")
        if crm not in (None, "auto", "none"):
            raise IrcError("scale 1 stores the image itself, with no model: a CRM (--crm) does not apply")
        return EncodePlan(1, codec_obj, settings, None, None)
    if model:
        spec = get_spec(model)
        if scale is not None and scale != spec.scale:
            raise IrcError(f"model {spec.name} is for scale {spec.scale}, not {scale}")
    else:
        if scale not in SCALES:
            raise IrcError(f"unsupported scale {scale}; choose one of {', '.join(map(str, ENCODE_SCALES))}")
        spec = default_model(scale, codec_obj.name)
    if spec.role != "rescaler":
        raise IrcError(f"model {spec.name} is a {spec.arch}, not a rescaler; see `irc models`")
    return EncodePlan(spec.scale, codec_obj, settings, spec, choose_crm(spec.name, codec_obj.name, settings.lossless, crm))


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
    layout: str = "irc",
    backend: str = "auto",
    precision: str = "auto",
) -> tuple[bytes, EncodeInfo]:
    """Encode to .irc bytes; also returns what was done. See :func:`encode`."""
    plan = plan_encode(scale, codec, quality, lossless, model, crm)
    check_layout(layout, plan.codec.name)
    if progress is not None and not callable(progress):
        raise IrcTypeError("progress must be a callable or None")
    device = resolve_device(device)
    _check_tiling(tile, overlap, plan.scale)
    from irc.backends import load_rescaler

    rescaler = load_rescaler(plan.model, device, backend, precision)
    img = imageio.load(image)
    lr = lr_of(img.rgb, rescaler, device, tile, overlap, progress)
    return pack(img, plan, plan.codec.encode(lr, plan.settings), (lr.shape[1], lr.shape[0]), layout,
                precision=rescaler.precision if rescaler else None)


def check_layout(layout: str, codec: str) -> None:
    if layout not in container.LAYOUTS:
        raise IrcError(f"unknown layout {layout!r}; choose one of {', '.join(container.LAYOUTS)}")
    if layout == "viewable" and codec not in ("png", "jpeg"):
        raise IrcError(f"the viewable layout needs the png or jpeg LR codec, not {codec}")


def lr_of(rgb: np.ndarray, model, device: str = "cpu", tile: int = DEFAULT_TILE, overlap: int = DEFAULT_OVERLAP,
          progress=None) -> np.ndarray:
    """The LR an encode stores: the rescaler ``model``'s downscale, or the image itself (``model`` None: scale 1)."""
    if model is None:
        return np.ascontiguousarray(rgb, dtype=np.uint8)
    from irc.models.registry import load

    return downscale(rgb, load(model, device), device, tile, overlap, progress)


def pack(img: imageio.LoadedImage, plan: EncodePlan, payload: bytes, lr_size: tuple[int, int],
         layout: str = "irc", rate_control: dict | None = None, alpha: bytes | None = None,
         precision: str | None = None) -> tuple[bytes, EncodeInfo]:
    """The .irc bytes of an encoded LR (``lr_size`` = width, height) and what was done; ``alpha``:
    the image's alpha plane already coded (else coded here); ``rate_control``: the header's record;
    ``precision``: what the rescaler pass ran in (fp32, bf16; None: no model pass)."""
    h, w = img.rgb.shape[:2]
    spec, crm_spec = plan.model, plan.crm
    header = container.Header(
        model=spec.name if spec else None, weights_sha256=spec.sha256() if spec else None, scale=plan.scale,
        codec=plan.codec.name, codec_version=plan.codec.version(), quality=plan.settings.quality, width=w, height=h,
        mode=img.mode, source_mode=img.source_mode, lr_width=lr_size[0], lr_height=lr_size[1],
        crm=crm_spec.name if crm_spec else None, crm_sha256=crm_spec.sha256() if crm_spec else None,
        model_version=spec.version if spec else None, crm_version=crm_spec.version if crm_spec else None,
        source_bits=img.source_bits, rate_control=rate_control, precision=precision,
    )
    if img.alpha is not None and alpha is None:
        alpha = imageio.encode_alpha(img.alpha)
    data = container.dumps(container.IrcFile(header, payload, img.icc_profile, alpha if img.alpha is not None else None),
                           layout)
    return data, EncodeInfo(header, len(payload), len(data), list(img.notes), len(alpha or b""),
                            len(img.icc_profile or b""))


def choose_crm(model: str, codec: str, lossless: bool, crm: str | None = "auto"):
    """The CRM spec an encode records: ``auto`` picks the registered one for
    (model, codec) on lossy payloads, ``none`` (or None) none, a name that one."""
    from irc.models.registry import default_crm, get_spec

    if lossless or crm is None or crm == "none":
        return None
    if crm == "auto":
        return default_crm(model, codec)
    spec = get_spec(crm)
    if spec.role != "restore":
        raise IrcError(f"{crm} is not a restore model (CRM); see `irc models`")
    if spec.base != model or codec not in spec.codecs:
        raise IrcError(f"CRM {crm} restores {spec.base} LR stored with {', '.join(spec.codecs)}, "
                       f"not {model} with {codec}")
    return spec


def downscale(rgb: np.ndarray, model, device: str = "cpu", tile: int = DEFAULT_TILE,
              overlap: int = DEFAULT_OVERLAP, progress=None, backend: str = "auto",
              precision: str = "auto") -> np.ndarray:
    """(H, W, 3) uint8 -> LR (ceil(H/s), ceil(W/s), 3) uint8 with rescaler ``model`` (a name or
    a :class:`irc.models.registry.Loaded`; padded, tiled, the tiles blended before rounding).
    ``backend`` and ``precision`` (:mod:`irc.backends`) apply to a model given by name."""
    import torch

    from irc.models.registry import load
    from irc.tiling import pad_to_multiple, run_tiled

    rescaler = load(model, device, role="rescaler", backend=backend, precision=precision)
    scale, net = rescaler.scale, rescaler.runner
    lr_tile, lr_overlap = _check_tiling(tile, overlap, scale)
    x = torch.from_numpy(np.array(rgb, dtype=np.uint8)).permute(2, 0, 1)[None].float().div_(255.0)
    x = pad_to_multiple(x, scale)
    lr_h, lr_w = x.shape[2] // scale, x.shape[3] // scale
    on_tile = progress(_progress_total(lr_h, lr_w, lr_tile, lr_overlap)) if progress else None
    with torch.inference_mode():
        y = run_tiled(lambda t: net.encode_lr(t.to(device)), x, lr_h, lr_w, scale, 1,
                      lr_tile, lr_overlap, on_tile)
    return (y[0].clamp(0, 1) * 255.0).round().byte().permute(1, 2, 0).numpy()


def _crm_quality(quality: int | None) -> float:
    """The quality a CRM is conditioned on (a file without one counts as mid-range)."""
    return float(50 if quality is None else quality)


def restore(lr: np.ndarray, crm, quality: int | None, device: str = "cpu", backend: str = "auto",
            precision: str = "auto") -> np.ndarray:
    """Apply CRM ``crm`` (a name or a Loaded one) to a whole decoded LR (uint8 in and out),
    conditioned on ``quality``."""
    import torch

    from irc.models.registry import load

    net = load(crm, device, role="restore", backend=backend, precision=precision).runner
    with torch.inference_mode():
        t = torch.from_numpy(np.array(lr, dtype=np.uint8)).permute(2, 0, 1)[None].float().div_(255.0)
        r = net(t.to(device), _crm_quality(quality)).clamp(0, 1)
    return (r[0].cpu() * 255.0).round().byte().permute(1, 2, 0).numpy()


def hr_from_lr(lr: np.ndarray, model, size: tuple[int, int], crm=None, quality: int | None = None,
               device: str = "cpu", temperature: float = 0.0, seed: int | None = None, tile: int = DEFAULT_TILE,
               overlap: int = DEFAULT_OVERLAP, progress=None) -> np.ndarray:
    """A decoded LR -> the decoded RGB: :func:`upscale`, or at scale 1 (``model`` None) the LR itself."""
    if model is None:
        return lr
    return upscale(lr, model, size, crm, quality, device, temperature, seed, tile, overlap, progress)


def upscale(lr: np.ndarray, model, size: tuple[int, int] | None = None, crm=None,
            quality: int | None = None, device: str = "cpu", temperature: float = 0.0,
            seed: int | None = None, tile: int = DEFAULT_TILE, overlap: int = DEFAULT_OVERLAP,
            progress=None, backend: str = "auto", precision: str = "auto") -> np.ndarray:
    """LR (h, w, 3) uint8 -> HR uint8 cropped to ``size`` (width, height).

    ``model`` and ``crm`` are names or :class:`irc.models.registry.Loaded` models. With
    ``crm``, each LR tile is first restored by that CRM (conditioned on ``quality``), then
    upscaled by the rescaler ``model`` (latent z = 0, or z ~ N(0, T^2) where it has one).
    ``backend`` and ``precision`` (:mod:`irc.backends`) apply to models given by name.
    """
    import torch

    from irc.models.registry import load
    from irc.tiling import run_tiled

    rescaler = load(model, device, role="rescaler", backend=backend, precision=precision)
    scale, net = rescaler.scale, rescaler.runner
    lr_tile, lr_overlap = _check_tiling(tile, overlap, scale)
    crm_net = load(crm, device, role="restore", backend=backend, precision=precision).runner if crm else None
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
    """Encode a PIL image, path, encoded image bytes or numpy array to the bytes of an .irc file.

    ``scale`` 1 stores the image itself with the codec (no model). ``quality`` is the LR
    codec's quality (codec default if None); ``lossless``
    asks a codec that has both modes for its lossless one. A lossy payload
    records the registered CRM for (model, codec) unless ``crm="none"``.
    ``layout="viewable"`` (png or jpeg codec) writes a file that is also a PNG/JPEG
    of the LR image, which viewers show (docs/FORMAT.md). Also: ``tile``,
    ``overlap``, ``progress``, ``crm``, ``backend`` (auto, torch, openvino) and
    ``precision`` (auto, fp32, bf16; see :mod:`irc.backends`). Every bad input raises :class:`IrcError`.
    For the smallest file that reaches a PSNR, or the best within a size, see
    :func:`irc.ratecontrol.encode_target`.
    """
    unknown = set(kwargs) - _ENCODE_OPTIONS
    if unknown:
        raise IrcTypeError(f"encode() got unknown option(s) {', '.join(sorted(unknown))}; "
                           f"known: {', '.join(sorted(_ENCODE_OPTIONS))}")
    return encode_image(image, scale, codec, quality, lossless, model, device, **kwargs)[0]


_ENCODE_OPTIONS = {"tile", "overlap", "progress", "crm", "layout", "backend", "precision"}


def decode(
    data,
    device: str = "cpu",
    temperature: float = 0.0,
    seed: int | None = None,
    tile: int = DEFAULT_TILE,
    overlap: int = DEFAULT_OVERLAP,
    progress: Callable[[int], Callable[[], None]] | None = None,
    use_crm: bool = True,
    backend: str = "auto",
    precision: str = "auto",
):
    """Decode .irc bytes (or a path) to a PIL image of the original size and mode.

    Deterministic by default (z = 0) on a given machine and backend. ``temperature`` > 0
    samples z ~ N(0, T^2), seeded by ``seed`` (0 if not given) so a result can be reproduced.
    The CRM named in the header restores a lossy LR first unless ``use_crm`` is False.
    ``backend`` and ``precision``: see :mod:`irc.backends`.
    Every bad input (corrupt file, wrong argument) raises :class:`IrcError`.
    """
    import math
    import numbers

    from irc.codecs import get_codec
    from irc.models.registry import all_versions, for_file, load

    f = read(data)
    hd = f.header
    _check_type("temperature", temperature, (numbers.Real,), "a number >= 0")
    if not math.isfinite(temperature) or temperature < 0:
        raise IrcError("temperature must be a finite number >= 0")
    seed = _int_arg("seed", seed, optional=True)
    _check_type("use_crm", use_crm, (bool,), "True or False")
    if progress is not None and not callable(progress):
        raise IrcTypeError("progress must be a callable or None")
    spec = None  # scale 1: no model (the header check allows none only there)
    if hd.model is not None:
        spec = for_file(hd.model, hd.model_version, hd.weights_sha256)  # the exact weights, old versions too
        if spec.role != "rescaler":
            raise IrcError(f"corrupt .irc header: {hd.model} is a {spec.arch}, not a rescaler")
        if spec.scale != hd.scale:
            raise IrcError(f"corrupt .irc header: {hd.model} is a x{spec.scale} model, the header says x{hd.scale}")
    _check_tiling(tile, overlap, hd.scale)
    crm = hd.crm if use_crm and not hd.lossless else None
    if crm:
        if crm not in {s.name for s in all_versions().values()}:
            raise IrcError(f"file asks for restore model {crm}, which is not installed; "
                           "decode with --no-crm, or install the irc version that wrote it")
        crm_spec = for_file(crm, hd.crm_version, hd.crm_sha256)
        if crm_spec.role != "restore":
            raise IrcError(f"corrupt .irc header: {crm} is not a restore model (CRM)")
    device = resolve_device(device)
    from irc.backends import load_rescaler

    rescaler = load_rescaler(spec, device, backend, precision)
    crm_loaded = load(crm_spec, device, backend=backend, precision=precision) if crm else None
    # the cheap checks of untrusted bytes first: the alpha plane, then the LR
    alpha = imageio.decode_alpha(f.alpha, (hd.width, hd.height)) if f.alpha else None
    lr = get_codec(hd.codec).decode(f.payload, (hd.lr_width, hd.lr_height))
    if lr.shape[:2] != (hd.lr_height, hd.lr_width):
        raise IrcError(f"payload is {lr.shape[1]}x{lr.shape[0]}, header says {hd.lr_width}x{hd.lr_height}")
    rgb = hr_from_lr(lr, rescaler, (hd.width, hd.height), crm_loaded, hd.quality, device, temperature, seed, tile,
                     overlap, progress)
    return imageio.to_pil(np.ascontiguousarray(rgb), alpha, hd.mode, f.icc_profile)

