"""`b2g-deploy denoise INPUT -m MODEL -o OUTPUT`: an image or a folder of images, any model kind."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import InputError
from ..io.image_batch import OVERLAP, Job, denoise_frames, image_jobs, tile_for  # noqa: F401 (importable here)
from ._common import progress_bar, resolve_device, user_errors


def denoise_images(runtime, jobs: list[Job], tile: tuple[int, int] | None, batch: int, force: bool):
    """``denoise_image_files`` with a progress bar; each skipped file is named on stderr."""
    from ..io.image_batch import denoise_image_files

    with progress_bar("denoising", len(jobs), "file") as bar:
        task = bar.add_task("denoise", total=len(jobs), file="", rate="")
        t0 = time.perf_counter()

        def on_skip(path: Path, why: str) -> None:
            bar.console.print(f"skipped: {why}", markup=False, highlight=False, soft_wrap=True)
            bar.advance(task)

        def on_written(done: int, path: Path) -> None:
            rate = done / max(time.perf_counter() - t0, 1e-9)
            bar.update(task, advance=1, file=path.name, rate=f"{rate:.2f} img/s")

        return denoise_image_files(runtime, jobs, tile, batch, force, on_skip=on_skip, on_written=on_written)


@user_errors
def denoise_command(
    input: Annotated[Path, typer.Argument(
        metavar="INPUT", help="an image, a folder of images, a video, a camera index or a stream URL")],
    output: Annotated[Path, typer.Option("-o", "--output", help="output image, or folder for a folder")],
    model: Annotated[Optional[Path], typer.Option("-m", "--model", help=".pt checkpoint, .onnx or .engine; video: omit to fit on the first frames")] = None,
    runtime: Annotated[str, typer.Option(help="auto (by file type) | torch | onnxruntime | tensorrt")] = "auto",
    device: Annotated[str, typer.Option(help="torch: cpu | cuda | auto; onnxruntime: cpu | cuda | tensorrt | auto")] = "auto",
    tile: Annotated[Optional[int], typer.Option(help="denoise frames larger than N x N in overlapping tiles")] = None,
    batch: Annotated[int, typer.Option(help="frames (or tiles) per call")] = 1,
    mode: Annotated[str, typer.Option(help="torch checkpoints only: single | ensemble")] = "single",
    passes: Annotated[int, typer.Option(help="torch checkpoints only: ensemble masks")] = 8,
    force: Annotated[bool, typer.Option("--force", help="overwrite existing outputs")] = False,
    fit_frames: Annotated[int, typer.Option(help="video without -m: fit on this many first frames")] = 4,
    preset: Annotated[str, typer.Option(help="video without -m: fitting preset (paper | fast | tiny)")] = "fast",
    codec: Annotated[str, typer.Option(help="video output: ffv1 (lossless, .mkv) | mp4v | mjpg")] = "ffv1",
    blend: Annotated[float, typer.Option(help="video: motion-aware temporal blend strength, 0 = off")] = 0.0,
    frames_limit: Annotated[Optional[int], typer.Option(help="video: stop after N frames")] = None,
    temporal: Annotated[bool, typer.Option("--temporal", help="video without -m: fit, export and stream a multi-frame network")] = False,
    k: Annotated[int, typer.Option("--k", help="--temporal: window half-width, 2k+1 frames")] = 2,
    causal: Annotated[bool, typer.Option("--causal", help="--temporal: frames t-2k..t (no lookahead, no delay)")] = False,
    server: Annotated[Optional[str], typer.Option(help="denoise on a Triton server: http://HOST:PORT or grpc://HOST:PORT (-m, if given: the .onnx it should hold)")] = None,
    server_model: Annotated[str, typer.Option(help="--server: the model's name there")] = "b2g_denoiser",
) -> None:
    """Denoise INPUT with a fitted MODEL (or on a Triton --server) and write OUTPUT (same names
    for a folder)."""
    from ..io.images import IMAGE_SUFFIXES, read_image
    from ..runtimes.factory import load_runtime, runtime_for

    if batch < 1:
        raise InputError("--batch must be at least 1")
    if tile is not None and tile < 32:
        raise InputError("--tile must be at least 32")
    if server is not None:
        if runtime != "auto" or device != "auto" or mode != "single":
            raise InputError("--runtime, --device and --mode choose a local runtime; --server denoises on the server")
        if temporal or causal or k != 2:
            raise InputError("--temporal, --k and --causal fit a model here; --server denoises with the server's")
    from .video_cmd import is_video_job, run_video_cli

    if is_video_job(input, output):  # video files, cameras, streams: the pipeline in video_cmd.py
        return run_video_cli(input, output, model, runtime, device, batch=batch, force=force, fit_frames=fit_frames,
                             preset=preset, codec=codec, blend=blend, limit=frames_limit, mode=mode, passes=passes,
                             temporal=temporal, k=k, causal=causal, server=server, server_model=server_model)
    if temporal or causal or k != 2:
        raise InputError("--temporal, --k and --causal apply to video input")
    if model is None and server is None:
        raise InputError("-m/--model (or --server URL) is required for images; only a video can be fitted on the fly")
    if not input.exists():
        raise InputError(f"{input} does not exist")
    # Dispatch on the input's kind: images and folders here; video input joins as another branch.
    if not (input.is_dir() or input.suffix.lower() in IMAGE_SUFFIXES):
        raise InputError(f"{input}: not an image or a folder of images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    jobs = image_jobs(input, output, force)
    # One image: its errors are the command's (and its channels are checked against the model);
    # a folder: a bad file is skipped and named, and the model's channels decide what is bad.
    channels = None if input.is_dir() else read_image(input)[1].channels
    if server is not None:
        from ..runtimes.triton_client import connect

        opened = connect(server, server_model, str(model) if model else None, channels)
    else:
        name = runtime_for(model, runtime)
        opened = load_runtime(model, name, channels, **_runtime_options(name, device, mode, passes))
    with opened as rt:
        report = denoise_images(rt, jobs, tile_for(rt, tile), batch, force)
    if not report.written:
        raise InputError(f"no image in {input} could be denoised "
                         f"({len(report.skipped)} skipped, each named above)")
    typer.echo(f"wrote {len(report.written)} image(s) to {output} with {rt.name}")
    if report.skipped:
        typer.echo(f"warning: skipped {len(report.skipped)} of {len(jobs)} images (named above)", err=True)


def _runtime_options(name: str, device: str, mode: str, passes: int) -> dict:
    if name == "torch":
        return {"device": resolve_device(device), "mode": mode, "passes": passes}
    if mode != "single":
        raise InputError("--mode applies to .pt checkpoints; an exported model has its mode built in")
    if name == "onnxruntime":
        return {"provider": device}
    return {}
