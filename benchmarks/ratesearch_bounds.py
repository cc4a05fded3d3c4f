"""How tight is the rate-control search's bound? Measured decodes against irc.ratesearch.upper_estimate.

    python benchmarks/ratesearch_bounds.py --data ../shared/data/kodak --images kodim04,kodim13,kodim19

For each image, every scale with a shipped default model (x2, x4, x8) and every codec of
``--codec auto``, at each quality of ``--qualities``: the pair's ceiling (its model on the clean LR),
the decoded LR's PSNR against the clean LR, the bound the search uses before an upscale
(upper_estimate, without its slack) and the PSNR that `irc decode` then gives, with the CRM the
file names. The search drops a candidate unmeasured when bound + ESTIMATE_SLACK_DB misses the
target, so a positive "decode - bound" larger than the slack would be a wrong decision.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path("../shared/data/kodak"))
    ap.add_argument("--images", default="kodim04,kodim13,kodim19", help="comma list of file stems in --data")
    ap.add_argument("--qualities", default="30,60,90")
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args()

    import torch

    from irc import api, imageio, ratecontrol, ratesearch
    from irc.ratepoints import amplification

    if args.threads:
        torch.set_num_threads(args.threads)
    qualities = [int(q) for q in args.qualities.split(",")]
    print("| image | scale | codec | q | model | CRM | ceiling dB | LR dB | bound dB | decode dB | decode - bound | amp |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    gaps, amps, decodes = [], {}, []  # amps: (image, scale, codec) -> [amp]; decodes: see calibration()
    for stem in args.images.split(","):
        img = imageio.load(args.data / f"{stem}.png")
        plan = ratecontrol.plan_search(target_psnr=30.0)
        s = ratesearch.Search(img, plan, {"target_psnr": 30.0}, "cpu", api.DEFAULT_TILE, api.DEFAULT_OVERLAP)
        for pair in s.pairs:
            if pair.scale == 1 or pair.n_lossy == 0:
                continue
            ceiling = s.ceiling(pair)
            for q in qualities:
                if q not in pair.rungs:
                    continue
                r = pair.rungs.index(q)
                lr_db = s._lr_psnr(pair, r)  # the decoded LR against the clean one, as the search has it
                bound = ratesearch.upper_estimate(ceiling, lr_db)
                p = s.point(pair, r)
                gaps.append(p.psnr_rgb - bound)
                decodes.append((stem, pair.scale, p.model, ceiling, lr_db, p.psnr_rgb))
                amp = amplification(ceiling, lr_db, p.psnr_rgb)
                amp_text = "-" if amp is None else f"{amp:.2f}"
                if amp is not None:  # None: an exact LR (no error to amplify)
                    amps.setdefault((stem, pair.scale, pair.codec.name), []).append(amp)
                print(f"| {stem} | {pair.scale} | {pair.codec.name} | {q} | {p.model} | {p.crm or '-'} | {ceiling:.2f} | "
                      f"{lr_db:.2f} | {bound:.2f} | {p.psnr_rgb:.2f} | {p.psnr_rgb - bound:+.2f} | {amp_text} |", flush=True)
    if gaps:
        print(f"\n{len(gaps)} decodes: decode - bound from {min(gaps):+.2f} to {max(gaps):+.2f} dB "
              f"(the search's slack: {ratesearch.ESTIMATE_SLACK_DB} dB)")
        # one model, one image: how much better can a decoded LR further from the clean one decode?
        better = [b[5] - a[5] for a in decodes for b in decodes
                  if a is not b and a[0] == b[0] and a[2] == b[2] and a[4] >= b[4]]
        print(f"{len(better)} ordered pairs of one model's candidates: an LR no closer to the clean one decoded "
              f"at most {max(better, default=float('nan')):+.2f} dB better (the search's slack: "
              f"{ratesearch.MONOTONE_SLACK_DB} dB)")
        spread = [max(v) / min(v) for v in amps.values() if len(v) > 1 and min(v) > 0]
        print(f"amplification (the decode's MSE beyond the ceiling's, over the decoded LR's MSE): "
              f"{min(min(v) for v in amps.values()):.2f} to {max(max(v) for v in amps.values()):.2f}; "
              f"within one (image, scale, codec) over the qualities, max/min up to {max(spread, default=float('nan')):.2f}")
        calibration(decodes)


def calibration(decodes: list) -> None:
    """The search's calibrated bound (ratepoints.calibrated_amplification) checked on every decode:
    each one bounded from the other decodes of its image by its model or one of no larger scale, as
    the search would have them. ``decodes``: (image, scale, model, ceiling, LR dB, decode dB)."""
    from irc.ratepoints import AMP_MARGIN, ESTIMATE_SLACK_DB, amplification, calibrated_amplification, upper_estimate

    ratios, gaps = {}, []
    for i, (stem, scale, model, ceiling, lr_db, decode_db) in enumerate(decodes):
        others = [d for j, d in enumerate(decodes) if j != i and d[0] == stem and d[1] <= scale]
        mine = amplification(ceiling, lr_db, decode_db)
        for o in others:
            theirs = amplification(*o[3:])
            if o[4] <= lr_db and mine is not None and theirs:
                kind = "one model" if o[2] == model else "a lesser or equal scale's model"
                ratios.setdefault(kind, []).append(mine / theirs)
        amp = calibrated_amplification(lr_db, [o[3:] for o in others])
        gaps.append(decode_db - upper_estimate(ceiling, lr_db, amp))
    for kind, v in ratios.items():
        print(f"{kind}: an LR at least as close as another's amplified at least {min(v):.2f}x as much "
              f"({len(v)} ordered pairs of one image; AMP_MARGIN {AMP_MARGIN})")
    print(f"{len(gaps)} decodes against the calibrated bound (from the image's other decodes): decode - bound "
          f"from {min(gaps):+.2f} to {max(gaps):+.2f} dB (the search's slack: {ESTIMATE_SLACK_DB} dB)")


if __name__ == "__main__":
    main()
