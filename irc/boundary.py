"""The boundary map of BDFlow as side information: level indices <-> a losslessly coded PNG.

BDFlow (seed 002) splits its high-frequency latent into a Gaussian part, set to 0 on decode,
and a one-channel boundary map B at LR resolution, quantised to 2**bits levels (1-3 bits),
which the decoder needs. The encoder stores B's level indices as a palette PNG (``bits`` bits
per pixel, palette = the gray ramp, so a viewer shows the map) in the ``BNDY`` chunk of the
container (docs/FORMAT.md, 1.5); its bytes count in the file's bpp.

In the pipeline the map rides along the LR array as extra channel(s) holding
round(level / (2**bits - 1) * 255), the value the model's ``upscale`` reads (and snaps back
to its levels), so tiling and the backends treat it as one more LR channel.
"""

from __future__ import annotations

import io

import numpy as np

from irc.errors import IrcFormatError

BITS = (1, 2, 3)


def levels_of(channel: np.ndarray, bits: int) -> np.ndarray:
    """(h, w) uint8 side channel (0-255) -> level indices 0..2**bits - 1."""
    top = 2**bits - 1
    return np.rint(channel.astype(np.float32) * top / 255.0).astype(np.uint8)


def channel_of(levels: np.ndarray, bits: int) -> np.ndarray:
    """Level indices -> the uint8 side channel (0-255) the model reads."""
    top = 2**bits - 1
    return np.rint(levels.astype(np.float32) * 255.0 / top).astype(np.uint8)


def encode(channel: np.ndarray, bits: int) -> bytes:
    """The (h, w) uint8 side channel as the PNG of the BNDY chunk."""
    from PIL import Image

    if bits not in BITS:
        raise ValueError(f"boundary bits must be 1, 2 or 3, got {bits}")
    top = 2**bits - 1
    im = Image.fromarray(levels_of(np.asarray(channel), bits), "P")
    im.putpalette([v for i in range(top + 1) for v in [round(i * 255 / top)] * 3])
    buf = io.BytesIO()
    im.save(buf, "PNG", optimize=True, bits=bits)
    return buf.getvalue()


def decode(data: bytes, bits: int, size: tuple[int, int]) -> np.ndarray:
    """The BNDY chunk -> the (h, w, 1) uint8 side channel; IrcFormatError for anything but a PNG of
    ``size`` (width, height) whose pixels are levels below 2**bits."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(bytes(data)), formats=["PNG"]) as im:
            if im.size != tuple(size):
                raise IrcFormatError(f"corrupt .irc file (the boundary map is {im.width}x{im.height}, "
                                     f"the LR {size[0]}x{size[1]})")
            if im.mode not in ("P", "L"):
                raise IrcFormatError(f"corrupt .irc file (the boundary map is a {im.mode} image)")
            levels = np.asarray(im)
    except IrcFormatError:
        raise
    except Exception as exc:  # Pillow's errors for a damaged PNG
        raise IrcFormatError(f"corrupt .irc file (the boundary map cannot be decoded: {exc})") from None
    if levels.size and int(levels.max()) > 2**bits - 1:
        raise IrcFormatError(f"corrupt .irc file (a boundary level above {2**bits - 1} in a {bits}-bit map)")
    return channel_of(levels, bits)[..., None]
