"""What a device call uploads, and setting files aside (outside the repo) for the length of one call.

The device tool sends the working tree: tracked files, untracked files git does not
ignore, ``shared/`` when the checkout has one, and the ignored paths named in ``carry``;
64 MiB at most. :func:`travel_bytes` counts exactly that. :func:`stash` moves files the
GPU run does not need into a folder outside the repo, with a manifest of sha256 hashes
written before anything moves; :func:`restore` puts them back and checks every hash. Each
file is copied, checked and only then removed from where it was, so a crash at any point
leaves every file in one of the two places, whole.
"""

from __future__ import annotations

import fnmatch
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

from irc.bench.datasets import file_sha256

LIMIT = 64 * 2**20
MANIFEST = "manifest.json"


sha256 = file_sha256  # hex SHA-256 of a file, as in the stash manifest


def _git(repo: Path, *args: str) -> list[str]:
    out = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, check=True).stdout
    return [p for p in out.decode("utf-8", "surrogateescape").split("\0") if p]


def tracked(repo: Path) -> list[str]:
    return _git(repo, "ls-files", "-z")


def untracked(repo: Path) -> list[str]:
    return _git(repo, "ls-files", "-z", "--others", "--exclude-standard")


def _walk(repo: Path, rel: str) -> list[str]:
    root = repo / rel
    if root.is_symlink() or root.is_file():
        return [rel]
    files = []
    for dirpath, dirnames, filenames in os.walk(root):
        for name in filenames + [d for d in dirnames if (Path(dirpath) / d).is_symlink()]:
            files.append(str((Path(dirpath) / name).relative_to(repo)))
    return files


def travel_files(repo: Path, carry: list[str] = ()) -> dict[str, list[str]]:
    """The files a device call sends, by group (each file in one group only)."""
    repo = Path(repo)
    groups = {"tracked": tracked(repo), "untracked": untracked(repo), "shared": [], "carried": []}
    if (repo / "shared").is_dir():
        groups["shared"] = _walk(repo, "shared")
    for c in carry:
        if (repo / c).exists() or (repo / c).is_symlink():
            groups["carried"] += _walk(repo, c)
    seen: set[str] = set()
    for name, files in groups.items():
        groups[name] = [f for f in files if f not in seen and ((repo / f).exists() or (repo / f).is_symlink())]
        seen.update(groups[name])
    return groups


def travel_bytes(repo: Path, carry: list[str] = ()) -> dict[str, int]:
    """Bytes a device call sends, by group, and ``total`` (a link counts as its own size)."""
    repo = Path(repo)
    sizes = {name: sum((repo / f).lstat().st_size for f in files) for name, files in travel_files(repo, carry).items()}
    return {**sizes, "total": sum(sizes.values())}


def needed_weights(repo: Path, models: list[str]) -> set[str]:
    """Repo paths of the newest shipped weights of ``models`` (from the repo's registry.json)."""
    entries = json.loads((Path(repo) / "irc/models/registry.json").read_text())
    keep = set()
    for m in models:
        mine = [e for e in entries if e["name"] == m]
        if mine:
            keep.add(f"irc/models/weights/{max(mine, key=lambda e: e.get('version', 1))['weights']}")
    return keep


def stash_plan(repo: Path, keep: set[str], extra: list[str] = ()) -> list[str]:
    """Files that travel but a GPU run does not need: weights other than ``keep``, everything under
    docs/ but its Markdown, and whatever matches the ``extra`` patterns (fnmatch, repo-relative)."""
    files = travel_files(Path(repo))
    plan = []
    for f in sorted(files["tracked"] + files["untracked"]):
        if f in keep:
            continue
        if ((f.startswith("irc/models/weights/") and not f.endswith(".md"))
                or (f.startswith("docs/") and not f.endswith(".md"))
                or any(fnmatch.fnmatch(f, pat) for pat in extra)):
            plan.append(f)
    return plan


def stash_exists(stash_dir: Path) -> bool:
    return Path(stash_dir).exists() and any(Path(stash_dir).iterdir())


def stash(repo: Path, stash_dir: Path, paths: list[str]) -> dict:
    """Move ``paths`` (repo-relative) into ``stash_dir``; refuses when a stash is already there."""
    repo, stash_dir = Path(repo).resolve(), Path(stash_dir).resolve()
    if stash_exists(stash_dir):
        raise RuntimeError(f"{stash_dir} holds files set aside by an earlier call: run restore first")
    if stash_dir == repo or repo in stash_dir.parents:
        raise RuntimeError(f"the stash {stash_dir} must be outside the repo {repo}")
    in_git = set(tracked(repo))
    entries = [{"path": p, "sha256": sha256(repo / p), "bytes": (repo / p).stat().st_size,
                "mode": (repo / p).stat().st_mode & 0o7777, "tracked": p in in_git} for p in paths]
    manifest = {"repo": str(repo), "created": time.strftime("%Y-%m-%d %H:%M:%S"), "files": entries}
    stash_dir.mkdir(parents=True, exist_ok=True)
    (stash_dir / MANIFEST).write_text(json.dumps(manifest, indent=1))  # before anything moves
    for e in entries:
        src, dst = repo / e["path"], stash_dir / "files" / e["path"]
        dst.parent.mkdir(parents=True, exist_ok=True)
        tmp = dst.with_name(dst.name + ".partial")
        shutil.copy2(src, tmp)
        if sha256(tmp) != e["sha256"]:
            raise RuntimeError(f"copy of {e['path']} does not match its hash; nothing removed")
        os.replace(tmp, dst)
        src.unlink()
    return manifest


def restore(repo: Path, stash_dir: Path, log=print) -> dict:
    """Put every stashed file back and check its hash. Idempotent; safe after a failed or cut
    call. A file that exists again with other content is a conflict: both copies stay, and
    the stash stays until that is resolved. Returns counts and the problems found."""
    repo, stash_dir = Path(repo), Path(stash_dir)
    if not (stash_dir / MANIFEST).exists():
        if stash_exists(stash_dir):
            raise RuntimeError(f"{stash_dir} has files but no {MANIFEST}: inspect it by hand")
        log(f"nothing to restore ({stash_dir} holds no stash)")
        return {"restored": 0, "already": 0, "problems": []}
    manifest = json.loads((stash_dir / MANIFEST).read_text())
    restored, already, problems = 0, 0, []
    for e in manifest["files"]:
        src, dst = stash_dir / "files" / e["path"], repo / e["path"]
        if dst.exists():
            if sha256(dst) == e["sha256"]:
                already += 1
                src.unlink(missing_ok=True)
            else:
                problems.append(f"conflict: {e['path']} exists with other content; the stashed copy stays in {src}")
            continue
        if not src.exists():
            problems.append(f"lost: {e['path']} is neither in the repo nor in {stash_dir}")
            continue
        if sha256(src) != e["sha256"]:
            problems.append(f"damaged: the stashed copy {src} does not match its hash; left there")
            continue
        dst.parent.mkdir(parents=True, exist_ok=True)
        tmp = dst.with_name(f".{dst.name}.restoring")
        shutil.copy2(src, tmp)
        os.chmod(tmp, e.get("mode", 0o644))
        if sha256(tmp) != e["sha256"]:
            tmp.unlink()
            problems.append(f"copy of {e['path']} back into the repo failed its hash check; retry restore")
            continue
        os.replace(tmp, dst)
        src.unlink()
        restored += 1
    deleted = deleted_paths(repo, {e["path"] for e in manifest["files"]})
    problems += [f"git still shows {p} as deleted" for p in deleted]
    if not problems:
        shutil.rmtree(stash_dir)
    log(f"restored {restored} files, {already} were already back" + (f"; {len(problems)} problems:" if problems else
                                                                      f"; {stash_dir} removed"))
    for p in problems:
        log("  " + p)
    return {"restored": restored, "already": already, "problems": problems}


def deleted_paths(repo: Path, paths: set[str]) -> list[str]:
    """Those of ``paths`` that ``git status`` lists as deleted."""
    out = []
    for line in _git(Path(repo), "status", "--porcelain", "-z", "--untracked-files=no"):
        if len(line) > 3 and "D" in line[:2] and line[3:] in paths:
            out.append(line[3:])
    return out
