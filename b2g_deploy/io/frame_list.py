"""Frames held in memory as a source and a sink for ``io.pipeline.run_pipeline``: what a
check that runs the whole stream on a few frames (``api.recorrupted_choice``) reads and writes
instead of files."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from .video_formats import VideoInfo


class FrameListSource:
    """(C, H, W) float32 frames in [0, 1], all one size, yielded as ``(index, frame)``."""

    skipped = 0

    def __init__(self, frames: Sequence[np.ndarray], fps: float = 25.0):
        if not len(frames):
            raise ValueError("a frame list source needs at least one frame")
        channels, height, width = frames[0].shape
        self.frames = list(frames)
        self.info = VideoInfo(width, height, channels, fps, len(self.frames))

    def __iter__(self) -> Iterator[tuple[int, np.ndarray]]:
        return iter(enumerate(self.frames))

    def close(self) -> None:
        pass


class FrameListSink:
    """Keeps each written frame (float32, not rounded to a bit depth) under its index."""

    def __init__(self) -> None:
        self.frames: dict[int, np.ndarray] = {}

    def write(self, frame: np.ndarray, index: int) -> None:
        self.frames[index] = np.array(frame, np.float32, copy=True)

    def close(self) -> None:
        pass

    def in_order(self) -> list[np.ndarray]:
        return [self.frames[i] for i in sorted(self.frames)]
