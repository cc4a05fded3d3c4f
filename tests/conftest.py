"""Shared fixtures: tiny random-weight models registered for plumbing tests."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from irc.models import registry
from irc.models.irn import IRN

KODAK = Path(__file__).resolve().parents[2] / "shared" / "data" / "kodak"


def make_tiny(scale: int, path: Path, seed: int = 0) -> registry.ModelSpec:
    """An IRN with one small InvBlock per module and random (non-identity) weights."""
    from safetensors.torch import save_file

    torch.manual_seed(seed)
    model = IRN(scale, blocks_per_module=1)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.01)
    save_file({k: v.half().contiguous() for k, v in model.state_dict().items()}, str(path))
    return registry.ModelSpec(name=f"tiny-x{scale}", arch="irn", scale=scale,
                              params={"blocks_per_module": 1}, weights=str(path), codecs=("*",),
                              description="random-weight test model")


def make_tiny_crm(path: Path, base: str, scale: int, seed: int = 0) -> registry.ModelSpec:
    """A small CRM whose output layer is perturbed (an untrained CRM is the identity)."""
    from safetensors.torch import save_file

    from irc.models.crm import CRM

    torch.manual_seed(seed)
    model = CRM(nf=8, gc=4, blocks=1)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.01)
    save_file({k: v.half().contiguous() for k, v in model.state_dict().items()}, str(path))
    return registry.ModelSpec(name=f"tiny-crm-{base}-jpeg", arch="crm", scale=scale,
                              params={"nf": 8, "gc": 4, "blocks": 1}, weights=str(path),
                              codecs=("jpeg",), base=base, description="random-weight test CRM")


@pytest.fixture(scope="session", autouse=True)
def torch_backend_and_private_cache(tmp_path_factory):
    """The suite runs on the torch backend (`auto` would pick OpenVINO where it is installed;
    tests/test_backends.py asks for it by name) and caches converted models in a temporary folder."""
    import os

    saved = {k: os.environ.get(k) for k in ("IRC_BACKEND", "IRC_CACHE_DIR")}
    os.environ["IRC_BACKEND"] = "torch"
    os.environ["IRC_CACHE_DIR"] = str(tmp_path_factory.mktemp("irc-cache"))
    yield
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture(scope="session", autouse=True)
def tiny_models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("weights")
    specs = {s: make_tiny(s, folder / f"tiny-x{s}.safetensors") for s in (2, 4, 8)}
    specs["crm"] = make_tiny_crm(folder / "tiny-crm.safetensors", "tiny-x2", 2)
    specs["bicubic-crm"] = make_tiny_crm(folder / "tiny-crm-bic.safetensors", "bicubic", 2, seed=1)
    for spec in specs.values():
        registry.register(spec)
    yield specs
    for spec in specs.values():
        registry._extra.pop(spec.name, None)
    registry.load_model.cache_clear()


@pytest.fixture
def photo() -> np.ndarray:
    """A small deterministic photo-like RGB image with an odd size (not a multiple of 8)."""
    rng = np.random.default_rng(0)
    h, w = 45, 67
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([128 + 60 * np.sin(xx / 7.0), 128 + 60 * np.cos(yy / 5.0), (xx + yy) * 1.5], -1)
    return np.clip(base + rng.normal(0, 8, base.shape), 0, 255).astype(np.uint8)


@pytest.fixture
def private_registry(tmp_path, monkeypatch):
    """A copy of the shipped registry (weights linked, not copied) that a test may ship into."""
    weights = tmp_path / "weights"
    weights.mkdir()
    for f in registry.WEIGHTS_DIR.glob("*.safetensors"):
        (weights / f.name).symlink_to(f)
    reg = tmp_path / "registry.json"
    shutil.copyfile(registry.REGISTRY_FILE, reg)
    monkeypatch.setattr(registry, "REGISTRY_FILE", reg)
    monkeypatch.setattr(registry, "WEIGHTS_DIR", weights)
    monkeypatch.setattr(registry, "_parsed", None)
    registry.load_model.cache_clear()
    yield reg
    registry.load_model.cache_clear()


@pytest.fixture
def one_thread():
    """Run a test with one torch thread (the trainers' --threads 1 sets it process-wide); restore it after."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def run_cli(*args):
    """Run the `irc` command line in-process (Typer's runner); arguments may be paths or numbers."""
    from typer.testing import CliRunner

    from irc.cli import app

    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture
def png(photo, tmp_path):
    """The photo fixture saved as tmp_path/photo.png."""
    from PIL import Image

    p = tmp_path / "photo.png"
    Image.fromarray(photo).save(p)
    return p


def synthetic_image(h: int, w: int, seed: int) -> np.ndarray:
    """Smooth colour gradients plus a little noise: photo-like enough to train on."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([128 + 80 * np.sin(xx / (5.0 + seed)), 128 + 80 * np.cos(yy / (4.0 + seed)),
                     (xx + 2 * yy) * 255.0 / (w + 2 * h)], -1)
    return np.clip(base + rng.normal(0, 6, base.shape), 0, 255).astype(np.uint8)


def image_folders(root: Path, train_hw: tuple[int, int], val_hw: tuple[int, int], count: int = 3) -> tuple[Path, Path]:
    """(training folder of ``count`` synthetic images of ``train_hw``, validation folder of one of ``val_hw``)."""
    from PIL import Image

    train, val = root / "train", root / "val"
    train.mkdir()
    val.mkdir()
    for i in range(count):
        Image.fromarray(synthetic_image(*train_hw, i)).save(train / f"img{i}.png")
    Image.fromarray(synthetic_image(*val_hw, 9)).save(val / "val0.png")
    return train, val
