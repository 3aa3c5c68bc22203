"""A video run never writes over what it reads: the input video itself, or the folder its
input frames come from (``--force`` or not)."""

from __future__ import annotations

import glob
import os
from pathlib import Path

from ..errors import InputError
from .images import IMAGE_SUFFIXES
from .video_formats import VIDEO_SUFFIXES


def _sink_target(path: Path) -> tuple[Path, bool]:
    """(the file or folder ``open_sink`` writes for ``path``, whether it is a folder)."""
    suffix = path.suffix.lower()
    if suffix in VIDEO_SUFFIXES:
        return path, False
    if path.name.startswith("*") and suffix in {".png", ".tif", ".tiff"}:
        return path.parent, True
    return path, True


def _source_files(spec: str) -> list[Path]:
    """The files ``open_source(spec)`` reads; none for a camera or a stream."""
    if spec.isdigit() or "://" in spec:
        return []
    p = Path(spec)
    if p.is_dir():
        return [f for f in p.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES]
    if any(c in spec for c in "*?["):
        return [Path(f) for f in glob.glob(spec) if Path(f).suffix.lower() in IMAGE_SUFFIXES]
    return [p]


def _same(a: Path, b: Path) -> bool:
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)  # hard links and symlinks too
        return a.resolve() == b.resolve()
    except OSError:
        return False


def check_output_not_input(spec: str | Path, output: str | Path) -> None:
    """Refuse an output that would overwrite what is being read: the input video itself, or a
    folder of frames the input images come from (``--force`` does not change this)."""
    target, is_folder = _sink_target(Path(output))
    for f in _source_files(str(spec)):
        if not is_folder and _same(f, target):
            raise InputError(f"{output} is also the input; write somewhere else")
        if is_folder and f.suffix.lower() in IMAGE_SUFFIXES and _same(f.parent, target):
            raise InputError(f"{output} is the folder the input frames are read from; write somewhere else")
