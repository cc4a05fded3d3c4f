"""Argument checks shared by the API entry points: exact types, devices, tiling.

Every failure is an :class:`irc.IrcError` (``IrcTypeError`` for a wrong type) with one line.
"""

from __future__ import annotations

from irc.errors import IrcError, IrcTypeError


def check_type(name: str, value, types, what: str, optional: bool = False) -> None:
    """IrcTypeError unless ``value`` is one of ``types`` (bool never counts as int)."""
    if value is None and optional:
        return
    if isinstance(value, bool) and bool not in types or not isinstance(value, types):
        raise IrcTypeError(f"{name} must be {what}, got {type(value).__name__} {value!r:.40}")


def int_arg(name: str, value, optional: bool = False) -> int | None:
    import numbers

    check_type(name, value, (numbers.Integral,), "an integer" + (" or None" if optional else ""), optional)
    return None if value is None else int(value)


def resolve_device(device: str = "cpu") -> str:
    import torch

    check_type("device", device, (str,), "a string such as 'cpu', 'cuda' or 'auto'")
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise IrcError("--device cuda asked for, but no CUDA GPU is available (use --device cpu)")
    if device not in ("cpu",) and not device.startswith("cuda") and device != "mps":
        raise IrcError(f"unknown device {device!r}: use cpu, cuda, cuda:N or auto")
    if device == "mps" and not torch.backends.mps.is_available():
        raise IrcError("--device mps asked for, but this machine has no Apple GPU (use --device cpu)")
    return device


def check_tiling(tile: int, overlap: int, scale: int = 1) -> tuple[int, int]:
    """Tile and overlap in HR pixels, checked -> the same in LR pixels at ``scale`` (rounded down)."""
    tile, overlap = int_arg("tile", tile), int_arg("overlap", overlap)
    if tile < 64:
        raise IrcError(f"tile must be at least 64 (HR pixels), got {tile}")
    if overlap < 0 or overlap * 2 >= tile:
        raise IrcError("overlap must be 0 or more and less than half the tile")
    return tile // scale, overlap // scale
