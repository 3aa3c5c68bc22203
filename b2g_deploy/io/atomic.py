"""Outputs appear whole or not at all: write to a temporary file beside the target, then rename.

The renamed file gets the permissions a plain ``open(path, "w")`` would leave: an existing
file keeps its mode, a new one gets 0o666 minus the umask (not mkstemp's private 0o600).
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
import threading
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


_UMASK_LOCK = threading.Lock()


def current_umask() -> int:
    """The process umask. Linux shows it in /proc; elsewhere it can only be read by setting it
    (and setting it back), under a lock so no other thread here sees the interim value."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    with _UMASK_LOCK:
        mask = os.umask(0o077)
        os.umask(mask)
    return mask


def open_mode(path: Path) -> int:
    """The permission bits ``open(path, "w")`` would give: kept if it exists, else 0o666 & ~umask."""
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except OSError:
        return 0o666 & ~current_umask()


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yields a temporary path with the same suffix; renames it onto ``path`` on success and
    removes it on any failure, Ctrl-C included."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".part{path.suffix}", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, open_mode(path))  # after the writer: it may have replaced the file
        os.replace(tmp_path, path)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise
