"""The .irc file format (version 1.6). See docs/FORMAT.md.

    magic    8 bytes   89 49 52 43 0D 0A 1A 0A   ("\\x89IRC\\r\\n\\x1a\\n")
    version  2 bytes   major, minor
    chunks   repeated: tag (4 ASCII bytes), length (uint32 big-endian), data
    crc      4 bytes   CRC-32 (zlib) of every byte before it

Chunks: HEDZ (the UTF-8 JSON header, deflated with irc.headz's preset dictionary; 1.0-1.5
files have it plain in HEAD; first, required), LRIM (the LR bitstream
exactly as the codec wrote it, required), ICCP (ICC profile, optional), ALPH
(alpha plane as PNG, optional), BNDY (BDFlow's boundary map as a palette PNG, 1.5;
present exactly when the header's ``boundary_bits`` is). Unknown chunks are skipped by readers of the
same major version. The header is checked against a schema (:func:`check_header`)
on read and on write, so a file that loads is one the decoder can trust.

``layout="viewable"`` makes the file the PNG or JPEG LR image itself: the same
container, with an ``LREF`` chunk naming the host format in place of ``LRIM``
and its CRC-32 covering the container and then every byte of the LR bitstream,
rides inside it as an opaque blob (irc.viewable puts it into the PNG chunk /
JPEG segments and takes it out). Viewers show the LR, irc reads the whole file.
"""

from __future__ import annotations

import json
import math
import re
import struct
import zlib
from dataclasses import asdict, dataclass, field

from irc import headz, viewable
from irc.errors import IrcError, IrcFormatError

MAGIC = b"\x89IRC\r\n\x1a\n"
# 1.1: crm + crm_sha256 in HEAD; 1.2: model_version, crm_version, source_bits, the viewable layout;
# 1.3: scale 1 (no model: the model keys are null), the optional rate_control object, precision;
# 1.4: any scale (3, 6, 2.5, ...): the optional model_scale and resample keys
# 1.5: the optional lr_mode key: "L", a grayscale LR made by a colour model (IRN_color) at scale 1;
#      the optional boundary_bits key and BNDY chunk: BDFlow's quantised boundary map (side information)
# 1.6: the header in HEDZ (deflated with a preset dictionary, irc.headz) in place of HEAD: 300+ bytes less
VERSION = (1, 6)
LAYOUTS = ("irc", "viewable")
MODES = ("RGB", "RGBA", "L", "LA")
LR_MODES = ("RGB", "L")  # the stored image: colour, or the grayscale carrier of a colour model (1.5)
MAX_SCALE = 16  # the largest scale a header may name (1: the LR is the image itself, stored without a model)
RESAMPLERS = ("bicubic-antialias",)  # how a resampled file's HR is brought to and from the model's grid
NO_MODEL_KEYS = ("model", "weights_sha256", "model_version", "crm", "crm_sha256", "crm_version")  # null at scale 1
MAX_PIXELS = 178_956_970  # as irc.imageio.MAX_PIXELS: Pillow's decompression-bomb limit


@dataclass
class Header:
    model: str | None  # registry name, e.g. "irn-x4"; None only at scale 1 (no model)
    weights_sha256: str | None  # first 16 hex digits of the weights file's SHA-256; None only at scale 1
    scale: int | float  # the scale asked for: an integer 1-16, or a fraction such as 2.5 (1.4)
    codec: str
    codec_version: str
    quality: int | None  # None: lossless
    width: int  # original size (before padding)
    height: int
    mode: str  # mode of the decoded image: RGB, RGBA, L, LA
    source_mode: str  # mode of the input as read (e.g. P, CMYK, I;16)
    lr_width: int
    lr_height: int
    crm: str | None = None  # restore model applied to a lossy LR before the inverse
    crm_sha256: str | None = None  # first 16 hex digits of the CRM weights' SHA-256
    model_version: int | None = None  # registry version of the weights (None: files before 1.2)
    crm_version: int | None = None
    source_bits: int | None = None  # bits per channel of the input (16 for a 48-bit PNG); None: before 1.2
    rate_control: dict | None = None  # what `irc encode --target-psnr/--max-bytes` promised (1.3); None: not used
    precision: str | None = None  # "fp32" or "bf16": what the encoder's model pass ran in (1.3); None: unknown/no model
    model_scale: int | None = None  # the model's own scale when it differs from ``scale`` (1.4); None: the same
    resample: str | None = None  # how the HR was resampled around the model (1.4); None: not resampled
    lr_mode: str | None = None  # "L": the LR is grayscale, the model restores colour (1.5); None: "RGB"
    boundary_bits: int | None = None  # bits per level of the BNDY boundary map (1.5); None: no map
    extra: dict = field(default_factory=dict)

    @property
    def lossless(self) -> bool:
        return self.quality is None

    @property
    def lr_channels(self) -> int:
        """Channels of the stored image: 1 for a grayscale carrier, else 3."""
        return 1 if self.lr_mode == "L" else 3

    @property
    def net_scale(self) -> int:
        """The scale of the model that made the LR (``scale`` unless the file was resampled)."""
        return self.scale if self.model_scale is None else self.model_scale


def lr_size(width: int, height: int, scale: int | float, resampled: bool) -> tuple[int, int]:
    """The LR size of an image: ceil(size / scale) when the input is padded to a multiple of the
    scale, the nearest integer (halves up, at least 1) when it is resampled to the model's grid."""
    if resampled:
        return max(1, math.floor(width / scale + 0.5)), max(1, math.floor(height / scale + 0.5))
    return -(-width // scale), -(-height // scale)


@dataclass
class IrcFile:
    header: Header
    payload: bytes  # the LR bitstream, byte for byte what the codec wrote
    icc_profile: bytes | None = None
    alpha: bytes | None = None
    boundary: bytes | None = None  # the BNDY chunk: a PNG of boundary levels (irc.boundary), with boundary_bits
    layout: str = field(default="irc", compare=False)  # how the file was laid out: irc or viewable
    file_bytes: int = field(default=0, compare=False)  # size of the file it was read from (0: not read)


# ---- the header schema -----------------------------------------------------------------------

_HEX16 = re.compile(r"[0-9a-f]{16}\Z")
_TEXT = re.compile(r"[^\x00-\x1f\x7f]{1,200}\Z")  # a non-empty line of at most 200 characters


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)  # JSON true is not a size


def _text(v) -> bool:
    return isinstance(v, str) and _TEXT.match(v) is not None


def _hex16(v) -> bool:
    return isinstance(v, str) and _HEX16.match(v) is not None


def _positive(v) -> bool:
    return _is_int(v) and 1 <= v <= MAX_PIXELS


def _version(v) -> bool:
    return v is None or (_is_int(v) and 1 <= v < 2**31)


def _number(v, low: float, inclusive: bool) -> bool:
    return (isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
            and (v >= low if inclusive else v > low))


# rate_control keys -> test of a non-null value; every key may be missing or null, unknown ones are ignored
_RATE_CONTROL = {
    "target_psnr": lambda v: _number(v, 0, False),
    "max_bytes": lambda v: _is_int(v) and v >= 1,
    "max_bpp": lambda v: _number(v, 0, False),
    "psnr_rgb": lambda v: _number(v, 0, True),  # null: the decode equals the input (infinite PSNR)
}


def _rate_control(v) -> bool:
    return v is None or (isinstance(v, dict) and all(
        v.get(k) is None or test(v[k]) for k, test in _RATE_CONTROL.items()))


# key -> (required, test, what it must be)
_SCHEMA = {
    "model": (True, lambda v: v is None or _text(v), "a model name (null only at scale 1)"),
    "weights_sha256": (True, lambda v: v is None or _hex16(v), "16 lowercase hex digits (null only at scale 1)"),
    "scale": (True, lambda v: (_is_int(v) and 1 <= v <= MAX_SCALE) or (isinstance(v, float) and _number(v, 1, False)
              and v < MAX_SCALE and not v.is_integer()), f"an integer 1-{MAX_SCALE} or a fraction such as 2.5"),
    "codec": (True, lambda v: isinstance(v, str) and re.fullmatch(r"[a-z0-9]{1,16}", v) is not None,
              "a codec name"),
    "codec_version": (True, _text, "a string"),
    "quality": (True, lambda v: v is None or (_is_int(v) and 0 <= v <= 100), "null or an integer 0-100"),
    "width": (True, _positive, "a positive integer"),
    "height": (True, _positive, "a positive integer"),
    "mode": (True, lambda v: v in MODES if isinstance(v, str) else False, "one of " + ", ".join(MODES)),
    "source_mode": (True, lambda v: isinstance(v, str) and re.fullmatch(r"[A-Za-z0-9;]{1,16}", v) is not None,
                    "a Pillow mode"),
    "lr_width": (True, _positive, "a positive integer"),
    "lr_height": (True, _positive, "a positive integer"),
    "crm": (False, lambda v: v is None or _text(v), "null or a model name"),
    "crm_sha256": (False, lambda v: v is None or _hex16(v), "null or 16 lowercase hex digits"),
    "model_version": (False, _version, "null or an integer >= 1"),
    "crm_version": (False, _version, "null or an integer >= 1"),
    "source_bits": (False, lambda v: v is None or (_is_int(v) and 1 <= v <= 64), "null or an integer 1-64"),
    "precision": (False, lambda v: v is None or _text(v), "null or a string such as \"fp32\""),
    "model_scale": (False, lambda v: v is None or (_is_int(v) and 2 <= v <= MAX_SCALE),
                    f"null or an integer 2-{MAX_SCALE}"),
    "resample": (False, lambda v: v is None or v in RESAMPLERS, "null or " + ", ".join(RESAMPLERS)),
    "lr_mode": (False, lambda v: v is None or v in LR_MODES, "null or " + ", ".join(LR_MODES)),
    "boundary_bits": (False, lambda v: v is None or (_is_int(v) and 1 <= v <= 3), "null or an integer 1-3"),
    "rate_control": (False, _rate_control, ("null or an object whose target_psnr, max_bytes, max_bpp and "
                                            "psnr_rgb are null or finite numbers (max_bytes an integer >= 1)")),
    "extra": (False, lambda v: isinstance(v, dict), "an object"),
}


def valid_icc(profile: bytes) -> bool:
    """The shape of an ICC profile: a 128-byte header whose signature at offset 36 is 'acsp'."""
    return len(profile) >= 132 and profile[36:40] == b"acsp"


def _bad(message: str) -> IrcFormatError:
    return IrcFormatError(f"corrupt .irc header: {message}")


def _show(v) -> str:
    text = json.dumps(v) if isinstance(v, (str, int, float, bool, type(None))) else type(v).__name__
    return text if len(text) <= 40 else text[:37] + "..."


def check_header(raw) -> Header:
    """A Header from a decoded header object, or IrcFormatError naming the first bad key.

    Types are exact (JSON true is not an integer), sizes are positive and below
    the decompression-bomb limit, the LR size is ceil(original / scale), and
    keys this version does not know are ignored (a newer minor version may add some).
    """
    if not isinstance(raw, dict):
        raise _bad(f"the header is {type(raw).__name__}, not a JSON object")
    for key, (required, test, what) in _SCHEMA.items():
        if key not in raw:
            if required:
                raise _bad(f"{key!r} is missing")
            continue
        if not test(raw[key]):
            raise _bad(f"{key!r} must be {what}, got {_show(raw[key])}")
    if raw["width"] * raw["height"] > MAX_PIXELS:
        raise _bad(f"image size {raw['width']}x{raw['height']} is above the decompression-bomb limit")
    s = raw["scale"]
    gray = raw.get("lr_mode") == "L"
    if gray and s != 1:
        raise _bad(f"'lr_mode' L (a grayscale LR from a colour model) needs scale 1, got scale {s}")
    if raw.get("boundary_bits") is not None and s == 1:
        raise _bad("'boundary_bits' must be null at scale 1 (a boundary map comes with a rescaling model)")
    if gray and raw.get("crm") is not None:
        raise _bad("'crm' must be null with 'lr_mode' L (no restore model takes a grayscale LR)")
    if s == 1 and not gray:  # the LR is the image: no model, so no CRM either
        for key in NO_MODEL_KEYS:
            if raw.get(key) is not None:
                raise _bad(f"{key!r} must be null at scale 1 (no model), got {_show(raw[key])}")
    else:  # a model made the LR (a rescaler, or at scale 1 a colour model)
        for key in ("model", "weights_sha256"):
            if raw[key] is None:
                raise _bad(f"{key!r} must be {_SCHEMA[key][2]}, got null")
    resampled = _check_resampling(raw)
    if (raw["lr_width"], raw["lr_height"]) != lr_size(raw["width"], raw["height"], s, resampled):
        raise _bad(f"'lr_width' x 'lr_height' {raw['lr_width']}x{raw['lr_height']} does not match "
                   f"{raw['width']}x{raw['height']} at scale {s}")
    if raw.get("crm") is not None and raw.get("crm_sha256") is None:
        raise _bad("'crm' is set without 'crm_sha256'")
    return Header(**{k: raw[k] for k in _SCHEMA if k in raw})


def _check_resampling(raw: dict) -> bool:
    """model_scale and resample come together, exactly when the model's scale is not the scale."""
    s, ms, how = raw["scale"], raw.get("model_scale"), raw.get("resample")
    if ms is None and how is None:
        if not _is_int(s):
            raise _bad(f"scale {s} is not an integer, so 'model_scale' and 'resample' must be set")
        return False
    if ms is None or how is None:
        raise _bad("'model_scale' and 'resample' must be set together")
    if s == 1:
        raise _bad("'model_scale' and 'resample' must be null at scale 1 (no model)")
    if ms <= s:
        raise _bad(f"'model_scale' {ms} must be above the scale {s} (the model's LR is resampled from a larger HR)")
    return True


# ---- bytes ------------------------------------------------------------------------------------

def _chunk(tag: bytes, data: bytes) -> bytes:
    return tag + struct.pack(">I", len(data)) + data


def body(f: IrcFile, lr_chunk: bytes) -> bytes:
    """Magic, version, HEDZ, the LR chunk (LRIM, or LREF in the viewable layout), ICCP, ALPH."""
    head = asdict(f.header)
    check_header(head)  # never write a file this reader would refuse
    for key in ("rate_control", "model_scale", "resample", "lr_mode", "boundary_bits"):
        if head[key] is None:
            del head[key]  # written only when used, so other files keep their size
    if f.icc_profile and not valid_icc(f.icc_profile):
        raise IrcError("icc_profile is not an ICC profile (no 'acsp' signature)")
    text = json.dumps(head, separators=(",", ":")).encode()
    parts = [MAGIC, bytes(VERSION), _chunk(b"HEDZ", headz.pack(text)), lr_chunk]
    if f.icc_profile:
        parts.append(_chunk(b"ICCP", bytes(f.icc_profile)))
    if f.alpha:
        parts.append(_chunk(b"ALPH", bytes(f.alpha)))
    if (f.boundary is not None) != (f.header.boundary_bits is not None):
        raise IrcError("a boundary map and boundary_bits go together")
    if f.boundary is not None:
        parts.append(_chunk(b"BNDY", bytes(f.boundary)))
    return b"".join(parts)


def dumps(f: IrcFile, layout: str = "irc") -> bytes:
    """The bytes of an .irc file; ``layout="viewable"``: the PNG/JPEG LR with the container inside."""
    if layout == "viewable":
        return _dumps_viewable(f)
    if layout != "irc":
        raise IrcError(f"unknown layout {layout!r}; choose one of {', '.join(LAYOUTS)}")
    data = body(f, _chunk(b"LRIM", bytes(f.payload)))
    return data + struct.pack(">I", zlib.crc32(data))


def _dumps_viewable(f: IrcFile) -> bytes:
    host = f.header.codec  # the LR codec's name is the host format's
    if host not in viewable.FORMATS:
        raise IrcError(f"the viewable layout needs the png or jpeg LR codec, not {host}")
    lr = bytes(f.payload)
    inner = body(f, _chunk(b"LREF", host.encode()))
    if viewable.format_of(lr) != host:
        raise IrcFormatError(f"the {host} payload is not a {host.upper()} file")
    return viewable.embed(lr, inner + struct.pack(">I", zlib.crc32(lr, zlib.crc32(inner))))


def loads(data: bytes) -> IrcFile:
    """Parse and check .irc bytes (either layout): magic, version, checksum, chunks, header."""
    data = bytes(data)
    f = parse(data) if data[: len(MAGIC)] == MAGIC else _loads_viewable(data)
    f.file_bytes = len(data)
    return f


def _loads_viewable(data: bytes) -> IrcFile:
    host = viewable.format_of(data)
    found = viewable.split(data)
    if found is None:
        raise IrcFormatError("not an .irc file (wrong magic bytes)" if host is None else
                             f"not an .irc file (wrong magic bytes: a {host.upper()} image without irc data)")
    blob, lr = found
    f = parse(blob, lr, host)
    if f.header.codec != host:
        raise IrcFormatError(f"corrupt .irc header: codec {f.header.codec} in a {host.upper()} file")
    return f


_KNOWN = (b"HEAD", b"HEDZ", b"LRIM", b"LREF", b"ICCP", b"ALPH", b"BNDY")
HEADS = (b"HEAD", b"HEDZ")  # the header chunk: plain JSON (1.0-1.5) or deflated (1.6, irc.headz)


def parse(blob: bytes, lr: bytes | None = None, host: str | None = None) -> IrcFile:
    """Check and split a container; with ``lr`` (viewable layout) the checksum also covers
    those bytes, which stand in for the LRIM chunk, and an LREF chunk must name ``host``."""
    if len(blob) < len(MAGIC) or blob[: len(MAGIC)] != MAGIC:
        raise IrcFormatError("not an .irc file (wrong magic bytes)")
    if len(blob) < len(MAGIC) + 2 + 4:
        raise IrcFormatError("truncated .irc file")
    major, minor = blob[8], blob[9]
    if major != VERSION[0]:
        raise IrcFormatError(f"unsupported .irc version {major}.{minor} (this irc reads {VERSION[0]}.x)")
    data, (crc,) = blob[:-4], struct.unpack(">I", blob[-4:])
    actual = zlib.crc32(data) if lr is None else zlib.crc32(lr, zlib.crc32(data))
    if actual != crc:
        raise IrcFormatError("corrupt or truncated .irc file (checksum mismatch)")
    chunks: dict[bytes, bytes] = {}
    pos = 10
    while pos < len(data):
        if pos + 8 > len(data):
            raise IrcFormatError("corrupt .irc file (chunk header cut short)")
        tag, (length,) = data[pos : pos + 4], struct.unpack(">I", data[pos + 4 : pos + 8])
        if pos + 8 + length > len(data):
            raise IrcFormatError("corrupt .irc file (chunk runs past the end)")
        if pos == 10 and tag not in HEADS:
            if minor > VERSION[1]:
                raise IrcFormatError(f"this .irc file is version {major}.{minor}, newer than this irc reads "
                                     f"({VERSION[0]}.{VERSION[1]}): upgrade irc to decode it")
            raise IrcFormatError("corrupt .irc file (the header is not the first chunk)")
        if pos > 10 and tag in HEADS:
            raise IrcFormatError("corrupt .irc file (a second header chunk)")
        if tag in chunks and tag in _KNOWN:  # a later minor version may repeat chunks of its own
            raise IrcFormatError(f"corrupt .irc file (two {tag.decode('latin-1')!r} chunks)")
        chunks[tag] = data[pos + 8 : pos + 8 + length]
        pos += 8 + length
    head = chunks[b"HEAD"] if b"HEAD" in chunks else headz.unpack(chunks[b"HEDZ"]) if b"HEDZ" in chunks else None
    if lr is None:
        if head is None or b"LRIM" not in chunks:
            raise IrcFormatError("corrupt .irc file (missing header or LRIM chunk)")
        payload = chunks[b"LRIM"]
    else:
        if head is None or chunks.get(b"LREF") != (host or "").encode() or b"LRIM" in chunks:
            raise IrcFormatError(f"corrupt .irc file (the irc data does not belong to this {host} image)")
        payload = lr
    try:
        raw = json.loads(head.decode("utf-8"))
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise _bad(f"the header is not JSON ({type(exc).__name__})") from None
    header = check_header(raw)
    if chunks.get(b"ICCP") and not valid_icc(chunks[b"ICCP"]):
        raise IrcFormatError("corrupt .irc file (the ICCP chunk is not an ICC profile)")
    if header.mode in ("RGBA", "LA") and not chunks.get(b"ALPH"):
        raise IrcFormatError(f"corrupt .irc file (mode {header.mode} without an ALPH chunk)")
    if (b"BNDY" in chunks) != (header.boundary_bits is not None):
        raise IrcFormatError("corrupt .irc file (a BNDY chunk without boundary_bits in the header, or the reverse)")
    return IrcFile(header, payload, chunks.get(b"ICCP") or None, chunks.get(b"ALPH") or None,
                   boundary=chunks.get(b"BNDY"), layout="irc" if lr is None else "viewable")
