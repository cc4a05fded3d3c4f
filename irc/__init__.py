"""irc: an image codec built on a learned invertible downscaler (IRN).

    import irc
    data = irc.encode("photo.png", scale=4, codec="jpeg", quality=40)
    image = irc.decode(data)          # PIL.Image, original size
"""

__version__ = "0.1.0"
__all__ = ["encode", "decode", "IrcError", "__version__"]


def __getattr__(name):  # lazy: `import irc` stays cheap (no torch import)
    if name in ("encode", "decode"):
        from irc import api

        return getattr(api, name)
    if name == "IrcError":
        from irc.errors import IrcError

        return IrcError
    raise AttributeError(f"module 'irc' has no attribute {name!r}")
