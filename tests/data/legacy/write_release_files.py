"""Write this release's .irc files of the given model versions beside the older ones.

    python tests/data/legacy/write_release_files.py fgrn-x4@2 irn-x8@2 hcflow-x4@1 irn-x2@3:avif30

For each MODEL@VERSION: ``<model>.v<version>-png.irc`` (PNG LR, PyTorch backend, fp32), its
decoded image ``.expected.png`` and its RGB PSNR against ``source.png`` in ``golden.json``.
``MODEL@VERSION:CODECQ`` (e.g. ``:avif30``, ``:jpeg40``) stores the LR with that lossy codec
and quality instead, with the CRM the release picks for it (``<model>.v<version>-avif30.irc``):
a file that names a CRM version too. Refuses to replace a file that exists: files of a release
are written once.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).parent


def main(keys: list[str]) -> None:
    import numpy as np
    from PIL import Image

    from irc import api
    from irc.metrics import psnr_rgb

    src = np.asarray(Image.open(HERE / "source.png").convert("RGB"))
    golden = json.loads((HERE / "golden.json").read_text())
    for arg in keys:
        key, _, lossy = arg.partition(":")
        model, _, version = key.partition("@")
        codec = lossy.rstrip("0123456789") or "png"
        digits = lossy[len(codec):]
        quality = int(digits) if digits else None
        if lossy and quality is None:
            raise SystemExit(f"error: {arg}: a lossy codec needs its quality, e.g. {key}:avif30")
        name = f"{model}.v{version}-{lossy or 'png'}"
        if (HERE / f"{name}.irc").exists() or name in golden:
            raise SystemExit(f"error: {name} exists already; files of a release are written once")
        data = api.encode(src, scale=None, codec=codec, quality=quality, model=key, backend="torch", precision="fp32")
        header = api.read(data).header
        assert (header.model, header.model_version) == (model, int(version)), header
        out = np.asarray(api.decode(data, backend="torch", precision="fp32"))
        (HERE / f"{name}.irc").write_bytes(data)
        Image.fromarray(out).save(HERE / f"{name}.expected.png")
        golden[name] = {"psnr_rgb": round(psnr_rgb(src, out), 3)}
        crm = f", CRM {header.crm} v{header.crm_version}" if header.crm else ""
        print(f"{name}: {len(data)} bytes, RGB PSNR {golden[name]['psnr_rgb']} dB{crm}")
    (HERE / "golden.json").write_text(json.dumps(golden, indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
