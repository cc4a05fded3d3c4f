"""Training data: images from folders, random crops with flips and rotations."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

IMAGE_SUFFIXES = {".png", ".bmp", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".ppm"}


def list_images(folders: list[Path] | list[str]) -> list[Path]:
    """All image files under the given folders (recursive, sorted)."""
    files: list[Path] = []
    for folder in folders:
        folder = Path(folder)
        if not folder.is_dir():
            raise FileNotFoundError(f"training folder not found: {folder}")
        files += sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    return files


def load_rgb_uint8(path: Path) -> torch.Tensor:
    """(3, H, W) uint8 tensor."""
    from PIL import Image

    with Image.open(path) as im:
        arr = np.asarray(im.convert("RGB"))
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).contiguous()


def random_window(height: int, width: int, crop: int, g: torch.Generator) -> tuple[int, int, int]:
    """(top, left, augmentation code 0-7) of a random ``crop`` window in a ``height`` x ``width`` image."""
    top = int(torch.randint(0, height - crop + 1, (1,), generator=g))
    left = int(torch.randint(0, width - crop + 1, (1,), generator=g))
    return top, left, int(torch.randint(0, 8, (1,), generator=g))


def augment(patch: torch.Tensor, aug: int) -> torch.Tensor:
    """Flip / transpose (C, h, w) ``patch`` as augmentation code ``aug`` (0-7) says."""
    if aug & 1:
        patch = patch.flip(2)
    if aug & 2:
        patch = patch.flip(1)
    if aug & 4:
        patch = patch.transpose(1, 2)
    return patch


def random_patch(img: torch.Tensor, crop: int, g: torch.Generator) -> torch.Tensor:
    """A random ``crop`` x ``crop`` window of (C, H, W) ``img``, randomly flipped / transposed."""
    top, left, aug = random_window(img.shape[1], img.shape[2], crop, g)
    return augment(img[:, top : top + crop, left : left + crop], aug)


class CropSampler:
    """Random square crops from a set of images held in memory as uint8.

    Images smaller than the crop are skipped. Sampling is uniform over crop
    positions (a larger image is drawn more often), driven by a seeded
    ``torch.Generator`` whose state is checkpointed for exact resumption.
    """

    def __init__(self, folders, crop: int, seed: int = 0, device: str | torch.device = "cpu"):
        self.device = torch.device(device)
        self.folders = list(map(str, folders))
        self.all_images = [load_rgb_uint8(f).to(self.device) for f in list_images(folders)]
        self.set_crop(crop)
        self.generator = torch.Generator().manual_seed(seed)

    def set_crop(self, crop: int) -> None:
        """Cut ``crop`` x ``crop`` windows from now on (images smaller than that are left out)."""
        images = [i for i in self.all_images if i.shape[1] >= crop and i.shape[2] >= crop]
        if not images:
            raise ValueError(f"no training image of at least {crop}x{crop} in {self.folders}")
        weights = torch.tensor([float((i.shape[1] - crop + 1) * (i.shape[2] - crop + 1)) for i in images])
        self.crop, self.images, self.weights = crop, images, weights / weights.sum()

    def __len__(self) -> int:
        return len(self.images)

    def sample(self, batch: int) -> torch.Tensor:
        """(batch, 3, crop, crop) float in [0, 1] on the sampler's device."""
        g, c = self.generator, self.crop
        idx = torch.multinomial(self.weights, batch, replacement=True, generator=g)
        out = []
        for i in idx.tolist():
            out.append(random_patch(self.images[i], c, g))
        return torch.stack(out).float().div_(255.0)

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])
