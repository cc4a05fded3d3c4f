"""Where each output goes, and every check on it made before any work starts.

The rules (README, "Command line"):

* A default output name is decided from what exists *before* the run, never from
  ``--force``: ``decode photo.irc`` writes ``photo.png``, or ``photo.decoded.png`` when
  ``photo.png`` exists (usually the original beside its .irc). ``--force`` then
  replaces ``photo.decoded.png``, never ``photo.png``: it only ever replaces the file
  the run would have written anyway, or the file the user named with ``-o``.
* No output may be one of the run's inputs, and no two inputs may share an output.
* Before the model runs: the folder exists, is a folder and is writable; the
  suffix is a format that can hold the result (RGBA cannot go to .jpg); an existing
  file is there only with ``--force``. Messages name the user's path.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from irc.errors import IrcError


@dataclass
class Plan:
    pairs: list[tuple[Path, Path]]  # (input, output)
    create: Path | None = None  # the -o folder to make once every check has passed

    def make_folder(self) -> None:
        if self.create is not None and not self.create.is_dir():
            try:
                self.create.mkdir()
            except OSError as exc:
                raise IrcError(f"cannot create folder {self.create}: {exc.strerror or exc}") from None


def encode_name(src: Path, folder: Path) -> Path:
    """``photo.png`` -> ``photo.irc`` in ``folder``."""
    return folder / Path(src.name).with_suffix(".irc").name


def decode_name(src: Path, folder: Path) -> Path:
    """``photo.irc`` -> ``photo.png``, or ``photo.decoded.png`` if ``photo.png`` already exists."""
    name = Path(src.name)
    first = folder / name.with_suffix(".png").name
    if os.path.lexists(first):  # whatever --force says: that file may be the user's original
        return folder / name.with_suffix(".decoded.png").name
    return first


def extract_name(src: Path, folder: Path, suffix: str) -> Path:
    """``photo.irc`` -> ``photo.lr.jpg`` (the codec's suffix)."""
    return folder / Path(src.name).with_suffix(".lr" + suffix).name


def plan(inputs: list[Path], output: str | None, default, given: int | None = None) -> Plan:
    """Pair each input with its output. ``default(input, folder)`` names an output in a folder.

    With several inputs (``given`` on the command line) ``-o`` names a folder (made if
    missing, not its parents); with one it names the file, unless it is an existing
    folder or ends in a slash.
    """
    if output is None:
        return Plan([(src, default(src, src.parent)) for src in inputs])
    target = Path(output)
    as_folder = (given or len(inputs)) > 1 or output.endswith(("/", os.sep)) or target.is_dir()
    if not as_folder:
        return Plan([(src, target) for src in inputs[:1]])
    if target.exists() and not target.is_dir():
        raise IrcError(f"-o {output}: with several inputs -o names a folder, and this is a file")
    create = None
    if not target.is_dir():
        check_folder(target.parent)
        create = target
    return Plan([(src, default(src, target)) for src in inputs], create)


def check_folder(folder: Path) -> None:
    folder = folder if str(folder) else Path(".")
    if not folder.exists():
        raise IrcError(f"output folder does not exist: {folder}")
    if not folder.is_dir():
        raise IrcError(f"output folder {folder} is not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise IrcError(f"cannot write to folder {folder}: permission denied")


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def check_outputs(p: Plan, force: bool, inputs: list[Path] | None = None) -> None:
    """Folder, directory, input clash, duplicate and exists-without-force checks for every output."""
    inputs = [src for src, _ in p.pairs] if inputs is None else inputs
    seen: dict[Path, Path] = {}
    for src, dest in p.pairs:
        key = Path(os.path.abspath(dest))
        if key in seen:
            raise IrcError(f"{seen[key]} and {src} would both be written to {dest}; "
                           "rename one, or run them separately with -o")
        seen[key] = src
        check_output(dest, force, inputs, folder_checked=p.create is not None and dest.parent == p.create)


def check_output(dest: Path, force: bool, inputs=(), folder_checked: bool = False) -> None:
    if dest.is_dir():
        raise IrcError(f"{dest} is a directory; give a file name with -o")
    for src in inputs:
        if _same_file(dest, src):
            raise IrcError(f"{dest} is an input of this run; irc never writes over its input")
    if not folder_checked:
        check_folder(dest.parent)
    if os.path.lexists(dest) and not force:
        raise IrcError(f"{dest} exists; use --force to overwrite")


def image_format(path: Path) -> str | None:
    """Pillow's format name for a file suffix, or None."""
    from PIL import Image

    return Image.registered_extensions().get(path.suffix.lower())


def check_image_output(dest: Path, mode: str, icc: bytes | None = None) -> None:
    """That an image of ``mode`` can be saved under ``dest``'s suffix: a trial save of a
    tiny image through the same code (``imageio.save_bytes``) the real one takes."""
    from PIL import Image

    from irc import imageio

    fmt = image_format(dest)
    if dest.suffix.lower() == ".irc":
        raise IrcError(f"cannot write {dest}: decode writes an image; .irc files come from `irc encode`")
    if fmt is None or fmt not in Image.SAVE:
        what = f"{dest.suffix!r} is not an image format irc can write" if dest.suffix else "no suffix to choose a format by"
        raise IrcError(f"cannot write {dest}: {what}; use .png, .webp, .tif or .jpg")
    probe = Image.new(mode, (16, 16))
    if icc:
        probe.info["icc_profile"] = icc
    try:
        imageio.save_bytes(probe, dest)
    except IrcError as exc:
        raise IrcError(f"cannot write {dest}: {exc}") from None


VIEWABLE_FORMATS = {"png": "PNG", "jpeg": "JPEG"}  # LR codec -> the image format a viewable file is


def check_encode_suffix(dest: Path, codec: str, viewable: bool) -> None:
    """An .irc file is not an image: refuse an image suffix, unless it is the format a
    --viewable file really is (a PNG or JPEG that irc also reads)."""
    fmt = image_format(dest)
    if fmt is None or fmt == "IRC":
        return
    if viewable and VIEWABLE_FORMATS.get(codec) == fmt:
        return
    hint = (f"a --viewable file with --codec {codec} is a {VIEWABLE_FORMATS[codec]}" if viewable and codec in VIEWABLE_FORMATS
            else "or use --viewable with --codec png or jpeg for a file that is also a PNG or JPEG")
    raise IrcError(f"cannot write {dest}: encode writes an .irc file, not a {fmt} image; name it .irc ({hint})")


def check_extract_suffix(dest: Path, codec_name: str, codec_suffix: str) -> None:
    """The LR bitstream is written as is, so the suffix must name its format."""
    if dest.suffix.lower() == codec_suffix:
        return
    fmt, own = image_format(dest), image_format(Path("x" + codec_suffix))
    if fmt is not None and fmt == own:
        return
    raise IrcError(f"cannot write {dest}: the stored LR image is {codec_name}, written byte-exact; "
                   f"name it {codec_suffix}")
