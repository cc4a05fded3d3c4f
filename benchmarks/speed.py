"""Encode and decode time and peak memory, per scale and image size (CPU by default).

Encode and decode each run in a fresh child process, so each peak RSS is its
own (it includes the Python + PyTorch runtime, about 0.3 GB, shown as "base").
Sizes: a Kodak image (768x512) and 24 megapixels (6000x4000, the Kodak image
upsampled with Lanczos). Also bicubic down + up with Pillow, as the floor.
With a lossy codec the decode is timed with and without the CRM the file
names (``decode-nocrm``), and the CRM pass alone (``crm``), so its cost shows.

Backends and precisions (irc.backends): ``--backend torch,openvino --precision fp32,bf16``
times every combination; the last column is torch fp32's time over this one (higher is
faster), and "ran" the precision that really ran (OpenVINO runs fp32 where the CPU has no
native bf16). A ``prepare`` row per model and backend fills the OpenVINO conversion cache
first (its time is the one-off conversion when the cache was empty), so encode and decode
rows time a normal run: read the cached model, compile, infer.

    python benchmarks/speed.py --kodak ../shared/data/kodak/kodim23.png --scales 2 4 --sizes kodak 24mp
    python benchmarks/speed.py --codecs png jpeg:30 webp:50 --scales 2 4 --sizes kodak
    python benchmarks/speed.py --models irn-x4 irn-e-x4 --sizes kodak     # named registry models
    python benchmarks/speed.py --scales 2 4 --sizes kodak 1080p --backend torch,openvino --precision fp32,bf16
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SIZES = {"kodak": None, "1080p": (1920, 1080), "24mp": (6000, 4000)}


def _image(path: str, size: str):
    from PIL import Image

    im = Image.open(path).convert("RGB")
    return im.resize(SIZES[size], Image.LANCZOS) if SIZES[size] else im


def child(args) -> None:
    import numpy as np
    import torch

    from irc import api

    run = {"backend": args.backend_one, "precision": args.precision_one}
    ran = None
    if args.phase == "prepare":  # fill the conversion cache: every pass of the model (and its CRM)
        rgb = np.asarray(_image(args.kodak, "kodak"))[:64, :64]
        t0 = time.perf_counter()
        data = api.encode(rgb, scale=args.scale, codec=args.codec, quality=args.quality, device=args.device,
                          model=args.model, **run)
        api.decode(data, device=args.device, **run)
        secs, mp, base = time.perf_counter() - t0, 0.0, 0
    elif args.phase == "encode":
        rgb = np.asarray(_image(args.kodak, args.size))
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        t0 = time.perf_counter()
        data = api.encode(rgb, scale=args.scale, codec=args.codec, quality=args.quality, device=args.device,
                          model=args.model, **run)
        secs = time.perf_counter() - t0
        Path(args.file).write_bytes(data)
        ran = api.read(data).header.precision
        mp = rgb.shape[0] * rgb.shape[1] / 1e6
    elif args.phase in ("decode", "decode-nocrm"):
        api.read(args.file)  # import and parse before the clock starts
        import irc.models.registry  # noqa: F401

        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        t0 = time.perf_counter()
        out = api.decode(args.file, device=args.device, use_crm=args.phase == "decode", **run)
        secs = time.perf_counter() - t0
        mp = out.width * out.height / 1e6
        ran = _ran(api.read(args.file).header.model, args, "upscale")
    elif args.phase == "crm":
        from irc.codecs import get_codec
        from irc.models.registry import load_model

        f = api.read(args.file)
        if not f.header.crm:
            print(json.dumps({"skip": "no CRM in the file"}))
            return
        lr = get_codec(f.header.codec).decode(f.payload)
        load_model(f.header.crm, args.device)
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        t0 = time.perf_counter()
        api.restore(lr, f.header.crm, f.header.quality, args.device, **run)
        secs = time.perf_counter() - t0
        mp = f.header.width * f.header.height / 1e6
        ran = _ran(f.header.crm, args, "restore")
    else:  # bicubic floor: down + up with Pillow
        from PIL import Image

        im = _image(args.kodak, args.size)
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        t0 = time.perf_counter()
        small = im.resize((im.width // args.scale, im.height // args.scale), Image.BICUBIC)
        small.resize(im.size, Image.BICUBIC)
        secs = time.perf_counter() - t0
        mp = im.width * im.height / 1e6
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"secs": secs, "mp": mp, "peak_mb": peak / 1024, "base_mb": base / 1024,
                      "threads": torch.get_num_threads(), "ran": ran}))


def _ran(model: str, args, pass_: str) -> str:
    """The precision pass ``pass_`` of ``model`` really runs in on this backend (OpenVINO without
    native bf16: fp32; ``auto``: what the model's measured bf16 loss allows)."""
    from irc.models.registry import load

    return load(model, args.device, backend=args.backend_one, precision=args.precision_one).precision_of(pass_)


def _run(args, phase: str, scale: int, size: str, file: str, codec: str, quality: int | None,
         model: str | None = None, backend: str = "torch", precision: str = "fp32") -> dict | None:
    cmd = [sys.executable, __file__, "--phase", phase, "--kodak", args.kodak, "--scale", str(scale),
           "--size", size, "--codec", codec, "--device", args.device, "--file", file,
           "--backend-one", backend, "--precision-one", precision]
    if model:
        cmd += ["--model", model]
    if quality is not None:
        cmd += ["--quality", str(quality)]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode:
        print(f"x{scale} {size} {phase}: failed: {(res.stderr.strip().splitlines() or ['?'])[-1]}")
        return None
    out = json.loads(res.stdout.strip().splitlines()[-1])
    return None if "skip" in out else out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kodak", default="../shared/data/kodak/kodim23.png")
    ap.add_argument("--scales", type=int, nargs="+", default=[2, 4])
    ap.add_argument("--sizes", nargs="+", default=["kodak", "24mp"], choices=list(SIZES))
    ap.add_argument("--models", nargs="+", default=None,
                    help="registry names to time (default: the default model of each --scales)")
    ap.add_argument("--codecs", nargs="+", default=["png"], help="LR codecs, NAME or NAME:QUALITY (e.g. jpeg:30)")
    ap.add_argument("--codec", default="png", help=argparse.SUPPRESS)
    ap.add_argument("--quality", type=int, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--backend", default="torch", help="comma list of backends to time: torch,openvino")
    ap.add_argument("--precision", default="fp32", help="comma list of precisions to time: fp32,bf16,auto")
    ap.add_argument("--runs", default=None, help="explicit BACKEND:PRECISION list instead of every combination "
                    "(e.g. torch:fp32,openvino:fp32,openvino:bf16)")
    ap.add_argument("--backend-one", default="torch", help=argparse.SUPPRESS)
    ap.add_argument("--precision-one", default="fp32", help=argparse.SUPPRESS)
    ap.add_argument("--phase", choices=["prepare", "encode", "decode", "decode-nocrm", "crm", "bicubic"],
                    help=argparse.SUPPRESS)
    ap.add_argument("--scale", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--model", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--size", help=argparse.SUPPRESS)
    ap.add_argument("--file", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.phase:
        return child(args)

    combos = ([tuple(r.split(":", 1)) for r in args.runs.split(",")] if args.runs else
              [(b, p) for b in args.backend.split(",") for p in args.precision.split(",")])
    combos.sort(key=lambda c: c != ("torch", "fp32"))  # the reference first: the ratios need it
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")),
               platform.machine()) if Path("/proc/cpuinfo").exists() else platform.machine()
    print(f"host: {cpu}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
          f"device {args.device}, torch threads {_threads()}")
    print("| pipeline | size | backend | precision (ran) | phase | seconds | s/MP | peak RSS MB | base MB "
          "| torch fp32 / this |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    prepared, reference = set(), {}
    with tempfile.TemporaryDirectory() as tmp:
        if args.models:
            from irc.models.registry import get_spec

            units = [(get_spec(m).scale, m) for m in args.models]
        else:
            units = [(s, None) for s in args.scales]
        for size in args.sizes:
            for scale, model in units:
                for spec in args.codecs:
                    codec, _, q = spec.partition(":")
                    quality = int(q) if q else None
                    label = f"irc {model or f'x{scale}'} {codec}" + (f" q{quality}" if quality else "")
                    for backend, precision in combos:
                        run = {"backend": backend, "precision": precision}
                        if (label, backend, precision) not in prepared:
                            prepared.add((label, backend, precision))
                            r = _run(args, "prepare", scale, "kodak", "", codec, quality, model, **run)
                            if r:
                                _row(label, "64x64", run, "prepare", r)
                        file = str(Path(tmp) / f"{model or scale}-{size}-{codec}-{backend}-{precision}.irc")
                        phases = ["encode", "decode"] + (["decode-nocrm", "crm"] if quality is not None else [])
                        for phase in phases:
                            r = _run(args, phase, scale, size, file, codec, quality, model, **run)
                            if r:
                                name = f"CRM x{scale} {codec} q{quality} (LR restore only)" if phase == "crm" else label
                                key = (name, size, phase)
                                if (backend, precision) == ("torch", "fp32"):
                                    reference[key] = r["secs"]
                                _row(name, size, run, phase, r, reference.get(key))
                r = _run(args, "bicubic", scale, size, "", "png", None)
                if r:
                    _row(f"bicubic x{scale}", size, {"backend": "pillow", "precision": "-"}, "down+up", r)


def _row(name: str, size: str, run: dict, phase: str, r: dict, reference: float | None = None) -> None:
    mp = f"{size} ({r['mp']:.2f} MP)" if r["mp"] else size
    per_mp = f"{r['secs'] / r['mp']:.2f}" if r["mp"] else "-"
    ran = f"{run['precision']} ({r['ran']})" if r.get("ran") else run["precision"]
    ratio = f"{reference / r['secs']:.2f}x" if reference and r["secs"] else "-"
    peak = f"{r['peak_mb']:.0f} | {r['base_mb']:.0f}" if r["mp"] else "- | -"
    print(f"| {name} | {mp} | {run['backend']} | {ran} | {phase} | {r['secs']:.2f} | {per_mp} | {peak} | {ratio} |",
          flush=True)


def _threads() -> int:
    import torch

    return torch.get_num_threads()


if __name__ == "__main__":
    main()
