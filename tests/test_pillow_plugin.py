"""The Pillow plugin (irc.pillow): Image.open decodes .irc files, Image.save encodes them."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import irc
from irc import container, pillow
from irc.errors import IrcError

from .conftest import KODAK


def test_import_irc_registers_the_plugin_cheaply():
    """`import irc` registers the format without importing torch, numpy or Pillow's format plugins."""
    code = ("import sys, irc; from PIL import Image; "
            "heavy = [m for m in ('torch', 'numpy', 'PIL.PngImagePlugin', 'PIL.JpegImagePlugin') if m in sys.modules]; "
            "print('IRC' in Image.OPEN, Image.EXTENSION.get('.irc'), heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["True", "IRC", "[]"]


def test_open_decodes_and_save_encodes(photo, tmp_path, tiny_models):
    pillow.register()  # idempotent
    pillow.register()
    src = Image.fromarray(photo)
    src.save(tmp_path / "a.irc", scale=2, codec="png")  # format from the suffix
    with Image.open(tmp_path / "a.irc") as im:
        assert (im.format, im.size, im.mode) == ("IRC", (67, 45), "RGB")
        assert im.info["irc"]["scale"] == 2 and im.info["irc"]["codec"] == "png"
        pixels = np.asarray(im)  # load() runs the decode
    assert np.array_equal(pixels, np.asarray(irc.decode(tmp_path / "a.irc")))
    buf = io.BytesIO()
    src.convert("RGBA").save(buf, format="IRC", scale=2, codec="jpeg", quality=30, crm="none")
    hd = container.loads(buf.getvalue()).header
    assert (hd.codec, hd.quality, hd.scale, hd.crm) == ("jpeg", 30, 2, None)


def test_alpha_and_gray_through_the_plugin(photo, tiny_models):
    alpha = np.linspace(0, 255, photo.shape[0] * photo.shape[1]).astype(np.uint8).reshape(photo.shape[:2])
    for src in (Image.fromarray(np.dstack([photo, alpha]), "RGBA"), Image.fromarray(photo).convert("L")):
        buf = io.BytesIO()
        src.save(buf, format="IRC", scale=2, codec="png")
        with Image.open(io.BytesIO(buf.getvalue())) as im:
            assert im.mode == src.mode
            im.load()
            if src.mode == "RGBA":
                assert np.array_equal(np.asarray(im)[..., 3], alpha)


def test_corrupt_file_and_bad_options_raise_irc_errors(photo, tmp_path, tiny_models):
    data = irc.encode(photo, scale=2, codec="png")
    (tmp_path / "bad.irc").write_bytes(data[:-5])
    with pytest.raises(IrcError, match="checksum"):
        Image.open(tmp_path / "bad.irc")
    with pytest.raises(IrcError, match="unsupported scale"):
        Image.fromarray(photo).save(tmp_path / "c.irc", scale=17)
    assert not (tmp_path / "c.irc").exists()  # Pillow removes the file it created


def _kodak_or_sample() -> Image.Image:
    for p in (KODAK / "kodim23.png", Path(irc.__file__).parent / "data" / "sample.png"):
        if p.exists():
            return Image.open(p).convert("RGB")
    pytest.skip("no Kodak image or sample photo here")


def test_open_kodim23_irc_with_a_shipped_model(tmp_path):
    """`Image.open("kodim23.irc")` with the shipped irn-x2, on a small crop (the model pass is seconds)."""
    crop = _kodak_or_sample().crop((320, 192, 448, 288))  # 128 x 96
    path = tmp_path / "kodim23.irc"
    crop.save(path, scale=2, codec="jpeg", quality=60, model="irn-x2")
    with Image.open(path) as im:
        assert im.format == "IRC" and im.size == (128, 96) and im.info["irc"]["model"] == "irn-x2"
        out = np.asarray(im.convert("RGB"), dtype=float)
    err = np.mean((out - np.asarray(crop, dtype=float)) ** 2)
    assert 10 * np.log10(255**2 / err) > 24  # a real reconstruction, not noise
