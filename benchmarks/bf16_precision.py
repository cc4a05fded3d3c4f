"""What bf16 inference costs in quality, per pass: fp32 against bf16 on a folder (Kodak).

    python benchmarks/bf16_precision.py --data ../shared/data/kodak \
        --models irn-x2 fgrn-x2 irn-ld-x3 fgrn-x4 irn-x4 irn-e-x4 irn-x8 --json docs/bf16-precision.json

For each rescaler model, each image is encoded once in fp32 and once in bf16 (the LR
each stores), and decoded with every mix of precisions, on one backend (``--backend``,
OpenVINO by default: the CPU backend that ``auto`` picks):

* lossless (PNG LR): ``encode`` (bf16 encode, fp32 decode), ``decode`` (fp32 encode,
  bf16 upscale) and ``both``;
* JPEG at ``--quality`` (40), with the model's JPEG CRM when it has one: ``encode``,
  ``restore`` (the CRM alone in bf16), ``decode`` (the upscale alone) and ``both``
  (every pass in bf16).

Each figure is the mean loss of RGB PSNR against the source, fp32-everywhere minus the
variant (dB; positive = bf16 is worse), with Y-PSNR (BT.601, border crop = scale) beside
it. ``--write-registry`` records the result in each model's (and CRM's) registry entry as
``kodak.bf16``: per pass (``encode_lr``, ``upscale``, ``restore``, and ``both``
rescaler passes together) the worst of the RGB and Y losses over the lossless and JPEG
rows, which :func:`irc.backends.resolve_precision` compares with the 0.02 dB budget for
``--precision auto``. It refuses to record on a CPU without native bf16 (the bf16 hint
would run fp32 there, and the figure would be zero for the wrong reason).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

PASSES_LOSSLESS = ("encode", "decode", "both")
PASSES_JPEG = ("encode", "restore", "decode", "both")


def _psnrs(ref: np.ndarray, out: np.ndarray, scale: int) -> tuple[float, float]:
    from irc.metrics import psnr_rgb, psnr_y

    return psnr_rgb(ref, out), psnr_y(ref, out, scale)


def measure_model(name: str, files: list[Path], backend: str, quality: int, log=print) -> dict:
    """Per-pass mean PSNR losses (RGB and Y) of ``name`` in bf16 against fp32, lossless and JPEG."""
    from PIL import Image

    from irc.api import downscale, upscale
    from irc.codecs import get_codec
    from irc.models.registry import default_crm, get_spec, load

    spec = get_spec(name)
    crm_spec = default_crm(spec.name, "jpeg")
    runs = {p: load(spec, "cpu", role="rescaler", backend=backend, precision=p) for p in ("fp32", "bf16")}
    if runs["bf16"].precision != "bf16":
        raise SystemExit(f"{backend} runs bf16 as {runs['bf16'].precision} on this CPU: nothing to measure")
    crms = ({p: load(crm_spec, "cpu", role="restore", backend=backend, precision=p) for p in ("fp32", "bf16")}
            if crm_spec is not None else None)
    jpeg = get_codec("jpeg")
    settings = jpeg.settings(quality)
    rows: dict[str, dict[str, list]] = {"lossless": {}, "jpeg": {}}
    t0 = time.time()
    for i, f in enumerate(files):
        with Image.open(f) as im:
            ref = np.asarray(im.convert("RGB"))
        h, w = ref.shape[:2]
        lr = {p: downscale(ref, runs[p]) for p in ("fp32", "bf16")}

        def hr(lr_img, up, crm=None):
            return upscale(lr_img, runs[up], (w, h), crms[crm] if crm else None, quality if crm else None)

        base = _psnrs(ref, hr(lr["fp32"], "fp32"), spec.scale)
        variants = {"encode": hr(lr["bf16"], "fp32"), "decode": hr(lr["fp32"], "bf16"),
                    "both": hr(lr["bf16"], "bf16")}
        for k, out in variants.items():
            got = _psnrs(ref, out, spec.scale)
            rows["lossless"].setdefault(k, []).append((base[0] - got[0], base[1] - got[1]))
        dec = {p: jpeg.decode(jpeg.encode(lr[p], settings), (lr[p].shape[1], lr[p].shape[0])) for p in lr}
        c32, c16 = ("fp32", "bf16") if crms else (None, None)
        jbase = _psnrs(ref, hr(dec["fp32"], "fp32", c32), spec.scale)
        jvariants = {"encode": hr(dec["bf16"], "fp32", c32), "decode": hr(dec["fp32"], "bf16", c32),
                     "both": hr(dec["bf16"], "bf16", c16)}
        if crms:
            jvariants["restore"] = hr(dec["fp32"], "fp32", c16)
        for k, out in jvariants.items():
            got = _psnrs(ref, out, spec.scale)
            rows["jpeg"].setdefault(k, []).append((jbase[0] - got[0], jbase[1] - got[1]))
        rows.setdefault("base", []).append((*base, *jbase))
        log(f"  {name} {f.name}: lossless {base[0]:.3f} dB, jpeg q{quality} {jbase[0]:.3f} dB "
            f"({i + 1}/{len(files)}, {time.time() - t0:.0f} s)")
    out = {"model": spec.key, "crm": crm_spec.key if crm_spec else None, "backend": backend, "images": len(files),
           "files": [f.name for f in files],
           "jpeg_quality": quality, "seconds": round(time.time() - t0, 1),
           "fp32_psnr_rgb": {"lossless": round(float(np.mean([b[0] for b in rows["base"]])), 3),
                             "jpeg": round(float(np.mean([b[2] for b in rows["base"]])), 3)}}
    for kind in ("lossless", "jpeg"):
        out[kind] = {k: {"rgb_db": round(float(np.mean([v[0] for v in vals])), 4),
                         "y_db": round(float(np.mean([v[1] for v in vals])), 4),
                         "worst_image_rgb_db": round(float(np.max([v[0] for v in vals])), 4)}
                     for k, vals in rows[kind].items()}
    return out


def registry_record(result: dict, command: str) -> tuple[dict, dict | None]:
    """``kodak.bf16`` of the rescaler and of its CRM: per pass (and both rescaler passes), the
    larger loss of the RGB and Y figures over the lossless and JPEG rows (a pass must meet
    the budget everywhere)."""
    def worst(*cells):
        return round(max(max(c["rgb_db"], c["y_db"]) for c in cells), 4)

    ll, jp = result["lossless"], result["jpeg"]
    common = {"backend": result["backend"], "images": result["images"], "files": result["files"],
              "jpeg_quality": result["jpeg_quality"], "command": result.get("command", command)}
    rescaler = {**common, "loss_db": {"encode_lr": worst(ll["encode"], jp["encode"]),
                                      "upscale": worst(ll["decode"], jp["decode"]),
                                      "both": worst(ll["both"], jp["both"])}}
    crm = ({**common, "loss_db": {"restore": worst(jp["restore"])}} if "restore" in jp else None)
    return rescaler, crm


def write_registry(results: list[dict], command: str) -> None:
    """Record each result's ``kodak.bf16`` in irc/models/registry.json (atomically)."""
    from irc.models import registry

    path = Path(registry.REGISTRY_FILE)
    entries = json.loads(path.read_text())

    def entry_of(key: str) -> dict:
        name, _, version = key.partition("@")
        mine = [e for e in entries if e["name"] == name]
        if version:
            mine = [e for e in mine if str(e.get("version", 1)) == version]
        return max(mine, key=lambda e: e.get("version", 1))

    for r in results:
        resc, crm = registry_record(r, command)
        entry_of(r["model"]).setdefault("kodak", {})["bf16"] = resc
        if crm and r["crm"]:
            e = entry_of(r["crm"]).setdefault("kodak", {})
            old = e.get("bf16", {}).get("loss_db", {}).get("restore")
            if old is None or crm["loss_db"]["restore"] > old:  # a CRM shared by models keeps its worst figure
                e["bf16"] = crm
    registry.write_entries(entries, path)


def table(results: list[dict]) -> str:
    lines = ["| model | lossless fp32 (RGB dB) | encode | decode | both | JPEG q | CRM | JPEG fp32 | encode | restore "
             "| decode | both |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        ll, jp = r["lossless"], r["jpeg"]

        def cell(c):
            return f"{c['rgb_db']:+.4f} / {c['y_db']:+.4f}" if c else "–"
        lines.append(f"| {r['model']} | {r['fp32_psnr_rgb']['lossless']:.3f} | {cell(ll['encode'])} | "
                     f"{cell(ll['decode'])} | {cell(ll['both'])} | {r['jpeg_quality']} | {r['crm'] or '–'} | "
                     f"{r['fp32_psnr_rgb']['jpeg']:.3f} | {cell(jp['encode'])} | {cell(jp.get('restore'))} | "
                     f"{cell(jp['decode'])} | {cell(jp['both'])} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--models", nargs="+", default=["irn-x2", "fgrn-x4", "irn-x4", "irn-x8"])
    ap.add_argument("--images", type=int, default=None, help="the first N images only")
    ap.add_argument("--stride", type=int, default=1, help="every K-th image (a sample of the folder)")
    ap.add_argument("--backend", default="openvino")
    ap.add_argument("--quality", type=int, default=40)
    ap.add_argument("--threads", type=int, default=None, help="torch/OpenVINO threads (default: all)")
    ap.add_argument("--json", type=Path, default=None, help="write (and extend) the results here")
    ap.add_argument("--write-registry", action="store_true")
    ap.add_argument("--from-json", action="store_true",
                    help="measure nothing: print (and with --write-registry record) --models' results from --json")
    args = ap.parse_args()
    if args.from_json:
        if not (args.json and args.json.exists()):
            sys.exit("--from-json needs --json FILE with earlier results")
        results = [r for r in json.loads(args.json.read_text()) if r["model"] in args.models]
        print(table(results))
        if args.write_registry:
            write_registry(results, "python benchmarks/bf16_precision.py " + " ".join(
                a for a in sys.argv[1:] if a not in ("--from-json", "--write-registry")))
            print(f"recorded kodak.bf16 for {', '.join(r['model'] for r in results)}")
        return
    import torch

    from irc.backends import native_bf16
    from irc.train.data import list_images

    if args.threads:
        torch.set_num_threads(args.threads)
    if not native_bf16(args.backend):
        sys.exit(f"this CPU has no native bf16 for {args.backend}: bf16 would run fp32 (or emulated)")
    files = list_images([args.data])[:: args.stride][: args.images]
    if args.backend == "openvino":  # keep every graph of a model compiled: 3 passes x 2 precisions x 2 orientations
        from irc.backends import openvino_backend

        openvino_backend._MAX_COMPILED = 16
    print(f"torch {torch.__version__} ({torch.backends.cpu.get_cpu_capability()}), backend {args.backend}, "
          f"{len(files)} images of {args.data}", flush=True)
    old = json.loads(args.json.read_text()) if args.json and args.json.exists() else []
    results = []
    for m in args.models:
        results.append({**measure_model(m, files, args.backend, args.quality, log=lambda s: print(s, flush=True)),
                        "command": "python benchmarks/bf16_precision.py " + " ".join(sys.argv[1:])})
        if args.json:  # after each model, so a long run keeps what it measured
            keep = [r for r in old if r["model"] not in {x["model"] for x in results}]
            args.json.write_text(json.dumps(keep + results, indent=1) + "\n")
    print(table(results))
    if args.write_registry:
        write_registry(results, "python benchmarks/bf16_precision.py " + " ".join(sys.argv[1:]))
        print(f"recorded kodak.bf16 for {', '.join(r['model'] for r in results)}")


if __name__ == "__main__":
    main()
