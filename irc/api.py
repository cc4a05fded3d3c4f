"""encode()/decode() in memory: the one place that orders the pipeline steps.

Encode: load -> pad to a multiple of the scale -> rescaler downscale (tiled) ->
round to 8 bits -> LR codec -> container.  Decode: container (checked) -> LR codec ->
CRM restore (lossy payloads with a CRM named in the header) -> rescaler upscale
(latent z = 0 where the family has one; tiled) -> crop back. A scale no model has
(2.5, 6) resizes instead of padding and cropping: the HR to the grid of the next larger
model's scale before the downscale, the upscale's output back to the original size. Each model is resolved
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
from irc.plan import (  # noqa: F401  (irc.api.plan_encode, choose_crm, ... stay public)
    EncodePlan, check_layout, choose_crm, model_scale_for, plan_encode, scale_arg,
)
from irc.reading import read  # irc.api.read is public
from irc.resample import RESAMPLER, resize
from irc.errors import IrcError, IrcTypeError

SCALES = (2, 3, 4, 8, 16)  # the scales rescaler models are made for (16: BDFlow; `irc models` says which are installed)
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
    boundary_bytes: int = 0  # the BNDY chunk (BDFlow's boundary map), counted in file_bytes

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
    gray: bool = False,
) -> tuple[bytes, EncodeInfo]:
    """Encode to .irc bytes; also returns what was done. See :func:`encode`."""
    plan = plan_encode(scale, codec, quality, lossless, model, crm, gray)
    check_layout(layout, plan.codec.name)
    if progress is not None and not callable(progress):
        raise IrcTypeError("progress must be a callable or None")
    device = resolve_device(device)
    _check_tiling(tile, overlap)
    from irc.models.registry import load_rescaler

    rescaler = load_rescaler(plan.model, device, backend, precision)
    img = imageio.load(image)
    lr = lr_of(img.rgb, rescaler, device, tile, overlap, progress, plan.scale)
    payload, side = code_lr(plan.codec, plan.settings, lr, rescaler)
    return pack(img, plan, payload, (lr.shape[1], lr.shape[0]), layout,
                precision=rescaler.precision_of("encode_lr") if rescaler else None, boundary=side)


def code_lr(codec, settings, lr: np.ndarray, model=None) -> tuple[bytes, tuple[int, bytes] | None]:
    """An LR array as ``lr_of`` gives it -> (the codec's payload, None or (bits, the BNDY chunk)):
    the image channels go to the codec, the side channels of ``model`` (a Loaded rescaler: BDFlow's
    boundary map) to :mod:`irc.boundary`."""
    net = getattr(model, "net", None)
    side = getattr(net, "side_channels", 0)
    if not side:
        return codec.encode(lr, settings), None
    from irc import boundary

    return codec.encode(lr[..., :-side], settings), (net.side_bits, boundary.encode(lr[..., -side], net.side_bits))


def decode_lr(codec, payload: bytes, size: tuple[int, int], channels: int = 3,
              side: tuple[int, bytes] | None = None) -> np.ndarray:
    """What the decoder upscales: the codec's LR of ``size`` (width, height) with ``channels``
    channels, and the side channels of ``side`` (bits, the BNDY chunk) after them."""
    lr = codec.decode(payload, size, channels=channels)
    if lr.shape[:2] != (size[1], size[0]):
        raise IrcError(f"payload is {lr.shape[1]}x{lr.shape[0]}, header says {size[0]}x{size[1]}")
    if side is None:
        return lr
    from irc import boundary

    return np.concatenate([lr, boundary.decode(side[1], side[0], size)], axis=2)


def lr_of(rgb: np.ndarray, model, device: str = "cpu", tile: int = DEFAULT_TILE, overlap: int = DEFAULT_OVERLAP,
          progress=None, scale: int | float | None = None) -> np.ndarray:
    """The LR an encode stores: the rescaler ``model``'s downscale, or the image itself (``model`` None: scale 1).
    A ``scale`` other than the model's resizes the HR to the model's grid first (see :func:`downscale`)."""
    if model is None:
        return np.ascontiguousarray(rgb, dtype=np.uint8)
    from irc.models.registry import load

    loaded = load(model, device)
    size = None
    if scale is not None and scale != loaded.scale:
        h, w = rgb.shape[:2]
        lw, lh = container.lr_size(w, h, scale, resampled=True)
        size = (lw * loaded.scale, lh * loaded.scale)
    return downscale(rgb, loaded, device, tile, overlap, progress, size=size)


def pack(img: imageio.LoadedImage, plan: EncodePlan, payload: bytes, lr_size: tuple[int, int],
         layout: str = "irc", rate_control: dict | None = None, alpha: bytes | None = None,
         precision: str | None = None, boundary: tuple[int, bytes] | None = None) -> tuple[bytes, EncodeInfo]:
    """The .irc bytes of an encoded LR (``lr_size`` = width, height) and what was done; ``alpha``:
    the image's alpha plane already coded (else coded here); ``rate_control``: the header's record;
    ``precision``: what the rescaler pass ran in (fp32, bf16; None: no model pass); ``boundary``:
    (bits, BNDY chunk) of a model with a boundary map (:func:`code_lr`)."""
    h, w = img.rgb.shape[:2]
    spec, crm_spec = plan.model, plan.crm
    header = container.Header(
        model=spec.name if spec else None, weights_sha256=spec.sha256() if spec else None, scale=plan.scale,
        codec=plan.codec.name, codec_version=plan.codec.version(), quality=plan.settings.quality, width=w, height=h,
        mode=img.mode, source_mode=img.source_mode, lr_width=lr_size[0], lr_height=lr_size[1],
        crm=crm_spec.name if crm_spec else None, crm_sha256=crm_spec.sha256() if crm_spec else None,
        model_version=spec.version if spec else None, crm_version=crm_spec.version if crm_spec else None,
        source_bits=img.source_bits, rate_control=rate_control, precision=precision,
        model_scale=spec.scale if plan.resample else None, resample=RESAMPLER if plan.resample else None,
        lr_mode="L" if plan.gray else None, boundary_bits=boundary[0] if boundary else None,
    )
    if img.alpha is not None and alpha is None:
        alpha = imageio.encode_alpha(img.alpha)
    data = container.dumps(container.IrcFile(header, payload, img.icc_profile, alpha if img.alpha is not None else None,
                                             boundary=boundary[1] if boundary else None), layout)
    return data, EncodeInfo(header, len(payload), len(data), list(img.notes), len(alpha or b""),
                            len(img.icc_profile or b""), len(boundary[1]) if boundary else 0)


def downscale(rgb: np.ndarray, model, device: str = "cpu", tile: int = DEFAULT_TILE,
              overlap: int = DEFAULT_OVERLAP, progress=None, backend: str = "auto",
              precision: str = "auto", size: tuple[int, int] | None = None) -> np.ndarray:
    """(H, W, 3) uint8 -> LR (ceil(H/s), ceil(W/s), C) uint8 with rescaler ``model`` (C = 3, 1 for
    a colour model's grayscale carrier, 3 + its side channels for BDFlow's boundary map; ``model`` a name or
    a :class:`irc.models.registry.Loaded`; padded, tiled, the tiles blended before rounding).
    ``size`` (width, height, multiples of the model's scale): resize the HR to it instead of
    padding (:func:`irc.resample.resize`), for a scale the model was not made for.
    ``backend`` and ``precision`` (:mod:`irc.backends`) apply to a model given by name."""
    import torch

    from irc.models.registry import load
    from irc.tiling import pad_to_multiple, run_tiled

    rescaler = load(model, device, role="rescaler", backend=backend, precision=precision)
    scale, net = rescaler.scale, rescaler.runner
    lr_tile, lr_overlap = _check_tiling(tile, overlap, scale)
    x = torch.from_numpy(np.array(rgb, dtype=np.uint8)).permute(2, 0, 1)[None].float().div_(255.0)
    x = pad_to_multiple(x, scale) if size is None else resize(x, size)
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
               overlap: int = DEFAULT_OVERLAP, progress=None, resample: bool = False) -> np.ndarray:
    """A decoded LR -> the decoded RGB: :func:`upscale`, or at scale 1 (``model`` None) the LR itself."""
    if model is None:
        return lr
    return upscale(lr, model, size, crm, quality, device, temperature, seed, tile, overlap, progress,
                   resample=resample)


def upscale(lr: np.ndarray, model, size: tuple[int, int] | None = None, crm=None,
            quality: int | None = None, device: str = "cpu", temperature: float = 0.0,
            seed: int | None = None, tile: int = DEFAULT_TILE, overlap: int = DEFAULT_OVERLAP,
            progress=None, backend: str = "auto", precision: str = "auto", resample: bool = False) -> np.ndarray:
    """LR (h, w, C) uint8 (C: the model's LR channels; (h, w) for 1) -> HR (H, W, 3) uint8 cropped
    to ``size`` (width, height), or with ``resample``
    resized to it (:func:`irc.resample.resize`: a file encoded at a scale the model was not made for).

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
    lr = np.array(lr, dtype=np.uint8).reshape(lr_h, lr_w, -1)
    image_channels = getattr(rescaler.net, "lr_channels", 3)
    side = getattr(rescaler.net, "side_channels", 0)
    if lr.shape[2] != image_channels + side:
        raise IrcError(f"{rescaler.key} takes a {image_channels}-channel LR" + (f" and {side} side channel(s)" if side else "")
                       + f", got {lr.shape[2]} channels")
    y = torch.from_numpy(lr).permute(2, 0, 1)[None].float().div_(255.0)

    def step(t: torch.Tensor) -> torch.Tensor:
        t = t.to(device)
        if crm_net is not None:  # the CRM restores the codec's image, not the side channels after it
            restored = crm_net(t[:, :image_channels], _crm_quality(quality)).clamp(0, 1)
            t = torch.cat([restored, t[:, image_channels:]], 1) if side else restored
        return net.upscale(t, temperature, gen)

    on_tile = progress(_progress_total(lr_h, lr_w, lr_tile, lr_overlap)) if progress else None
    with torch.inference_mode():
        x = run_tiled(step, y, lr_h, lr_w, 1, scale, lr_tile, lr_overlap, on_tile)
    w, h = size or (lr_w * scale, lr_h * scale)
    x = resize(x, (w, h)) if resample else x[..., :h, :w]
    return (x[0].clamp(0, 1) * 255.0).round().byte().permute(1, 2, 0).numpy()


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
    ``precision`` (auto, fp32, bf16; see :mod:`irc.backends`). ``gray=True`` (with ``scale=1``
    or None) stores a grayscale image from which the colour model (IRN_color, or ``model``)
    restores the colours on decode. Every bad input raises :class:`IrcError`.
    For the smallest file that reaches a PSNR, or the best within a size, see
    :func:`irc.ratecontrol.encode_target`.
    """
    unknown = set(kwargs) - _ENCODE_OPTIONS
    if unknown:
        raise IrcTypeError(f"encode() got unknown option(s) {', '.join(sorted(unknown))}; "
                           f"known: {', '.join(sorted(_ENCODE_OPTIONS))}")
    return encode_image(image, scale, codec, quality, lossless, model, device, **kwargs)[0]


_ENCODE_OPTIONS = {"tile", "overlap", "progress", "crm", "layout", "backend", "precision", "gray"}


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
        if spec.scale != hd.net_scale:
            raise IrcError(f"corrupt .irc header: {hd.model} is a x{spec.scale} model, the header says x{hd.net_scale}")
        if spec.lr_channels != hd.lr_channels:
            raise IrcError(f"corrupt .irc header: {hd.model} stores a {spec.lr_channels}-channel LR, the header "
                           f"says lr_mode {hd.lr_mode or 'RGB'}")

    _check_tiling(tile, overlap)
    crm = hd.crm if use_crm and not hd.lossless else None
    if crm:
        if crm not in {s.name for s in all_versions().values()}:
            raise IrcError(f"file asks for restore model {crm}, which is not installed; "
                           "decode with --no-crm, or install the irc version that wrote it")
        crm_spec = for_file(crm, hd.crm_version, hd.crm_sha256)
        if crm_spec.role != "restore":
            raise IrcError(f"corrupt .irc header: {crm} is not a restore model (CRM)")
    device = resolve_device(device)
    from irc.models.registry import load_rescaler

    rescaler = load_rescaler(spec, device, backend, precision)
    bits = getattr(rescaler.net, "side_bits", None) if rescaler else None
    if bits != hd.boundary_bits:
        raise IrcError(f"corrupt .irc header: {hd.model} stores " + (f"a {bits}-bit boundary map" if bits else
                       "no boundary map") + f", the header says boundary_bits {hd.boundary_bits}")
    crm_loaded = load(crm_spec, device, backend=backend, precision=precision) if crm else None
    # the cheap checks of untrusted bytes first: the alpha plane, then the LR
    alpha = imageio.decode_alpha(f.alpha, (hd.width, hd.height)) if f.alpha else None
    lr = decode_lr(get_codec(hd.codec), f.payload, (hd.lr_width, hd.lr_height), hd.lr_channels,
                   (hd.boundary_bits, f.boundary) if f.boundary is not None else None)
    rgb = hr_from_lr(lr, rescaler, (hd.width, hd.height), crm_loaded, hd.quality, device, temperature, seed, tile,
                     overlap, progress, resample=hd.resample is not None)
    return imageio.to_pil(np.ascontiguousarray(rgb), alpha, hd.mode, f.icc_profile)

