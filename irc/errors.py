"""The one exception type users see: its message is printed as one line by the CLI."""


class IrcError(Exception):
    """A user-facing error (bad input, unsupported option, corrupt file)."""
