"""The bench's records: one measured point, the matched-JPEG row, a run's results (irc.bench.engine
makes them; auto, matched and report read them)."""

from __future__ import annotations

from dataclasses import dataclass, field

CODEC_LABEL = {"png": "PNG", "jxl": "JPEG XL", "jpeg": "JPEG", "webp": "WebP", "avif": "AVIF"}


@dataclass
class Point:
    """One pipeline at one setting on one image."""

    image: str
    pipeline: str
    scale: int | float  # 1: no rescaling
    codec: str
    quality: int | None  # None: lossless
    bytes: int
    bpp: float
    psnr_rgb: float
    psnr_y: float
    ssim: float
    enc_s: float
    dec_s: float
    target: float | None = None  # irc auto: the --target-psnr of this point (its curve groups by it)
    model: str | None = None  # the rescaler's registry name; None: the codec alone, bicubic, or irc auto


@dataclass
class Matched:
    """JPEG at the quality whose mean RGB PSNR is closest to a row's."""

    target_psnr: float
    quality: int
    psnr_rgb: float
    total_bytes: int


@dataclass
class Results:
    dataset: str
    images: list[str]
    pixels: int  # total original pixels
    points: list[Point] = field(default_factory=list)
    matched: dict[str, Matched] = field(default_factory=dict)  # storage pipeline -> matched JPEG
    seconds: float = 0.0
