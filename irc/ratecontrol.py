"""Rate control: the smallest .irc file that reaches an RGB PSNR, or the best PSNR within a size.

    from irc.ratecontrol import encode_target
    res = encode_target("photo.png", target_psnr=32)       # or max_bytes=20_000 / max_bpp=0.5
    res.data, res.choice.scale, res.choice.codec, res.choice.quality, res.choice.psnr_rgb

The search runs over the scale (1, and each scale with an installed default model), the
allowed codecs (``"auto"``: avif, webp, jpeg, jxl, those available here) and each codec's
integer qualities plus its lossless mode. Every candidate it keeps is measured the way
`irc decode` decodes it (irc.ratesearch), so the PSNR and size it promises are those of
the file it returns. Both are recorded in the header (``rate_control``). The options:

* ``target_psnr`` alone: the smallest file whose decode reaches it; none: IrcError giving
  the best reachable PSNR and what it takes.
* ``max_bytes`` (or ``max_bpp``: every byte of the file x 8 / original pixels) alone: the
  highest PSNR within it; no file small enough: IrcError giving the smallest possible.
* both: the smallest file that reaches the target within the limit; if none does, the
  best PSNR within the limit, with a note (``target_reached`` False). The limit is hard,
  the target soft.
* ``scale`` or ``model`` pins the scale (and the model); ``crm`` is "auto" or "none".
"""

from __future__ import annotations

import math
import numbers
import time
from dataclasses import dataclass, field

from irc import api
from irc.errors import IrcError
from irc.ratesearch import Point, Search, db  # noqa: F401  (irc.ratecontrol.Point stays public)

AUTO_CODECS = ("avif", "webp", "jpeg", "jxl")  # what --codec auto searches (those available here)
VIEWABLE_CODECS = ("jpeg", "png")  # what auto means with the viewable layout


@dataclass
class Result:
    """What :func:`encode_target` chose: the file, its EncodeInfo (the header holds the record)."""

    data: bytes
    info: api.EncodeInfo
    choice: Point
    target_reached: bool | None  # None without a target
    candidates: int  # candidate files measured (decoded and compared with the input)
    model_passes: int  # upscales run for them (identical decoded LRs are measured once)
    encodes: int  # LR codec encodes (sizes are cheap; the bisection on size needs no decode)
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    def summary(self) -> dict:
        """The JSON-able account `irc encode --json` prints."""
        rc = dict(self.info.header.rate_control or {})
        return {**rc, "target_reached": self.target_reached, "candidates": self.candidates,
                "model_passes": self.model_passes, "encodes": self.encodes, "seconds": round(self.seconds, 3)}


@dataclass(frozen=True)
class SearchPlan:
    """The checked options of a search (no image read yet)."""

    target_psnr: float | None
    max_bytes: int | None
    max_bpp: float | None
    codecs: tuple  # irc.codecs.Codec objects, in search order
    scales: tuple[int, ...]
    model: str | None
    crm: str
    layout: str


def _positive(name: str, value, integral: bool = False):
    what = "a whole number >= 1" if integral else "a finite number above 0"
    kinds = (numbers.Integral,) if integral else (numbers.Real,)
    api._check_type(name, value, kinds, what, optional=True)
    if value is None:
        return None
    if integral:
        if value < 1:
            raise IrcError(f"{name} must be {what}, got {value}")
        return int(value)
    if not math.isfinite(value) or value <= 0:
        raise IrcError(f"{name} must be {what}, got {value:g}")
    return float(value)


def codec_list(codecs, viewable: bool = False) -> tuple:
    """``"auto"``, one name, a comma list or a list of names -> the Codec objects to search."""
    from irc.codecs import get_codec

    if isinstance(codecs, str):
        names = [n.strip() for n in codecs.split(",")]
    elif isinstance(codecs, (list, tuple)) and all(isinstance(n, str) for n in codecs):
        names = [n.strip() for n in codecs]
    else:
        raise api.IrcTypeError(f"codecs must be 'auto', a codec name, a comma list or a list of names, "
                               f"got {type(codecs).__name__}")
    if names == ["auto"]:
        found = tuple(c for c in map(get_codec, VIEWABLE_CODECS if viewable else AUTO_CODECS) if c.available())
        if not found:
            raise IrcError("--codec auto found no usable codec here")
        return found
    if not names or any(not n for n in names):
        raise IrcError(f"empty codec name in {','.join(names)!r}; give names separated by commas, e.g. avif,webp")
    if "auto" in names:
        raise IrcError("--codec auto stands alone; it cannot be part of a list")
    out = []
    for name in names:
        codec = get_codec(name)  # unknown or retired names raise here
        codec.check()  # a codec asked for by name must work here
        if viewable and codec.name not in VIEWABLE_CODECS:
            raise IrcError(f"the viewable layout needs the png or jpeg LR codec, not {codec.name}")
        if codec.name not in {c.name for c in out}:
            out.append(codec)
    return tuple(out)


def plan_search(target_psnr=None, max_bytes=None, max_bpp=None, codecs="auto", scale=None, model=None,
                crm="auto", layout="irc") -> SearchPlan:
    """Check every option of a search; IrcError (IrcTypeError for a wrong type) names the first bad one."""
    from irc.models.registry import default_model

    target_psnr = _positive("target PSNR (dB)", target_psnr)
    max_bytes = _positive("max bytes", max_bytes, integral=True)
    max_bpp = _positive("max bpp", max_bpp)
    if max_bytes is not None and max_bpp is not None:
        raise IrcError("give a size limit in bytes or in bpp, not both")
    if target_psnr is None and max_bytes is None and max_bpp is None:
        raise IrcError("rate control needs a target PSNR, a size limit in bytes or in bpp")
    scale = api.scale_arg(scale)
    api._check_type("model", model, (str,), "a model name or None", optional=True)
    api._check_type("crm", crm, (str,), "'auto' or 'none'", optional=True)
    crm = "none" if crm is None else crm
    if crm not in ("auto", "none"):
        raise IrcError("rate control takes --crm auto or none (the CRM follows each candidate's model and codec)")
    api.check_layout(layout, "png")
    found = codec_list(codecs, layout == "viewable")
    if model:  # the model pins the scale; plan_encode checks the rest (role, scale 1)
        pinned = api.plan_encode(scale, "png", None, None, model, "none")
        if pinned.gray:
            raise IrcError(f"{pinned.model.name} stores a grayscale image; rate control searches colour payloads "
                           "(encode with --gray and a fixed --codec/-q instead)")
        scales = (pinned.scale,)
    elif scale is not None:
        api.plan_encode(scale, "png", None, None, None, "none")  # a scale irc can encode with
        scales = (scale,)
    else:
        scales = (1,) + tuple(s for s in SEARCHED_SCALES if _has_default(default_model, s))
    return SearchPlan(target_psnr, max_bytes, max_bpp, found, scales, model, crm, layout)


SEARCHED_SCALES = (2, 4, 8)  # with no -s: the model scales searched beside 1 (x3 is left out: cost)


def _has_default(default_model, scale: int) -> bool:
    try:
        default_model(scale, "*")
    except IrcError:
        return False
    return True


def encode_target(image, target_psnr: float | None = None, max_bytes: int | None = None,
                  max_bpp: float | None = None, codecs="auto", scale: int | None = None, model: str | None = None,
                  device: str = "cpu", tile: int = api.DEFAULT_TILE, overlap: int = api.DEFAULT_OVERLAP,
                  crm: str = "auto", layout: str = "irc", backend: str = "auto", precision: str = "auto") -> Result:
    """Encode ``image`` (what :func:`irc.api.encode` accepts) under rate control; see the module doc.

    The file is the one a plain encode with the chosen scale, codec and quality gives, plus
    the header's ``rate_control`` record. Every bad value raises :class:`IrcError`, and so
    does a target or limit that nothing reaches (the message gives the closest reachable).
    Candidates run on ``backend`` in ``precision`` (:mod:`irc.backends`), encode and decode
    alike: the promise is for a decode with the same ones (`irc decode`'s default is auto).
    """
    from irc import imageio

    t0 = time.perf_counter()
    plan = plan_search(target_psnr, max_bytes, max_bpp, codecs, scale, model, crm, layout)
    device = api.resolve_device(device)
    from irc.backends import check_precision, resolve_backend

    check_precision(precision)
    resolve_backend(backend, device)
    api._check_tiling(tile, overlap)
    img = imageio.load(image)
    pixels = img.rgb.shape[0] * img.rgb.shape[1]
    limit = plan.max_bytes if plan.max_bpp is None else math.floor(plan.max_bpp * pixels / 8)
    record = {"target_psnr": plan.target_psnr, "max_bytes": limit}
    if plan.max_bpp is not None:
        record["max_bpp"] = plan.max_bpp
    search = Search(img, plan, record, device, tile, overlap, backend, precision)
    notes, reached = [], None
    cap = math.inf if limit is None else limit
    best = None
    if plan.target_psnr is not None:
        best = search.smallest_reaching(plan.target_psnr, cap)
        reached = best is not None
        if best is None and limit is None:
            top = search.best_overall()
            raise IrcError(f"target {plan.target_psnr:g} dB is unreachable: best is {top.describe()}; "
                           f"searched {search.space()}")
    if best is None:
        best = search.best_within(cap)
        if best is None:
            low = search.smallest_possible()
            bpp = f" ({plan.max_bpp:g} bpp)" if plan.max_bpp is not None else ""
            raise IrcError(f"no file fits in {limit:,} bytes{bpp}: the smallest possible is {low.file_bytes:,} "
                           f"bytes, {low.file_bytes * 8 / pixels:.4f} bpp ({low.setting}, {db(low.psnr_rgb)}); "
                           f"searched {search.space()}")
        if reached is False:
            notes.append(f"target {plan.target_psnr:g} dB is not reached within {limit:,} bytes: "
                         f"this is the best within the limit, {best.describe()}")
    data, info = search.file_of(best)
    info.notes.extend(notes)
    return Result(data, info, best, reached, search.candidates, search.model_passes, search.encodes,
                  time.perf_counter() - t0, notes)
