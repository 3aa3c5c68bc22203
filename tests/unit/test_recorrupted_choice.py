"""The check that picks a video's network (api.recorrupted_choice): the recorrupted pair, the
pixels it scores, the crop it runs on, and that it ranks two streams as the clean frames do."""

from __future__ import annotations

import numpy as np
import pytest

from b2g_deploy.api.recorrupted_choice import (
    ALPHA, CROP_PIXELS, centre_crop, recorrupted_pair, score_runtimes, scored_pixels)
from b2g_deploy.modelfile.info import ModelInfo

SIGMA = 25 / 255


def _scene(n: int = 6, h: int = 48, w: int = 64) -> np.ndarray:
    """A still, smooth RGB scene in (0.2, 0.8), n frames: (N, 3, H, W)."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    frame = np.stack([0.5 + 0.3 * np.sin(xx / 7 + c) * np.cos(yy / 9) for c in range(3)])
    return np.repeat(frame[None], n, axis=0).astype(np.float32)


class _Runtime:
    """A single-frame "network": ``fn`` on each (C, H, W) frame."""

    def __init__(self, fn):
        self.info, self.fn = ModelInfo(3, 8, "single", 1, {}), fn

    def infer(self, frames: np.ndarray) -> np.ndarray:
        return np.stack([self.fn(f) for f in frames]).astype(np.float32)


def _blur(frame: np.ndarray) -> np.ndarray:
    import cv2

    return np.stack([cv2.GaussianBlur(np.ascontiguousarray(p), (0, 0), 1.5) for p in frame])


def test_the_pair_is_uncorrelated_where_z_matches_the_noise():
    rng = np.random.default_rng(0)
    clean = np.full((4, 3, 128, 128), 0.5, np.float32)
    noisy = clean + rng.normal(0, SIGMA, clean.shape).astype(np.float32)
    plus, minus = recorrupted_pair(noisy, SIGMA)
    corr = np.corrcoef((plus - clean).ravel(), (minus - clean).ravel())[0, 1]
    assert abs(corr) < 0.01
    assert np.std(plus - clean) == pytest.approx(SIGMA * np.sqrt(1 + ALPHA**2), rel=0.01)
    # z weaker than the noise (a level read low): the two stay correlated, the bias the check avoids
    weak_plus, weak_minus = recorrupted_pair(noisy, 0.7 * SIGMA)
    assert np.corrcoef((weak_plus - clean).ravel(), (weak_minus - clean).ravel())[0, 1] > 0.2


def test_scored_pixels_leave_out_what_clipping_touches():
    estimate = np.linspace(0, 1, 101, dtype=np.float32)
    inside = scored_pixels(estimate, 0.1)  # 1.5 sigma = 0.15 from either end
    assert not inside[:15].any() and not inside[-15:].any() and inside[20:80].all()
    assert scored_pixels(np.zeros(100, np.float32), 0.1).all()  # nothing inside: every pixel


def test_the_check_runs_on_a_centre_crop_of_at_most_a_quarter_of_720p():
    frames = np.zeros((2, 3, 720, 1280), np.float32)
    frames[..., 360, 640] = 1.0
    crop = centre_crop(frames)
    h, w = crop.shape[-2:]
    assert h * w <= CROP_PIXELS and h % 8 == 0 and w % 8 == 0 and crop.max() == 1.0  # the centre is in it
    small = np.zeros((2, 3, 48, 64), np.float32)
    assert centre_crop(small).shape == small.shape


def test_the_scores_rank_two_streams_as_the_clean_frames_do():
    rng = np.random.default_rng(1)
    clean = _scene()
    noisy = np.clip(clean + rng.normal(0, SIGMA, clean.shape), 0, 1).astype(np.float32)
    good, bad = _Runtime(_blur), _Runtime(lambda f: f)  # a smoothing denoiser and none at all
    options = dict(live=False, fuse=False, unclip=False, blend=0.0)  # the networks alone
    scores = score_runtimes(bad, good, noisy, clean, **options)
    assert scores.temporal_better and not score_runtimes(good, bad, noisy, clean, **options).temporal_better
    blurred = np.stack([_blur(f) for f in clean + rng.normal(0, SIGMA * np.sqrt(1 + ALPHA**2), clean.shape)])
    identity = (1 + ALPHA**2) * SIGMA**2  # the identity's error on y+
    # the difference of the two errors, unbiased: the clean frames' own measure of it
    assert scores.difference == pytest.approx(identity - np.mean((blurred - clean) ** 2), rel=0.1)
    assert scores.sigma == pytest.approx(SIGMA, rel=0.03)


@pytest.mark.parametrize("live", [False, True])
def test_the_check_runs_the_whole_stream_one_output_per_frame(live):
    # The stream's own steps (fusion, Wiener step, unclipping, blend), causal for a live source.
    from b2g_deploy.api.recorrupted_choice import stream_outputs

    rng = np.random.default_rng(2)
    clean = _scene(n=7)
    noisy = np.clip(clean + rng.normal(0, SIGMA, clean.shape), 0, 1).astype(np.float32)
    out = stream_outputs(_Runtime(_blur), list(noisy), live)
    assert out.shape == noisy.shape and out.dtype == np.float32
    assert np.mean((out - clean) ** 2) < 0.3 * np.mean((noisy - clean) ** 2)
    assert score_runtimes(_Runtime(lambda f: f), _Runtime(_blur), noisy, clean, live=live).temporal_better


def test_a_tie_keeps_the_temporal_network_and_the_lookahead_follows_the_windows():
    from b2g_deploy.api.recorrupted_choice import MARGIN_ERRORS, NetworkScores, lookahead

    def scores(single, temporal, error):
        return NetworkScores(single, temporal, 0.1, 1.0, 8, 0.0, error)

    assert scores(0.0300, 0.0200, 0.001).temporal_better
    assert scores(0.0200, 0.0201, 0.0001).temporal_better  # behind, but within MARGIN_ERRORS errors
    assert not scores(0.0200, 0.0200 + (MARGIN_ERRORS + 0.1) * 0.0001, 0.0001).temporal_better
    assert lookahead(live=True, k=2, causal=False) == 0  # a camera: nothing read ahead
    assert lookahead(live=False, k=2, causal=False) == 5  # a file: k, then the fusion's 3
    assert lookahead(live=False, k=2, causal=True) == 3  # the single-frame stream still fuses centred
    assert lookahead(live=False, k=2, causal=False, fuse=False) == 2


def test_the_standard_error_is_small_against_a_clear_difference():
    rng = np.random.default_rng(3)
    clean = _scene()
    noisy = np.clip(clean + rng.normal(0, SIGMA, clean.shape), 0, 1).astype(np.float32)
    scores = score_runtimes(_Runtime(lambda f: f), _Runtime(_blur), noisy, clean, live=False, fuse=False,
                            unclip=False, blend=0.0, scored=4)
    assert scores.frames == 4 and 0 < scores.standard_error < 0.05 * scores.difference


def test_the_haar_estimate_inside_reads_the_noise_that_clipping_hides_elsewhere():
    import torch

    from b2g_deploy.api.recorrupted_choice import haar_inside
    from b2g_deploy.fit.noise_level import estimate_sigma

    rng = np.random.default_rng(0)
    clean = np.full((4, 3, 128, 128), 0.5, np.float32)
    clean[..., :64] = 0.98  # half the frame where clipping at white removes noise
    noisy = np.clip(clean + rng.normal(0, 2 * SIGMA, clean.shape), 0, 1).astype(np.float32)
    assert estimate_sigma(torch.from_numpy(noisy)) < 0.8 * 2 * SIGMA  # the plain estimate reads low
    assert haar_inside(noisy, clean) == pytest.approx(2 * SIGMA, rel=0.03)


def test_the_check_draws_its_pair_at_the_haar_level_inside_by_default():
    from b2g_deploy.api.recorrupted_choice import haar_inside, noise_level

    rng = np.random.default_rng(1)
    clean = _scene(4)
    noisy = np.clip(clean + rng.normal(0, SIGMA, clean.shape), 0, 1).astype(np.float32)
    assert noise_level(noisy, clean) == haar_inside(noisy, clean) == pytest.approx(SIGMA, rel=0.05)
    assert noise_level(noisy, clean, "unclipped") == pytest.approx(SIGMA, rel=0.05)
    with pytest.raises(ValueError, match="haar-inside, unclipped or haar"):
        noise_level(noisy, clean, "median")
