"""Durable, atomic file writes that never clobber by accident and clean up after killed runs.

A write goes to ``.<name>.irc-tmp-<pid>-<8 hex>`` in the destination folder,
is flushed and fsync'ed, then moved into place: with ``force`` by rename over
the old file, without it by a hard link that fails if the name exists (so a
file that appears meanwhile is not clobbered either), and the folder is fsync'ed
where the OS allows. A killed run can leave its temporary behind; the first
write of a later run into that folder removes temporaries of this pattern whose
process is gone (or that are older than :data:`STALE_AFTER_S`). README, "Files irc writes".
"""

from __future__ import annotations

import os
import re
import secrets
import stat
import threading
import time
from pathlib import Path

from irc.errors import IrcError

TMP_PATTERN = re.compile(r"\.(?P<name>.+)\.irc-tmp-(?P<pid>\d{1,10})-[0-9a-f]{8}\Z", re.DOTALL)
STALE_AFTER_S = 6 * 3600  # a temporary this old is stale even if its pid is alive again (pid reuse)
_cleaned: set[str] = set()  # folders already swept by this process (a batch writes many files into one)
_lock = threading.Lock()


def temp_name(name: str) -> str:
    return f".{name}.irc-tmp-{os.getpid()}-{secrets.token_hex(4)}"


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    if os.name == "nt":  # os.kill would terminate the process there: decide by age alone
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    except (OSError, OverflowError, ValueError):
        return pid <= 0
    return True


def remove_stale(folder: str | Path, now: float | None = None) -> list[Path]:
    """Delete irc temporaries in ``folder`` whose writer is gone or that are older than
    STALE_AFTER_S; returns what was removed. Other files are never touched."""
    now = time.time() if now is None else now
    removed: list[Path] = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        m = TMP_PATTERN.match(entry.name)
        if not m:
            continue
        try:
            st = entry.stat(follow_symlinks=False)
            if stat.S_ISREG(st.st_mode) and (now - st.st_mtime > STALE_AFTER_S or not _alive(int(m["pid"]))):
                os.unlink(entry.path)
                removed.append(Path(entry.path))
        except OSError:
            continue  # gone already, or not ours to delete
    return removed


def _sweep_once(folder: Path) -> None:
    key = os.path.abspath(folder)
    with _lock:
        if key in _cleaned:
            return
        _cleaned.add(key)
    remove_stale(folder)


def _fsync_dir(folder: Path) -> None:
    if os.name == "nt":
        return
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems cannot sync a directory
    finally:
        os.close(fd)


def _place(tmp: Path, path: Path, force: bool) -> None:
    if force:
        os.replace(tmp, path)
        return
    try:
        os.link(tmp, path)  # atomic and refuses an existing name
    except FileExistsError:
        raise
    except (OSError, NotImplementedError, AttributeError):  # no hard links on this file system
        if os.path.lexists(path):
            raise FileExistsError(path) from None
        os.replace(tmp, path)


def atomic_write(path: str | Path, data: bytes, force: bool = False) -> None:
    """Write ``data`` to ``path`` durably and atomically; never clobber without ``force``.

    Errors are IrcError naming ``path`` (never the temporary).
    """
    path = Path(path)
    if path.is_dir():
        raise IrcError(f"{path} is a directory; give a file name")
    if not force and os.path.lexists(path):
        raise IrcError(f"{path} exists; use --force to overwrite")
    folder = path.parent
    if not folder.is_dir():
        raise IrcError(f"output folder does not exist: {folder}")
    _sweep_once(folder)
    tmp = folder / temp_name(path.name)
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    except OSError as exc:
        raise IrcError(f"cannot write {path}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())  # the bytes are on disk before the name points at them
        _place(tmp, path, force)
    except FileExistsError:
        raise IrcError(f"{path} exists; use --force to overwrite") from None
    except OSError as exc:
        raise IrcError(f"cannot write {path}: {exc.strerror or exc}") from None
    finally:
        try:
            os.unlink(tmp)  # after a rename it is gone; after a link it is the second name
        except OSError:
            pass
    _fsync_dir(folder)
