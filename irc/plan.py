"""What an encode will do, checked before any image is read: the scale (any number >= 1),
the codec and its settings, the rescaler (the next larger installed scale when none has
the scale asked for) and the CRM the header will name. ``irc.api`` runs the plan.
"""

from __future__ import annotations

from dataclasses import dataclass

from irc import container
from irc.args import check_type as _check_type, int_arg as _int_arg
from irc.errors import IrcError


@dataclass(frozen=True)
class EncodePlan:
    """What an encode will do, every option checked: the codec and its settings, the
    rescaler (None at scale 1, where the LR is the image) and the CRM the header names."""

    scale: int | float  # as asked: 2.5 runs a x3 model on a resampled HR
    codec: object  # irc.codecs.Codec
    settings: object  # irc.codecs.CodecSettings
    model: object | None  # irc.models.registry.ModelSpec
    crm: object | None

    @property
    def gray(self) -> bool:
        """Whether the LR is a grayscale carrier from a colour model (IRN_color, at scale 1)."""
        return self.model is not None and self.model.lr_channels == 1

    @property
    def resample(self) -> bool:
        """Whether the HR is resized around the model (its scale is not the one asked for)."""
        return self.model is not None and self.model.scale != self.scale


def scale_arg(scale) -> int | float | None:
    """A scale as given (int, float, None) checked: a finite number >= 1; integral values as int."""
    import math
    import numbers

    _check_type("scale", scale, (numbers.Real,), "a number >= 1 (such as 2, 4 or 2.5) or None", optional=True)
    if scale is None:
        return None
    if not math.isfinite(scale) or scale < 1:
        raise IrcError(f"scale must be a number >= 1 (1 stores the image itself), got {scale:g}")
    return int(scale) if float(scale).is_integer() else float(scale)


def model_scale_for(scale: int | float) -> int:
    """The installed model scale an encode at ``scale`` (> 1) runs: the scale itself, else the
    next larger one (the HR is resized to it)."""
    from irc.models.registry import rescaler_scales

    have = rescaler_scales()
    larger = [s for s in have if s >= scale]
    if not larger:
        raise IrcError(f"unsupported scale {scale:g}: the largest installed model scale is "
                       f"{max(have) if have else 'none'} (choose 1 to {max(have, default=1)}; see `irc models`)")
    return larger[0]

def plan_encode(scale: int | None = 4, codec: str = "jpeg", quality: int | None = None,
                lossless: bool | None = None, model: str | None = None, crm: str | None = "auto",
                gray: bool = False) -> EncodePlan:
    """Check the options of an encode (no image is read) and resolve the model and CRM.
    ``gray``: store a grayscale image from which a colour model (IRN_color) restores the colours."""
    from irc.codecs import get_codec
    from irc.models.registry import default_model, get_spec

    scale, quality = scale_arg(scale), _int_arg("quality", quality, optional=True)
    _check_type("codec", codec, (str,), "a codec name")
    _check_type("lossless", lossless, (bool,), "True, False or None", optional=True)
    _check_type("model", model, (str,), "a model name or None", optional=True)
    _check_type("crm", crm, (str,), "'auto', 'none', a model name or None", optional=True)
    _check_type("gray", gray, (bool,), "True or False")
    codec_obj = get_codec(codec)
    settings = codec_obj.settings(quality, lossless)
    spec = get_spec(model) if model else None
    if gray or (spec is not None and spec.role == "rescaler" and spec.lr_channels == 1):
        return _plan_gray(scale, codec_obj, settings, spec, crm)
    if scale == 1:
        if model:
            raise IrcError("scale 1 stores the image itself, with no model: drop the model option (--model)")
        if crm not in (None, "auto", "none"):
            raise IrcError("scale 1 stores the image itself, with no model: a CRM (--crm) does not apply")
        return EncodePlan(1, codec_obj, settings, None, None)
    if spec is not None:
        if scale is not None and scale > spec.scale:
            raise IrcError(f"model {spec.name} is for scale {spec.scale}; it can serve scales from 1 to "
                           f"{spec.scale} (resampled), not {scale:g}")
    else:
        if scale is None:
            raise IrcError("give a scale or a model")
        spec = default_model(model_scale_for(scale), codec_obj.name)
    if spec.role != "rescaler":
        raise IrcError(f"model {spec.name} is a {spec.arch}, not a rescaler; see `irc models`")
    return EncodePlan(spec.scale if scale is None else scale, codec_obj, settings, spec,
                      choose_crm(spec.name, codec_obj.name, settings.lossless, crm))


def _plan_gray(scale, codec_obj, settings, spec, crm) -> EncodePlan:
    """The plan of a grayscale carrier: a colour model at scale 1, no CRM."""
    from irc.models.registry import default_color_model

    if spec is None:
        spec = default_color_model()
    elif spec.role != "rescaler" or spec.lr_channels != 1:
        raise IrcError(f"--gray needs a colour model (IRN_color); {spec.name} is not one "
                       f"(a x{spec.scale} {spec.role}): drop --gray, or drop --model")
    if scale not in (None, 1):
        raise IrcError(f"{spec.name} stores a full-size grayscale image (scale 1), not scale {scale:g}: "
                       "use -s 1 (or no -s) with --gray")
    if crm not in (None, "auto", "none"):
        raise IrcError("no restore model (CRM) takes a grayscale LR: drop --crm")
    return EncodePlan(1, codec_obj, settings, spec, None)


def check_layout(layout: str, codec: str) -> None:
    if layout not in container.LAYOUTS:
        raise IrcError(f"unknown layout {layout!r}; choose one of {', '.join(container.LAYOUTS)}")
    if layout == "viewable" and codec not in ("png", "jpeg"):
        raise IrcError(f"the viewable layout needs the png or jpeg LR codec, not {codec}")


def choose_crm(model: str, codec: str, lossless: bool, crm: str | None = "auto"):
    """The CRM spec an encode records: ``auto`` picks the registered one for
    (model, codec) on lossy payloads, ``none`` (or None) none, a name that one."""
    from irc.models.registry import default_crm, get_spec

    if lossless or crm is None or crm == "none":
        return None
    if crm == "auto":
        return default_crm(model, codec)
    spec = get_spec(crm)
    if spec.role != "restore":
        raise IrcError(f"{crm} is not a restore model (CRM); see `irc models`")
    if spec.base != model or codec not in spec.codecs:
        raise IrcError(f"CRM {crm} restores {spec.base} LR stored with {', '.join(spec.codecs)}, "
                       f"not {model} with {codec}")
    return spec
