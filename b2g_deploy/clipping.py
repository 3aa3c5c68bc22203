"""Undoing the bias that clipping puts into a self-supervised denoiser's output.

Why: an 8-bit frame is clipped to [0, 1], so near black and white its noise is not zero-mean: a
pixel of white (1.0) under Gaussian noise of sigma 25/255 reads 0.96 on average, since every
draw above 1 was cut back to 1. A denoiser fitted or pretrained on noisy data (B2G, the
recorrupted loss) learns the mean of what it sees, E[clip(x + n)], not x: its output is dark
in bright areas and bright in dark ones by up to 0.4 sigma, an error no amount of averaging
(the output fusion) removes. On the cockatoo clip (a white bird, 8% of its pixels at 0.9 or
above) that bias was a third of the temporal network's squared error.

The fix is the one Foi (2009, "Clipped noisy images: heteroskedastic modeling and practical
denoising", Signal Processing 89(12)) gives for denoisers of clipped data: the mean of a clipped
Gaussian,

    E[clip(x + n, 0, 1)] = x (Phi(b) - Phi(a)) + sigma (phi(a) - phi(b)) + 1 - Phi(b),
    a = -x / sigma, b = (1 - x) / sigma,

is increasing in x for x in [0, 1], so each output value m is mapped back to the x whose
clipped mean is m (a lookup table, per pixel and channel). Values beyond the table's ends
(the clipped means of 0 and 1) go to 0 and 1.

sigma is the noise's level *before* clipping. ``unclipped_sigma`` estimates it from a frame and
its denoised version, on pixels far enough from 0 and 1 that clipping does not touch them: the
spread of noisy - denoised over all pixels is pulled under sigma by the clipped ones.

A stream (``Unclipper``) averages the correction (unclipped - denoised) over a 3 x 3 box.
Wherever clipping bites (within ~2.5 sigma of black or white) the inverse is steeper than 1 (2
at the ends for sigma 50), so it amplifies the frame-to-frame jitter the denoised output still
has there; the bias it corrects varies slowly in space, the jitter less so. On held-out clips
(``benchmarks/stream_finish_on_clips.py``) the box kept every dB of the correction (+0.03 /
+0.02 more at sigma 25 / 50) and took a quarter / a sixth of the flicker it added.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

# Pixels whose denoised value lies this many sigmas inside [0, 1] are (almost) never clipped.
_MARGIN_SIGMAS = 2.5
# Fewer such pixels than this share: too little to measure sigma on, use every pixel.
_MIN_SHARE = 0.05
_TABLE_SIZE = 4097  # x samples of the forward table
_INVERSE_SIZE = 65536
SMOOTH = 3  # the side of the box a stream's correction is averaged over (module docstring)


def clipped_mean(x: np.ndarray, sigma: float) -> np.ndarray:
    """E[clip(x + n, 0, 1)] for n ~ N(0, sigma^2), elementwise (x in [0, 1], sigma > 0)."""
    x = np.asarray(x, np.float64)
    erf = np.vectorize(math.erf, otypes=[np.float64])
    a, b = -x / sigma, (1.0 - x) / sigma
    cdf_a, cdf_b = 0.5 * (1 + erf(a / math.sqrt(2))), 0.5 * (1 + erf(b / math.sqrt(2)))
    pdf_a, pdf_b = np.exp(-a * a / 2) / math.sqrt(2 * math.pi), np.exp(-b * b / 2) / math.sqrt(2 * math.pi)
    return x * (cdf_b - cdf_a) + sigma * (pdf_a - pdf_b) + (1 - cdf_b)


@lru_cache(maxsize=16)
def _inverse_table(sigma: float) -> np.ndarray:
    """x for 65,536 clipped means evenly spaced over [0, 1] (nearest-entry lookup is then one
    multiply and one gather a pixel: ~20 ms a 720p frame, where np.interp took ~0.5 s)."""
    xs = np.linspace(0.0, 1.0, _TABLE_SIZE)
    means = clipped_mean(xs, sigma)
    return np.interp(np.linspace(0.0, 1.0, _INVERSE_SIZE), means, xs).astype(np.float32)


def unclip(denoised: np.ndarray, sigma: float) -> np.ndarray:
    """``denoised`` (values in [0, 1], any shape), taken as clipped means E[clip(x + n)] with
    noise of ``sigma`` (in [0, 1] units, before clipping), mapped back to x; float32."""
    if not sigma > 0:
        raise ValueError(f"sigma must be positive, got {sigma}")
    table = _inverse_table(round(float(sigma), 5))  # rounded: nearby estimates share a table
    scaled = np.clip(np.asarray(denoised, np.float32), 0.0, 1.0) * np.float32(_INVERSE_SIZE - 1) + np.float32(0.5)
    return table[scaled.astype(np.int32)]


def smoothed_correction(denoised: np.ndarray, unclipped: np.ndarray, box: int) -> np.ndarray:
    """``denoised`` plus the correction ``unclipped - denoised`` averaged over a ``box`` x ``box``
    window in each plane of the last two axes (edges reflected); box 1 returns ``unclipped``."""
    if box < 1:
        raise ValueError(f"the correction's box must be at least 1 pixel, got {box}")
    if box == 1:
        return unclipped
    import cv2

    denoised = np.asarray(denoised, np.float32)
    correction = (unclipped - denoised).reshape(-1, *denoised.shape[-2:])
    smoothed = np.stack([cv2.blur(plane, (box, box)) for plane in correction]).reshape(denoised.shape)
    return denoised + smoothed


def unclipped_sigma(noisy: np.ndarray, denoised: np.ndarray, guess: float | None = None) -> float:
    """The noise level before clipping, in [0, 1] units: std(noisy - denoised) over the pixels
    whose denoised value lies ``_MARGIN_SIGMAS`` x ``guess`` inside [0, 1] (every pixel when
    fewer than ``_MIN_SHARE`` of them do). ``guess``: a first estimate; None: the spread over
    all pixels."""
    noisy, denoised = np.asarray(noisy, np.float32), np.asarray(denoised, np.float32)
    residual = noisy - denoised
    margin = _MARGIN_SIGMAS * (float(np.std(residual)) if guess is None else guess)
    inside = (denoised > margin) & (denoised < 1 - margin)
    if inside.mean() >= _MIN_SHARE:
        residual = residual[inside]
    return max(float(np.std(residual)), 1e-4)


class Unclipper:
    """``unclip`` for a stream: ``__call__(noisy, denoised)`` -> the denoised frame mapped back.

    ``sigma`` (in [0, 1] units, before clipping) when known; else estimated from each frame
    (``unclipped_sigma`` on every second pixel each way, a quarter of the cost) and smoothed
    over frames, as ``temporal.fuse_stream.OutputFuser`` smooths its noise level: one frame's estimate
    moves with its content, the noise does not. ``smooth``: the box the correction is averaged
    over (``smoothed_correction``; 1: none). Frames are (..., H, W).
    """

    def __init__(self, sigma: float | None = None, smooth: int = SMOOTH):
        if sigma is not None and not sigma > 0:
            raise ValueError(f"sigma must be positive, got {sigma}")
        if smooth < 1:
            raise ValueError(f"the correction's box must be at least 1 pixel, got {smooth}")
        self.sigma, self.smooth = sigma, smooth
        self._estimate: float | None = None

    @property
    def estimate(self) -> float | None:
        """The noise level in use: the given sigma, or the smoothed estimate so far."""
        return self.sigma if self.sigma is not None else self._estimate

    def __call__(self, noisy: np.ndarray, denoised: np.ndarray) -> np.ndarray:
        if self.sigma is None:
            frame = unclipped_sigma(np.asarray(noisy)[..., ::2, ::2], np.asarray(denoised)[..., ::2, ::2])
            self._estimate = frame if self._estimate is None else 0.9 * self._estimate + 0.1 * frame
        return smoothed_correction(denoised, unclip(denoised, self.estimate), self.smooth)
