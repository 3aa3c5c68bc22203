"""``load_runtime``: pick the backend from the model file's type, or as asked."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

from ..errors import CheckpointError, InputError
from .base import Runtime

RUNTIMES = ("torch", "onnxruntime", "openvino", "tensorrt")
BY_SUFFIX = {".pt": "torch", ".pth": "torch", ".onnx": "onnxruntime", ".engine": "tensorrt", ".plan": "tensorrt"}
# Runtimes that read a file type other than their own suffix's: OpenVINO reads the .onnx export.
ALSO_READS = {"openvino": ".onnx"}


def runtime_for(path: Path, runtime: str | None) -> str:
    """The backend for ``path``: ``runtime`` if given (and able to read that file type)."""
    by_file = BY_SUFFIX.get(path.suffix.lower())
    if runtime is None or runtime == "auto":
        if by_file is None:
            raise InputError(f"{path}: unknown model type; use a .pt checkpoint, .onnx or .engine file")
        return by_file
    if runtime not in RUNTIMES:
        raise InputError(f"unknown runtime '{runtime}'; use {', '.join(RUNTIMES)} or auto")
    # ONNX Runtime's TensorRT provider reads .onnx; nothing but TensorRT reads an .engine.
    if by_file is not None and by_file != runtime and ALSO_READS.get(runtime) != path.suffix.lower():
        raise InputError(f"the {runtime} runtime cannot load a {path.suffix} file")
    return runtime


def load_runtime(
    path: str | Path, runtime: str | None = None, channels: int | None = None, **options: Any
) -> Runtime:
    """Load ``path`` with the chosen backend; ``channels`` checks the input it will get.

    Options go to the backend: torch takes device, fp16, compile, mode, passes; onnxruntime
    takes provider, device_id, fp16, cache_dir, threads; openvino takes precision, threads; tensorrt
    takes none.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path} does not exist or is not a file")
    name = runtime_for(path, runtime)
    if name == "torch":
        from .torch_runtime import TorchRuntime as cls
    elif name == "onnxruntime":
        from .ort_runtime import OrtRuntime as cls
    elif name == "openvino":
        from .openvino_runtime import OpenVinoRuntime as cls
    else:
        from .trt_runtime import TrtRuntime as cls
    return construct(cls, path, name, channels, "images", **options)


def construct(cls, path, name: str, channels: int | None, what: str, **options: Any):
    """``cls(path, **options)``, refusing options it does not take and a model whose channel
    count differs from the input's, each with one line."""
    accepted = set(inspect.signature(cls.__init__).parameters) - {"self", "path"}
    unknown = sorted(set(options) - accepted)
    if unknown:
        raise InputError(f"the {name} runtime has no option {', '.join(unknown)}")
    rt = cls(path, **options)
    if channels is not None and channels != rt.info.channels:
        rt.close()
        raise CheckpointError(f"{path} denoises {rt.info.channels}-channel {what}; this input has {channels}")
    return rt
