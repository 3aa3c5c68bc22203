"""`b2g-deploy serve MODEL`: the exported model on a Triton Inference Server (PyTriton)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ._common import user_errors

# export.triton_repo's defaults, written out so that importing the CLI imports no export module
# (tests/unit/test_serving.py checks they agree).
DEFAULT_MAX_BATCH, DEFAULT_NAME, DEFAULT_QUEUE_DELAY_US = 8, "b2g_denoiser", 100


@user_errors
def serve_command(
    model: Annotated[Path, typer.Argument(metavar="MODEL", help="an exported .onnx model")],
    port: Annotated[int, typer.Option(help="HTTP port; gRPC is PORT+1, metrics PORT+2")] = 8000,
    host: Annotated[str, typer.Option(help="address to listen on (0.0.0.0: every interface)")] = "127.0.0.1",
    max_batch: Annotated[int, typer.Option(help="largest batch Triton's dynamic batcher forms")] = DEFAULT_MAX_BATCH,
    name: Annotated[str, typer.Option(help="the model's name on the server")] = DEFAULT_NAME,
    queue_delay_us: Annotated[int, typer.Option(help="how long a request may wait for others to batch with")] = DEFAULT_QUEUE_DELAY_US,
    threads: Annotated[int, typer.Option(help="ONNX Runtime threads, 0 = its default")] = 0,
    device: Annotated[str, typer.Option(help="onnxruntime provider: cpu | cuda | tensorrt | auto")] = "auto",
    python: Annotated[Optional[str], typer.Option(help="the serve environment's python (default: .venv-serve, see scripts/setup_serve.sh)")] = None,
) -> None:
    """Serve MODEL with NVIDIA Triton (PyTriton's tritonserver) and dynamic batching until
    SIGTERM or Ctrl-C. Clients: b2g-deploy denoise INPUT --server URL, or any Triton client."""
    from ..serving.launch import exec_server
    from ..serving.server import ServeOptions

    exec_server(ServeOptions(str(model), port, host, max_batch, name, queue_delay_us, threads, device), python)
