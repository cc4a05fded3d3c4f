"""Reading an .irc file from bytes, a path or a hand-made IrcFile, with every check
(magic, version, checksum, header schema) and one clear error line for bad input."""

from __future__ import annotations

from irc import container
from irc.errors import IrcError, IrcTypeError


def read(data) -> container.IrcFile:
    """Parse .irc bytes or a path (either layout), checked: magic, version, checksum, header."""
    if isinstance(data, container.IrcFile):
        if not isinstance(data.header, container.Header):
            raise IrcTypeError("IrcFile.header must be an irc.container.Header")
        from dataclasses import asdict

        container.check_header(asdict(data.header))  # a hand-made IrcFile gets the same checks
        if data.icc_profile and not container.valid_icc(data.icc_profile):
            raise IrcError("icc_profile is not an ICC profile (no 'acsp' signature)")
        return data
    if isinstance(data, (bytes, bytearray, memoryview)):
        return container.loads(bytes(data))
    import os
    from pathlib import Path

    if not isinstance(data, (str, os.PathLike)):
        raise IrcTypeError(f"cannot read an .irc file from {type(data).__name__}; give bytes or a path")
    try:
        path = Path(data)
        exists, is_dir = path.exists(), path.is_dir()
    except (TypeError, ValueError, OSError) as exc:
        raise IrcError(f"bad path {data!r}: {exc}") from None
    if is_dir:
        raise IrcError(f"{path} is a directory, not an .irc file")
    if not exists:
        raise IrcError(f"no such file: {path}")
    try:
        raw = path.read_bytes()
    except PermissionError:
        raise IrcError(f"cannot read {path}: permission denied") from None
    except OSError as exc:
        raise IrcError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        return container.loads(raw)
    except IrcError as exc:
        raise type(exc)(f"{path}: {exc}") from None
