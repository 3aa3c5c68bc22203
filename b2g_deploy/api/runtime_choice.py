"""Which runtime opens a model, with which options: the one place ``device``, ``mode`` and
``passes`` are turned into a backend's options, for images and video, single-frame and temporal
models alike."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import InputError


def runtime_options(name: str, device: str = "auto", mode: str = "single", passes: int = 8,
                    temporal: bool = False, threads: int | None = None) -> dict[str, Any]:
    """The options the ``name`` backend ("torch", "onnxruntime", "tensorrt") takes for these
    choices. ``device``: a torch device (cpu, cuda, cuda:N, auto) for a checkpoint, an ONNX
    Runtime provider (cpu, cuda, tensorrt, auto) for an .onnx file; a TensorRT engine runs on
    the GPU it was built for. ``mode``/``passes`` apply to checkpoints only: an exported model
    has its mode built in, and a temporal network has flips but no mask ensemble. ``threads``:
    ONNX Runtime's CPU threads (None: its own choice; torch's are process-wide, set by the caller)."""
    from ..modelfile.graph import check_mode

    check_mode(mode, passes)
    if mode == "ensemble" and temporal:  # its masks blind the whole window, not the target alone
        raise InputError("--mode ensemble does not apply to a temporal model; use single or flips")
    if mode != "single" and name != "torch":
        raise InputError("--mode applies to .pt checkpoints; an exported model has its mode built in")
    if name == "torch":
        from ..devices import resolve_device

        return {"device": resolve_device(device), "mode": mode, "passes": passes}
    if name == "onnxruntime":
        # ONNX Runtime checks the provider and says what to install
        return {"provider": device} if threads is None else {"provider": device, "threads": threads}
    return {}


def open_runtime(model: Path, runtime: str | None = "auto", device: str = "auto", mode: str = "single",
                 passes: int = 8, channels: int | None = None, threads: int | None = None):
    """Open ``model`` (a checkpoint, .onnx or .engine; single-frame or temporal, told by its
    metadata) on ``runtime`` (None or "auto": by file type). ``channels``: the input's, checked
    against the model's."""
    from ..runtimes.factory import load_runtime, runtime_for
    from ..runtimes.temporal import TEMPORAL_SUFFIXES, is_temporal_model, load_temporal_runtime

    model = Path(model)
    if not model.is_file():
        raise InputError(f"{model} does not exist or is not a file")
    runtime = None if runtime == "auto" else runtime
    if is_temporal_model(model):  # windows of frames in, one frame out (io.pipeline feeds them)
        name = TEMPORAL_SUFFIXES.get(model.suffix.lower(), "torch")
        options = runtime_options(name, device, mode, passes, temporal=True, threads=threads)
        return load_temporal_runtime(model, runtime, channels, **options)
    name = runtime_for(model, runtime)
    return load_runtime(model, name, channels, **runtime_options(name, device, mode, passes, threads=threads))


def open_server(server: str, server_model: str, model: Path | None, channels: int | None = None, *,
                runtime: str = "auto", device: str = "auto", mode: str = "single"):
    """A Triton server as the runtime (``runtimes.triton_client``); ``model``, if given, is the
    exported .onnx the server should hold (its metadata must match the server's)."""
    if runtime != "auto" or device != "auto" or mode != "single":
        raise InputError("--runtime, --device and --mode choose a local runtime; --server denoises on the server")
    from ..runtimes.triton_client import connect

    return connect(server, server_model, str(model) if model is not None else None, channels)

