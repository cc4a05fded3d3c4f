"""irc: an image codec built on a learned invertible downscaler (IRN).

    import irc
    data = irc.encode("photo.png", scale=4, codec="jpeg", quality=40)
    image = irc.decode(data)          # PIL.Image, original size

Every bad input raises :class:`irc.IrcError`. ``import irc`` stays cheap (no
torch, no numpy) and registers the Pillow plugin (irc.pillow), so
``PIL.Image.open("photo.irc")`` works too.
"""

__version__ = "0.1.0"
__all__ = ["encode", "decode", "read", "IrcError", "__version__"]


def __getattr__(name):  # lazy: `import irc` stays cheap (no torch import)
    if name in ("encode", "decode", "read"):
        from irc import api

        return getattr(api, name)
    if name == "IrcError":
        from irc.errors import IrcError

        return IrcError
    raise AttributeError(f"module 'irc' has no attribute {name!r}")


def _register_pillow_plugin() -> None:
    try:
        from irc import pillow
    except ImportError:  # Pillow missing or broken: irc itself will say so when used
        return
    pillow.register()


_register_pillow_plugin()
