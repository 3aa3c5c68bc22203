"""What a video is to the readers and writers: its facts (``VideoInfo``), the file suffixes
that mean video, and the frame rate an image sequence plays at."""

from __future__ import annotations

from dataclasses import dataclass

VIDEO_SUFFIXES = {".mkv", ".avi", ".mp4", ".mov", ".m4v", ".webm", ".mpg", ".mpeg", ".ts", ".wmv", ".flv"}
DEFAULT_SEQUENCE_FPS = 25.0


@dataclass(frozen=True)
class VideoInfo:
    width: int
    height: int
    channels: int  # 1 or 3, as the frames are yielded
    fps: float
    frame_count: int | None  # None for a live stream (camera, RTSP): no ETA
    bit_depth: int = 8
    live: bool = False
