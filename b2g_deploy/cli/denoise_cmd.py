"""`b2g-deploy denoise INPUT -m MODEL -o OUTPUT`: an image or a folder of images, any model kind."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Optional

import numpy as np
import typer

from ..errors import InputError
from ._common import progress_bar, resolve_device, user_errors

OVERLAP = 32  # tile overlap in pixels; tests/unit/test_tiling.py measures the agreement it gives


@dataclass(frozen=True)
class Job:
    source: Path
    target: Path


def image_jobs(source: Path, output: Path, force: bool) -> list[Job]:
    """One job per image: a file -> a file, a folder -> a folder of the same names."""
    from ..io.atomic import check_writable
    from ..io.images import IMAGE_SUFFIXES, check_image_output

    if source.is_dir():
        files = sorted(p for p in source.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise InputError(f"{source} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
        if output.exists() and not output.is_dir():
            raise InputError(f"{output} is a file; a folder input needs an output folder")
        if not output.exists():
            check_writable(output, force)  # checks that its parent exists
        jobs = [Job(f, output / f.name) for f in files]
    else:
        if output.is_dir():
            raise InputError(f"{output} is a folder; an image input needs an output image path")
        jobs = [Job(source, output)]
    for job in jobs:  # refuse before denoising anything, not halfway through a folder
        if job.target.resolve() == job.source.resolve():
            raise InputError(f"{job.target} is also the input; write somewhere else")
        if job.target.parent.exists():
            check_image_output(job.target, 8, force)
    if source.is_dir():
        output.mkdir(exist_ok=True)
    return jobs


def tile_for(runtime, tile: Optional[int]) -> tuple[int, int] | None:
    """The tile size: --tile (rounded down to the model's multiple) or the engine's maximum."""
    limit = runtime.max_hw
    if tile is not None:
        mult = int(runtime.info.extra.get("multiple", 1))
        side = max(tile // mult * mult, mult)
        limit = (min(side, limit[0]), min(side, limit[1])) if limit else (side, side)
    return limit


def denoise_frames(runtime, frames: np.ndarray, tile: tuple[int, int] | None, batch: int) -> np.ndarray:
    """(B, C, H, W) -> denoised, whole or in tiles; the one path images (and video) go through."""
    from ..io.tiling import infer_tiled, needs_tiling

    if needs_tiling(frames.shape, tile):
        mult = int(runtime.info.extra.get("multiple", 1))
        return infer_tiled(runtime.infer, frames, tile, OVERLAP, batch=batch, multiple=mult)
    return runtime.infer(frames)


def denoise_images(runtime, jobs: list[Job], tile: tuple[int, int] | None, batch: int, force: bool) -> None:
    """Read, denoise and write each image (8/16-bit kept), consecutive same-size images batched."""
    from ..io.images import default_bit_depth_for, read_image, write_image

    with progress_bar("denoising", len(jobs), "file") as bar:
        task = bar.add_task("denoise", total=len(jobs), file="", rate="")
        t0, done, i = time.perf_counter(), 0, 0
        while i < len(jobs):
            first, info = read_image(jobs[i].source)
            group = [(jobs[i], first, info)]
            while tile is None and len(group) < batch and i + len(group) < len(jobs):
                img, inf = read_image(jobs[i + len(group)].source)
                if img.shape != first.shape:
                    break  # kept for the next group: it is read again, which is cheap next to denoising
                group.append((jobs[i + len(group)], img, inf))
            out = denoise_frames(runtime, np.stack([g[1] for g in group]), tile, batch)
            for (job, _, inf), res in zip(group, out):
                write_image(job.target, res, default_bit_depth_for(job.target, inf.bit_depth), force=force)
            i += len(group)
            done += len(group)
            rate = done / max(time.perf_counter() - t0, 1e-9)
            bar.update(task, completed=done, file=group[-1][0].source.name, rate=f"{rate:.2f} img/s")


@user_errors
def denoise_command(
    input: Annotated[Path, typer.Argument(help="an image, a folder of images, a video, a camera index or a stream URL")],
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
) -> None:
    """Denoise INPUT with a fitted MODEL and write OUTPUT (same names for a folder)."""
    from ..io.images import IMAGE_SUFFIXES, read_image
    from ..runtimes.factory import load_runtime, runtime_for

    if batch < 1:
        raise InputError("--batch must be at least 1")
    if tile is not None and tile < 32:
        raise InputError("--tile must be at least 32")
    from .video_cmd import is_video_job, run_video_cli

    if is_video_job(input, output):  # video files, cameras, streams: the pipeline in video_cmd.py
        return run_video_cli(input, output, model, runtime, device, batch=batch, force=force, fit_frames=fit_frames,
                             preset=preset, codec=codec, blend=blend, limit=frames_limit, mode=mode, passes=passes)
    if model is None:
        raise InputError("-m/--model is required for images; only a video can be fitted on the fly")
    if not input.exists():
        raise InputError(f"{input} does not exist")
    # Dispatch on the input's kind: images and folders here; video input joins as another branch.
    if not (input.is_dir() or input.suffix.lower() in IMAGE_SUFFIXES):
        raise InputError(f"{input}: not an image or a folder of images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    jobs = image_jobs(input, output, force)
    name = runtime_for(model, runtime)
    channels = read_image(jobs[0].source)[1].channels
    with load_runtime(model, name, channels, **_runtime_options(name, device, mode, passes)) as rt:
        denoise_images(rt, jobs, tile_for(rt, tile), batch, force)
    typer.echo(f"wrote {len(jobs)} image(s) to {output} with {rt.name}")


def _runtime_options(name: str, device: str, mode: str, passes: int) -> dict:
    if name == "torch":
        return {"device": resolve_device(device), "mode": mode, "passes": passes}
    if mode != "single":
        raise InputError("--mode applies to .pt checkpoints; an exported model has its mode built in")
    if name == "onnxruntime":
        return {"provider": device}
    return {}
