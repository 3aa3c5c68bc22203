"""The noise level of a noisy image, estimated from the image alone.

Donoho's robust estimator: the finest diagonal Haar detail coefficients of a natural image are
mostly noise, so sigma ~= median(|HH|) / 0.6745. Per channel, then the median over channels
and frames. Texture leaks into HH, so on busy images it reads a little high; the recorrupted
loss that uses it (losses.recorrupted_loss) tolerates an over-estimate better than an under-one.
"""

from __future__ import annotations

import torch


def diagonal_detail(x):
    """The finest diagonal Haar coefficients of ``x`` (a tensor or array, (..., H, W)): the
    orthonormal HH = (a - b - c + d) / 2 over each 2x2 block, odd last rows and columns dropped."""
    h, w = x.shape[-2] // 2 * 2, x.shape[-1] // 2 * 2
    x = x[..., :h, :w]
    return (x[..., 0::2, 0::2] - x[..., 0::2, 1::2] - x[..., 1::2, 0::2] + x[..., 1::2, 1::2]) / 2.0


def estimate_sigma(frames: torch.Tensor) -> float:
    """Noise std of (N, C, H, W) or (C, H, W) frames in [0, 1] units."""
    x = frames if frames.dim() == 4 else frames.unsqueeze(0)
    hh = diagonal_detail(x.float())
    per_channel = hh.abs().flatten(2).median(dim=2).values / 0.6745  # (N, C)
    return float(per_channel.median())


def signal_dependence(y: torch.Tensor, estimate: torch.Tensor) -> float:
    """How much the noise grows with brightness: the robust variance of the residual y - estimate
    over the brightest third of pixels divided by that over the darkest third (by the estimate).
    About 1 for signal-independent (Gaussian) noise; about mean(bright) / mean(dark), often 3 or
    more, for Poisson-like shot noise, which the recorrupted loss's Gaussian model does not fit."""
    est = estimate.float().flatten()
    res = (y.float() - estimate.float()).flatten()
    order = est.argsort()
    third = max(order.numel() // 3, 1)

    def robust_var(r: torch.Tensor) -> float:
        mad = (r - r.median()).abs().median()
        return float((mad / 0.6745) ** 2) + 1e-12

    return robust_var(res[order[-third:]]) / robust_var(res[order[:third]])


# The prior's residual y - prior(y) misses the little noise the prior lets through: its robust
# std read 0.96 of the true sigma on average on 16 held-out photographs (14.22 / 23.91 / 48.72
# at sigma 15 / 25 / 50, benchmarks/noise_estimates.py), so it is scaled back by this.
RESIDUAL_GAIN = 1.04


def residual_sigma(y: torch.Tensor, estimate: torch.Tensor) -> float:
    """Noise std from the residual of a good denoiser's ``estimate`` (the prior's): robust (MAD)
    std of y - estimate over every pixel, times ``RESIDUAL_GAIN``. On the held-out photographs at
    sigma 25 it read 23.4-25.6 (scaled), where the Haar estimate read 24.7-39.4: texture that
    leaks into the finest wavelet band stays in the prior's estimate, not in its residual."""
    r = (y.float() - estimate.float()).flatten()
    return float((r - r.median()).abs().median() / 0.6745) * RESIDUAL_GAIN


def shot_share(estimate: torch.Tensor, a: float, b: float) -> float:
    """The share of the noise variance that grows with brightness, a * m / (a * m + b), at the
    median brightness m of ``estimate``, from ``shot_noise_model``'s (a, b): about 0 for Gaussian
    noise, about 1 for pure shot noise. Unlike ``signal_dependence`` it does not need dark and
    bright regions: on Set9's F16 (a bright image whose darkest third is only 1.6 times darker
    than its brightest) Poisson noise at lambda 30 gave a variance ratio of 1.79, under the limit
    of 2, but a share of ~1 (benchmarks/shot_noise_guard.py)."""
    m = float(estimate.float().mean(dim=-3).median())
    return a * m / (a * m + b) if a * m + b > 0 else 0.0


def shot_noise_model(y: torch.Tensor, estimate: torch.Tensor, bins: int = 16) -> tuple[float, float]:
    """(a, b) of var(noise) = a * brightness + b, fitted to the robust residual variance in
    ``bins`` brightness quantiles (least squares, a and b kept >= 0): Poisson-Gaussian noise."""
    est = estimate.float().mean(dim=-3).flatten()  # brightness per pixel
    res = (y.float() - estimate.float()).flatten(-2).flatten()
    per_pixel = res.view(-1, est.numel()) if res.numel() != est.numel() else res[None]
    order = est.argsort()
    means, variances = [], []
    for chunk in order.chunk(bins):
        r = per_pixel[:, chunk].flatten()
        mad = (r - r.median()).abs().median() / 0.6745
        means.append(float(est[chunk].mean()))
        variances.append(float(mad**2))
    m, v = torch.tensor(means), torch.tensor(variances)
    design = torch.stack([m, torch.ones_like(m)], dim=1)
    a, b = torch.linalg.lstsq(design, v[:, None]).solution.flatten().tolist()
    if a < 0:
        a, b = 0.0, float(v.mean())
    return max(a, 0.0), max(b, 0.0)
