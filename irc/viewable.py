"""Host formats of the viewable layout: an opaque blob carried inside a PNG or JPEG.

This module knows PNG chunks and JPEG APPn segments and nothing of what the blob
holds (irc.container builds and checks that: the irc data with its ``LREF`` chunk
and the CRC-32 over it and the image). The blob rides in

* PNG: one ancillary, private, unsafe-to-copy chunk ``irCD`` right after ``IHDR``
  (so an editor that changes the pixels drops it instead of copying stale data);
* JPEG: consecutive APP15 segments after SOI (and JFIF's APP0), each
  ``"IRC\\0"``, a 2-byte index and a 2-byte count, then up to 65 525 bytes of it.

:func:`embed` puts a blob into an image; :func:`split` takes it out again and
gives the image back byte for byte as it was before (``irc extract``).
See docs/FORMAT.md.
"""

from __future__ import annotations

import struct
import zlib

from irc.errors import IrcError, IrcFormatError

FORMATS = ("png", "jpeg")  # what format_of tells apart, and what embed and split handle
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_TAG = b"irCD"  # ancillary (i), private (r), reserved bit clear (C), unsafe to copy (D)
JPEG_SOI = b"\xff\xd8\xff"
JPEG_MARKER = 0xEF  # APP15
JPEG_ID = b"IRC\x00"
JPEG_PIECE = 65533 - len(JPEG_ID) - 4  # data bytes per APP15 segment (segment length field <= 65535)


def format_of(data: bytes) -> str | None:
    """``"png"`` or ``"jpeg"`` by the leading bytes, None for anything else."""
    if data.startswith(PNG_SIGNATURE):
        return "png"
    if data.startswith(JPEG_SOI):
        return "jpeg"
    return None


def embed(image: bytes, blob: bytes) -> bytes:
    """``image`` (a PNG or JPEG file) with ``blob`` in an ``irCD`` chunk / APP15 segments."""
    image = bytes(image)
    fmt = format_of(image)
    if fmt is None:
        raise IrcFormatError("the viewable layout needs a PNG or JPEG image to carry the irc data")
    if fmt == "png":
        at = _png_chunks(image)[0][1]  # right after IHDR: found at once, and a cut file still shows it
        return image[:at] + _png_chunk(PNG_TAG, blob) + image[at:]
    at = _jpeg_insert_at(image)
    return image[:at] + _jpeg_segments(blob) + image[at:]


def split(data: bytes) -> tuple[bytes, bytes] | None:
    """(blob, image) from a PNG or JPEG made by :func:`embed`, the image byte for byte as it was.

    None for data that is no PNG or JPEG, or one without a blob (an ordinary image,
    even one this walk cannot read); IrcFormatError for one whose blob is damaged.
    """
    fmt = format_of(data)
    if fmt is None:
        return None
    take, mark = (_png_split, PNG_TAG) if fmt == "png" else (_jpeg_split, bytes([0xFF, JPEG_MARKER]))
    try:
        blob, image = take(data)
    except IrcFormatError:
        if mark in data:  # a damaged blob, or a cut file
            raise
        return None
    return None if blob is None else (blob, image)


# ---- PNG --------------------------------------------------------------------------------------

def _png_chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))


def _png_chunks(data: bytes) -> list[tuple[int, int, bytes]]:
    """(start, end, tag) of each chunk up to and including IEND; IrcFormatError if cut short."""
    if not data.startswith(PNG_SIGNATURE):
        raise IrcFormatError("the png payload is not a PNG file")
    out, pos = [], len(PNG_SIGNATURE)
    while True:
        if pos + 12 > len(data):
            raise IrcFormatError("corrupt or truncated .irc file (PNG chunk cut short)")
        (length,), tag = struct.unpack(">I", data[pos : pos + 4]), data[pos + 4 : pos + 8]
        end = pos + 12 + length
        if length > 2**31 - 1 or end > len(data):
            raise IrcFormatError("corrupt or truncated .irc file (PNG chunk runs past the end)")
        out.append((pos, end, tag))
        if tag == b"IEND":
            return out
        pos = end


def _png_split(data: bytes) -> tuple[bytes | None, bytes]:
    ours = [(a, b) for a, b, tag in _png_chunks(data) if tag == PNG_TAG]
    if not ours:
        return None, data
    if len(ours) > 1:
        raise IrcFormatError(f"corrupt .irc file (two {PNG_TAG.decode()} chunks)")
    a, b = ours[0]
    if zlib.crc32(data[a + 4 : b - 4]) != struct.unpack(">I", data[b - 4 : b])[0]:
        raise IrcFormatError("corrupt or truncated .irc file (checksum mismatch)")
    return data[a + 8 : b - 4], data[:a] + data[b:]


# ---- JPEG -------------------------------------------------------------------------------------

def _jpeg_segments(blob: bytes) -> bytes:
    pieces = [blob[i : i + JPEG_PIECE] for i in range(0, len(blob), JPEG_PIECE)]
    if len(pieces) > 0xFFFF:
        raise IrcError("irc data too large for the JPEG viewable layout")
    out = []
    for i, piece in enumerate(pieces):
        content = JPEG_ID + struct.pack(">HH", i, len(pieces)) + piece
        out.append(bytes([0xFF, JPEG_MARKER]) + struct.pack(">H", len(content) + 2) + content)
    return b"".join(out)


def _jpeg_markers(data: bytes) -> list[tuple[int, int, int]]:
    """(start, end, marker) of each segment after SOI, up to (not into) the first SOS."""
    out, pos = [], 2
    while True:
        if pos + 4 > len(data) or data[pos] != 0xFF:
            raise IrcFormatError("corrupt or truncated .irc file (JPEG segment expected)")
        marker = data[pos + 1]
        if marker == 0xDA or marker == 0xD9:  # start of scan / end of image: no more headers
            return out
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        if length < 2 or pos + 2 + length > len(data):
            raise IrcFormatError("corrupt or truncated .irc file (JPEG segment runs past the end)")
        out.append((pos, pos + 2 + length, marker))
        pos += 2 + length


def _jpeg_insert_at(payload: bytes) -> int:
    if not payload.startswith(b"\xff\xd8"):
        raise IrcFormatError("the jpeg payload is not a JPEG file")
    segments = _jpeg_markers(payload)
    if segments and segments[0][2] == 0xE0:  # JFIF's APP0 stays first
        return segments[0][1]
    return 2


def _jpeg_split(data: bytes) -> tuple[bytes | None, bytes]:
    ours = [(a, b) for a, b, m in _jpeg_markers(data) if m == JPEG_MARKER and data[a + 4 : a + 8] == JPEG_ID]
    if not ours:
        return None, data
    pieces = []
    for i, (a, b) in enumerate(ours):
        if b - a < 12:
            raise IrcFormatError("corrupt .irc file (short irc segment in the JPEG)")
        index, count = struct.unpack(">HH", data[a + 8 : a + 12])
        if index != i or count != len(ours) or (i and a != ours[i - 1][1]):
            raise IrcFormatError("corrupt .irc file (irc segments of the JPEG out of order)")
        pieces.append(data[a + 12 : b])
    return b"".join(pieces), data[: ours[0][0]] + data[ours[-1][1] :]
