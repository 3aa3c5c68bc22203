"""Shared fixtures. Tests run on the CPU with one thread: the machines have 2 cores and CI
should not depend on how busy they are."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

torch.set_num_threads(1)

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def _smooth_image(h: int, w: int, channels: int, seed: int = 0) -> np.ndarray:
    """A clean test image with flat areas and edges, (C, H, W) in [0, 1]."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    base = 0.5 + 0.3 * np.sin(xx / 7.0) * np.cos(yy / 11.0)
    base[(xx > w / 2) & (yy > h / 3)] += 0.2
    chans = [np.clip(base * (0.8 + 0.1 * c), 0, 1) for c in range(channels)]
    return np.stack(chans).astype(np.float32)


@pytest.fixture
def smooth_image():
    return _smooth_image


@pytest.fixture
def kodak_crop() -> np.ndarray:
    """A 96x96 RGB crop of kodim03 (from ../shared/data), or a synthetic image without it."""
    path = DATA / "Kodak24" / "kodim03.png"
    if not path.exists():
        return _smooth_image(96, 96, 3)
    from b2g_deploy.io.images import read_image

    return read_image(path)[0][:, 200:296, 300:396].copy()
