"""Image quality metrics on (C, H, W) arrays in [0, 1] (docs/METHOD_NOTES.md, "Evaluation": clip, all channels).

SSIM is scikit-image's, the one the benchmark tables quote; it is imported only when asked for.
"""

from __future__ import annotations

import numpy as np


def psnr(x: np.ndarray, clean: np.ndarray) -> float:
    mse = float(np.mean((np.clip(x, 0.0, 1.0).astype(np.float64) - clean) ** 2))
    return float("inf") if mse == 0 else 10.0 * np.log10(1.0 / mse)


def ssim(x: np.ndarray, clean: np.ndarray) -> float:
    from skimage.metrics import structural_similarity

    a = np.clip(x, 0.0, 1.0).transpose(1, 2, 0)
    b = clean.transpose(1, 2, 0)
    return float(structural_similarity(a, b, data_range=1.0, channel_axis=2))
