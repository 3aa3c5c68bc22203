"""Clipping's bias (clipping.py): the clipped Gaussian's mean, its inverse, the noise level before
clipping, and the stream's unclipper (in the pipeline: test_pipeline_windows.py)."""

from __future__ import annotations

import numpy as np
import pytest

from b2g_deploy.clipping import Unclipper, clipped_mean, smoothed_correction, unclip, unclipped_sigma

SIGMA = 25 / 255


def test_the_clipped_mean_is_what_clipped_noise_averages_to():
    rng = np.random.default_rng(0)
    x = np.array([0.0, 0.03, 0.5, 0.95, 1.0])
    sampled = np.clip(x[:, None] + rng.normal(0, SIGMA, (5, 400_000)), 0, 1).mean(axis=1)
    assert np.allclose(clipped_mean(x, SIGMA), sampled, atol=3e-4)
    assert clipped_mean(np.array([1.0]), SIGMA)[0] == pytest.approx(1 - SIGMA / np.sqrt(2 * np.pi), abs=1e-6)


def test_unclip_inverts_the_clipped_mean_and_leaves_mid_grey_alone():
    x = np.linspace(0, 1, 101)
    assert np.allclose(unclip(clipped_mean(x, SIGMA), SIGMA), x, atol=1e-4)
    mid = np.array([0.4, 0.5, 0.6], np.float32)
    assert np.allclose(unclip(mid, SIGMA), mid, atol=1e-4)
    ends = unclip(np.array([0.0, 1.0], np.float32), SIGMA)  # beyond the clipped means of 0 and 1
    assert ends.tolist() == [0.0, 1.0] and unclip(np.zeros((2, 3, 4)), SIGMA).dtype == np.float32
    with pytest.raises(ValueError, match="sigma"):
        unclip(mid, 0.0)


def _bright_scene(seed: int = 0):
    """Half of it white, half mid-grey texture; clipped noise of SIGMA."""
    rng = np.random.default_rng(seed)
    clean = np.concatenate([np.ones((3, 32, 64)), 0.3 + 0.4 * rng.random((3, 32, 64))], axis=1).astype(np.float32)
    noisy = np.clip(clean + rng.normal(0, SIGMA, clean.shape), 0, 1).astype(np.float32)
    return clean, noisy


def test_the_noise_level_before_clipping_is_measured_away_from_black_and_white():
    clean, noisy = _bright_scene()
    everywhere = float(np.std(noisy - clean))
    assert everywhere < 0.85 * SIGMA  # the white half's clipped noise pulls the plain spread down
    assert unclipped_sigma(noisy, clean, everywhere) == pytest.approx(SIGMA, rel=0.03)


def test_the_unclipper_brings_a_biased_white_back_up():
    clean, noisy = _bright_scene()
    biased = clipped_mean(clean, SIGMA).astype(np.float32)  # what a denoiser of noisy data learns
    for unclipper in (Unclipper(SIGMA, smooth=1), Unclipper(smooth=1)):
        out = unclipper(noisy, biased)
        assert np.abs(out - clean).max() < 2e-3 < np.abs(biased - clean).max()
        assert unclipper.estimate == pytest.approx(SIGMA, rel=0.03)
    # The default box: exact wherever the 3 x 3 box lies inside one half; across the border
    # between white and grey it spreads the white's correction a pixel, and still lifts it.
    out = Unclipper(SIGMA)(noisy, biased)
    inside = np.r_[0:31, 33:64]
    assert np.abs(out - clean)[:, inside].max() < 2e-3
    assert np.abs(out - clean).mean() < 0.2 * np.abs(biased - clean).mean()
    with pytest.raises(ValueError, match="sigma"):
        Unclipper(-1.0)
    with pytest.raises(ValueError, match="box"):
        Unclipper(smooth=0)


def test_the_box_calms_the_jitter_the_steep_inverse_adds_near_white():
    # Near white the inverse's slope is above 1: a denoised white that jitters by 0.005 from
    # pixel to pixel (and frame to frame) jitters more once unclipped; the box averages the
    # correction's share of it, the bias it corrects is the same over the whole patch.
    sigma = 50 / 255
    rng = np.random.default_rng(1)
    white = np.full((3, 48, 48), 0.97, np.float32)
    denoised = (clipped_mean(white, sigma) + rng.normal(0, 0.005, white.shape)).astype(np.float32)
    raw, boxed = unclip(denoised, sigma), smoothed_correction(denoised, unclip(denoised, sigma), 3)
    assert np.std(raw) > 1.3 * np.std(denoised)  # the steep inverse amplifies the jitter
    assert np.std(boxed) < 0.8 * np.std(raw)
    assert abs(boxed.mean() - raw.mean()) < 1e-3 and abs(boxed.mean() - 0.97) < 3e-3
    assert smoothed_correction(denoised, raw, 1) is raw
    with pytest.raises(ValueError, match="box"):
        smoothed_correction(denoised, raw, 0)
