"""Seeded fuzzing of irc.decode: only IrcError may come out, and nothing may hang.

Small valid files (16x16 and 15x13, scale 2, the tiny random-weight model, png and
jpeg LR, RGB / RGBA with an ICC profile / L, both layouts) are mutated: byte flips,
truncations, insertions, and edits with the checksum fixed up: header values of
the wrong type, nulls, huge numbers, missing and unknown keys, non-object and
non-JSON headers, dropped / duplicated / reordered / renamed chunks, corrupt
ALPH / ICCP / LRIM chunks and version bytes. A mutant that passes every check
is decoded for real, which is cheap at this size.
"""

from __future__ import annotations

import io
import json
import os
import random
import signal
import struct

import numpy as np
import pytest
from PIL import Image

from irc import api, container, headz, viewable
from irc.errors import IrcError
from tests.irc_bytes import build, chunks_of, head_text

SEED = 20240611
CASES = 5000
HANG_S = 60  # a hang guard, not a speed test: one decode of a 16x16 image takes milliseconds

VALUES = [None, True, False, 0, -1, 1, 2, 3, 7, 8, 16, 101, 2**31, 2**63, 10**30, 1.5, -0.0, "", "96", "RGB",
          "RGBA", "LA", "P", "png", "jpeg", "tiny-x2", "irn-x2", "0" * 16, "ABCDEF0123456789", "x" * 300,
          "a\nb", [], [1, 2], {}, {"a": 1}]
RAW_VALUES = ["1e400", "NaN", "-Infinity", "1" * 5000, "1.0", "12e1"]  # JSON text json.dumps cannot make


def _png(arr) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def seeds(tiny_models):
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    rgba = np.dstack([rng.integers(0, 256, (13, 15, 3), dtype=np.uint8), rng.integers(0, 256, (13, 15), dtype=np.uint8)])
    icc = bytes(36) + b"acsp" + bytes(100)
    im_rgba = Image.fromarray(rgba, "RGBA")
    im_rgba.info["icc_profile"] = icc
    gray = Image.fromarray(rgb[..., 0], "L")
    out = []
    for image, codec, q in [(rgb, "png", None), (im_rgba, "png", None), (gray, "jpeg", 60), (rgb, "jpeg", 30)]:
        for layout in ("irc", "viewable"):
            data = api.encode(image, scale=2, codec=codec, quality=q, layout=layout)
            f = container.loads(data)
            if layout == "irc":
                parts = chunks_of(data)
                out.append((data, parts, None, b""))
            else:
                blob, lr = (viewable._png_split if codec == "png" else viewable._jpeg_split)(data)
                out.append((data, chunks_of(blob), codec, f.payload))
    return out


def _mutate(rnd: random.Random, seed) -> tuple[str, bytes]:
    data, chunks, host, lr = seed
    kind = rnd.randrange(10)
    if kind == 0:  # byte flips anywhere, checksum not fixed
        b = bytearray(data)
        for _ in range(rnd.randint(1, 4)):
            b[rnd.randrange(len(b))] ^= 1 << rnd.randrange(8)
        return "flip", bytes(b)
    if kind == 1:
        return "truncate", data[: rnd.randrange(len(data))]
    if kind == 2:
        at = rnd.randrange(len(data))
        return "insert", data[:at] + bytes(rnd.randrange(256) for _ in range(rnd.randint(1, 8))) + data[at:]
    head = json.loads(head_text(chunks[0]))
    rest = list(chunks[1:])

    def header(text: bytes) -> tuple[bytes, bytes]:  # plain (1.0-1.5) or deflated (1.6), either may come
        return (b"HEDZ", headz.pack(text)) if rnd.random() < 0.5 else (b"HEAD", text)

    if kind in (3, 4, 5):  # one header value replaced, removed or added; checksum fixed
        key = rnd.choice(list(head) + ["unknown_key", "extra"])
        op = rnd.randrange(4)
        if op == 0:
            head.pop(key, None)
        text = json.dumps(head)
        if op == 1:
            head[key] = rnd.choice(VALUES)
            text = json.dumps(head)
        elif op in (2, 3):
            head[key] = "@RAW@"
            raw = rnd.choice(RAW_VALUES) if op == 2 else json.dumps(rnd.choice(VALUES))
            text = json.dumps(head).replace('"@RAW@"', raw)
        return f"head:{key}", build([header(text.encode())] + rest, host=host, lr=lr)
    if kind == 6:  # a header that is not a JSON object, or a HEDZ that is not one whole deflate stream
        bad = rnd.choice([b"[]", b"1", b'"x"', b"null", b"{", b"", b"\xff\xfe{}", b"[" * 100000,
                          b'{"width": 1' + b"}" * 3, json.dumps(head).encode()[:-1]])
        packed = headz.pack(json.dumps(head).encode())
        chunk = rnd.choice([header(bad), header(bad), (b"HEDZ", packed[: rnd.randrange(len(packed))]),
                            (b"HEDZ", packed + b"\x00"), (b"HEDZ", bytes(rnd.randrange(256) for _ in range(40))),
                            (b"HEDZ", headz.pack(b" " * 200000 + json.dumps(head).encode()))])
        return "head:shape", build([chunk] + rest, host=host, lr=lr)
    if kind == 7:  # the chunk list edited
        allc = list(chunks)
        op = rnd.randrange(5)
        i = rnd.randrange(len(allc))
        if op == 0:
            allc.pop(i)
        elif op == 1:
            allc.insert(i, allc[rnd.randrange(len(allc))])
        elif op == 2:
            rnd.shuffle(allc)
        elif op == 3:
            allc[i] = (rnd.choice([b"LRIM", b"LREF", b"ALPH", b"ICCP", b"HEAD", b"HEDZ", b"XXXX", b"\x00\x00\x00\x00"]), allc[i][1])
        else:
            allc.append((b"ZZZZ", bytes(rnd.randrange(50))))
        return "chunks", build(allc, host=host, lr=lr)
    if kind == 8:  # a corrupt optional or payload chunk
        tag = rnd.choice([b"ALPH", b"ICCP"] + ([b"LRIM"] if host is None else []))
        old = dict(chunks).get(tag, b"")
        rng = np.random.default_rng(rnd.randrange(2**32))
        new = rnd.choice([
            b"", old[: len(old) // 2], old[:8], bytes(rnd.randrange(256) for _ in range(64)),
            old[:40] + bytes(len(old) - 40) if len(old) > 40 else old + b"\x00",
            _png(rng.integers(0, 256, (3, 5), dtype=np.uint8)),  # a PNG of the wrong size
            _png(rng.integers(0, 256, (13, 15, 3), dtype=np.uint8)),  # RGB, right size
            _png(rng.integers(0, 256, (13, 15), dtype=np.uint8)),  # L, right size
            bytes(36) + b"acsp" + bytes(rnd.randrange(200)),
            b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + struct.pack(">IIBBBBB", 10**5, 10**5, 8, 0, 0, 0, 0),
        ])
        others = [(t, d) for t, d in chunks if t != tag]
        return f"chunk:{tag.decode()}", build(others[:1] + [(tag, new)] + others[1:], host=host, lr=lr)
    version = rnd.choice([b"\x01\x00", b"\x01\x01", b"\x01\xff", b"\x00\x02", b"\x02\x00", b"\xff\xff"])
    return "version", build(chunks, version=version, host=host, lr=lr)


class _Hang(BaseException):
    pass


def _on_alarm(signum, frame):
    raise _Hang()


def test_decode_raises_only_irc_errors(seeds):
    import torch

    rnd = random.Random(SEED)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny images: threads only add contention on a busy machine
    guard = hasattr(signal, "setitimer") and os.name != "nt"
    if guard:
        old = signal.signal(signal.SIGALRM, _on_alarm)
    counts = {"decoded": 0, "IrcError": 0}
    failures = []
    try:
        for case in range(CASES):
            label, data = _mutate(rnd, seeds[case % len(seeds)])
            if guard:
                signal.setitimer(signal.ITIMER_REAL, HANG_S)
            try:
                api.decode(data)
                counts["decoded"] += 1
            except IrcError:
                counts["IrcError"] += 1
            except _Hang:
                failures.append((case, label, "hang"))
            except Exception as exc:  # the defect this test guards against
                failures.append((case, label, f"{type(exc).__name__}: {exc}"[:200]))
            finally:
                if guard:
                    signal.setitimer(signal.ITIMER_REAL, 0)
    finally:
        torch.set_num_threads(threads)
        if guard:
            signal.signal(signal.SIGALRM, old)
    assert not failures, f"{len(failures)} of {CASES} cases raised something else: {failures[:10]}"
    # both outcomes occur: the mutations reach the decoder, not only the checksum
    assert counts["decoded"] > 50 and counts["IrcError"] > CASES // 2, counts


def test_fuzz_seeds_decode(seeds):
    for data, *_ in seeds:
        assert api.decode(data).size in ((16, 16), (15, 13))
