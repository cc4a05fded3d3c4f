"""PNG, JPEG and WebP through Pillow."""

from __future__ import annotations

import io

import numpy as np

from irc.codecs import Codec, CodecSettings
from irc.errors import IrcError


class _PillowCodec(Codec):
    pil_format = ""
    pil_feature: str | None = None

    def _image_module(self):
        from PIL import Image, features

        if self.pil_feature and not features.check(self.pil_feature):
            raise IrcError(f"this Pillow build has no {self.name} support; install a Pillow wheel with {self.pil_feature}")
        return Image

    def _save_args(self, settings: CodecSettings) -> dict:
        return {}

    def check(self) -> None:
        self._image_module()

    def _encode(self, arr: np.ndarray, settings: CodecSettings) -> bytes:
        image = self._image_module().fromarray(arr, "RGB" if arr.ndim == 3 else "L")
        buf = io.BytesIO()
        image.save(buf, format=self.pil_format, **self._save_args(settings))
        return buf.getvalue()

    def _decode(self, data: bytes, size: tuple[int, int] | None = None) -> np.ndarray:
        with self._image_module().open(io.BytesIO(data), formats=[self.pil_format]) as im:
            if im.format != self.pil_format:
                raise IrcError(f"payload is {im.format}, expected {self.pil_format}")
            if size is not None and im.size != tuple(size):
                raise IrcError(f"payload is {im.width}x{im.height}, header says {size[0]}x{size[1]}")
            return np.asarray(im.convert("L" if im.mode in ("L", "I;16", "I", "1") else "RGB"))

    def version(self) -> str:
        import PIL
        from PIL import features

        lib = features.version(self.pil_feature) if self.pil_feature else None
        return f"Pillow {PIL.__version__}" + (f" ({self.pil_feature} {lib})" if lib else "")


class PNG(_PillowCodec):
    name, suffix, pil_format, pil_feature = "png", ".png", "PNG", "zlib"
    lossy, lossless, default_lossless = False, True, True

    def _save_args(self, settings):
        return {"optimize": True}


class JPEG(_PillowCodec):
    name, suffix, pil_format, pil_feature = "jpeg", ".jpg", "JPEG", "jpg"
    lossy, lossless, default_quality = True, False, 75

    def _save_args(self, settings):
        # Pillow's defaults otherwise: 4:2:0 chroma subsampling, baseline, standard tables.
        return {"quality": settings.quality, "optimize": True}


class WebP(_PillowCodec):
    name, suffix, pil_format, pil_feature = "webp", ".webp", "WEBP", "webp"
    lossy, lossless, default_quality = True, True, 75

    def _save_args(self, settings):
        if settings.lossless:
            return {"lossless": True, "quality": 100, "method": 6}
        return {"quality": settings.quality, "method": 6}
