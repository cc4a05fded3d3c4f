"""The one exception type users see: its message is printed as one line by the CLI.

Everything irc raises for bad input (a corrupt file, an unsupported option, a
wrong argument) is an :class:`IrcError`. The subclasses also derive from the
built-in type Python code would expect, so ``except TypeError`` keeps working.
"""


class IrcError(Exception):
    """A user-facing error (bad input, unsupported option, corrupt file)."""


class IrcTypeError(IrcError, TypeError):
    """An argument of the wrong type (``scale="4"``, ``quality=True``, ...)."""


class IrcFormatError(IrcError, ValueError):
    """A file that is not a valid .irc file: wrong magic, corrupt, truncated, bad header."""
