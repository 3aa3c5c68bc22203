"""`b2g-deploy export CHECKPOINT --onnx OUT.onnx [--trt OUT.engine] [--triton REPO]`: export, check
parity, build, and optionally write a Triton model repository."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import InputError
from ._common import user_errors


@user_errors
def export_command(
    checkpoint: Annotated[Path, typer.Argument(
        metavar="CHECKPOINT", help="a .pt checkpoint written by b2g-deploy fit")],
    onnx: Annotated[Optional[Path], typer.Option("--onnx", help="ONNX file to write")] = None,
    mode: Annotated[str, typer.Option(help="single (deterministic f(y)) | ensemble (K fixed masks)")] = "single",
    passes: Annotated[int, typer.Option(help="masks averaged in ensemble mode")] = 8,
    fp16: Annotated[bool, typer.Option("--fp16", help="half-precision graph (and engine), float32 I/O")] = False,
    seed: Annotated[int, typer.Option(help="seed of the ensemble's fixed masks")] = 0,
    trt: Annotated[Optional[Path], typer.Option("--trt", help="also build this TensorRT engine")] = None,
    min_shape: Annotated[str, typer.Option(help="TensorRT profile minimum, BxCxHxW")] = "1xCx64x64",
    opt_shape: Annotated[str, typer.Option(help="TensorRT profile optimum, BxCxHxW")] = "1xCx720x1280",
    max_shape: Annotated[str, typer.Option(help="TensorRT profile maximum, BxCxHxW")] = "1xCx1088x1920",
    timing_cache: Annotated[Optional[Path], typer.Option(help="TensorRT timing cache file (read and updated)")] = None,
    triton: Annotated[Optional[Path], typer.Option(
        "--triton",
        help="also write a Triton model repository here (model.plan with --trt, else model.onnx)")] = None,
    name: Annotated[str, typer.Option("--name", help="Triton model name")] = "b2g_denoiser",
    version: Annotated[int, typer.Option("--version", help="Triton model version (>= 1)")] = 1,
    max_batch: Annotated[Optional[int], typer.Option(
        "--max-batch",
        help="Triton max_batch_size (>= 1; default 8, or the engine profile's max batch with --trt)")] = None,
    force: Annotated[bool, typer.Option("--force", help="overwrite existing outputs")] = False,
) -> None:
    """Export CHECKPOINT to ONNX, check it against PyTorch, optionally build a TensorRT engine.

    The ONNX model takes any frame size and batch; its parity with PyTorch is checked on a
    real image after every export, and a failed check writes nothing. With --triton (and no
    --onnx) the ONNX model goes only into the Triton repository.
    """
    if onnx is None and triton is None:
        raise InputError("give --onnx OUT.onnx, --triton REPO, or both")
    if onnx is not None and onnx.suffix.lower() != ".onnx":
        raise InputError(f"{onnx}: the ONNX output must end in .onnx")
    triton_args = None
    if triton is not None:
        from ..export.triton_repo import DEFAULT_MAX_BATCH, check_triton_target

        # before any work; with --trt and no --max-batch the engine profile decides, checked below
        batch = DEFAULT_MAX_BATCH if max_batch is None else max_batch
        check_triton_target(triton, name, version, batch, force)
        triton_args = (triton, name, version, max_batch)
    if onnx is None:
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            return _export(checkpoint, Path(tmp) / "model.onnx", mode, passes, fp16, seed, trt, min_shape,
                           opt_shape, max_shape, timing_cache, force, triton_args, temporary=True)
    return _export(checkpoint, onnx, mode, passes, fp16, seed, trt, min_shape, opt_shape, max_shape,
                   timing_cache, force, triton_args)


def _export(checkpoint, onnx, mode, passes, fp16, seed, trt, min_shape, opt_shape, max_shape, timing_cache,
            force, triton_args, temporary: bool = False) -> None:
    from ..checkpoint import checkpoint_is_temporal, load_checkpoint
    from ..export.engine_sidecar import Profile, parse_shape, sidecar_path
    from ..export.onnx_export import export_onnx
    from ..io.atomic import check_writable

    if checkpoint_is_temporal(checkpoint):
        _export_temporal(checkpoint, onnx, mode, fp16, trt, force, temporary)
        return _triton(onnx, None, triton_args, force)
    profile = None
    if trt is not None:
        if trt.suffix.lower() not in (".engine", ".plan"):
            raise InputError(f"{trt}: the engine output must end in .engine")
        from ..export.engine_sidecar import current_gpu
        from ..export.tensorrt_build import import_tensorrt

        import_tensorrt(), current_gpu()  # a missing package or GPU fails now, before any output
        check_writable(trt, force)
        check_writable(sidecar_path(trt), force)
        channels = load_checkpoint(checkpoint).channels
        shapes = [s.replace("C", str(channels)).replace("c", str(channels)) for s in (min_shape, opt_shape, max_shape)]
        profile = Profile(*(parse_shape(s, channels, f"--{n}-shape") for s, n in zip(shapes, ("min", "opt", "max"))))
        if triton_args is not None:
            repo, name, version, max_batch = triton_args
            if max_batch is None:
                triton_args = (repo, name, version, profile.max[0])
            elif max_batch > profile.max[0]:
                raise InputError(f"--max-batch {max_batch} exceeds the engine profile's maximum batch "
                                 f"{profile.max[0]} (raise it with --max-shape)")
    result = export_onnx(checkpoint, onnx, mode=mode, passes=passes, fp16=fp16, seed=seed, force=force)
    what = "exported ONNX" if temporary else f"wrote {result.path}"
    typer.echo(f"{what} ({result.meta.mode}, {result.meta.passes} pass(es), {result.meta.precision},"
               f" opset {result.meta.opset}{', simplified' if result.simplified else ''})")
    typer.echo(f"parity: {result.parity.line()}")
    if trt is not None and profile is not None:
        _build_trt(checkpoint, result.path, trt, profile, fp16, seed, timing_cache, force)
    _triton(result.path, trt, triton_args, force)


def _triton(onnx: Path, plan: Optional[Path], triton_args, force: bool) -> None:
    if triton_args is None:
        return
    from ..export.triton_repo import DEFAULT_MAX_BATCH, write_triton_repo

    repo, name, version, max_batch = triton_args
    model = write_triton_repo(onnx, repo, name=name, version=version, plan=plan, force=force,
                              max_batch=DEFAULT_MAX_BATCH if max_batch is None else max_batch)
    typer.echo(f"wrote Triton model {model.name} version {model.version} in {model.repo}"
               f" ({model.platform}, max batch {model.max_batch}, {model.instance_kind})")


def _export_temporal(checkpoint: Path, onnx: Path, mode: str, fp16: bool, trt: Optional[Path], force: bool,
                     temporary: bool = False) -> None:
    """A temporal checkpoint: a window-in, frame-out graph (fp32, single pass), parity-checked."""
    from ..temporal.export import export_temporal_checkpoint

    if mode != "single" or fp16 or trt is not None:
        raise InputError("a temporal checkpoint exports to ONNX only, fp32 single pass "
                         "(no --mode ensemble, --fp16 or --trt)")
    result = export_temporal_checkpoint(checkpoint, onnx, force=force)
    m = result.meta
    what = "exported ONNX" if temporary else f"wrote {result.path}"
    typer.echo(f"{what} (temporal, {m.window}-frame {'causal' if m.causal else 'centred'} window,"
               f" k {m.k}, {m.precision}, opset {m.opset})")
    typer.echo(f"parity: max |ONNX Runtime - PyTorch| {result.max_abs_diff:.2e} (CPU, fp32)")


def _build_trt(checkpoint: Path, onnx: Path, trt: Path, profile, fp16: bool, seed: int,
               timing_cache: Optional[Path], force: bool) -> None:
    from ..export.engine_sidecar import sidecar_path
    from ..export.tensorrt_build import build_engine, engine_parity
    from ..runtimes.trt_runtime import TrtRuntime

    built = build_engine(onnx, trt, profile, fp16=fp16, timing_cache=timing_cache, force=force)
    try:
        with TrtRuntime(trt) as engine:
            report = engine_parity(engine, checkpoint, seed=seed)
    except BaseException:
        # A failed check leaves no engine behind: nothing untrusted stays on disk.
        trt.unlink(missing_ok=True)
        sidecar_path(trt).unlink(missing_ok=True)
        raise
    typer.echo(f"wrote {built.engine} (+ {built.engine.name}.json; TensorRT {built.sidecar.tensorrt_version},"
               f" {built.sidecar.gpu_name}, profile {profile.describe()}, fp16 {fp16})")
    typer.echo(f"parity: {report.line()}")
