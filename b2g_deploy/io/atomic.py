"""Outputs appear whole or not at all: write to a temporary file beside the target, then rename."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from ..errors import InputError, OutputExistsError


def check_writable(path: Path, force: bool) -> None:
    """Refuse an existing output without --force, and a folder that does not exist."""
    if path.exists() and not force:
        raise OutputExistsError(f"{path} exists; pass --force to overwrite it")
    if path.exists() and path.is_dir():
        raise InputError(f"{path} is a folder, not a file")
    if not path.parent.exists():
        raise InputError(f"the folder {path.parent} does not exist")


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yields a temporary path with the same suffix; renames it onto ``path`` on success and
    removes it on any failure, Ctrl-C included."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".part{path.suffix}", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise
