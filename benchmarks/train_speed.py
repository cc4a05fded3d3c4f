"""Seconds per IRN training step on this machine: fp32 against bf16 autocast, and thread layouts.

    python benchmarks/train_speed.py precision --scales 2 4 --steps 6
    python benchmarks/train_speed.py precision --arch fgrn --scales 2 4 --steps 6
    python benchmarks/train_speed.py layout --scale 2 --steps 8

``precision``: one process per (scale, mode), 1 thread, channels-last, the campaign's
crops (x2: 64^2 x 16, x4/x8: 64^2 x 12), fp32 master weights and Adam either way.
``layout``: the same x2 step, once as one process with 2 threads, once as two
1-thread processes side by side; prints HR pixels per second in all.
Run it on an otherwise idle machine; it prints the CPU capability torch uses.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

CROPS = {2: (64, 16), 4: (64, 12), 8: (64, 12)}


def one(scale: int, mode: str, threads: int, steps: int, arch: str = "irn") -> dict:
    """Time ``steps`` training steps (after 2 warm-up steps) of family ``arch`` in this process."""
    import importlib

    import torch

    family = importlib.import_module(f"irc.train.{arch}")
    losses = getattr(family, f"{arch}_losses")
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    cfg = family.CONFIG(scale=scale)
    model = family.build_model(cfg).channels_last()
    opt = torch.optim.Adam(model.parameters(), 1e-4)
    crop, batch = CROPS[scale]
    x = torch.rand(batch, 3, crop, crop).contiguous(memory_format=torch.channels_last)
    times = []
    for _ in range(steps + 2):
        t = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=mode == "bf16"):
            loss = losses(model, x, cfg)["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - t)
    sec = sum(times[2:]) / steps
    return {"arch": arch, "scale": scale, "mode": mode, "threads": threads, "sec_per_step": round(sec, 3),
            "hr_px_per_s": round(batch * crop * crop / sec)}


def _spawn(scale: int, mode: str, threads: int, steps: int, arch: str = "irn") -> subprocess.Popen:
    return subprocess.Popen([sys.executable, __file__, "one", str(scale), mode, str(threads), str(steps), arch],
                            stdout=subprocess.PIPE, text=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="what", required=True)
    p = sub.add_parser("precision")
    p.add_argument("--scales", type=int, nargs="+", default=[2, 4])
    p.add_argument("--steps", type=int, default=6)
    p.add_argument("--bf16-steps", type=int, default=2, help="bf16 is slow on CPUs without native bf16")
    p.add_argument("--arch", default="irn", help="the family: irn or fgrn")
    q = sub.add_parser("layout")
    q.add_argument("--scale", type=int, default=2)
    q.add_argument("--steps", type=int, default=8)
    o = sub.add_parser("one")
    for a in ("scale", "mode", "threads", "steps", "arch"):
        o.add_argument(a)
    args = ap.parse_args()
    if args.what == "one":
        print(json.dumps(one(int(args.scale), args.mode, int(args.threads), int(args.steps), args.arch)))
        return
    import torch

    print(f"torch {torch.__version__}, CPU capability {torch.backends.cpu.get_cpu_capability()}")
    rows = []
    if args.what == "precision":
        for s in args.scales:
            for mode in ("fp32", "bf16"):
                steps = args.steps if mode == "fp32" else args.bf16_steps
                proc = _spawn(s, mode, 1, steps, args.arch)
                rows.append(json.loads(proc.communicate()[0]))
    else:
        proc = _spawn(args.scale, "fp32", 2, args.steps)
        r = json.loads(proc.communicate()[0])
        rows.append({**r, "layout": "1 process x 2 threads"})
        pair = [_spawn(args.scale, "fp32", 1, args.steps) for _ in range(2)]
        for proc in pair:
            rows.append({**json.loads(proc.communicate()[0]), "layout": "2 processes x 1 thread"})
    print(f"{'layout':<24} {'arch':>5} {'scale':>5} {'mode':>5} {'threads':>7} {'s/step':>7} {'HR px/s':>8}")
    for r in rows:
        print(f"{r.get('layout', '1 process'):<24} {r['arch']:>5} {r['scale']:>5} {r['mode']:>5} {r['threads']:>7} "
              f"{r['sec_per_step']:>7} {r['hr_px_per_s']:>8}")


if __name__ == "__main__":
    main()
