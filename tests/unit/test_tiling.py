"""Tiling: positions, the blend window, and agreement of tiled with whole-frame denoising.

Tolerance (measured on a tiny fitted network, 200x300 frame, 96-pixel tiles, 32 overlap):
PSNR between tiled and whole-frame outputs 62.8 dB, max |diff| 0.011 (2.8 8-bit levels at the
worst pixel). They cannot be identical: tile borders are padded where the whole frame shows
real pixels (the overlap fades those regions out), and channel attention pools each tile's own
mean instead of the frame's. We assert >= 55 dB and max |diff| <= 0.03, and that blending beats
the same tiles without an overlap.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from b2g_deploy.config import preset
from b2g_deploy.export.parity import parity_image, psnr_between
from b2g_deploy.fit import fit, single_pass
from b2g_deploy.io.tiling import infer_tiled, needs_tiling, tile_starts, window


def test_tile_starts_cover_with_overlap():
    for size, tile, overlap in [(300, 96, 32), (97, 96, 32), (1080, 512, 64), (96, 96, 32)]:
        starts = tile_starts(size, tile, overlap)
        assert starts[0] == 0 and starts[-1] + tile == max(size, tile)
        assert all(b - a <= tile - overlap for a, b in zip(starts, starts[1:]))


def test_window_is_positive_and_symmetric():
    w = window(96, 32)
    assert w.min() > 0 and np.allclose(w, w[::-1]) and w[40:56].min() == 1.0
    assert np.all(np.diff(w[:32]) > 0)


def test_identity_is_reproduced_exactly():
    x = np.random.default_rng(0).random((2, 3, 130, 170), dtype=np.float32)
    calls = []

    def ident(t):
        calls.append(t.shape)
        return t

    out = infer_tiled(ident, x, (64, 64), 16, batch=3, multiple=8)
    assert np.allclose(out, x, atol=1e-6)
    assert all(s[-2:] == (64, 64) for s in calls)  # one tile shape: one engine profile / compile


def test_needs_tiling():
    assert needs_tiling((1, 3, 1080, 1920), (1088, 1088)) and not needs_tiling((1, 3, 720, 1280), None)


@pytest.fixture(scope="module")
def fitted():
    torch.set_num_threads(1)
    x = parity_image(3, (200, 300))
    net = fit(torch.from_numpy(x[0]), preset("tiny")).net.eval()
    return net, x


def test_tiled_agrees_with_whole_frame(fitted):
    net, x = fitted

    def infer(a):
        return single_pass(net, torch.from_numpy(a)).numpy()

    whole = infer(x)
    tiled = infer_tiled(infer, x, (96, 96), overlap=32, batch=4, multiple=net.multiple)
    hard = infer_tiled(infer, x, (96, 96), overlap=0, batch=4, multiple=net.multiple)
    assert tiled.shape == whole.shape
    assert psnr_between(tiled, whole) >= 55.0
    assert np.abs(tiled - whole).max() <= 0.03
    assert psnr_between(tiled, whole) > psnr_between(hard, whole) + 3.0
