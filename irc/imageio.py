"""Reading and writing user images: modes, alpha, ICC, EXIF orientation, bit depth.

What the codec keeps for each input mode:

* RGB: as is. L (grayscale): coded as RGB, decoded back to L.
* RGBA / LA / P with transparency: colour as above, the alpha plane is kept
  losslessly (PNG inside the .irc file) at full resolution; a fully opaque
  alpha is dropped.
* P (palette): expanded to RGB(A); decodes as RGB(A), not as a palette.
* CMYK / YCbCr / LAB: converted to RGB by Pillow; decodes as RGB.
* 16-bit and 32-bit input (I;16, I, F, 48-bit PNG): reduced to 8 bits per
  channel; a warning says so. The model works on 8-bit images.
* EXIF orientation is applied on load, so the decoded image is upright.
* The ICC profile is carried in the .irc file and attached to the output.
"""

from __future__ import annotations

import io
import os
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from irc.errors import IrcError

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


def _open(source):
    from PIL import Image, UnidentifiedImageError

    Image.MAX_IMAGE_PIXELS = MAX_PIXELS // 2  # Pillow raises above twice this
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(source)
            im.load()
        return im
    except FileNotFoundError:
        raise IrcError(f"no such file: {source}") from None
    except IsADirectoryError:
        raise IrcError(f"is a directory, not an image: {source}") from None
    except PermissionError:
        raise IrcError(f"cannot read {source}: permission denied") from None
    except Image.DecompressionBombError:
        raise IrcError(f"{source}: image is larger than {MAX_PIXELS} pixels (decompression bomb guard)") from None
    except UnidentifiedImageError:
        raise IrcError(f"{source}: not an image irc can read") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise IrcError(f"{source}: cannot decode image ({exc})") from None


def from_pil(im) -> LoadedImage:
    from PIL import ImageOps

    notes: list[str] = []
    source_mode = im.mode
    icc = im.info.get("icc_profile") or None
    try:
        im = ImageOps.exif_transpose(im)
    except Exception:  # a broken EXIF block should not stop the encode
        notes.append("EXIF orientation unreadable; image used as stored")
    if im.width * im.height > MAX_PIXELS:
        raise IrcError(f"image is larger than {MAX_PIXELS} pixels (decompression bomb guard)")
    if im.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        notes.append(f"{im.mode} input reduced to 8 bits per channel")
        arr = np.asarray(im, dtype=np.float64)
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
    return LoadedImage(np.ascontiguousarray(rgb), alpha, mode, source_mode, icc, notes)


def load(source) -> LoadedImage:
    """Read a path, PIL image or numpy array (H, W[, 3|4], uint8)."""
    from PIL import Image

    if isinstance(source, Image.Image):
        return from_pil(source)
    if isinstance(source, np.ndarray):
        arr = source
        if arr.dtype != np.uint8:
            if np.issubdtype(arr.dtype, np.floating):
                arr = np.clip(np.round(arr * 255.0), 0, 255).astype(np.uint8)
            else:
                raise IrcError(f"numpy input must be uint8 or float in [0, 1], got {arr.dtype}")
        if arr.ndim == 2:
            return from_pil(Image.fromarray(arr, "L"))
        if arr.ndim == 3 and arr.shape[2] in (3, 4):
            return from_pil(Image.fromarray(np.ascontiguousarray(arr), "RGB" if arr.shape[2] == 3 else "RGBA"))
        raise IrcError(f"numpy input must be (H, W), (H, W, 3) or (H, W, 4), got {arr.shape}")
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.exists():
            raise IrcError(f"no such file: {path}")
        return from_pil(_open(path))
    raise IrcError(f"cannot read an image from {type(source).__name__}")


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


def decode_alpha(data: bytes) -> np.ndarray:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im.convert("L"))


def atomic_write(path: str | Path, data: bytes, force: bool = False) -> None:
    """Write via a temporary file in the same folder and rename; never clobber without force."""
    path = Path(path)
    if path.exists() and not force:
        raise IrcError(f"{path} exists; use --force to overwrite")
    if not path.parent.exists():
        raise IrcError(f"output folder does not exist: {path.parent}")
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the usual permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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
