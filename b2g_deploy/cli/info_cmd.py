"""`b2g-deploy info`: what can run here: runtimes, ONNX Runtime providers, GPU, versions."""

from __future__ import annotations

import typer

from ..host_info import collect
from ._common import user_errors


@user_errors
def info_command() -> None:
    """List the runtimes available here, ONNX Runtime's providers, the GPU and versions."""
    data = collect()
    typer.echo("runtimes:")
    hints = {"onnxruntime": "pip install 'b2g-deploy[gpu]' for CUDA", "tensorrt": "pip install 'b2g-deploy[trt]' (needs a GPU)",
             "openvino": "pip install 'b2g-deploy[openvino]'"}
    for name, state in data["runtimes"].items():  # type: ignore[union-attr]
        typer.echo(f"  {name:<12} {state or 'not available: ' + hints.get(name, '')}")
    typer.echo(f"gpu:           {data['gpu'] or 'none (torch.cuda sees no CUDA device)'}")
    typer.echo(f"ort providers: {', '.join(data['ort_providers']) or 'none'}")  # type: ignore[arg-type]
    typer.echo(f"bf16 fits:     {data['bf16_fit'] or 'no (float32: no bf16 instructions here)'}")
    typer.echo("versions:")
    for key in ("b2g-deploy", "python", "torch", "onnx", "onnxruntime", "onnxslim", "tensorrt", "openvino", "opencv"):
        typer.echo(f"  {key:<12} {data[key] or 'not installed'}")
