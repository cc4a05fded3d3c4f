"""Reading and writing user images: modes, alpha, ICC, EXIF orientation, bit depth.

What the codec keeps for each input mode:

* RGB: as is. L (grayscale): coded as RGB, decoded back to L.
* RGBA / LA / P with transparency: colour as above, the alpha plane is kept
  losslessly (PNG inside the .irc file) at full resolution; a fully opaque
  alpha is dropped.
* P (palette): expanded to RGB(A); decodes as RGB(A), not as a palette.
* CMYK / YCbCr / LAB: converted to RGB by Pillow; decodes as RGB.
* 16-bit and 32-bit input (I;16, I, F, 48/64-bit PNG and TIFF, uint16 arrays):
  reduced to 8 bits per channel; a note says so and the header records the
  depth (``source_bits``). The model works on 8-bit images.
* EXIF orientation is applied on load, so the decoded image is upright.
* The ICC profile is carried in the .irc file and attached to the output.
"""

from __future__ import annotations

import io
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from irc.atomic import atomic_write  # noqa: F401  (irc.imageio.atomic_write is public)
from irc.errors import IrcError, IrcTypeError

# Pillow's own bomb threshold is 2 x MAX_IMAGE_PIXELS (about 179 MP); we refuse at that size.
MAX_PIXELS = 178_956_970


@dataclass
class LoadedImage:
    rgb: np.ndarray  # (H, W, 3) uint8
    alpha: np.ndarray | None  # (H, W) uint8 or None
    mode: str  # mode to decode to: RGB, RGBA, L, LA
    source_mode: str
    icc_profile: bytes | None
    notes: list[str]
    source_bits: int = 8  # bits per channel as stored (16 for a 48-bit PNG)


def _open(source, name=None):
    """Open and load an image file (a path or a binary file object) with Pillow; IrcError on failure.

    Returns the image and its bits per channel as stored (16 for a 48-bit PNG, which
    Pillow reads as 8-bit RGB), read from the decoder's raw mode before loading.
    """
    from PIL import Image, UnidentifiedImageError

    name = source if name is None else name
    Image.MAX_IMAGE_PIXELS = MAX_PIXELS // 2  # Pillow raises above twice this
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(source)
            bits = source_bits(im)
            im.load()
        return im, bits
    except IrcError:
        raise
    except FileNotFoundError:
        raise IrcError(f"no such file: {name}") from None
    except IsADirectoryError:
        raise IrcError(f"{name} is a directory, not an image") from None
    except PermissionError:
        raise IrcError(f"cannot read {name}: permission denied") from None
    except Image.DecompressionBombError:
        raise IrcError(f"{name}: image is larger than {MAX_PIXELS} pixels (decompression bomb guard)") from None
    except UnidentifiedImageError:
        raise IrcError(f"{name}: not an image irc can read") from None
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError, MemoryError) as exc:
        raise IrcError(f"{name}: cannot decode image ({_reason(exc)})") from None


def _reason(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:200]


def source_bits(im) -> int:
    """Bits per channel of the image as stored: from the mode, or from the raw mode
    of a not yet loaded file (Pillow reads 16-bit RGB(A) PNG/TIFF as 8-bit)."""
    if im.mode == "1":
        return 1
    if im.mode.startswith("I;16"):
        return 16
    if im.mode in ("I", "F"):
        return 32
    for tile in getattr(im, "tile", None) or ():
        args = tile[3] if len(tile) > 3 else None
        raw = args if isinstance(args, str) else (args[0] if isinstance(args, tuple) and args else "")
        if isinstance(raw, str) and ";16" in raw:
            return 16
    return 8


def from_pil(im, bits: int | None = None) -> LoadedImage:
    """A LoadedImage from a PIL image; ``bits`` is the depth as stored (see :func:`source_bits`)."""
    try:
        return _from_pil(im, source_bits(im) if bits is None else bits)
    except IrcError:
        raise
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError, KeyError) as exc:
        # a lazily opened PIL image whose file is broken, or a mode Pillow cannot convert
        raise IrcError(f"cannot read the {im.mode} image: {_reason(exc)}") from None


def _from_pil(im, bits: int) -> LoadedImage:
    from PIL import ImageOps

    from irc.container import valid_icc

    notes: list[str] = []
    source_mode = im.mode
    if im.width < 1 or im.height < 1:
        raise IrcError(f"image is empty ({im.width}x{im.height} pixels)")
    icc = im.info.get("icc_profile") or None
    if icc is not None and not (isinstance(icc, bytes) and valid_icc(icc)):
        notes.append("ICC profile malformed; not carried to the output")
        icc = None
    try:
        im = ImageOps.exif_transpose(im)
    except Exception:  # a broken EXIF block should not stop the encode
        notes.append("EXIF orientation unreadable; image used as stored")
    if im.width * im.height > MAX_PIXELS:
        raise IrcError(f"image is larger than {MAX_PIXELS} pixels (decompression bomb guard)")
    if bits > 8:
        notes.append(f"{bits}-bit {source_mode} input reduced to 8 bits per channel")
    if im.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.nan_to_num(np.asarray(im, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
        peak = 65535.0 if im.mode.startswith("I;16") or arr.max() > 255 else 255.0
        arr = np.clip(np.round(arr / peak * 255.0), 0, 255).astype(np.uint8)
        from PIL import Image

        im = Image.fromarray(arr, "L")
    if im.mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
    if im.mode in ("1",):
        im = im.convert("L")
    if im.mode == "PA":
        im = im.convert("RGBA")
    if im.mode == "LA":
        mode, alpha = "LA", np.asarray(im.getchannel("A"))
        rgb = np.asarray(im.getchannel("L").convert("RGB"))
    elif im.mode == "L":
        mode, alpha, rgb = "L", None, np.asarray(im.convert("RGB"))
    elif im.mode in ("RGBA", "RGBa"):
        im = im.convert("RGBA")
        mode, alpha, rgb = "RGBA", np.asarray(im.getchannel("A")), np.asarray(im.convert("RGB"))
    elif im.mode == "RGB":
        mode, alpha, rgb = "RGB", None, np.asarray(im)
    else:
        if im.mode == "CMYK":
            notes.append("CMYK converted to RGB; the decoded image is RGB")
            icc = None  # a CMYK profile does not describe the RGB pixels
        mode, alpha, rgb = "RGB", None, np.asarray(im.convert("RGB"))
    if alpha is not None and alpha.min() == 255:
        alpha = None
        mode = "L" if mode == "LA" else "RGB"
    return LoadedImage(np.ascontiguousarray(rgb), alpha, mode, source_mode, icc, notes, bits)


def load(source) -> LoadedImage:
    """Read a path, an encoded image file's bytes, a PIL image, or a numpy array
    (H, W[, 3|4]) of uint8, uint16 (16-bit) or float in [0, 1]."""
    from PIL import Image

    if isinstance(source, Image.Image):
        return from_pil(source)
    if isinstance(source, np.ndarray):
        return _from_array(source)
    if isinstance(source, (bytes, bytearray, memoryview)):
        if not len(source):
            raise IrcError("cannot read an image from empty bytes")
        return from_pil(*_open(io.BytesIO(bytes(source)), "the image bytes"))
    if isinstance(source, (str, os.PathLike)):
        try:
            path = Path(source)
            exists = path.exists()
        except (TypeError, ValueError, OSError) as exc:  # bytes paths, embedded NUL, name too long
            raise IrcError(f"bad path {source!r}: {_reason(exc)}") from None
        if not exists:
            raise IrcError(f"no such file: {path}")
        if path.is_dir():
            raise IrcError(f"{path} is a directory, not an image")
        return from_pil(*_open(path))
    raise IrcTypeError(f"cannot read an image from {type(source).__name__}; "
                       "give a path, image bytes, a PIL image or a numpy array")


def _from_array(arr: np.ndarray) -> LoadedImage:
    from PIL import Image

    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (3, 4)):
        raise IrcError(f"numpy input must be (H, W), (H, W, 3) or (H, W, 4), got {arr.shape}")
    if arr.size == 0:
        raise IrcError(f"numpy input is empty (shape {arr.shape})")
    bits = 8
    if arr.dtype == np.uint16:
        bits, arr = 16, np.round(arr.astype(np.float64) * (255.0 / 65535.0)).astype(np.uint8)
    elif arr.dtype != np.uint8:
        if arr.dtype.kind != "f":
            raise IrcTypeError(f"numpy input must be uint8, uint16 or float in [0, 1], got {arr.dtype}")
        if not np.isfinite(arr).all():
            raise IrcError("numpy input has NaN or infinite values")
        arr = np.clip(np.round(arr * 255.0), 0, 255).astype(np.uint8)
    if arr.ndim == 2:
        return from_pil(Image.fromarray(np.ascontiguousarray(arr), "L"), bits)
    return from_pil(Image.fromarray(np.ascontiguousarray(arr), "RGB" if arr.shape[2] == 3 else "RGBA"), bits)


def to_pil(rgb: np.ndarray, alpha: np.ndarray | None, mode: str, icc: bytes | None):
    from PIL import Image

    im = Image.fromarray(rgb, "RGB")
    if mode in ("L", "LA"):
        im = im.convert("L")
    if alpha is not None and mode in ("RGBA", "LA"):
        im.putalpha(Image.fromarray(alpha, "L"))
    if icc:
        im.info["icc_profile"] = icc
    return im


def encode_alpha(alpha: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(alpha, "L").save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def decode_alpha(data: bytes, size: tuple[int, int]) -> np.ndarray:
    """The ALPH chunk (a grayscale PNG) as an (H, W) uint8 plane of ``size`` (width, height).

    Untrusted bytes: the format and size are checked before any pixel is decoded,
    and whatever Pillow raises on a corrupt stream becomes an IrcError.
    """
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data), formats=["PNG"]) as im:
            if im.size != tuple(size):
                raise IrcError(f"corrupt .irc file: alpha plane is {im.width}x{im.height}, "
                               f"the image {size[0]}x{size[1]}")
            return np.asarray(im.convert("L"))
    except IrcError:
        raise
    except Exception as exc:  # UnidentifiedImageError, OSError, SyntaxError, zlib.error, ...
        raise IrcError(f"corrupt .irc file: the alpha plane cannot be decoded ({_reason(exc)})") from None


def save_bytes(im, path: str | Path) -> bytes:
    """Serialise a PIL image in the format named by the path's suffix."""
    from PIL import Image

    path = Path(path)
    ext = path.suffix.lower()
    fmt = Image.registered_extensions().get(ext)
    if fmt is None:
        raise IrcError(f"cannot write {ext or 'files without a suffix'}: unknown image format")
    if fmt == "JPEG" and im.mode in ("RGBA", "LA"):
        raise IrcError("JPEG has no alpha channel; write .png, .webp or .tif to keep it")
    kwargs = {}
    if im.info.get("icc_profile"):
        kwargs["icc_profile"] = im.info["icc_profile"]
    if fmt == "JPEG":
        kwargs["quality"] = 95
    if fmt == "WEBP":
        kwargs["lossless"] = True
    buf = io.BytesIO()
    try:
        im.save(buf, format=fmt, **kwargs)
    except (OSError, ValueError, KeyError) as exc:
        raise IrcError(f"cannot write {path.name} as {fmt}: {exc}") from None
    return buf.getvalue()
