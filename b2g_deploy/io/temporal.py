"""Temporal stability of per-frame denoising: a flicker measure and a motion-aware blend.

A denoiser applied frame by frame leaves a residual that changes from frame to frame even where
the scene is still, which the eye sees as flicker. We measure it as

    flicker = mean_t mean|out_t - out_{t-1}|  -  mean_t mean|clean_t - clean_{t-1}|

(the output's mean absolute temporal difference beyond what the clean video itself moves), in
[0, 1] units; 0 means "changes exactly as much as the clean video".

The remedy, :class:`TemporalBlend`, is a recursive average that only acts where nothing moved:
out_t = w * out_{t-1} + (1 - w) * f(y_t), with a per-pixel weight w that falls to 0 wherever the
locally averaged difference between f(y_t) and out_{t-1} exceeds a threshold tied to the noise
level. Still areas get the residual of several frames averaged (less flicker, less noise);
moving edges take the current frame only, so they are not smeared (sharpness is kept).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def mean_temporal_difference(frames: Sequence[np.ndarray]) -> float:
    """mean_t mean|x_t - x_{t-1}| over consecutive (C, H, W) frames (0 for fewer than two)."""
    if len(frames) < 2:
        return 0.0
    diffs = [float(np.mean(np.abs(frames[t].astype(np.float64) - frames[t - 1]))) for t in range(1, len(frames))]
    return float(np.mean(diffs))


def flicker(outputs: Sequence[np.ndarray], clean: Sequence[np.ndarray]) -> float:
    """Temporal difference of the output minus that of the clean video (module docstring)."""
    if len(outputs) != len(clean):
        raise ValueError(f"{len(outputs)} output frames but {len(clean)} clean ones")
    return mean_temporal_difference(outputs) - mean_temporal_difference(clean)


def temporal_error(outputs: Sequence[np.ndarray], clean: Sequence[np.ndarray]) -> float:
    """mean_t mean|e_t - e_{t-1}| of the error e = output - clean: the frame-to-frame change that
    is not the scene's. ``flicker`` compares amounts of change, so an output whose contrast is
    compressed (clipping's bias, blur) reads steadier than the clean video even when it jitters;
    this one is zero only when every change is the scene's."""
    if len(outputs) != len(clean):
        raise ValueError(f"{len(outputs)} output frames but {len(clean)} clean ones")
    errors = [np.asarray(o, np.float64) - c for o, c in zip(outputs, clean)]
    return mean_temporal_difference(errors)


# The blend a fused output gets unless told otherwise (strength, threshold): chosen on held-out
# clips (benchmarks/stream_finish_on_clips.py) as the strongest that cost no PSNR at sigma 25 and 50
# (-0.006 / +0.001 dB). It takes some of the jitter that unclipping uncovers (docs/METHOD_NOTES.md,
# "Clipping's bias"): flicker -0.0003 / -0.0005, the error's frame-to-frame change -0.2% / -0.6%.
FUSED_BLEND = (0.12, 0.1)
BLEND_THRESHOLD = 0.3  # TemporalBlend's threshold elsewhere (the unfused outputs' blend)


class TemporalBlend:
    """Motion-aware recursive blend, applied frame by frame in display order.

    strength: the weight of the previous output on a still pixel (0 = off; 0.5 averages about
        three frames' residuals: the steady-state variance of an exponential average with weight
        a is (1 - a) / (1 + a) of one frame's).
    threshold: motion threshold in units of the noise sigma. The difference test is on denoised
        frames, its sign kept and averaged over a ``window`` x ``window`` box, so it is far below
        sigma where the scene is still and far above it across a moving edge.
    sigma: the noise level in [0, 1] units if known; otherwise estimated per frame as the std
        of y - f(y) (the part the denoiser removed, mostly noise), smoothed over frames.
    """

    def __init__(self, strength: float = 0.5, threshold: float = BLEND_THRESHOLD, sigma: float | None = None,
                 window: int = 5):
        if not 0.0 <= strength < 1.0:
            raise ValueError(f"blend strength must be in [0, 1), got {strength}")
        if threshold <= 0 or window < 1:
            raise ValueError("blend threshold and window must be positive")
        self.strength, self.threshold, self.sigma, self.window = strength, threshold, sigma, window
        self._prev: np.ndarray | None = None
        self._sigma_est: float | None = None

    def reset(self) -> None:
        """Forget the previous frame (a scene cut, or a new stream)."""
        self._prev, self._sigma_est = None, None

    def noise_sigma(self, noisy: np.ndarray, denoised: np.ndarray) -> float:
        if self.sigma is not None:
            return self.sigma
        est = float(np.std(noisy - denoised))
        # Smoothed over frames: one frame's estimate moves with its content, the noise does not.
        self._sigma_est = est if self._sigma_est is None else 0.9 * self._sigma_est + 0.1 * est
        return max(self._sigma_est, 1e-4)

    def __call__(self, noisy: np.ndarray, denoised: np.ndarray) -> np.ndarray:
        """(C, H, W) noisy input and its denoised frame -> the blended frame (also remembered)."""
        import cv2

        denoised = denoised.astype(np.float32, copy=False)
        prev = self._prev
        if self.strength == 0.0 or prev is None or prev.shape != denoised.shape:
            self._prev = denoised
            self.noise_sigma(noisy, denoised)
            return denoised
        tau = self.threshold * self.noise_sigma(noisy, denoised)
        # The *signed* difference is averaged over channels and a box before its magnitude is
        # taken: the frame-to-frame residual has random sign and averages away (by ~sqrt(3*25)
        # for RGB and a 5x5 box), while a real change (motion, light) is locally one-signed.
        diff = np.abs(cv2.blur((denoised - prev).mean(axis=0), (self.window, self.window)))
        weight = self.strength * np.clip(1.0 - diff / tau, 0.0, 1.0)
        out = denoised + weight[None] * (prev - denoised)
        self._prev = out
        return out
