"""OpenVINO on the CPU: the exported .onnx graph, in bfloat16 where the CPU computes it natively.

Why a second CPU runtime beside ONNX Runtime: on a CPU with AVX512-BF16 (or AMX) OpenVINO runs
the B2G convolutions in bfloat16 with float32 accumulation, and its fp32 kernels are faster
than ONNX Runtime's here too. The temporal network at 720p, one thread, on the 2-core AMD EPYC
of docs/BENCHMARKS.md ("OpenVINO on the CPU"): ONNX Runtime fp32 0.67 s a window, OpenVINO
fp32 0.55 s, bf16 0.30 s. bf16 keeps 8 bits of mantissa in the activations and weights, so
outputs move by ~1e-3 (a quarter of an 8-bit level on average); what that costs in PSNR is
measured in the same section.

The graph is compiled once per input shape, with that shape fixed (a video's frames all have
one size; a fixed shape ran ~25% faster than OpenVINO's dynamic shapes here), keeping the last
few shapes compiled.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import CheckpointError, InputError
from ..modelfile.optional import import_optional
from ._frames import check_frames, pad_small
from .base import Runtime
from .temporal import TemporalRuntime, _info

PRECISIONS = ("f32", "bf16", "auto")
KEEP_SHAPES = 4  # compiled shapes kept: a video has one, tiled images a few (the edge tiles)


def import_openvino():
    return import_optional("openvino", "openvino")


def native_bf16() -> bool:
    """Does this CPU compute bfloat16 natively (AVX512-BF16 or AMX), as OpenVINO reports it?"""
    ov = import_openvino()
    return "BF16" in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")


def resolve_precision(precision: str) -> str:
    """"auto" -> bf16 where the CPU computes it natively, else f32 (emulated bf16 is slower)."""
    if precision not in PRECISIONS:
        raise InputError(f"unknown OpenVINO precision '{precision}'; use {', '.join(PRECISIONS)}")
    if precision == "auto":
        return "bf16" if native_bf16() else "f32"
    return precision


class CompiledShapes:
    """The ONNX graph read once, compiled for each input shape it is run on (the last
    ``KEEP_SHAPES`` kept)."""

    def __init__(self, path: Path, precision: str, threads: int):
        ov = import_openvino()
        self.core = ov.Core()
        try:
            self.model = self.core.read_model(str(path))
        except Exception as exc:  # OpenVINO's frontend errors: not a graph it can read
            raise CheckpointError(f"{path} is not a loadable ONNX model: {_first_line(exc)}") from None
        if len(self.model.inputs) != 1 or len(self.model.outputs) != 1:
            raise CheckpointError(f"{path} has {len(self.model.inputs)} inputs and {len(self.model.outputs)} "
                                  "outputs; a b2g-deploy model has one of each")
        self.path = path
        self.config = {"INFERENCE_PRECISION_HINT": precision, "PERFORMANCE_HINT": "LATENCY"}
        if threads > 0:  # 0: OpenVINO's own choice (all the cores)
            self.config["INFERENCE_NUM_THREADS"] = threads
        self._compiled: OrderedDict[tuple[int, ...], Any] = OrderedDict()
        self._lock = threading.Lock()

    def check_signature(self, in_channels: int, out_channels: int) -> None:
        """A (B, in_channels, H, W) input and a (B, out_channels, H, W) output, where the graph
        declares them (as ONNX Runtime's loader checks, in the same words)."""
        for what, port, channels in (("input", self.model.inputs[0], in_channels),
                                     ("output", self.model.outputs[0], out_channels)):
            shape = port.get_partial_shape()
            if shape.rank.is_dynamic:  # rank unknown until run: run checks the shape it gets
                continue
            dims = [d.get_length() if d.is_static else None for d in shape]
            if len(dims) != 4 or dims[1] not in (None, channels):
                shown = "x".join("?" if d is None else str(d) for d in dims) or "scalar"
                raise CheckpointError(f"{self.path} has the {what} shape {shown}; its metadata says a "
                                      f"(B, {channels}, H, W) model")

    def run(self, batch: np.ndarray) -> np.ndarray:
        shape = tuple(batch.shape)
        with self._lock:  # the stream may prepare on one thread while another runs the network
            compiled = self._compiled.pop(shape, None)
            if compiled is None:
                compiled = self._compile(shape)
            self._compiled[shape] = compiled  # most recently used last
            while len(self._compiled) > KEEP_SHAPES:
                self._compiled.popitem(last=False)
        # The call runs the compiled model's own infer request (one at a time) on the batch's
        # memory, and hands back the output copied out of the request's buffer.
        return compiled(batch)[0]

    def _compile(self, shape: tuple[int, ...]):
        model = self.model.clone()
        try:
            model.reshape({model.inputs[0]: list(shape)})
            return self.core.compile_model(model, "CPU", self.config)
        except Exception as exc:  # a graph that cannot take this shape, or OpenVINO cannot build
            raise CheckpointError(f"{self.path} cannot run on input {_shape(shape)} in OpenVINO: "
                                  f"{_first_line(exc)}") from None


def _first_line(exc: Exception) -> str:
    """The first line of OpenVINO's message (its errors run to many lines), or the error's type."""
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__


def _shape(dims) -> str:
    return "x".join(str(d) for d in dims)


def _onnx_props(path: Path) -> dict[str, str]:
    import onnx

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # protobuf DecodeError and friends: corrupt or not ONNX at all
        raise CheckpointError(f"{path} is not a readable ONNX file ({type(exc).__name__})") from None
    return {p.key: p.value for p in model.metadata_props}


class OpenVinoRuntime(Runtime):
    """A single-frame .onnx export on OpenVINO's CPU plugin."""

    name = "openvino"

    def __init__(self, path: str | Path, precision: str = "f32", threads: int = 0):
        from ..modelfile.onnx_metadata import ExportMetadata
        from ..temporal.export import FORMAT, PREFIX

        self.path = Path(path)
        props = _onnx_props(self.path)
        if props.get(PREFIX + "format") == FORMAT:
            raise InputError(f"{path} is a temporal (multi-frame) model: it denoises videos, "
                             "frame windows at a time (b2g-deploy denoise VIDEO -m ...)")
        self.meta = ExportMetadata.from_props(props, str(path))
        self.precision = resolve_precision(precision)
        self.graph = CompiledShapes(self.path, self.precision, threads)
        self.graph.check_signature(self.meta.channels, self.meta.channels)
        self.name = f"openvino ({self.precision})"
        self.info = self.meta.model_info(provider="openvino-cpu", inference_precision=self.precision)

    def infer(self, frames: np.ndarray) -> np.ndarray:
        frames = check_frames(frames, self.info.channels)
        padded, h, w = pad_small(frames, self.meta.multiple)
        out = self.graph.run(padded)
        if out.shape != padded.shape:
            raise CheckpointError(f"{self.path} returned shape {_shape(out.shape)} for input "
                                  f"{_shape(padded.shape)}; a b2g-deploy model returns the shape it is given")
        return out[..., :h, :w]

    def close(self) -> None:
        self.graph = None  # type: ignore[assignment]


class OpenVinoTemporalRuntime(TemporalRuntime):
    """A temporal .onnx export on OpenVINO's CPU plugin (windows assembled and aligned as for
    ONNX Runtime: ``TemporalRuntime``)."""

    name = "openvino"

    def __init__(self, path: str | Path, precision: str = "f32", threads: int = 0):
        from ..temporal.export import TemporalExportMetadata

        self.path = Path(path)
        meta = TemporalExportMetadata.from_props(_onnx_props(self.path), str(path))
        self.meta = meta
        self.k, self.causal, self.window, self.multiple = meta.k, meta.causal, meta.window, meta.multiple
        self.align = meta.align
        self.precision = resolve_precision(precision)
        self.graph = CompiledShapes(self.path, self.precision, threads)
        self.graph.check_signature(meta.window * meta.channels, meta.channels)
        self.name = f"openvino ({self.precision})"
        self.info = _info(meta.channels, meta.k, meta.causal, meta.window, provider="openvino-cpu",
                          precision=meta.precision, inference_precision=self.precision, multiple=meta.multiple,
                          align=meta.align)

    def _run(self, windows: np.ndarray) -> np.ndarray:
        out = self.graph.run(windows)
        b, _, h, w = windows.shape
        if out.shape != (b, self.info.channels, h, w):
            raise CheckpointError(f"{self.path} returned shape {out.shape} for windows {windows.shape}")
        return out

    def close(self) -> None:
        self.graph = None  # type: ignore[assignment]
        TemporalRuntime.close(self)
