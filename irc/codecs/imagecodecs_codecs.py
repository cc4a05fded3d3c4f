"""JPEG XL and AVIF through imagecodecs (libjxl, libavif)."""

from __future__ import annotations

import numpy as np

from irc.codecs import Codec, CodecSettings, require


class _ImagecodecsCodec(Codec):
    lib = ""  # imagecodecs attribute prefix, e.g. "jpegxl"

    def _ic(self):
        ic = require("imagecodecs", "imagecodecs", self.name)
        if not getattr(ic, self.lib.upper()).available:
            from irc.errors import IrcError

            raise IrcError(f"this imagecodecs build has no {self.lib} support")
        return ic

    def check(self) -> None:
        self._ic()

    def _decode(self, data: bytes, size: tuple[int, int] | None = None) -> np.ndarray:
        return getattr(self._ic(), f"{self.lib}_decode")(data)

    def version(self) -> str:
        ic = self._ic()
        return f"imagecodecs {ic.__version__} ({getattr(ic, f'{self.lib}_version')()})"


class JXL(_ImagecodecsCodec):
    """JPEG XL: lossless by default (the stand-in for FLIF), lossy with -q."""

    name, suffix, lib = "jxl", ".jxl", "jpegxl"
    lossy, lossless, default_lossless, default_quality = True, True, True, 90

    def _encode(self, arr: np.ndarray, settings: CodecSettings) -> bytes:
        ic = self._ic()
        if settings.lossless:
            return bytes(ic.jpegxl_encode(arr, lossless=True, effort=7))
        return bytes(ic.jpegxl_encode(arr, level=settings.quality, effort=7))


class AVIF(_ImagecodecsCodec):
    """AVIF: lossy with -q (libavif quality 0-100), lossless with --lossless."""

    name, suffix, lib = "avif", ".avif", "avif"
    lossy, lossless, default_quality = True, True, 50
    quality_range = (0, 99)

    def _encode(self, arr: np.ndarray, settings: CodecSettings) -> bytes:
        ic = self._ic()
        level = 100 if settings.lossless else settings.quality
        if arr.ndim == 2 and not settings.lossless:
            # imagecodecs 2026.3 codes a monochrome AVIF losslessly whatever the level (a 64x64 gray
            # image: 2708 bytes at every level); as RGB with R = G = B the level applies (491 at 50)
            arr = np.repeat(arr[..., None], 3, axis=2)
        return bytes(ic.avif_encode(arr, level=level, speed=6))
