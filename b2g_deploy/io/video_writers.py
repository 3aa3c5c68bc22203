"""Frames out: a video file (lossless FFV1 in Matroska by default; lossless HuffYUV, mp4v or
MJPG on request) or a numbered image sequence (PNG/TIFF, 16-bit kept).

A video file is written under a temporary name beside the target and renamed when the sink
closes, also when the run stops early or is interrupted: FFV1/HuffYUV/MJPG frames are
independent and the container is finalised by ``release()``, so every frame written before the
stop plays back.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import InputError, OutputExistsError
from .images import IMAGE_SUFFIXES, to_storage
from .video_formats import VIDEO_SUFFIXES, VideoInfo

# Codec per output: FFV1 is lossless (the default, and what the round-trip tests rely on);
# HuffYUV is lossless too and writes 720p ~5x faster on one core here, for ~2.5x the bytes
# (docs/BENCHMARKS.md, "Video codecs"): for streams where writing is the cap.
CODECS = {"ffv1": "FFV1", "hfyu": "HFYU", "mp4v": "mp4v", "mjpg": "MJPG"}
LOSSLESS = ("ffv1", "hfyu")  # Matroska or AVI only


class VideoSink:
    """A video file written under a temporary name and renamed into place by ``close``.

    ``close`` runs from a finally block: after an interrupt the partial file (all frames written
    so far, container finalised by ``release``) still replaces the target. A sink that received
    no frame leaves nothing behind.
    """

    def __init__(self, path: Path, info: VideoInfo, codec: str = "ffv1", force: bool = False):
        import cv2

        codec = check_codec(path, codec)
        check_output(path, force)
        self.path = path
        self.tmp = path.with_name(f".{path.stem}.part{path.suffix}")
        self.channels = info.channels
        self.written = 0
        # HuffYUV codes grey through YUV and comes back off by one level: grey frames go in as
        # three equal planes instead (RGB, lossless), which the readers recognise as grey.
        self._grey_as_colour = codec == "hfyu" and info.channels == 1
        fourcc = cv2.VideoWriter_fourcc(*CODECS[codec])
        params = [cv2.VIDEOWRITER_PROP_IS_COLOR, int(info.channels == 3 or self._grey_as_colour)]
        self._writer = cv2.VideoWriter(str(self.tmp), cv2.CAP_FFMPEG, fourcc, info.fps, (info.width, info.height), params)
        if not self._writer.isOpened():
            self.tmp.unlink(missing_ok=True)
            raise InputError(f"cannot write {path} with codec {codec} (this OpenCV build lacks it?)")

    def write(self, frame: np.ndarray, index: int | None = None) -> None:
        stored = to_storage(frame, 8)  # video files hold 8 bits; sequences keep 16
        if self._grey_as_colour:
            stored = np.repeat(stored.reshape(stored.shape[0], stored.shape[1], 1), 3, axis=2)
        self._writer.write(stored)
        self.written += 1

    def close(self) -> None:
        self._writer.release()
        if self.written:
            os.replace(self.tmp, self.path)
        else:
            self.tmp.unlink(missing_ok=True)


class SequenceSink:
    """Numbered images ``frame_000000.png`` (or .tif) in a folder, at 8 or 16 bits.

    Each image is written whole (temporary name + rename), so an interrupted run leaves only
    complete frames. The name keeps the input frame index: skipped frames show as gaps.
    """

    def __init__(self, folder: Path, info: VideoInfo, suffix: str = ".png", bit_depth: int | None = None, force: bool = False):
        if suffix.lower() not in {".png", ".tif", ".tiff"}:
            raise InputError(f"image sequences are written as PNG or TIFF, not {suffix}")
        if folder.exists() and not folder.is_dir():
            raise OutputExistsError(f"{folder} exists and is not a folder")
        if folder.is_dir() and any(folder.iterdir()) and not force:
            raise OutputExistsError(f"{folder} exists and is not empty; pass --force to write into it")
        if not folder.parent.exists():
            raise InputError(f"the folder {folder.parent} does not exist")
        folder.mkdir(exist_ok=True)
        self.folder, self.suffix = folder, suffix
        self.bit_depth = bit_depth or (16 if info.bit_depth == 16 else 8)
        self.written = 0
        self.path = folder

    def write(self, frame: np.ndarray, index: int | None = None) -> None:
        import cv2

        index = self.written if index is None else index
        target = self.folder / f"frame_{index:06d}{self.suffix}"
        tmp = target.with_name(f".{target.stem}.part{self.suffix}")
        if not cv2.imwrite(str(tmp), to_storage(frame, self.bit_depth)):
            raise InputError(f"could not write {target}")
        os.replace(tmp, target)
        self.written += 1

    def close(self) -> None:
        pass


def check_codec(path: str | Path, codec: str) -> str:
    """``codec`` (lower case) if a video file at ``path`` can be written with it; image-sequence
    outputs take any (they ignore it). Called before a fit too, so a wrong codec costs no minutes."""
    codec = codec.lower()
    if codec not in CODECS:
        raise InputError(f"unknown codec '{codec}'; choose one of: {', '.join(CODECS)}")
    if Path(path).suffix.lower() == ".mp4" and codec in LOSSLESS:
        raise InputError(f"{path}: {codec.upper()} needs a .mkv or .avi file; use --codec mp4v for .mp4")
    return codec


def check_output(path: Path, force: bool) -> None:
    if path.exists() and not force:
        raise OutputExistsError(f"{path} exists; pass --force to overwrite it")
    if not path.parent.exists():
        raise InputError(f"the folder {path.parent} does not exist")


def open_sink(path: str | Path, info: VideoInfo, codec: str = "ffv1", bit_depth: int | None = None, force: bool = False):
    """A video file for a video suffix, otherwise an image-sequence folder (``out/`` -> PNG,
    ``out/*.tif`` -> TIFF)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in VIDEO_SUFFIXES:
        return VideoSink(path, info, codec, force)
    if path.name.startswith("*") and suffix in {".png", ".tif", ".tiff"}:
        return SequenceSink(path.parent, info, suffix, bit_depth, force)
    if suffix in IMAGE_SUFFIXES:
        raise InputError(f"{path}: a video is written to a video file (.mkv) or a folder, not one image")
    return SequenceSink(path, info, ".png", bit_depth, force)
