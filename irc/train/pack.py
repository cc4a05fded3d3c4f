"""Training images packed into one file under a byte budget, and a sampler that cuts crops from it.

A GPU machine is lent with 64 MiB of upload for everything, code and weights included,
so the training set (about 150 MB of PNG/BMP) has to be packed. :func:`pack_images`
stores every image losslessly (its own PNG bytes, or lossless WebP when smaller); when
the set does not fit the budget it downsizes every image by one common factor (Lanczos,
never below ``min_side`` on the short side) until it fits, so what is trained on is a
clean, downscaled image, never a lossy one. ``codec="jpeg"`` (4:4:4, ``quality``) is the
other choice, at full size. Images whose short side is under ``min_side`` (no crop of
that size fits) are left out and listed as dropped.

File layout: ``IRCPACK1``, the manifest's length (8 bytes, little-endian), the manifest
(JSON: one entry per image with its source, stored size, format, offset, length and
sha256), then the encoded images back to back.

:class:`PackedSampler` decodes a pack into one flat uint8 buffer on the training device
(CUDA on a GPU) and cuts a whole batch of random crops, flips and 90-degree rotations in
one gather there. It has :class:`irc.train.data.CropSampler`'s interface (``sample``,
``crop``, ``set_crop``, ``state_dict``, ``load_state_dict``) and its sampling rule
(images drawn in proportion to their number of crop positions).
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import struct
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable

import numpy as np
import torch

MAGIC = b"IRCPACK1"
LOSSLESS, JPEG = "webp-lossless", "jpeg"


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _encode(img, source: Path | None, factor: float, min_side: int, codec: str, quality: int) -> dict:
    """One image stored at ``factor`` (clamped so the short side stays >= ``min_side``)."""
    from PIL import Image

    w, h = img.size
    scale = min(1.0, max(factor, min_side / min(w, h))) if min_side else min(1.0, factor)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    im = img if size == (w, h) else img.resize(size, Image.LANCZOS)
    buf = io.BytesIO()
    if codec == LOSSLESS:
        im.save(buf, format="WEBP", lossless=True, quality=80, method=4, exact=True)
        data, fmt = buf.getvalue(), "webp"
        same = source is not None and size == (w, h) and source.suffix.lower() == ".png"
        if same and source.stat().st_size < len(data):
            data, fmt = source.read_bytes(), "png"  # the original file, byte for byte
    elif codec == JPEG:
        im.save(buf, format="JPEG", quality=quality, subsampling=0)
        data, fmt = buf.getvalue(), "jpeg"
    else:
        raise ValueError(f"codec must be {LOSSLESS!r} or {JPEG!r}, got {codec!r}")
    return {"width": size[0], "height": size[1], "format": fmt, "data": data}


def pack_images(files: list[Path], out: str | Path, budget: int, codec: str = LOSSLESS, quality: int = 95,
                min_side: int = 144, role: str = "train", center_crop: int = 0, root: str | Path | None = None,
                threads: int | None = None, log: Callable[[str], None] = print) -> dict:
    """Pack ``files`` into ``out`` in at most ``budget`` bytes; returns the manifest.

    ``center_crop`` > 0 keeps only the central square of that size (validation crops).
    ``role="train"`` refuses any file under a folder named like Kodak: it is never trained on.
    """
    from PIL import Image

    files = [Path(f) for f in files]
    if role == "train":
        kodak = [f for f in files if any("kodak" in part.lower() for part in f.resolve().parts)]
        if kodak:
            raise ValueError(f"refusing to pack Kodak images for training: {kodak[0]}")
    images, dropped = [], []
    for f in files:
        with Image.open(f) as im:
            img = im.convert("RGB")
        if center_crop:
            w, h = img.size
            c = min(center_crop, w, h)
            img = img.crop(((w - c) // 2, (h - c) // 2, (w - c) // 2 + c, (h - c) // 2 + c))
        if min_side and min(img.size) < min_side:
            dropped.append({"source": _rel(f, root), "width": img.size[0], "height": img.size[1]})
            continue
        images.append((f, img))
    originals = not center_crop  # a cropped image has no original file to store as it is
    if not images:
        raise ValueError(f"no image of at least {min_side} px on its short side among {len(files)} files")
    pixels = sum(i.size[0] * i.size[1] for _, i in images)
    pool = ThreadPoolExecutor(threads or os.cpu_count() or 1)

    def enc(item, factor: float) -> dict:
        return _encode(item[1], item[0] if originals else None, factor, min_side, codec, quality)

    try:
        factor, t0 = 1.0, time.time()
        if codec == LOSSLESS and len(images) > 16:  # guess the factor from every 8th image first
            sample = images[::8]
            est = sum(len(e["data"]) for e in pool.map(lambda p: enc(p, 1.0), sample))
            est *= pixels / sum(i.size[0] * i.size[1] for _, i in sample)
            if est > budget:
                factor = min(1.0, math.sqrt(budget / est) * 0.97)
        for _ in range(8):
            encoded = list(pool.map(lambda p: enc(p, factor), images))
            manifest = _manifest(images, encoded, dropped, role, codec, quality, factor, min_side, budget, root)
            header = json.dumps(manifest).encode()
            total = len(MAGIC) + 8 + len(header) + sum(len(e["data"]) for e in encoded)
            log(f"pack {role}: {len(encoded)} images at factor {factor:.3f}: {total / 2**20:.2f} MiB "
                f"(budget {budget / 2**20:.2f} MiB, {time.time() - t0:.0f} s)")
            if total <= budget:
                break
            if codec != LOSSLESS:
                raise ValueError(f"{total} bytes at {codec} quality {quality} exceed the budget of {budget}: "
                                 "lower the quality")
            factor *= math.sqrt(budget / total) * 0.98
        else:
            raise ValueError(f"could not fit {len(images)} images into {budget} bytes")
    finally:
        pool.shutdown()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    with open(tmp, "wb") as fh:
        fh.write(MAGIC + struct.pack("<Q", len(header)) + header)
        for e in encoded:
            fh.write(e["data"])
    os.replace(tmp, out)
    return manifest


def _rel(f: Path, root) -> str:
    try:
        return str(Path(f).resolve().relative_to(Path(root).resolve())) if root else str(f)
    except ValueError:
        return str(f)


def _manifest(images, encoded, dropped, role, codec, quality, factor, min_side, budget, root) -> dict:
    entries, offset = [], 0
    for (f, img), e in zip(images, encoded):
        entries.append({"source": _rel(f, root), "source_size": list(img.size), "width": e["width"],
                        "height": e["height"], "format": e["format"], "offset": offset,
                        "length": len(e["data"]), "sha256": _sha(e["data"])})
        offset += len(e["data"])
    return {"format": "irc-pack 1", "role": role, "codec": codec, "quality": quality if codec == JPEG else None,
            "factor": round(factor, 4), "min_side": min_side, "budget": budget, "images": entries,
            "dropped": dropped, "pixels": sum(e["width"] * e["height"] for e in entries),
            "sources": sorted({str(Path(e["source"]).parent) for e in entries}),
            "created": time.strftime("%Y-%m-%d %H:%M")}


def read_manifest(path: str | Path) -> tuple[dict, int]:
    """(manifest, offset of the first image's bytes)."""
    with open(path, "rb") as fh:
        head = fh.read(16)
        if len(head) < 16 or head[:8] != MAGIC:
            raise ValueError(f"{path} is not an irc training pack")
        n = struct.unpack("<Q", head[8:])[0]
        return json.loads(fh.read(n)), 16 + n


def decode_pack(path: str | Path, threads: int | None = None) -> list[np.ndarray]:
    """Every image of a pack as an (H, W, 3) uint8 array, each checked against its sha256."""
    from PIL import Image

    manifest, start = read_manifest(path)
    blob = Path(path).read_bytes()[start:]

    def one(e: dict) -> np.ndarray:
        data = blob[e["offset"]: e["offset"] + e["length"]]
        if _sha(data) != e["sha256"]:
            raise ValueError(f"{path}: {e['source']} is damaged (sha256 mismatch)")
        with Image.open(io.BytesIO(data)) as im:
            arr = np.asarray(im.convert("RGB"))
        if arr.shape != (e["height"], e["width"], 3):
            raise ValueError(f"{path}: {e['source']} decoded to {arr.shape}")
        return arr

    with ThreadPoolExecutor(threads or os.cpu_count() or 1) as pool:
        return list(pool.map(one, manifest["images"]))


def unpack(path: str | Path, dest: str | Path) -> list[Path]:
    """Write a pack's images as PNG files (e.g. validation images for ``--val-dir``)."""
    from PIL import Image

    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    out = []
    for i, arr in enumerate(decode_pack(path)):
        out.append(dest / f"{i:04d}.png")
        Image.fromarray(arr).save(out[-1])
    return out


class PackedSampler:
    """Random crops of packed images, cut on the device in one gather per batch.

    The images live in one flat uint8 buffer (each image H x W x 3, back to back);
    the crop positions, flips and transposes are drawn from a seeded CPU generator
    (checkpointed for exact resumption) and turned into gather indices on the device.
    Batches come out as float in [0, 1], shape (B, 3, crop, crop), channels-last in memory.
    """

    def __init__(self, packs=(), crop: int = 144, seed: int = 0, device: str | torch.device = "cpu",
                 images: list | None = None):
        self.device = torch.device(device)
        arrays = list(images) if images is not None else []
        for p in packs:
            manifest, _ = read_manifest(p)
            if manifest.get("role") != "train":
                raise ValueError(f"{p} is a {manifest.get('role')!r} pack, not training data")
            arrays += decode_pack(p)
        if not arrays:
            raise ValueError("no training images")
        hwc = [a.permute(1, 2, 0).numpy() if isinstance(a, torch.Tensor) else np.asarray(a) for a in arrays]
        self.sizes = torch.tensor([a.shape[:2] for a in hwc], dtype=torch.long)
        lengths = torch.tensor([a.size for a in hwc], dtype=torch.long)
        self.offsets = torch.cumsum(lengths, 0) - lengths
        self.flat = torch.from_numpy(np.concatenate([a.reshape(-1) for a in hwc])).to(self.device)
        self._sizes_dev, self._offsets_dev = self.sizes.to(self.device), self.offsets.to(self.device)
        self.generator = torch.Generator().manual_seed(seed)
        self.set_crop(crop)

    def set_crop(self, crop: int) -> None:
        """Cut ``crop`` x ``crop`` windows from now on (images smaller than that are left out)."""
        h, w = self.sizes[:, 0], self.sizes[:, 1]
        ok = (h >= crop) & (w >= crop)
        if not bool(ok.any()):
            raise ValueError(f"no training image of at least {crop}x{crop}")
        weights = ((h - crop + 1).clamp(min=0) * (w - crop + 1).clamp(min=0) * ok).double()
        self.crop, self.weights = crop, weights / weights.sum()
        self._ar = torch.arange(crop, device=self.device)
        self._eligible = int(ok.sum())

    def __len__(self) -> int:
        return self._eligible

    def draw(self, batch: int) -> tuple[torch.Tensor, ...]:
        """(image index, top, left, augmentation code 0-7) of ``batch`` crops, on the CPU."""
        g, c = self.generator, self.crop
        idx = torch.multinomial(self.weights, batch, replacement=True, generator=g)
        h, w = self.sizes[idx, 0], self.sizes[idx, 1]
        top = (torch.rand(batch, generator=g, dtype=torch.float64) * (h - c + 1)).long().clamp(max=h - c)
        left = (torch.rand(batch, generator=g, dtype=torch.float64) * (w - c + 1)).long().clamp(max=w - c)
        return idx, top, left, torch.randint(0, 8, (batch,), generator=g)

    def sample(self, batch: int) -> torch.Tensor:
        """(batch, 3, crop, crop) float in [0, 1] on the sampler's device (channels-last memory).

        Augmentation as :func:`irc.train.data.augment`: bit 1 flips the width, bit 2 the
        height, bit 4 transposes, in that order."""
        c = self.crop
        idx, top, left, aug = torch.stack(self.draw(batch)).to(self.device, non_blocking=True)
        i, j = self._ar.view(1, c, 1), self._ar.view(1, 1, c)
        transpose = (aug & 4).bool().view(-1, 1, 1)
        a, b = torch.where(transpose, j, i), torch.where(transpose, i, j)
        a = torch.where((aug & 2).bool().view(-1, 1, 1), c - 1 - a, a)
        b = torch.where((aug & 1).bool().view(-1, 1, 1), c - 1 - b, b)
        width = self._sizes_dev[idx, 1].view(-1, 1, 1)
        pix = self._offsets_dev[idx].view(-1, 1, 1) + ((top.view(-1, 1, 1) + a) * width + left.view(-1, 1, 1) + b) * 3
        crops = self.flat[pix.unsqueeze(-1) + torch.arange(3, device=self.device)]  # (B, c, c, 3)
        return crops.permute(0, 3, 1, 2).float().div_(255.0)

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])
