"""`b2g-deploy info`: what can run here: runtimes, ONNX Runtime providers, GPU, versions."""

from __future__ import annotations

import importlib
import platform

import typer

from ._common import user_errors


def _version(module: str) -> str | None:
    try:
        mod = importlib.import_module(module)
    except Exception:  # ImportError, or a broken install that fails while importing
        return None
    return str(getattr(mod, "__version__", "installed"))


def collect() -> dict[str, object]:
    """Everything ``info`` prints, as data (the GPU check script records it too)."""
    import torch

    from .. import __version__

    gpu = None
    if torch.cuda.is_available():
        major, minor = torch.cuda.get_device_capability()
        gpu = f"{torch.cuda.get_device_name()} (compute {major}.{minor}, CUDA {torch.version.cuda})"
    providers: list[str] = []
    if _version("onnxruntime"):
        import onnxruntime

        providers = list(onnxruntime.get_available_providers())
    trt = _version("tensorrt")
    return {
        "b2g-deploy": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "onnx": _version("onnx"),
        "onnxruntime": _version("onnxruntime"),
        "onnxslim": _version("onnxslim"),
        "tensorrt": trt,
        "opencv": _version("cv2"),
        "gpu": gpu,
        "ort_providers": providers,
        "runtimes": {
            "torch": "cuda + cpu" if gpu else "cpu",
            "onnxruntime": ", ".join(p.replace("ExecutionProvider", "") for p in providers) or None,
            "tensorrt": trt if (trt and gpu) else None,
        },
    }


@user_errors
def info_command() -> None:
    """List the runtimes available here, ONNX Runtime's providers, the GPU and versions."""
    data = collect()
    typer.echo("runtimes:")
    hints = {"onnxruntime": "pip install 'b2g-deploy[gpu]' for CUDA", "tensorrt": "pip install 'b2g-deploy[trt]' (needs a GPU)"}
    for name, state in data["runtimes"].items():  # type: ignore[union-attr]
        typer.echo(f"  {name:<12} {state or 'not available: ' + hints.get(name, '')}")
    typer.echo(f"gpu:           {data['gpu'] or 'none (torch.cuda sees no CUDA device)'}")
    typer.echo(f"ort providers: {', '.join(data['ort_providers']) or 'none'}")  # type: ignore[arg-type]
    typer.echo("versions:")
    for key in ("b2g-deploy", "python", "torch", "onnx", "onnxruntime", "onnxslim", "tensorrt", "opencv"):
        typer.echo(f"  {key:<12} {data[key] or 'not installed'}")
