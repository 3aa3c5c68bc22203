"""Which runtime opens a model, with which options: the one place ``device``, ``mode`` and
``passes`` are turned into a backend's options, for images and video, single-frame and temporal
models alike."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import InputError


def runtime_options(name: str, device: str = "auto", mode: str = "single", passes: int = 8,
                    temporal: bool = False, threads: int | None = None, precision: str | None = None
                    ) -> dict[str, Any]:
    """The options the ``name`` backend ("torch", "onnxruntime", "openvino", "tensorrt") takes for these
    choices. ``device``: a torch device (cpu, cuda, cuda:N, auto) for a checkpoint, an ONNX
    Runtime provider (cpu, cuda, tensorrt, auto) for an .onnx file; a TensorRT engine runs on
    the GPU it was built for. ``mode``/``passes`` apply to checkpoints only: an exported model
    has its mode built in, and a temporal network has flips but no mask ensemble. ``threads``:
    ONNX Runtime's or OpenVINO's CPU threads (None: its own choice; torch's are process-wide, set by
    the caller). ``precision``: OpenVINO's (f32 | bf16 | auto; None: f32); no other runtime takes it."""
    from ..modelfile.graph import check_mode

    check_mode(mode, passes)
    if precision is not None and name != "openvino":
        raise InputError("--precision applies to the openvino runtime (--runtime openvino)")
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
    if name == "openvino":
        if device not in ("auto", "cpu"):
            raise InputError(f"the openvino runtime runs on the CPU; --device {device} is not one")
        options: dict[str, Any] = {} if precision is None else {"precision": precision}
        return options if threads is None else {**options, "threads": threads}
    return {}


def choose_runtime(model: Path, runtime: str | None, device: str = "auto", temporal: bool | None = None) -> str:
    """The backend that opens ``model``: ``runtime`` if given (and able to read that file type);
    for "auto" or None the file type's, except that an .onnx file bound for the CPU goes to
    OpenVINO where it is installed: float32 there gives ONNX Runtime's outputs (to 1e-6) ~1.4x
    faster for the temporal network at 720p (docs/BENCHMARKS.md, "OpenVINO on the CPU").
    ``temporal``: whether ``model`` is a temporal model, when the caller has read it already."""
    from ..runtimes.factory import runtime_for
    from ..runtimes.temporal import TEMPORAL_SUFFIXES, is_temporal_model

    if temporal is None:
        temporal = is_temporal_model(model)
    if temporal:
        if runtime not in (None, "auto"):
            return runtime  # load_temporal_runtime refuses one that cannot read the file
        name = TEMPORAL_SUFFIXES.get(model.suffix.lower(), "torch")
    else:
        name = runtime_for(model, runtime)
    if runtime in (None, "auto") and name == "onnxruntime" and _onnx_on_cpu(device) and _openvino_installed():
        return "openvino"
    return name


def _onnx_on_cpu(device: str) -> bool:
    """Would ONNX Runtime run on the CPU for ``device``? (auto: unless onnxruntime-gpu has CUDA)"""
    if device == "cpu":
        return True
    if device != "auto":
        return False
    try:
        import onnxruntime
    except ImportError:
        return True
    return "CUDAExecutionProvider" not in onnxruntime.get_available_providers()


def _openvino_installed() -> bool:
    import importlib.util

    return importlib.util.find_spec("openvino") is not None


def open_runtime(model: Path, runtime: str | None = "auto", device: str = "auto", mode: str = "single",
                 passes: int = 8, channels: int | None = None, threads: int | None = None,
                 precision: str | None = None):
    """Open ``model`` (a checkpoint, .onnx or .engine; single-frame or temporal, told by its
    metadata) on ``runtime`` (None or "auto": by file type). ``channels``: the input's, checked
    against the model's."""
    from ..runtimes.factory import load_runtime
    from ..runtimes.temporal import is_temporal_model, load_temporal_runtime

    model = Path(model)
    if not model.is_file():
        raise InputError(f"{model} does not exist or is not a file")
    temporal = is_temporal_model(model)  # read once: it loads the file's metadata
    name = choose_runtime(model, None if runtime == "auto" else runtime, device, temporal)
    if temporal:  # windows of frames in, one frame out (io.pipeline feeds them)
        options = runtime_options(name, device, mode, passes, temporal=True, threads=threads, precision=precision)
        return load_temporal_runtime(model, name, channels, **options)
    options = runtime_options(name, device, mode, passes, threads=threads, precision=precision)
    return load_runtime(model, name, channels, **options)


def open_server(server: str, server_model: str, model: Path | None, channels: int | None = None, *,
                runtime: str = "auto", device: str = "auto", mode: str = "single", precision: str | None = None):
    """A Triton server as the runtime (``runtimes.triton_client``); ``model``, if given, is the
    exported .onnx the server should hold (its metadata must match the server's)."""
    if runtime != "auto" or device != "auto" or mode != "single" or precision is not None:
        raise InputError("--runtime, --device, --precision and --mode choose a local runtime; "
                         "--server denoises on the server")
    from ..runtimes.triton_client import connect

    return connect(server, server_model, str(model) if model is not None else None, channels)

