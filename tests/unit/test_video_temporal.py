"""Flicker measure and the motion-aware temporal blend (b2g_deploy.io.temporal)."""

from __future__ import annotations

import numpy as np
import pytest

from b2g_deploy.io.temporal import TemporalBlend, flicker, mean_temporal_difference, temporal_error


def test_flicker_of_a_still_clip_is_the_outputs_own_change():
    clean = [np.full((1, 8, 8), 0.5, np.float32)] * 3
    out = [np.full((1, 8, 8), v, np.float32) for v in (0.5, 0.6, 0.5)]
    assert mean_temporal_difference(clean) == 0.0
    assert flicker(out, clean) == pytest.approx(0.1)
    assert flicker(clean, clean) == 0.0
    with pytest.raises(ValueError):
        flicker(out[:2], clean)


def test_temporal_error_sees_jitter_that_compressed_contrast_hides_from_flicker():
    # A moving edge (0 -> 1 and back), and an output with half its contrast that jitters by 0.05:
    # it changes less than the clean clip (negative flicker), yet its error changes every frame.
    clean = [np.full((1, 4, 4), v, np.float32) for v in (0.0, 1.0, 0.0, 1.0)]
    out = [0.25 + 0.5 * c + j for c, j in zip(clean, (0.05, -0.05, 0.05, -0.05))]
    assert flicker(out, clean) < 0
    assert temporal_error(out, clean) == pytest.approx(0.6)  # the error swings +0.3 / -0.3: lost contrast + jitter
    assert temporal_error(clean, clean) == 0.0
    with pytest.raises(ValueError):
        temporal_error(out[:2], clean)


def _moving_square(t: int, size: int = 64) -> np.ndarray:
    f = np.full((3, size, size), 0.3, np.float32)
    f[:, 20:40, 5 + 6 * t : 25 + 6 * t] = 0.9  # moves 6 pixels a frame
    return f


def test_blend_cuts_flicker_on_still_areas_and_keeps_moving_edges():
    rng = np.random.default_rng(0)
    clean = [_moving_square(t) for t in range(6)]
    # A denoiser's output: clean plus a small residual that changes every frame.
    outputs = [c + rng.normal(0, 0.02, c.shape).astype(np.float32) for c in clean]
    noisy = [c + rng.normal(0, 0.1, c.shape).astype(np.float32) for c in clean]
    blend = TemporalBlend(strength=0.5, threshold=0.3, sigma=0.1)
    blended = [blend(y, o) for y, o in zip(noisy, outputs)]
    assert flicker(blended, clean) < 0.7 * flicker(outputs, clean)
    # Inside the square where it just arrived (moving edge), the current frame is kept whole.
    t = 5
    edge = (slice(None), slice(22, 38), slice(5 + 6 * t + 18, 5 + 6 * t + 20))
    np.testing.assert_allclose(blended[t][edge], outputs[t][edge], atol=1e-6)
    # Away from the square the residual is averaged: closer to the clean frame.
    still = (slice(None), slice(45, 64), slice(None))
    err_blend = np.abs(blended[t][still] - clean[t][still]).mean()
    err_raw = np.abs(outputs[t][still] - clean[t][still]).mean()
    assert err_blend < 0.8 * err_raw


def test_blend_off_and_first_frame_are_identity_and_sigma_is_estimated():
    rng = np.random.default_rng(1)
    y = rng.random((1, 16, 16)).astype(np.float32)
    out = np.full_like(y, 0.5)
    assert np.array_equal(TemporalBlend(strength=0.0)(y, out), out)
    blend = TemporalBlend()  # sigma estimated from y - f(y)
    assert np.array_equal(blend(y, out), out)
    assert blend.noise_sigma(y, out) > 0.2
    with pytest.raises(ValueError):
        TemporalBlend(strength=1.0)
