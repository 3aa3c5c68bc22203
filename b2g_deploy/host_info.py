"""What can run here: package versions, the GPU, ONNX Runtime providers, usable runtimes."""

from __future__ import annotations

import importlib
import platform


def _version(module: str) -> str | None:
    try:
        mod = importlib.import_module(module)
    except Exception:  # ImportError, or a broken install that fails while importing
        return None
    return str(getattr(mod, "__version__", "installed"))


def collect() -> dict[str, object]:
    """Everything ``b2g-deploy info`` prints, as data (scripts/gpu_check.py records it too)."""
    import torch

    from . import __version__

    gpu = None
    if torch.cuda.is_available():
        major, minor = torch.cuda.get_device_capability()
        gpu = f"{torch.cuda.get_device_name()} (compute {major}.{minor}, CUDA {torch.version.cuda})"
    providers: list[str] = []
    if _version("onnxruntime"):
        import onnxruntime

        providers = list(onnxruntime.get_available_providers())
    trt = _version("tensorrt")
    openvino = None
    if _version("openvino"):
        from .runtimes.openvino_runtime import resolve_precision

        # the runtime of an .onnx file on the CPU (api.runtime_choice); f32 unless asked
        openvino = f"cpu (f32; bf16 {'native' if resolve_precision('auto') == 'bf16' else 'emulated'} here)"
    from .devices import bf16_is_fast

    device = "cuda" if gpu else "cpu"
    return {
        "b2g-deploy": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "onnx": _version("onnx"),
        "onnxruntime": _version("onnxruntime"),
        "onnxslim": _version("onnxslim"),
        "tensorrt": trt,
        "openvino": _version("openvino"),
        "opencv": _version("cv2"),
        "gpu": gpu,
        "ort_providers": providers,
        "bf16_fit": f"yes ({device})" if bf16_is_fast(device) else None,  # what `fit --device auto` gets
        "runtimes": {
            "torch": "cuda + cpu" if gpu else "cpu",
            "onnxruntime": ", ".join(p.replace("ExecutionProvider", "") for p in providers) or None,
            "openvino": openvino,
            "tensorrt": trt if (trt and gpu) else None,
        },
    }
