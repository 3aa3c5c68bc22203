"""Denoise image files with a runtime: one image, or a folder into a folder of the same names.

A folder is a batch of independent files, so one bad file (unreadable, truncated, alpha, the
wrong channel count, too many pixels) is skipped and reported, not a reason to stop: the report
names every skipped file and why. Consecutive images of one size go to the runtime together
(up to ``batch``); larger ones can be denoised in overlapping tiles (``io/tiling.py``).

The runtime is duck-typed (``info``, ``infer``, ``max_hw``): this module does not import the
runtimes layer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from .atomic import check_writable
from .images import IMAGE_SUFFIXES, check_image_output, default_bit_depth_for, read_image, write_image

OVERLAP = 32  # tile overlap in pixels; tests/unit/test_tiling.py measures the agreement it gives


@dataclass(frozen=True)
class Job:
    source: Path
    target: Path


@dataclass
class BatchReport:
    written: list[Path] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)  # (file, why)

    @property
    def total(self) -> int:
        return len(self.written) + len(self.skipped)


def image_jobs(source: Path, output: Path, force: bool) -> list[Job]:
    """One job per image: a file -> a file, a folder -> a folder of the same names. Every
    output is checked before anything is denoised, not halfway through a folder."""
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
    for job in jobs:
        if job.target.resolve() == job.source.resolve():
            raise InputError(f"{job.target} is also the input; write somewhere else")
        if job.target.parent.exists():
            check_image_output(job.target, 8, force)
    if source.is_dir():
        output.mkdir(exist_ok=True)
    return jobs


def tile_for(runtime: Any, tile: int | None) -> tuple[int, int] | None:
    """The tile size: ``tile`` (rounded down to the model's multiple) or the engine's maximum."""
    limit = runtime.max_hw
    if tile is not None:
        mult = int(runtime.info.extra.get("multiple", 1))
        side = max(tile // mult * mult, mult)
        limit = (min(side, limit[0]), min(side, limit[1])) if limit else (side, side)
    return limit


def denoise_frames(runtime: Any, frames: np.ndarray, tile: tuple[int, int] | None, batch: int) -> np.ndarray:
    """(B, C, H, W) -> denoised, whole or in tiles; the one path images (and video) go through."""
    from .tiling import infer_tiled, needs_tiling

    if needs_tiling(frames.shape, tile):
        mult = int(runtime.info.extra.get("multiple", 1))
        return infer_tiled(runtime.infer, frames, tile, OVERLAP, batch=batch, multiple=mult)
    return runtime.infer(frames)


def denoise_image_files(
    runtime: Any,
    jobs: list[Job],
    tile: tuple[int, int] | None = None,
    batch: int = 1,
    force: bool = False,
    on_skip: Callable[[Path, str], None] | None = None,
    on_written: Callable[[int, Path], None] | None = None,
) -> BatchReport:
    """Read, denoise and write each job (8/16-bit and float kept); skip and report bad inputs.

    ``on_skip(file, why)`` is called for each skipped file and ``on_written(count, file)`` after
    each write, e.g. to print and to move a progress bar. Errors of the runtime or of writing
    are not a bad input and are raised.
    """
    report = BatchReport()
    group: list[tuple[Job, np.ndarray, int]] = []  # consecutive readable images of one shape

    def flush() -> None:
        out = denoise_frames(runtime, np.stack([image for _, image, _ in group]), tile, batch)
        for (job, _, depth), result in zip(group, out):
            write_image(job.target, result, default_bit_depth_for(job.target, depth), force=force)
            report.written.append(job.target)
            if on_written is not None:
                on_written(len(report.written), job.source)
        group.clear()

    for job in jobs:
        try:
            image, info = read_image(job.source)
            if info.channels != runtime.info.channels:
                raise InputError(f"{job.source} has {info.channels} channel(s); the model denoises "
                                 f"{runtime.info.channels}-channel images")
        except InputError as exc:
            report.skipped.append((job.source, str(exc)))
            if on_skip is not None:
                on_skip(job.source, str(exc))
            continue
        if group and (tile is not None or len(group) >= batch or image.shape != group[0][1].shape):
            flush()
        group.append((job, image, info.bit_depth))
    if group:
        flush()
    return report
