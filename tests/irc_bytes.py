"""Test helpers: take .irc files apart and put them back together with the checksum fixed."""

from __future__ import annotations

import json
import struct
import zlib

from irc import container, headz, viewable


def chunks_of(blob: bytes) -> list[tuple[bytes, bytes]]:
    """(tag, data) of each chunk of a plain-layout container."""
    out, pos, body = [], 10, blob[:-4]
    while pos < len(body):
        (n,) = struct.unpack(">I", body[pos + 4 : pos + 8])
        out.append((body[pos : pos + 4], body[pos + 8 : pos + 8 + n]))
        pos += 8 + n
    return out


def build(chunks, version=bytes(container.VERSION), host=None, lr=b"") -> bytes:
    """A container from (tag, data) chunks, checksum fixed; with ``host``, the viewable layout."""
    body = container.MAGIC + version + b"".join(t + struct.pack(">I", len(d)) + d for t, d in chunks)
    if host is None:
        return body + struct.pack(">I", zlib.crc32(body))
    blob = body + struct.pack(">I", zlib.crc32(lr, zlib.crc32(body)))
    if host == "png":
        at = viewable._png_chunks(lr)[0][1]
        return lr[:at] + viewable._png_chunk(viewable.PNG_TAG, blob) + lr[at:]
    at = viewable._jpeg_insert_at(lr)
    return lr[:at] + viewable._jpeg_segments(blob) + lr[at:]


def head_text(chunk: tuple[bytes, bytes]) -> bytes:
    """The JSON text of a header chunk: HEAD (1.0-1.5) as it is, HEDZ (1.6) inflated."""
    tag, data = chunk
    return headz.unpack(data) if tag == b"HEDZ" else data


def head_of(data: bytes) -> dict:
    return json.loads(head_text(chunks_of(data)[0]))


def with_head(data: bytes, edit=None, raw: bytes | None = None) -> bytes:
    """A plain-layout file with its header changed by ``edit(dict)`` (or replaced by ``raw``),
    written back in the chunk it came in (HEDZ deflated), checksum fixed."""
    parts = chunks_of(data)
    if raw is None:
        head = json.loads(head_text(parts[0]))
        edit(head)
        raw = json.dumps(head).encode()
    tag = parts[0][0]
    return build([(tag, headz.pack(raw) if tag == b"HEDZ" else raw)] + parts[1:])


def with_chunk(data: bytes, tag: bytes, new: bytes | None) -> bytes:
    """A plain-layout file with chunk ``tag`` replaced (added if absent; removed if ``new`` is None)."""
    parts = [(t, d) for t, d in chunks_of(data) if t != tag]
    if new is not None:
        parts.append((tag, new))
    return build(parts)
