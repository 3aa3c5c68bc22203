"""Atomic writes leave the permissions a plain open() would: 0o666 minus the umask for a new
file, the old mode for an overwritten one (mkstemp's private 0o600 must not leak out)."""

from __future__ import annotations

import os
import stat
from contextlib import contextmanager

import numpy as np
import pytest

from b2g_deploy.io.atomic import atomic_path, current_umask
from b2g_deploy.io.images import write_image


@contextmanager
def umask(mask: int):
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("mask", [0o022, 0o002, 0o077])
def test_new_file_gets_the_umask_mode(tmp_path, mask):
    with umask(mask):
        assert current_umask() == mask
        target = tmp_path / "new.bin"
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"x")
        plain = tmp_path / "plain.bin"
        plain.write_bytes(b"x")
    assert mode(target) == 0o666 & ~mask == mode(plain)


def test_overwrite_keeps_the_existing_mode(tmp_path):
    with umask(0o022):
        target = tmp_path / "old.png"
        write_image(target, np.zeros((3, 16, 16), np.float32), 8)
        assert mode(target) == 0o644
        write_image(target, np.ones((3, 16, 16), np.float32), 8, force=True)  # --force
        assert mode(target) == 0o644
        os.chmod(target, 0o640)
        write_image(target, np.zeros((3, 16, 16), np.float32), 8, force=True)
        assert mode(target) == 0o640


def test_failed_write_leaves_nothing(tmp_path):
    target = tmp_path / "x.bin"
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("writer failed")
    assert list(tmp_path.iterdir()) == []
