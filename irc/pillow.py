"""Pillow plugin: ``Image.open("x.irc")`` decodes, ``im.save("x.irc", format="IRC", ...)`` encodes.

    import irc                      # registers the plugin (cheap: no torch, no numpy)
    from PIL import Image
    im = Image.open("photo.irc")    # size and mode from the header; pixels on load()
    im.save("small.irc", format="IRC", scale=4, codec="jpeg", quality=40)

``import irc`` calls :func:`register` because it only imports ``PIL.Image``
(about 10 ms; no Pillow format plugins, no torch, no numpy); the model runs when
the pixels are loaded or saved. :func:`register` can also be called on its own
and is idempotent. Open reads the header (checked as :func:`irc.api.read` does);
``load()`` runs the full decode (:func:`irc.api.decode`, CPU, z = 0, the CRM the
file names). Save options are :func:`irc.api.encode`'s: ``scale``, ``codec``,
``quality``, ``lossless``, ``model``, ``crm``, ``device``, ``layout``; others are
ignored, as Pillow plugins do. A file in the viewable layout is a real PNG or
JPEG, so Pillow opens it as that (the LR thumbnail); ``irc.decode`` gives the
full image.
"""

from __future__ import annotations

from PIL import Image, ImageFile

from irc import container

FORMAT = "IRC"
EXTENSION = ".irc"
MIME = "image/x-irc"
SAVE_OPTIONS = ("scale", "codec", "quality", "lossless", "model", "crm", "device", "layout")


def _accept(prefix: bytes) -> bool:
    return prefix[: len(container.MAGIC)] == container.MAGIC


class IrcImageFile(ImageFile.ImageFile):
    format = FORMAT
    format_description = "irc (learned invertible rescaling)"

    def _open(self) -> None:
        from irc import api

        f = api.read(self.fp.read())  # IrcError (not "cannot identify") for a corrupt file
        hd = f.header
        self._size = (hd.width, hd.height)
        self._mode = hd.mode
        if f.icc_profile:
            self.info["icc_profile"] = f.icc_profile
        self.info["irc"] = {"model": hd.model, "scale": hd.scale, "codec": hd.codec, "quality": hd.quality,
                            "lr_size": (hd.lr_width, hd.lr_height), "crm": hd.crm}
        self.tile = [ImageFile._Tile("irc", (0, 0) + self._size, 0, None)]


class IrcDecoder(ImageFile.PyDecoder):
    """Decodes the whole file at once (the model needs all of it)."""

    _pulls_fd = True

    def decode(self, buffer) -> tuple[int, int]:
        from irc import api

        assert self.fd is not None
        self.fd.seek(0)
        image = api.decode(self.fd.read())
        self.set_as_raw(image.tobytes(), image.mode)
        return -1, 0


def _save(im: Image.Image, fp, filename) -> None:
    from irc import api

    opts = {k: im.encoderinfo[k] for k in SAVE_OPTIONS if k in im.encoderinfo}
    if im.encoderinfo.get("icc_profile"):
        im = im.copy()
        im.info["icc_profile"] = im.encoderinfo["icc_profile"]
    fp.write(api.encode(im, **opts))


_registered = False


def register() -> None:
    """Teach Pillow the IRC format (open, save, the .irc extension). Idempotent."""
    global _registered
    if _registered:
        return
    Image.register_open(FORMAT, IrcImageFile, _accept)
    Image.register_save(FORMAT, _save)
    Image.register_extension(FORMAT, EXTENSION)
    Image.register_mime(FORMAT, MIME)
    Image.register_decoder("irc", IrcDecoder)
    _registered = True
