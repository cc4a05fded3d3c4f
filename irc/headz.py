"""The compact header chunk of .irc 1.6: ``HEDZ``, the JSON header deflated with a preset dictionary.

The plain ``HEAD`` chunk costs 300-450 bytes, about 10 % of a 0.1 bpp Kodak file: more than
rate control can win back against the codec alone at low rates. Its text is the same few
keys and values every time, so raw deflate (RFC 1951, zlib ``wbits=-15``) primed with the
dictionary below shrinks it to 60-130 bytes. The dictionary is part of the format: it must
never change (a new one would need a new chunk tag). Readers take ``HEAD`` (1.0-1.5 files)
or ``HEDZ``; irc writes ``HEDZ`` from 1.6 on.
"""

from __future__ import annotations

import zlib

from irc.errors import IrcFormatError

# Header keys in the writer's order with typical values, then frequent names. Byte-exact: a
# change here breaks every 1.6 file. (Spelled out in docs/FORMAT.md.)
DICTIONARY = (
    b'Pillow 13.0.0 (jpg 6.2)Pillow 13.0.0 (webp 1.6.0)Pillow 13.0.0 (zlib 1.2.13)'
    b'imagecodecs 2026.3.6 (libjxl 0.11.2)'
    b'"model":"irn-x2-jpeg","model":"fgrn-x4","model":"hcflow-x4","model":"bdflow-x8","model":"irn-color",'
    b'"crm":"crm-x4-jpeg","crm":"crm-fgrn-x2-jpeg","model_scale":4,"resample":"bicubic-antialias",'
    b'"lr_mode":"L","boundary_bits":2,"mode":"RGBA","source_mode":"I;16","source_bits":16,'
    b'"rate_control":{"target_psnr":null,"max_bytes":null,"max_bpp":null,"psnr_rgb":3'
    b'{"model":"irn-x4","weights_sha256":"","scale":2,"codec":"jpeg","codec_version":"Pillow 13.0.0 (jpg 6.2)",'
    b'"quality":40,"width":1024,"height":768,"mode":"RGB","source_mode":"RGB","lr_width":512,"lr_height":384,'
    b'"crm":"crm-x2-jpeg","crm_sha256":"","model_version":1,"crm_version":1,"source_bits":8,"precision":"bf16",'
    b'"extra":{}}'
    b'{"model":null,"weights_sha256":null,"scale":1,"codec":"avif",'
    b'"codec_version":"imagecodecs 2026.3.6 (libavif 1.4.0)","quality":null,"width":,"height":,"mode":"RGB",'
    b'"source_mode":"RGB","lr_width":,"lr_height":,"crm":null,"crm_sha256":null,"model_version":null,'
    b'"crm_version":null,"source_bits":8,"precision":null,'
)
MAX_HEADER = 1 << 16  # bytes of JSON a header may inflate to (far above any real one): no inflation bomb


def pack(text: bytes) -> bytes:
    """The HEDZ chunk's data for the header's UTF-8 JSON ``text``."""
    c = zlib.compressobj(9, zlib.DEFLATED, -15, 9, zlib.Z_DEFAULT_STRATEGY, DICTIONARY)
    return c.compress(text) + c.flush()


def unpack(data: bytes) -> bytes:
    """The header's JSON text from a HEDZ chunk; IrcFormatError if it is not one complete deflate
    stream with nothing after it, or inflates beyond MAX_HEADER."""
    d = zlib.decompressobj(-15, DICTIONARY)
    try:
        text = d.decompress(bytes(data), MAX_HEADER)
    except zlib.error:
        raise IrcFormatError("corrupt .irc header (HEDZ is not a deflate stream)") from None
    if d.unconsumed_tail:
        raise IrcFormatError(f"corrupt .irc header (HEDZ inflates beyond {MAX_HEADER:,} bytes)")
    if not d.eof or d.unused_data:
        raise IrcFormatError("corrupt .irc header (HEDZ is cut short or has bytes after its end)")
    return text
