"""What a fit fits on: one image, or N frames spread over a video or image folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from .images import ImageInfo

DEFAULT_VIDEO_FIT_FRAMES = 8  # `fit VIDEO` without --frames


def load_fit_input(path: Path, frames: int | None) -> tuple[np.ndarray, ImageInfo, dict[str, Any]]:
    """(N, C, H, W) in [0, 1]: the image itself, or N frames spread over a video (or folder /
    stream), plus metadata recording which frames were used."""
    from .images import read_image
    from .video_readers import is_video_input, sample_frames

    if not is_video_input(path):
        if frames is not None and frames != 1:
            raise InputError(f"--frames {frames} needs a video or an image folder; {path} is one image")
        image, info = read_image(path)
        return image[None], info, {}
    stack, vinfo, indices = sample_frames(path, frames or DEFAULT_VIDEO_FIT_FRAMES)
    info = ImageInfo(channels=vinfo.channels, bit_depth=vinfo.bit_depth, height=vinfo.height, width=vinfo.width)
    meta = {"frames": indices, "frame_count": vinfo.frame_count, "fps": vinfo.fps}
    return stack, info, meta


def load_consecutive_frames(path: Path | str, frames: int | None) -> tuple[np.ndarray, ImageInfo, dict[str, Any]]:
    """(N, C, H, W): the first N *consecutive* decoded frames of a video, image folder or stream
    (a temporal fit needs neighbours, not frames spread over the clip), and their metadata."""
    from .video_readers import is_video_input, open_source

    if not is_video_input(path):
        raise InputError(f"{path} is one image; a temporal fit needs a video or an image folder")
    n = frames or DEFAULT_VIDEO_FIT_FRAMES
    source = open_source(str(path))
    out, indices = [], []
    try:
        for index, frame in source:
            out.append(frame)
            indices.append(index)
            if len(out) >= n:
                break
    finally:
        source.close()
    if not out:
        raise InputError(f"{path}: no frame could be read")
    vinfo = source.info
    info = ImageInfo(channels=vinfo.channels, bit_depth=vinfo.bit_depth, height=vinfo.height, width=vinfo.width)
    meta = {"frames": indices, "frame_count": vinfo.frame_count, "fps": vinfo.fps}
    return np.stack(out), info, meta
