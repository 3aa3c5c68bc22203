"""Small synthetic clips and the CLI runner the video tests share (a helper module, not a test
module: the tests import it, as tests/unit import trt_stand_in)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from b2g_deploy.cli import app
from b2g_deploy.io.video import VideoInfo, open_sink

W, H, N = 40, 32, 6


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def clip(path: Path, same_noise: bool = False, n: int = N, channels: int = 1, sigma: float = 0.1) -> Path:
    """Frame i: a flat level 0.25 + 0.08 i with a bright square, plus noise of std ``sigma``
    (independent per frame, or one fixed pattern in every frame)."""
    rng = np.random.default_rng(0)
    fixed = rng.normal(0, sigma, (channels, H, W))
    sink = open_sink(path, VideoInfo(W, H, channels, 10.0, n))
    for i in range(n):
        clean = np.full((channels, H, W), 0.25 + 0.08 * i, np.float32)
        clean[:, 8:20, 10:24] = 0.85
        noise = fixed if same_noise else rng.normal(0, sigma, (channels, H, W))
        sink.write(np.clip(clean + noise, 0, 1))
    sink.close()
    return path


def run(*args: str):
    return CliRunner().invoke(app, [str(a) for a in args])
