"""LR bitstream codecs behind one small interface, chosen by name.

A codec turns an (H, W, 3) uint8 array, or an (H, W) / (H, W, 1) grayscale one (the
gray carrier of IRN_color), into bytes and back. Each codec module
imports its library only when used, so a missing optional library gives a
clear message instead of an import failure at start-up.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

import numpy as np

from irc.errors import IrcError


@dataclass(frozen=True)
class CodecSettings:
    quality: int | None  # None for lossless
    lossless: bool


class Codec:
    """Base class: subclasses set the class attributes and implement _encode/_decode."""

    name: str = ""
    suffix: str = ""  # file suffix of the raw bitstream (for `irc extract`)
    lossy: bool = True  # supports a quality setting
    lossless: bool = True  # supports exact coding
    default_lossless: bool = False
    default_quality: int | None = None
    quality_range: tuple[int, int] = (1, 100)

    def settings(self, quality: int | None = None, lossless: bool | None = None) -> CodecSettings:
        """Validate user options and return what will be used."""
        if lossless and not self.lossless:
            raise IrcError(f"codec {self.name} has no lossless mode")
        if lossless and quality is not None:
            raise IrcError("give either -q/--quality or --lossless, not both")
        if quality is None and lossless is None:
            lossless = self.default_lossless
        if lossless or (quality is None and not self.lossy):
            return CodecSettings(None, True)
        if not self.lossy:
            raise IrcError(f"codec {self.name} is lossless only; -q does not apply")
        quality = self.default_quality if quality is None else quality
        lo, hi = self.quality_range
        if not lo <= int(quality) <= hi:
            raise IrcError(f"quality {quality} is out of range for {self.name} ({lo}-{hi})")
        return CodecSettings(int(quality), False)

    def encode(self, arr: np.ndarray, settings: CodecSettings) -> bytes:
        """(H, W, 3) uint8 -> bytes; (H, W) or (H, W, 1) is coded as a grayscale image."""
        arr = np.ascontiguousarray(arr, dtype=np.uint8)
        if arr.ndim == 3 and arr.shape[2] == 1:
            arr = arr[..., 0]
        if not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] == 3)):
            raise ValueError(f"codec input must be (H, W, 3) or (H, W) uint8, got {arr.shape}")
        return self._encode(np.ascontiguousarray(arr), settings)

    def decode(self, data: bytes, size: tuple[int, int] | None = None, channels: int = 3) -> np.ndarray:
        """Bytes -> (H, W, 3) uint8, or (H, W, 1) with ``channels=1`` (a grayscale payload; one
        that a codec stores as RGB gives its luma). With ``size`` (width, height), codecs that can read the size
        before the pixels refuse another size without decoding (untrusted input)."""
        if channels not in (1, 3):
            raise ValueError(f"channels must be 1 or 3, got {channels}")
        try:
            arr = self._decode(data) if size is None else self._decode(data, size)
        except IrcError:
            raise
        except Exception as exc:  # library-specific decode errors
            raise IrcError(f"the {self.name} payload cannot be decoded: {exc}") from None
        if channels == 1:
            if arr.ndim == 3 and arr.shape[2] >= 3:  # a gray image coded as RGB (WebP, AVIF): its BT.601 luma
                arr = np.rint(arr[..., :3] @ np.array([0.299, 0.587, 0.114])).clip(0, 255)
            arr = arr.reshape(arr.shape[0], arr.shape[1], -1)[..., :1]
        elif arr.ndim == 2:
            arr = np.stack([arr] * 3, axis=-1)
        return np.ascontiguousarray(arr[..., :channels], dtype=np.uint8)

    def version(self) -> str:
        raise NotImplementedError

    def check(self) -> None:
        """IrcError (saying what to install) unless this codec's library works here."""

    def available(self) -> bool:
        """Whether this codec can be used here (its library and build support it)."""
        try:
            self.check()
        except IrcError:
            return False
        return True

    def _encode(self, arr: np.ndarray, settings: CodecSettings) -> bytes:
        raise NotImplementedError

    def _decode(self, data: bytes, size: tuple[int, int] | None = None) -> np.ndarray:
        raise NotImplementedError


# name -> "module:Class"; modules are imported on first use.
_REGISTRY = {
    "png": "irc.codecs.pillow_codecs:PNG",
    "jpeg": "irc.codecs.pillow_codecs:JPEG",
    "webp": "irc.codecs.pillow_codecs:WebP",
    "jxl": "irc.codecs.imagecodecs_codecs:JXL",
    "avif": "irc.codecs.imagecodecs_codecs:AVIF",
}
_ALIASES = {"jpg": "jpeg", "jpegxl": "jxl"}
_RETIRED = {
    "flif": "FLIF has no maintained library; use --codec jxl (JPEG XL, FLIF's successor, lossless by default)",
}

CODEC_NAMES = tuple(_REGISTRY)


def get_codec(name: str) -> Codec:
    key = _ALIASES.get(name.lower(), name.lower())
    if key in _RETIRED:
        raise IrcError(_RETIRED[key])
    if key not in _REGISTRY:
        raise IrcError(f"unknown codec {name!r}; choose one of {', '.join(CODEC_NAMES)}")
    module_name, cls_name = _REGISTRY[key].split(":")
    module = importlib.import_module(module_name)
    return getattr(module, cls_name)()


def require(module: str, package: str, codec: str):
    """Import an optional library or explain how to get it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise IrcError(
            f"codec {codec} needs the Python package {package!r}: pip install {package}"
        ) from None
