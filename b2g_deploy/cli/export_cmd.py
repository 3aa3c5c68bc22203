"""`b2g-deploy export CHECKPOINT --onnx OUT.onnx [--trt OUT.engine] [--triton REPO]`: parses and
prints; ``api.export`` exports, checks parity, builds and writes the Triton repository."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ._common import user_errors


@user_errors
def export_command(
    checkpoint: Annotated[Path, typer.Argument(
        metavar="CHECKPOINT", help="a .pt checkpoint written by b2g-deploy fit")],
    onnx: Annotated[Optional[Path], typer.Option("--onnx", help="ONNX file to write")] = None,
    mode: Annotated[str, typer.Option(help="single (deterministic f(y)) | ensemble (K fixed masks) | flips (f(y) averaged over K flips/turns)")] = "single",
    passes: Annotated[int, typer.Option(help="masks averaged in ensemble mode; flips: 2 | 4 | 8")] = 8,
    fp16: Annotated[bool, typer.Option("--fp16", help="half-precision graph (and engine), float32 I/O; a temporal model: the engine only (needs --trt)")] = False,
    seed: Annotated[int, typer.Option(help="seed of the ensemble's fixed masks")] = 0,
    trt: Annotated[Optional[Path], typer.Option("--trt", help="also build this TensorRT engine")] = None,
    min_shape: Annotated[str, typer.Option(help="TensorRT profile minimum, BxCxHxW (C: a frame's channels; a temporal model's window multiplies it)")] = "1xCx64x64",
    opt_shape: Annotated[str, typer.Option(help="TensorRT profile optimum, BxCxHxW (C: a frame's channels; a temporal model's window multiplies it)")] = "1xCx720x1280",
    max_shape: Annotated[str, typer.Option(help="TensorRT profile maximum, BxCxHxW (C: a frame's channels; a temporal model's window multiplies it)")] = "1xCx1088x1920",
    timing_cache: Annotated[Optional[Path], typer.Option(help="TensorRT timing cache file (read and updated)")] = None,
    triton: Annotated[Optional[Path], typer.Option(
        "--triton",
        help="also write a Triton model repository here (model.plan with --trt, else model.onnx)")] = None,
    name: Annotated[str, typer.Option("--name", help="Triton model name")] = "b2g_denoiser",
    version: Annotated[int, typer.Option("--version", help="Triton model version (>= 1)")] = 1,
    max_batch: Annotated[Optional[int], typer.Option(
        "--max-batch",
        help="Triton max_batch_size (>= 1; default 8, or the engine profile's max batch with --trt)")] = None,
    int8: Annotated[bool, typer.Option("--int8", help="for ONNX Runtime on a CPU: the trunk's convolutions in int8 (~1.5x faster network at 720p; needs --calibrate)")] = False,
    calibrate: Annotated[Optional[Path], typer.Option(help="--int8: a video, image sequence or image like those the model will denoise (its first frames calibrate the int8 ranges)")] = None,
    force: Annotated[bool, typer.Option("--force", help="overwrite existing outputs")] = False,
) -> None:
    """Export CHECKPOINT to ONNX, check it against PyTorch, optionally build a TensorRT engine.

    The ONNX model takes any frame size and batch; its parity with PyTorch is checked on a
    real image after every export, and a failed check writes nothing. With --triton (and no
    --onnx) the ONNX model goes only into the Triton repository. A temporal checkpoint exports
    its window-in, frame-out graph, and with --trt an engine for windows (its profile's channel
    dimension is the window's frames times C). With --int8 --calibrate VIDEO the graph runs its
    trunk in int8 on ONNX Runtime's CPU provider, checked against the float32 graph.
    """
    from .. import api

    report = api.export(checkpoint, onnx, mode=mode, passes=passes, fp16=fp16, seed=seed, trt=trt,
                        min_shape=min_shape, opt_shape=opt_shape, max_shape=max_shape, timing_cache=timing_cache,
                        triton=triton, name=name, version=version, max_batch=max_batch, int8=int8,
                        calibrate=calibrate, force=force)
    typer.echo(f"{'exported ONNX' if report.onnx is None else f'wrote {report.onnx}'} ({report.description})")
    typer.echo(f"parity: {report.parity}")
    if report.engine is not None:
        e = report.engine
        typer.echo(f"wrote {e.path} (+ {e.path.name}.json; TensorRT {e.tensorrt_version}, {e.gpu_name},"
                   f" profile {e.profile}, fp16 {e.fp16})")
        typer.echo(f"parity: {e.parity}")
    if report.triton is not None:
        t = report.triton
        typer.echo(f"wrote Triton model {t.name} version {t.version} in {t.repo}"
                   f" ({t.platform}, max batch {t.max_batch}, {t.instance_kind})")
