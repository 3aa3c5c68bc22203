"""ONNX Runtime: CPU, CUDA or TensorRT execution provider, IOBinding on the GPU."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..errors import CheckpointError, InputError, MissingPackageError
from ..modelfile.onnx_metadata import ExportMetadata
from ..modelfile.optional import import_ort
from ._frames import check_frames, pad_small
from .base import Runtime

PROVIDERS = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
}


def provider_list(provider: str, device_id: int, fp16: bool, cache_dir: str | None) -> list[Any]:
    """The provider chain for ``provider``, each GPU provider with its options, CPU last."""
    cuda = ("CUDAExecutionProvider", {"device_id": device_id, "cudnn_conv_algo_search": "EXHAUSTIVE"})
    if provider == "cpu":
        return ["CPUExecutionProvider"]
    if provider == "cuda":
        return [cuda, "CPUExecutionProvider"]
    trt: dict[str, Any] = {"device_id": device_id, "trt_fp16_enable": fp16}
    if cache_dir:  # building TensorRT engines takes minutes; cache them between runs
        trt.update(trt_engine_cache_enable=True, trt_engine_cache_path=cache_dir, trt_timing_cache_enable=True)
    return [("TensorrtExecutionProvider", trt), cuda, "CPUExecutionProvider"]


def _shape(dims) -> str:
    return "x".join("?" if not isinstance(d, int) else str(d) for d in dims)


def check_signature(session: Any, path: Path, channels: int) -> tuple[str, str]:
    """(input name, output name) of a denoiser: one (B, C, H, W) input, a (B, C, H, W) output."""
    inputs, outputs = session.get_inputs(), session.get_outputs()
    if len(inputs) != 1 or not outputs:
        raise CheckpointError(f"{path} has {len(inputs)} inputs and {len(outputs)} outputs; "
                              "a b2g-deploy model has one of each")
    for what, arg in (("input", inputs[0]), ("output", outputs[0])):
        if arg.shape is None:  # rank unknown until run: infer checks the shape it gets
            continue
        dims = list(arg.shape)
        if len(dims) != 4 or (isinstance(dims[1], int) and dims[1] != channels):
            raise CheckpointError(f"{path} has the {what} shape {_shape(dims) or 'scalar'}; its metadata "
                                  f"says a (B, {channels}, H, W) denoiser")
    return inputs[0].name, outputs[0].name


def open_session(path: str | Path, provider: str, device_id: int = 0, fp16: bool = False,
                 cache_dir: str | None = None, threads: int = 0, allowed: tuple[str, ...] | None = None):
    """An ONNX Runtime session on ``provider`` ("auto" = CUDA when onnxruntime-gpu has a GPU),
    and the provider chosen. A file ORT cannot load is a CheckpointError naming the first line
    of ORT's complaint; a GPU provider without onnxruntime-gpu names the extra to install."""
    ort = import_ort()
    available = ort.get_available_providers()
    if provider == "auto":
        provider = "cuda" if PROVIDERS["cuda"] in available else "cpu"
    allowed = allowed or tuple(PROVIDERS)
    if provider not in allowed:
        raise InputError(f"unknown ONNX Runtime provider '{provider}' here; use {', '.join(allowed)} or auto")
    if PROVIDERS[provider] not in available:
        raise MissingPackageError("onnxruntime-gpu", "gpu")
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    opts.intra_op_num_threads = threads
    try:
        session = ort.InferenceSession(str(path), opts, providers=provider_list(provider, device_id, fp16, cache_dir))
    except Exception as exc:  # protobuf or graph errors: the file is not a usable model
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{path} is not a loadable ONNX model: {first}") from None
    return session, provider


class OrtRuntime(Runtime):
    name = "onnxruntime"

    def __init__(
        self,
        path: str | Path,
        provider: str = "auto",
        device_id: int = 0,
        fp16: bool = False,
        cache_dir: str | None = None,
        threads: int = 0,
    ):
        self.session, provider = open_session(path, provider, device_id, fp16, cache_dir, threads)
        props = self.session.get_modelmeta().custom_metadata_map
        if props.get("b2g.format") == "b2g-deploy/onnx-temporal":
            raise InputError(f"{path} is a temporal (multi-frame) model: it denoises videos, "
                             "frame windows at a time (b2g-deploy denoise VIDEO -m ...)")
        self.meta = ExportMetadata.from_props(props, str(path))
        self.info = self.meta.model_info(provider=provider)
        self.provider, self.device_id = provider, device_id
        self.path = Path(path)
        self._input, self._output = check_signature(self.session, self.path, self.info.channels)

    def infer(self, frames: np.ndarray) -> np.ndarray:
        frames = check_frames(frames, self.info.channels)
        padded, h, w = pad_small(frames, self.meta.multiple)
        if self.provider == "cpu":
            out = self.session.run([self._output], {self._input: padded})[0]
        else:
            out = self._run_bound(padded)
        if out.shape != padded.shape:  # a graph whose declared shapes were dynamic or wrong
            raise CheckpointError(
                f"{self.path} returned shape {_shape(out.shape)} for input {_shape(padded.shape)}; "
                "a b2g-deploy model returns the shape it is given"
            )
        return out[..., :h, :w]

    def _run_bound(self, frames: np.ndarray) -> np.ndarray:
        """IOBinding: one host->device copy in, one out, no per-run allocation by ORT on the host."""
        ort = import_ort()
        binding = self.session.io_binding()
        x = ort.OrtValue.ortvalue_from_numpy(frames, "cuda", self.device_id)
        binding.bind_ortvalue_input(self._input, x)
        binding.bind_output(self._output, "cuda", self.device_id)
        self.session.run_with_iobinding(binding)
        return binding.copy_outputs_to_cpu()[0]

    def close(self) -> None:
        self.session = None  # type: ignore[assignment]
