"""The .irc file format (version 1.1). See docs/FORMAT.md.

    magic    8 bytes   89 49 52 43 0D 0A 1A 0A   ("\\x89IRC\\r\\n\\x1a\\n")
    version  2 bytes   major, minor
    chunks   repeated: tag (4 ASCII bytes), length (uint32 big-endian), data
    crc      4 bytes   CRC-32 (zlib) of every byte before it

Chunks: HEAD (UTF-8 JSON header, first, required), LRIM (the LR bitstream
exactly as the codec wrote it, required), ICCP (ICC profile, optional), ALPH
(alpha plane as PNG, optional). Unknown chunks are skipped by readers of the
same major version.
"""

from __future__ import annotations

import json
import struct
import zlib
from dataclasses import asdict, dataclass, field

from irc.errors import IrcError

MAGIC = b"\x89IRC\r\n\x1a\n"
VERSION = (1, 1)  # 1.1: crm + crm_sha256 in HEAD (1.0 readers ignore them)


@dataclass
class Header:
    model: str  # registry name, e.g. "irn-x4"
    weights_sha256: str  # first 16 hex digits of the weights file's SHA-256
    scale: int
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
    extra: dict = field(default_factory=dict)

    @property
    def lossless(self) -> bool:
        return self.quality is None


@dataclass
class IrcFile:
    header: Header
    payload: bytes
    icc_profile: bytes | None = None
    alpha: bytes | None = None


def _chunk(tag: bytes, data: bytes) -> bytes:
    return tag + struct.pack(">I", len(data)) + data


def dumps(f: IrcFile) -> bytes:
    parts = [MAGIC, bytes(VERSION),
             _chunk(b"HEAD", json.dumps(asdict(f.header), separators=(",", ":")).encode()),
             _chunk(b"LRIM", f.payload)]
    if f.icc_profile:
        parts.append(_chunk(b"ICCP", f.icc_profile))
    if f.alpha:
        parts.append(_chunk(b"ALPH", f.alpha))
    body = b"".join(parts)
    return body + struct.pack(">I", zlib.crc32(body))


def loads(data: bytes) -> IrcFile:
    if len(data) < len(MAGIC) or data[: len(MAGIC)] != MAGIC:
        raise IrcError("not an .irc file (wrong magic bytes)")
    if len(data) < len(MAGIC) + 2 + 4:
        raise IrcError("truncated .irc file")
    major, minor = data[8], data[9]
    if major != VERSION[0]:
        raise IrcError(f"unsupported .irc version {major}.{minor} (this irc reads {VERSION[0]}.x)")
    body, (crc,) = data[:-4], struct.unpack(">I", data[-4:])
    if zlib.crc32(body) != crc:
        raise IrcError("corrupt or truncated .irc file (checksum mismatch)")
    chunks: dict[bytes, bytes] = {}
    pos = 10
    while pos < len(body):
        if pos + 8 > len(body):
            raise IrcError("corrupt .irc file (chunk header cut short)")
        tag, (length,) = body[pos : pos + 4], struct.unpack(">I", body[pos + 4 : pos + 8])
        if pos + 8 + length > len(body):
            raise IrcError("corrupt .irc file (chunk runs past the end)")
        chunks[tag] = body[pos + 8 : pos + 8 + length]
        pos += 8 + length
    if b"HEAD" not in chunks or b"LRIM" not in chunks:
        raise IrcError("corrupt .irc file (missing HEAD or LRIM chunk)")
    try:
        raw = json.loads(chunks[b"HEAD"])
        known = set(Header.__dataclass_fields__)
        header = Header(**{k: v for k, v in raw.items() if k in known})
    except (ValueError, TypeError) as exc:
        raise IrcError(f"corrupt .irc header: {exc}") from None
    return IrcFile(header, chunks[b"LRIM"], chunks.get(b"ICCP"), chunks.get(b"ALPH"))
