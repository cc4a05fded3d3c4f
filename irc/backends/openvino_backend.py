"""The OpenVINO backend: each pass of a loaded torch model, converted once, run on the CPU.

A *pass* is one graph: ``encode_lr`` and ``upscale`` (z = 0) of a rescaler, through the
rescaler interface, so every family converts the same way; ``restore`` of a CRM, with
the codec quality as a second input. Conversion traces the torch model with PyTorch's
tracer and OpenVINO's PyTorch frontend directly (``openvino.convert_model`` would also
send usage telemetry unless the user opted out). The stored graph takes any image size
(dynamic H and W, batch 1); it is compiled for each tile shape it meets (the tiling makes
every tile of an image one size, so once per image size and pass; at most
``_MAX_COMPILED`` kept). Measured against compiling the dynamic graph once (Kodak
768x512, irn-x2 encode, 1 thread, loaded 2-core AVX2 machine): as fast (34.2 s vs
36.2 s) with 28% less peak memory (525 MB vs 729 MB; torch: 432 MB).
``IRC_OPENVINO_SHAPES=dynamic`` compiles the dynamic graph instead, to compare again.

Converted passes are cached as OpenVINO IR under :func:`cache_dir`, one file pair per
(model name, weights hash, pass, hash of the model code, OpenVINO version), written
atomically (temporary names, then renamed; the .xml last), so a conversion is paid once
per machine, and a half-written or unreadable file is simply converted again. The IR
keeps fp32 weights; the precision is a compile-time setting, so fp32 and bf16 share it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
import warnings
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from irc.errors import IrcError

PASSES = ("encode_lr", "upscale", "restore")
conversions = 0  # conversions done by this process (the tests check the cache with it)
compiles = 0  # graphs compiled by this process (benchmarks/ratecontrol_time.py prints it)
_models: dict[str, object] = {}  # IR path -> openvino.Model read or converted in this process
_compiled: dict[tuple, object] = {}  # (IR path, precision, threads, shape or None) -> CompiledModel
_MAX_COMPILED = 4  # compiled graphs kept (each holds its buffers): the last two image sizes of a decode


@lru_cache(maxsize=1)
def core():
    import openvino

    return openvino.Core()


def version() -> str:
    """The OpenVINO version, short and safe for a file name (e.g. ``2026.4.1-22982``)."""
    import openvino

    return re.sub(r"[^0-9A-Za-z.]+", "_", "-".join(openvino.get_version().split("-")[:2]))


@lru_cache(maxsize=1)
def native_bf16() -> bool:
    """Whether OpenVINO's CPU plugin computes bf16 here (AVX512_BF16 or AMX); without it a
    bf16 hint runs fp32."""
    return "BF16" in core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")


def cache_dir() -> Path:
    """``$IRC_CACHE_DIR/openvino``, else ``$XDG_CACHE_HOME/irc/openvino``, else ``~/.cache/irc/openvino``."""
    base = os.environ.get("IRC_CACHE_DIR")
    if not base:
        base = str(Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "irc")
    return Path(base) / "openvino"


@lru_cache(maxsize=None)
def _code_hash(arch: str) -> str:
    """A hash of family ``arch``'s module and the irc.models modules it imports, in turn (a change
    there may change the graph; a change to another family's code leaves this cache alone)."""
    models = Path(__file__).resolve().parents[1] / "models"
    seen, todo = set(), [arch.replace("-", "_")]
    while todo:
        name = todo.pop()
        path = models / f"{name}.py"
        if name in seen or name == "registry" or not path.exists():
            continue
        seen.add(name)
        todo += re.findall(r"irc\.models\.(\w+)", path.read_text())
    h = hashlib.sha256()
    for name in sorted(seen):
        h.update(name.encode() + b"\0" + (models / f"{name}.py").read_bytes())
    return h.hexdigest()[:8]


def ir_path(spec, pass_: str) -> Path:
    """Where the IR of ``spec``'s ``pass_`` is cached."""
    shape = json.dumps([spec.arch, spec.scale, spec.params], sort_keys=True, default=str)
    code = hashlib.sha256((_code_hash(spec.arch) + shape).encode()).hexdigest()[:10]
    name = re.sub(r"[^0-9A-Za-z._-]+", "_", spec.name)[:60]
    return cache_dir() / f"{name}-{spec.sha256()}-{pass_}-{code}-ov{version()}.xml"


class _Pass(torch.nn.Module):
    """One pass of ``net`` as a module's forward (what the tracer records)."""

    def __init__(self, net, pass_: str):
        super().__init__()
        self.net, self.pass_ = net, pass_

    def forward(self, x, quality=None):
        if self.pass_ == "encode_lr":
            return self.net.encode_lr(x)
        if self.pass_ == "upscale":
            return self.net.upscale(x)
        return self.net(x, quality)


def _channels(net, pass_: str) -> int:
    """Input channels of a pass: 3, except the upscale's: the stored image (IRN_color: 1) and its
    side channels (BDFlow: + 1, the boundary map)."""
    if pass_ != "upscale":
        return 3
    return getattr(net, "lr_channels", 3) + getattr(net, "side_channels", 0)


def _example(pass_: str, scale: int, channels: int = 3) -> tuple:
    side = 16 * (scale if pass_ == "encode_lr" else 1)
    x = torch.rand(1, channels, side, side)
    return (x, torch.tensor([50.0])) if pass_ == "restore" else (x,)


def _note(text: str) -> None:
    print(f"note: {text}", file=sys.stderr, flush=True)


def convert(spec, net, pass_: str):
    """Trace ``net``'s ``pass_`` and convert it to an openvino.Model (dynamic H, W)."""
    global conversions
    import openvino
    from openvino.frontend import FrontEndManager
    from openvino.frontend.pytorch.ts_decoder import TorchScriptPythonDecoder

    threads = torch.get_num_threads()
    try:
        with torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the tracer's notes on Python values it records as constants
            torch.set_num_threads(1)  # a 16-pixel example: threads only add contention
            module, example = _Pass(net, pass_).eval(), _example(pass_, spec.scale, _channels(net, pass_))
            try:
                decoder = TorchScriptPythonDecoder(module, example_input=example, trace_kwargs={"check_trace": False})
            except TypeError:  # an OpenVINO without trace_kwargs: trace with its check
                decoder = TorchScriptPythonDecoder(module, example_input=example)
            frontend = FrontEndManager().load_by_framework("pytorch")
            model = frontend.convert(frontend.load(decoder))  # `decoder` must outlive this call
    finally:
        torch.set_num_threads(threads)
    shapes = {0: openvino.PartialShape([1, _channels(net, pass_), -1, -1])}
    if pass_ == "restore":
        shapes[1] = openvino.PartialShape([1])
    model.reshape(shapes)
    conversions += 1
    return model


def _save(model, path: Path) -> None:
    """Write the IR atomically: both files under temporary names, then renamed, the .xml last."""
    import openvino

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp-{os.getpid()}-{os.urandom(4).hex()}.xml")
    try:
        openvino.save_model(model, str(tmp), compress_to_fp16=False)
        os.replace(tmp.with_suffix(".bin"), path.with_suffix(".bin"))
        os.replace(tmp, path)
    finally:
        for f in (tmp, tmp.with_suffix(".bin")):
            f.unlink(missing_ok=True)


def model_for(spec, net, pass_: str):
    """The openvino.Model of ``pass_``: from this process, else the disk cache, else converted (and cached)."""
    path = ir_path(spec, pass_)
    key = str(path)
    if key not in _models:
        model = None
        if path.exists():
            try:
                model = core().read_model(key)
            except Exception:  # a damaged cache file: convert again
                model = None
        if model is None:
            _note(f"converting {spec.name} ({pass_}) for OpenVINO, once on this machine (cache: {path.parent})")
            model = convert(spec, net, pass_)
            try:
                _save(model, path)
            except (OSError, RuntimeError) as exc:
                _note(f"cannot cache the converted model in {path.parent} ({exc}); it is converted again next run")
        _models[key] = model
    return _models[key]


def clear_cache() -> None:
    """Forget the models read and compiled in this process (the disk cache stays)."""
    _models.clear()
    _compiled.clear()


def _runs_bf16(compiled) -> bool:
    """Whether a compiled model computes in bf16. The hint is an ``openvino.Type``, whose text
    is ``<Type: 'bfloat16'>`` and whose type name is ``bf16``."""
    hint = compiled.get_property("INFERENCE_PRECISION_HINT")
    name = hint.get_type_name() if hasattr(hint, "get_type_name") else str(hint)
    return name.lower() in ("bf16", "bfloat16")


class OpenVINORunner:
    """A loaded model's passes run by OpenVINO on the CPU, on torch tensors (batch 1 at a time)."""

    backend = "openvino"

    def __init__(self, spec, net, precision: str | dict[str, str] = "fp32"):
        from irc.backends import per_pass

        self.spec, self.net = spec, net
        native = native_bf16()
        self.precisions = {p: "bf16" if v == "bf16" and native else "fp32" for p, v in per_pass(precision).items()}

    def precision_of(self, pass_: str) -> str:
        return self.precisions[pass_]

    def _compiled_for(self, pass_: str, shape: tuple):
        global compiles
        static = os.environ.get("IRC_OPENVINO_SHAPES", "static") != "dynamic"
        threads = torch.get_num_threads()
        precision = self.precisions[pass_]
        key = (str(ir_path(self.spec, pass_)), precision, threads, shape if static else None)
        if key in _compiled:  # least recently used first: a search alternates between many models' passes
            _compiled[key] = _compiled.pop(key)
        else:
            model = model_for(self.spec, self.net, pass_)
            if static:
                model = model.clone()
                model.reshape({0: list(shape), **({1: [1]} if pass_ == "restore" else {})})
            config = {"INFERENCE_PRECISION_HINT": "bf16" if precision == "bf16" else "f32",
                      "INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY"}
            try:
                compiled = core().compile_model(model, "CPU", config)
            except RuntimeError as exc:
                raise IrcError(f"OpenVINO could not compile {self.spec.name} ({pass_}): "
                               f"{str(exc).strip().splitlines()[-1][:200]}; try --backend torch") from None
            compiles += 1
            if len(_compiled) >= _MAX_COMPILED:
                _compiled.pop(next(iter(_compiled)))
            _compiled[key] = compiled
            if precision == "bf16" and not _runs_bf16(compiled):
                self.precisions[pass_] = "fp32"  # what it really runs in (the graph stays keyed as asked)
        return _compiled[key]

    def _run(self, pass_: str, x: torch.Tensor, quality=None) -> torch.Tensor:
        if x.shape[0] != 1:
            qs = None if quality is None else torch.as_tensor(quality, dtype=torch.float32).reshape(-1)
            return torch.cat([self._run(pass_, x[i : i + 1], None if qs is None else qs[i % qs.numel()])
                              for i in range(x.shape[0])])
        arr = x.detach().to("cpu", torch.float32).contiguous().numpy()
        inputs = [arr] if quality is None else [arr, np.asarray(quality, dtype=np.float32).reshape(1)]
        compiled = self._compiled_for(pass_, arr.shape)
        return torch.from_numpy(compiled(inputs)[0])

    def encode_lr(self, x: torch.Tensor) -> torch.Tensor:
        return self._run("encode_lr", x)

    def upscale(self, y: torch.Tensor, temperature: float = 0.0,
                generator: torch.Generator | None = None) -> torch.Tensor:
        if temperature > 0:  # sampling z is the family's business: the torch reference does it
            return self.net.upscale(y, temperature, generator)
        return self._run("upscale", y)

    def __call__(self, lr: torch.Tensor, quality) -> torch.Tensor:
        if isinstance(quality, torch.Tensor):
            quality = quality.detach().cpu()
        return self._run("restore", lr, quality)
