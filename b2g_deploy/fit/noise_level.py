"""The noise level of a noisy image, estimated from the image alone.

Donoho's robust estimator: the finest diagonal Haar detail coefficients of a natural image are
mostly noise, so sigma ~= median(|HH|) / 0.6745. Per channel, then the median over channels
and frames. Texture leaks into HH, so on busy images it reads a little high; the recorrupted
loss that uses it (losses.recorrupted_loss) tolerates an over-estimate better than an under-one.
"""

from __future__ import annotations

import torch


def estimate_sigma(frames: torch.Tensor) -> float:
    """Noise std of (N, C, H, W) or (C, H, W) frames in [0, 1] units."""
    x = frames if frames.dim() == 4 else frames.unsqueeze(0)
    h, w = x.shape[-2] // 2 * 2, x.shape[-1] // 2 * 2
    x = x[..., :h, :w].float()
    # Orthonormal Haar: HH = (a - b - c + d) / 2 over each 2x2 block.
    hh = (x[..., 0::2, 0::2] - x[..., 0::2, 1::2] - x[..., 1::2, 0::2] + x[..., 1::2, 1::2]) / 2.0
    per_channel = hh.abs().flatten(2).median(dim=2).values / 0.6745  # (N, C)
    return float(per_channel.median())
