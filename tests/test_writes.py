"""Writes (issue 12, defect 7): fsync before the rename, recognisable temporaries, stale ones cleaned up."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import time

import pytest

from irc import atomic, imageio
from irc.errors import IrcError


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_write_is_fsynced_before_it_is_renamed(tmp_path, monkeypatch):
    events = []
    real_fsync, real_link, real_replace = os.fsync, os.link, os.replace

    def fsync(fd):
        events.append(("fsync", sorted(p.name for p in tmp_path.iterdir())))
        return real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "link", lambda a, b: (events.append(("link",)), real_link(a, b))[1])
    monkeypatch.setattr(os, "replace", lambda a, b: (events.append(("replace",)), real_replace(a, b))[1])
    dest = tmp_path / "photo.irc"
    atomic.atomic_write(dest, b"first")
    atomic.atomic_write(dest, b"second", force=True)
    assert dest.read_bytes() == b"second"
    kinds = [e[0] for e in events]
    assert kinds[:2] == ["fsync", "link"] and kinds[3:5] == ["fsync", "replace"]  # file synced, then moved
    if os.name != "nt":
        assert kinds[2] == "fsync" and kinds[5] == "fsync"  # and the folder after the move
    (temp,) = events[0][1]  # while writing, one temporary of the documented pattern, nothing else
    assert atomic.TMP_PATTERN.match(temp) and temp.startswith(".photo.irc.irc-tmp-")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["photo.irc"]  # no temporary left behind


def test_no_clobber_without_force_and_permissions(tmp_path):
    dest = tmp_path / "a.png"
    imageio.atomic_write(dest, b"one")  # the old import path still works
    with pytest.raises(IrcError, match="exists; use --force"):
        atomic.atomic_write(dest, b"two")
    assert dest.read_bytes() == b"one"
    umask = os.umask(0)
    os.umask(umask)
    assert dest.stat().st_mode & 0o777 == 0o666 & ~umask
    with pytest.raises(IrcError, match="is a directory"):
        atomic.atomic_write(tmp_path, b"x")
    with pytest.raises(IrcError, match="output folder does not exist"):
        atomic.atomic_write(tmp_path / "missing" / "a.png", b"x")


def test_failed_write_names_the_users_path_and_leaves_nothing(tmp_path, monkeypatch):
    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(IrcError) as info:
        atomic.atomic_write(tmp_path / "out.irc", b"data")
    assert str(info.value) == f"cannot write {tmp_path / 'out.irc'}: No space left on device"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(os.name == "nt" or os.geteuid() == 0, reason="root ignores folder permissions")
def test_read_only_folder(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        with pytest.raises(IrcError, match=f"cannot write {folder / 'x.irc'}: Permission denied"):
            atomic.atomic_write(folder / "x.irc", b"x")
    finally:
        folder.chmod(0o700)


@pytest.mark.skipif(os.name == "nt", reason="pid liveness is not checked on Windows (age only)")
def test_killed_run_leaves_a_temporary_the_next_write_removes(tmp_path):
    # a run killed mid-write: it created its temporary and died without cleaning up
    code = ("import os, sys; from irc.atomic import temp_name; "
            "open(os.path.join(sys.argv[1], temp_name('photo.irc')), 'wb').write(b'half'); os._exit(9)")
    subprocess.run([sys.executable, "-c", code, str(tmp_path)], check=False)
    (stale,) = tmp_path.iterdir()
    assert atomic.TMP_PATTERN.match(stale.name)
    live = tmp_path / f".other.irc.irc-tmp-{os.getppid()}-0badc0de"  # a writer that is still running
    live.write_bytes(b"busy")
    old_live = tmp_path / f".old.irc.irc-tmp-{os.getppid()}-00000000"  # alive pid, but hours old: pid reuse
    old_live.write_bytes(b"old")
    ancient = time.time() - atomic.STALE_AFTER_S - 60
    os.utime(old_live, (ancient, ancient))
    dead = tmp_path / f".x.png.irc-tmp-{_dead_pid()}-12345678"
    dead.write_bytes(b"x")
    keep = [tmp_path / ".photo.irc.part", tmp_path / "photo.irc-tmp-1-12345678", tmp_path / ".a.irc-tmp-1-xyz"]
    for p in keep:
        p.write_bytes(b"not ours")
    atomic.atomic_write(tmp_path / "photo.irc", b"whole")
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == sorted([p.name for p in keep] + [live.name, "photo.irc"])
    assert (tmp_path / "photo.irc").read_bytes() == b"whole"


def test_remove_stale_reports_what_it_removed(tmp_path):
    p = tmp_path / f".a.irc.irc-tmp-{_dead_pid()}-abcdef01"
    p.write_bytes(b"")
    assert atomic.remove_stale(tmp_path) == [p] and not p.exists()
