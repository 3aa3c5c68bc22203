"""The Wiener step after the output fusion (temporal/refine.py): exact where there is no noise,
removes what the pilot says is noise, and, fed the noisy frames of a still window, gives back
detail that every denoised frame lost."""

from __future__ import annotations

import numpy as np
import pytest

from b2g_deploy.temporal.fuse import fuse_clip, fuse_window
from b2g_deploy.temporal.fuse_stream import OutputFuser
from b2g_deploy.temporal.refine import wiener_step

SIGMA = 25 / 255


def _texture(h: int = 48, w: int = 64, channels: int = 3, seed: int = 0) -> np.ndarray:
    """Fine detail (a 1-px-blurred random field) over a ramp, in [0.1, 0.9]."""
    import cv2

    rng = np.random.default_rng(seed)
    planes = [cv2.GaussianBlur(rng.random((h, w)).astype(np.float32), (0, 0), 1.0) for _ in range(channels)]
    ramp = np.linspace(0, 1, w, dtype=np.float32)[None]
    x = np.stack([0.5 * p + 0.5 * ramp for p in planes])
    return (0.1 + 0.8 * (x - x.min()) / (x.max() - x.min())).astype(np.float32)


@pytest.mark.parametrize("shape", [(3, 37, 53), (1, 40, 41), (3, 5, 6)])
def test_with_no_noise_the_wiener_step_gives_back_its_input(shape):
    x = _texture(shape[1], shape[2], shape[0])
    pilot = 0.8 * x + 0.1  # any pilot with no zero coefficient: with no noise every gain is 1
    out = wiener_step(x, pilot, np.full(shape[1:], 1e-12, np.float32), low=0)
    assert out.shape == x.shape and out.dtype == np.float32
    assert np.abs(out - x).max() < 1e-4


def test_the_wiener_step_removes_the_noise_a_clean_pilot_says_is_not_there():
    clean = _texture()
    noisy = clean + np.random.default_rng(1).normal(0, SIGMA, clean.shape).astype(np.float32)
    out = wiener_step(noisy, clean, np.full(clean.shape[1:], SIGMA**2, np.float32))
    assert np.mean((out - clean) ** 2) < 0.2 * SIGMA**2


def test_refining_a_still_window_gives_back_detail_every_denoised_frame_lost():
    import cv2

    clean = _texture()
    rng = np.random.default_rng(2)
    # Seven frames of a still scene: the "denoiser" blurred the detail away in every one of
    # them (the same loss, so the fusion cannot undo it); the noisy frames still hold it.
    blurred = np.stack([cv2.GaussianBlur(p, (0, 0), 1.5) for p in clean])
    outs = [blurred + rng.normal(0, 0.1 * SIGMA, clean.shape).astype(np.float32) for _ in range(7)]
    noisy = [clean + rng.normal(0, SIGMA, clean.shape).astype(np.float32) for _ in range(7)]
    crop = (slice(None), slice(6, -6), slice(6, -6))
    fused = fuse_window(outs, 3, SIGMA)
    refined = fuse_window(outs, 3, SIGMA, noisy=noisy, refine=1.0)
    before, after = np.mean((fused - clean)[crop] ** 2), np.mean((refined - clean)[crop] ** 2)
    assert after < 0.85 * before  # measured 0.74
    half = fuse_window(outs, 3, SIGMA, noisy=noisy, refine=0.5)
    assert np.allclose(half, np.clip(0.5 * fused + 0.5 * refined, 0, 1), atol=1e-5)  # the share blends


def test_a_window_without_neighbours_is_not_refined():
    frame = _texture()
    noisy = frame + 0.05
    assert np.array_equal(fuse_window([frame] * 3, 1, SIGMA, noisy=[noisy] * 3, refine=1.0), frame)


@pytest.mark.parametrize("causal", [False, True])
def test_the_refined_stream_gives_what_the_whole_clip_gives(causal):
    clean = _texture()
    rng = np.random.default_rng(3)
    noisy = np.stack([clean + rng.normal(0, SIGMA, clean.shape).astype(np.float32) for _ in range(6)])
    outs = np.stack([clean + rng.normal(0, 0.2 * SIGMA, clean.shape).astype(np.float32) for _ in range(6)])
    fuser, got = OutputFuser(k=2, causal=causal), []
    for i in range(6):
        got += fuser.push(i, noisy[i], outs[i])
    got += fuser.flush()
    assert [i for i, _, _ in got] == list(range(6))
    # The stream smooths its sigma estimate over frames; the clip takes the mean: give both one.
    fuser = OutputFuser(k=2, causal=causal, sigma=SIGMA)
    got = [f for i in range(6) for _, _, f in fuser.push(i, noisy[i], outs[i])] + [f for _, _, f in fuser.flush()]
    want = fuse_clip(outs, noisy, k=2, causal=causal, sigma=SIGMA)
    assert np.allclose(np.stack(got), want, atol=1e-5)
    assert not np.allclose(want, fuse_clip(outs, noisy, k=2, causal=causal, sigma=SIGMA, refine=False), atol=1e-3)


def test_each_patch_keeps_the_pilots_mean():
    clean = _texture()
    average = clean + 0.05  # a brightness error the noisy average has and the pilot has not
    out = wiener_step(average, clean, np.full(clean.shape[1:], 1e-12, np.float32), stride=8)
    assert abs(float((out - clean).mean())) < 1e-4  # the means are the pilot's
    assert abs(float((wiener_step(average, clean, np.full(clean.shape[1:], 1e-12, np.float32), stride=8, low=0)
                      - clean).mean()) - 0.05) < 1e-4  # without: the average's


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="noisy"):
        fuse_window([_texture()] * 3, 1, SIGMA, refine=0.5)
    with pytest.raises(ValueError, match="share"):
        fuse_window([_texture()] * 3, 1, SIGMA, noisy=[_texture()] * 3, refine=1.5)


@pytest.mark.parametrize("causal", [False, True])
def test_a_pool_of_fusion_workers_gives_the_same_frames_in_order(causal):
    clean = _texture()
    rng = np.random.default_rng(4)
    noisy = [clean + rng.normal(0, SIGMA, clean.shape).astype(np.float32) for _ in range(9)]
    outs = [clean + rng.normal(0, 0.2 * SIGMA, clean.shape).astype(np.float32) for _ in range(9)]
    results = {}
    for workers in (1, 3):
        fuser, got = OutputFuser(k=2, causal=causal, sigma=SIGMA, workers=workers), []
        for i in range(9):
            got += fuser.push(i, noisy[i], outs[i])
            # the backlog stays bounded (a stream's first window waits for frame 2k)
            assert len(got) >= i + 1 - 2 * 2 - workers
        got += fuser.flush()
        assert [i for i, _, _ in got] == list(range(9))
        results[workers] = np.stack([f for _, _, f in got])
    assert np.array_equal(results[1], results[3])
    with pytest.raises(ValueError, match="workers"):
        OutputFuser(workers=0)


def test_the_strip_the_wiener_step_works_in_changes_nothing(monkeypatch):
    from b2g_deploy.temporal import refine

    clean = _texture(70, 90)
    noisy = clean + np.random.default_rng(4).normal(0, SIGMA, clean.shape).astype(np.float32)
    variance = np.full(clean.shape[1:], SIGMA**2, np.float32)
    results = []
    for rows in (1, 3, 1000):  # a patch row at a time, a few, the whole frame at once
        monkeypatch.setattr(refine, "STRIP_ROWS", rows)
        results.append(wiener_step(noisy, clean, variance))
    assert np.abs(results[0] - results[2]).max() < 1e-6 and np.abs(results[1] - results[2]).max() < 1e-6


@pytest.mark.parametrize("causal", [False, True])
def test_a_stream_interleaves_each_frame_once_however_many_windows_it_is_in(monkeypatch, causal):
    from b2g_deploy.temporal import fuse_stream

    calls = []
    original = fuse_stream.interleaved
    monkeypatch.setattr(fuse_stream, "interleaved", lambda frame: calls.append(1) or original(frame))
    clean = _texture(32, 40)
    rng = np.random.default_rng(6)
    fuser, n = OutputFuser(causal=causal, sigma=SIGMA), 9
    for i in range(n):
        noisy = clean + rng.normal(0, SIGMA, clean.shape).astype(np.float32)
        fuser.push(i, noisy, 0.5 * (noisy + clean))
    fuser.flush()
    assert len(calls) == 2 * n  # the denoised frame and the noisy one, each once
