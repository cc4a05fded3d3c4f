"""Benchmark image sets: a local folder, or a named set downloaded once into a cache.

Named sets are fetched from their canonical locations into ``$IRC_CACHE``
(default ``~/.cache/irc``) with a progress bar. Kodak files are checked
against SHA-256 sums pinned here (the public files, byte for byte). DIV2K
publishes no checksum; its archive's SHA-256 is written next to it on first
download and checked on every later use, and printed so it can be compared.
"""

from __future__ import annotations

import hashlib
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

from irc.errors import IrcError
from irc.train.data import list_images

KODAK_URL = "http://r0k.us/graphics/kodak/kodak/{name}"
KODAK_SHA256 = {
    "kodim01.png": "6b4fbe6f3e8e0e20150d5b0c32248bf072e22b5989d415f96f796c5b7004a70f",
    "kodim02.png": "1788370471429d992750a09caf6702ac74e56962447de02520d4b161738c0369",
    "kodim03.png": "b9c800ee568f0b18c983817df08d9f7f24a7ddb3abfdc31bde9234c4fde83137",
    "kodim04.png": "0c60c62599ad33fd78b29c36013fbe4120946f6c327c0ef0ec6983297fb48d23",
    "kodim05.png": "ccf694ceb6bbf431e0009ed0d5573a8ff0915095b69ddfb527b91d8325897f5e",
    "kodim06.png": "f4212cc927d1d579c712843cf8320c7eccb571e5ea80456022ffe99d67e9cd5d",
    "kodim07.png": "7cdd6d63ae0a245f6f9d983d740e11c6808c2efc24f8351aad9b5f676c27b55a",
    "kodim08.png": "5a6a089bdb47605287c00d89ebf2a5312981eb998c94b5853d917c93a9066cdb",
    "kodim09.png": "4d8d801592aeaf446978bbd1c83b76c498242d0f684769311a4e7248289500bf",
    "kodim10.png": "7aca487dc83db732a5690b7affe8558e9dadf5bb44a4589ba2b607480a07228b",
    "kodim11.png": "c7c02bd6e942d1181518e3ce2d97cf0451e4494a5e9d6ddee276940e4875d746",
    "kodim12.png": "df571f5e66d1aefd764ea77855e81e3be61528c34962a0fd1d50557502162c1e",
    "kodim13.png": "797949ce1152ef157ff0a1231c95cb8ed7641615e0b0f5f77f851a44aee19e8d",
    "kodim14.png": "08a1898d5702f32e7d9f94a94651d74a62cb9325475775a558b388c8d98f1846",
    "kodim15.png": "416c475f39b0eb9203ce7f77d2af8824f5bffc1a86a4605865017f04c41639b9",
    "kodim16.png": "5d03303693decdf7a1e1e930b5ca6684283aa80a9e7d8d6a842a74fa5f790640",
    "kodim17.png": "19d90e98e5835efae20a6e17e22e5ac6814ee2c8efb32d188ea4359abaf9f5bd",
    "kodim18.png": "83df267dfec61e9b9d3756c422502160b2fab595650c73a8b12940540ad09ec5",
    "kodim19.png": "86560efe85a13413b228ef7e42dde0d439b25a94fb8e2d6fb1dc1631cf48853b",
    "kodim20.png": "1ae187d92b3a4483b6717f7fd08592846ffdfc340c6424f6756627a27f3d8ea7",
    "kodim21.png": "26e193795108c4b5ec47206ae4ff07a353d2492947f7a7ae8d380e042b74027b",
    "kodim22.png": "627b76fccf714b4ddffb739b2eb63ba2817cf5b5a8e222079542dcf2cfdda939",
    "kodim23.png": "85c67d7ea758cb0604fb6980ab0c65091a2eefa7b3b50cbb1bc702a60206dfe5",
    "kodim24.png": "9f1c26df52217bd49f998a720a2ffeba41a535cf826f4ae32e355fb2b0bbc0fe",
}
DIV2K_VALID_URL = "https://data.vision.ee.ethz.ch/cvl/DIV2K/DIV2K_valid_HR.zip"
NAMED = ("kodak", "div2k")


@dataclass
class Dataset:
    name: str
    files: list[Path]
    source: str  # where the files came from


def cache_dir() -> Path:
    return Path(os.environ.get("IRC_CACHE", Path.home() / ".cache" / "irc"))


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _download(url: str, dest: Path, label: str) -> None:
    """Stream ``url`` to ``dest`` (atomically) with a progress bar."""
    import urllib.request

    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_suffix(dest.suffix + ".part")
    with urllib.request.urlopen(url, timeout=30) as resp, open(tmp, "wb") as fh, Progress(
        TextColumn(label), BarColumn(), DownloadColumn(), TransferSpeedColumn(), transient=True
    ) as bar:
        task = bar.add_task(label, total=int(resp.headers.get("Content-Length") or 0) or None)
        for block in iter(lambda: resp.read(1 << 16), b""):
            fh.write(block)
            bar.advance(task, len(block))
    os.replace(tmp, dest)


def _no_network(name: str, exc: Exception, hint: str) -> IrcError:
    return IrcError(f"cannot download {name} ({exc}); {hint}")


def _kodak() -> Dataset:
    folder = cache_dir() / "kodak"
    for name, digest in KODAK_SHA256.items():
        path = folder / name
        if path.exists() and file_sha256(path) == digest:
            continue
        try:
            _download(KODAK_URL.format(name=name), path, f"kodak {name}")
        except OSError as exc:
            raise _no_network("Kodak", exc, "pass --data DIR, a folder with kodim01.png ... kodim24.png "
                              "(here: --data ../shared/data/kodak)") from None
        if file_sha256(path) != digest:
            path.unlink()
            raise IrcError(f"downloaded {name} does not match its checksum; try again or use --data DIR")
    return Dataset("kodak", [folder / n for n in KODAK_SHA256], str(folder))


def _div2k() -> Dataset:
    root = cache_dir() / "div2k"
    archive, pin = root / "DIV2K_valid_HR.zip", root / "DIV2K_valid_HR.zip.sha256"
    images = root / "DIV2K_valid_HR"
    if not images.is_dir():
        if not archive.exists():
            try:
                _download(DIV2K_VALID_URL, archive, "DIV2K valid HR")
            except OSError as exc:
                raise _no_network("DIV2K", exc, "pass --data DIR, a folder with the 100 DIV2K "
                                  "validation images (0801.png ... 0900.png)") from None
        digest = file_sha256(archive)
        if pin.exists() and pin.read_text().strip() != digest:
            raise IrcError(f"{archive} changed since its first download (sha256 {digest}); delete it to fetch again")
        pin.write_text(digest + "\n")
        print(f"DIV2K_valid_HR.zip sha256 {digest}")
        with zipfile.ZipFile(archive) as zf:
            zf.extractall(root)
    return Dataset("div2k", list_images([images]), str(images))


def resolve(name: str, data: Path | None = None) -> Dataset:
    """``kodak`` / ``div2k`` (downloaded and cached) or a folder; ``data`` overrides the location."""
    if data is not None or name not in NAMED:
        folder = Path(data if data is not None else name)
        if not folder.is_dir():
            raise IrcError(f"no such folder: {folder} (give kodak, div2k or a folder of images)")
        files = list_images([folder])
        if not files:
            raise IrcError(f"no images (png, jpg, bmp, tif, webp, ppm) in {folder}")
        label = name if name in NAMED else folder.name
        return Dataset(label, files, str(folder))
    return _kodak() if name == "kodak" else _div2k()
