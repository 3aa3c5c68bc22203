"""Frames in: video files, image sequences, cameras and network streams (OpenCV).

A *source* yields ``(index, frame)`` with frame a float32 (C, H, W) array in [0, 1], RGB order
(the package's convention; OpenCV's BGR stays inside this module). It counts the frames it had
to skip (``skipped``) instead of stopping on them: a corrupt frame in the middle of a file, an
unreadable image in a sequence, or a network stream that dropped and came back.
"""

from __future__ import annotations

import glob
import re
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ..errors import InputError
from .images import IMAGE_SUFFIXES, read_image
from .video_formats import DEFAULT_SEQUENCE_FPS, VideoInfo

# A video file whose decoder fails this many times in a row has ended (or is hopeless): the
# frame count in a container header is a hint, not a promise, so we cannot rely on it alone.
_MAX_CONSECUTIVE_FAILURES = 25


def _natural_key(path: str) -> list:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", path)]


def _bgr_to_unit(raw: np.ndarray, channels: int) -> np.ndarray:
    """OpenCV frame (H, W, 3) BGR or (H, W) grey, 8/16-bit -> (C, H, W) float32 RGB in [0, 1]."""
    scale = 65535.0 if raw.dtype == np.uint16 else 255.0
    if raw.ndim == 2:
        grey = raw.astype(np.float32) / scale
        return grey[None] if channels == 1 else np.repeat(grey[None], 3, axis=0)
    if channels == 1:
        unit = raw[..., 1:2].transpose(2, 0, 1).astype(np.float32)  # B = G = R for grey
    else:
        unit = np.ascontiguousarray(raw[..., ::-1].transpose(2, 0, 1), dtype=np.float32)
    # In place, the same float32 division: one new array per frame, not two (at 720p a fresh
    # 11 MB array costs its page faults again).
    unit /= scale
    return unit


def _looks_grey(raw: np.ndarray) -> bool:
    """A grey video decodes as BGR with three equal planes (a lossy codec may be off by one)."""
    if raw.ndim == 2:
        return True
    a = raw.astype(np.int32)
    return int(np.abs(a[..., 0] - a[..., 1]).max()) <= 1 and int(np.abs(a[..., 1] - a[..., 2]).max()) <= 1


class CaptureSource:
    """A video file, a camera index or an RTSP/HTTP URL through cv2.VideoCapture.

    ``channels=None`` means "as the video is": 1 if its first frame is grey, else 3. Asking for
    1 channel on a colour video is refused (a grey model cannot denoise colour frames).
    A live stream that drops is reopened up to ``reconnects`` times, ``backoff`` seconds apart;
    after that the source ends cleanly and the frames already read are kept.
    """

    def __init__(self, spec: str, channels: int | None = None, reconnects: int = 3, backoff: float = 1.0):
        self.spec, self.reconnects, self.backoff = spec, reconnects, backoff
        self.camera = spec.isdigit()
        self.url = "://" in spec
        if not (self.camera or self.url) and not Path(spec).is_file():
            raise InputError(f"{spec} does not exist or is not a file")
        self.skipped = 0
        self.skipped_frames: list[str] = []  # what was skipped, named ("frame 17 (undecodable)")
        self.reconnected = 0
        self.decoded = 0  # frames yielded
        self.missing = 0  # set when the file ends: frames its header announces that never came
        self._cap = self._open()
        ok, first = self._cap.read()
        if not ok or first is None:
            self._cap.release()
            raise InputError(f"{spec}: no frame could be decoded (empty, truncated, or a codec OpenCV lacks)")
        grey = _looks_grey(first)
        if channels == 1 and not grey:
            self._cap.release()
            raise InputError(f"{spec} is a colour video; this model was fitted on 1-channel (grey) frames")
        self.channels = channels or (1 if grey else 3)
        self._first: np.ndarray | None = first
        live = self.camera or (self.url and self._cap.get(self._cv2.CAP_PROP_FRAME_COUNT) <= 0)
        count = int(self._cap.get(self._cv2.CAP_PROP_FRAME_COUNT))
        fps = self._cap.get(self._cv2.CAP_PROP_FPS)
        self.info = VideoInfo(
            width=first.shape[1], height=first.shape[0], channels=self.channels,
            fps=fps if 0 < fps < 1000 else DEFAULT_SEQUENCE_FPS,
            frame_count=None if live or count <= 0 else count, bit_depth=8, live=live,
        )

    def _open(self):
        import cv2

        self._cv2 = cv2
        cap = cv2.VideoCapture(int(self.spec)) if self.camera else cv2.VideoCapture(self.spec, cv2.CAP_FFMPEG)
        if not cap.isOpened():
            what = "camera" if self.camera else "stream" if self.url else "video"
            raise InputError(f"cannot open {what} {self.spec} (missing, unreachable, or a codec OpenCV lacks)")
        return cap

    def _reopen(self) -> bool:
        """Reconnect a dropped live stream; False when the attempts are used up."""
        while self.reconnected < self.reconnects:
            self.reconnected += 1
            self._cap.release()
            time.sleep(self.backoff)
            try:
                self._cap = self._open()
                return True
            except InputError:
                continue
        return False

    def read_raw(self) -> np.ndarray | None:
        """The next decoded frame, None when the source has ended. Override point for tests."""
        if self._first is not None:
            frame, self._first = self._first, None
            return frame
        ok, frame = self._cap.read()
        return frame if ok else None

    def __iter__(self) -> Iterator[tuple[int, np.ndarray]]:
        index, failures = 0, 0
        failed: list[str] = []
        total = self.info.frame_count
        while True:
            try:
                raw = self.read_raw()
                bad = raw is not None and raw.shape[:2] != (self.info.height, self.info.width)
            except Exception:  # a decoder error surfaced as an exception: one bad frame
                raw, bad = None, True
            ended = raw is None and not bad
            if ended and self.info.live:
                if self._reopen():  # the stream dropped: reconnect, keep numbering frames
                    continue
                return
            if ended and (total is None or index >= total):
                self._count_missing()
                return
            if ended or bad:
                # Mid-file: a corrupt frame, or one of the wrong size. Skip it; it is counted
                # once a good frame follows, so a header that overstates the length by a frame
                # or two does not report phantom skips, and a file that only fails from here
                # on ends after a run of failures.
                failed.append(f"frame {index} ({'another size' if raw is not None else 'undecodable'})")
                index += 1
                failures += 1
                if failures >= _MAX_CONSECUTIVE_FAILURES:
                    self._count_missing()
                    return
                continue
            self.skipped += failures
            self.skipped_frames += failed
            failures, failed = 0, []
            self.decoded += 1
            yield index, _bgr_to_unit(raw, self.channels)
            index += 1

    def _count_missing(self) -> None:
        """At the end of a file: the frames its header counts that were neither decoded nor
        skipped mid-file (those a good frame followed), i.e. the ones lost at the end."""
        total = self.info.frame_count
        if total is not None and not self.info.live:
            self.missing = max(total - self.decoded - self.skipped, 0)

    def close(self) -> None:
        self._cap.release()


class SequenceSource:
    """An image folder or a glob pattern (``frames/*.png``), in natural order (2 before 10)."""

    def __init__(self, spec: str, channels: int | None = None, fps: float = DEFAULT_SEQUENCE_FPS):
        p = Path(spec)
        if p.is_dir():
            files = [str(f) for f in p.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES]
        else:
            files = [f for f in glob.glob(spec) if Path(f).suffix.lower() in IMAGE_SUFFIXES]
        if not files:
            raise InputError(f"{spec}: no images found (PNG, TIFF, JPEG, BMP)")
        self.files = sorted(files, key=_natural_key)
        self.skipped = 0
        self.skipped_frames: list[str] = []  # the files skipped, named with why
        first_index, first, info = self._first_readable()
        if channels is not None and channels != info.channels:
            raise InputError(
                f"{spec} has {info.channels}-channel images; this model was fitted on {channels}-channel ones"
            )
        self.channels = info.channels
        self._start = first_index
        self.info = VideoInfo(
            width=info.width, height=info.height, channels=info.channels, fps=fps,
            frame_count=len(self.files), bit_depth=info.bit_depth,
        )

    def _first_readable(self):
        for i, f in enumerate(self.files):
            try:
                image, info = read_image(f)
                return i, image, info
            except InputError:
                continue
        raise InputError(f"none of the {len(self.files)} images matched by {self.files[0]!r}... is readable")

    def __iter__(self) -> Iterator[tuple[int, np.ndarray]]:
        self.skipped = self._start
        self.skipped_frames = [f"{Path(f).name} (not a readable image)" for f in self.files[: self._start]]
        for index in range(self._start, len(self.files)):
            name = Path(self.files[index]).name
            try:
                image, info = read_image(self.files[index])
            except InputError:
                self.skipped += 1  # unreadable or truncated file: skip, count, name, keep going
                self.skipped_frames.append(f"{name} (not a readable image)")
                continue
            if (info.height, info.width, info.channels) != (self.info.height, self.info.width, self.channels):
                self.skipped += 1
                self.skipped_frames.append(f"{name} (another size or channel count)")
                continue
            yield index, image

    def close(self) -> None:
        pass


def open_source(spec: str | Path, channels: int | None = None, **kwargs) -> CaptureSource | SequenceSource:
    """Pick the reader from the spec: digits = camera, ``scheme://`` = stream, a folder or glob
    pattern = image sequence, anything else a video file."""
    spec = str(spec)
    if spec.isdigit() or "://" in spec:
        return CaptureSource(spec, channels, **kwargs)
    if Path(spec).is_dir() or any(c in spec for c in "*?["):
        return SequenceSource(spec, channels, **kwargs)
    if Path(spec).suffix.lower() in IMAGE_SUFFIXES:
        raise InputError(f"{spec} is a single image, not a video or a sequence")
    return CaptureSource(spec, channels, **kwargs)


def is_video_input(path: str | Path) -> bool:
    """True for what ``open_source`` reads and ``read_image`` does not (fit and denoise dispatch)."""
    spec = str(path)
    if spec.isdigit() or "://" in spec or Path(spec).is_dir() or any(c in spec for c in "*?["):
        return True
    return Path(spec).suffix.lower() not in IMAGE_SUFFIXES


def sample_frames(spec: str | Path, n: int, channels: int | None = None) -> tuple[np.ndarray, VideoInfo, list[int]]:
    """``n`` frames spread evenly over a video or sequence, (N, C, H, W): what ``fit --frames``
    fits on. A live stream has no length: its first ``n`` frames are taken."""
    if n < 1:
        raise InputError("--frames must be at least 1")
    source = open_source(spec, channels)
    try:
        total = source.info.frame_count
        wanted = None if total is None else set(np.linspace(0, total - 1, min(n, total)).round().astype(int).tolist())
        frames, indices = [], []
        for index, frame in source:
            if wanted is None or index in wanted:
                frames.append(frame)
                indices.append(index)
            if len(frames) == (n if wanted is None else len(wanted)):
                break
            if wanted is not None and index >= max(wanted):
                break  # a wanted frame was corrupt and skipped: fit on the ones we have
    finally:
        source.close()
    if not frames:
        raise InputError(f"{spec}: no frame could be read")
    return np.stack(frames), source.info, indices


def read_frames(spec: str | Path, limit: int | None = None, channels: int | None = None) -> list[np.ndarray]:
    """All frames (or the first ``limit``) as (C, H, W) arrays: for tests and benchmarks."""
    source = open_source(spec, channels)
    out = []
    try:
        for _, frame in source:
            out.append(frame)
            if limit is not None and len(out) >= limit:
                break
    finally:
        source.close()
    return out
