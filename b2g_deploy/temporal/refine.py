"""A Wiener step after the output fusion: the motion-compensated average of the *noisy* frames,
filtered with the fused frame as its pilot (docs/METHOD_NOTES.md, "Refining the fusion with the noisy frames").

Why: the network and the fusion average *denoised* frames, so detail a denoiser smoothed away is
lost in every one of them. The noisy frames still hold it. Warped onto the target with the
fusion's flows and averaged with the fusion's weights, the 2k+1 noisy frames are an unbiased
estimate of the clean frame whose noise variance is sigma^2 * sum(w^2) / sum(w)^2 (a seventh of
sigma^2 where all seven agree). BM3D's second step filters such an estimate: in the 2-D DCT of
overlapping p x p patches each coefficient is scaled by the empirical Wiener gain
P^2 / (P^2 + variance), P the pilot's coefficient, so what the pilot says is there passes and
what it says is not is removed; the patches are put back with BM3D's weights, 1 / (variance *
sum of squared gains). Colour frames are filtered in an orthonormal opponent space (luminance
and two colour differences), where independent noise stays independent.

Each patch's mean (its DCT's DC coefficient) is the pilot's: a denoiser rarely errs in a local
mean, while the average's mean keeps sigma^2 / 7 of noise at best, which shows as low-frequency
blotches in flat regions (with the average's means the step lost up to 0.7 dB at sigma 50 on a
smooth held-out clip). The result is blended with the pilot, ``SHARE`` of it the Wiener step's.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

# Chosen on held-out clips (benchmarks/tune_refine.py; docs/BENCHMARKS.md, "Refining the fusion
# with the noisy frames"): BM3D's 8x8 DCT on a 4-pixel grid (each pixel in 4 patches; a 2-pixel
# grid gained 0.0-0.08 dB more for 3.9x the time); the pilot's lowest LOW x LOW frequencies (1:
# the patch mean; 2 lost 0.07 dB at sigma 25); SHARE of the output the Wiener step's, best or
# within 0.03 dB of the best at sigma 25, 35 and 50, on pans and on clips with occlusion.
PATCH, STRIDE, LOW = 8, 4, 1
SHARE = 0.7
STRIP_ROWS = 8  # patch rows filtered at a time (speed only: 2-8 measured within 8% at 720p)


@lru_cache(maxsize=4)
def _dct2(p: int):
    """The 2-D DCT-II of a p x p patch flattened row by row, as a (p*p, p*p) matrix: the
    Kronecker product of the 1-D one with itself; orthonormal, so its transpose inverts it.
    One GEMM on all patches at once beat the separable transform (two strided convolutions)
    by 1.5x on this CPU."""
    import torch

    d = torch.tensor([[math.cos(math.pi * (i + 0.5) * k / p) * math.sqrt((1 if k == 0 else 2) / p)
                       for i in range(p)] for k in range(p)])
    return torch.kron(d, d)


@lru_cache(maxsize=1)
def _opponent():
    """Orthonormal RGB -> (luminance, red-blue, green against red and blue)."""
    import torch

    r2, r3, r6 = math.sqrt(2), math.sqrt(3), math.sqrt(6)
    return torch.tensor([[1 / r3, 1 / r3, 1 / r3], [1 / r2, 0, -1 / r2], [1 / r6, -2 / r6, 1 / r6]])


def wiener_step(average: np.ndarray, pilot: np.ndarray, variance: np.ndarray, patch: int = PATCH,
                stride: int | None = None, luma_only: bool = False, low: int | None = None) -> np.ndarray:
    """``average`` (C, H, W): a noisy estimate of a frame, whose per-pixel noise variance is
    ``variance`` (H, W); ``pilot`` (C, H, W): a denoised estimate of it. -> the Wiener-filtered
    average (C, H, W) float32, as the module docstring says. ``luma_only``: a colour frame's
    colour-difference planes are the pilot's (a third of the work). ``stride``, ``low`` None:
    ``STRIDE``, ``LOW``, read at the call (benchmarks/tune_refine.py sets them to compare
    settings through the fusion)."""
    import torch

    a, q, v = (torch.from_numpy(np.asarray(x, np.float32)) for x in (average, pilot, variance))
    return wiener_step_tensor(a, q, v, patch, stride, luma_only, low).contiguous().numpy()


def wiener_step_tensor(a, q, variance, patch: int = PATCH, stride: int | None = None, luma_only: bool = False,
                       low: int | None = None):
    """``wiener_step`` on float32 tensors (C, H, W), (C, H, W), (H, W) on any device (the fusion on
    a GPU, ``fuse_torch``) -> a (C, H, W) tensor there."""
    import torch
    import torch.nn.functional as F

    stride = STRIDE if stride is None else stride
    low = LOW if low is None else low
    c, h, w = a.shape
    device = a.device
    if c == 3:
        m = _opponent().to(device)
        a, q = torch.einsum("dc,chw->dhw", m, a), torch.einsum("dc,chw->dhw", m, q)
    # Reflect-pad so every pixel is in whole patches and the strided grid ends on the border.
    extra_h, extra_w = (-(h + patch)) % stride, (-(w + patch)) % stride
    pads = (patch, patch + extra_w, patch, patch + extra_h)
    kept = None
    if luma_only and c == 3:
        kept, a, q, c = q[1:], a[:1], q[:1], 1
    mode = "reflect" if min(h, w) > patch + stride else "replicate"  # reflection needs a frame wider than the pad
    x = F.pad(torch.stack([a, q]).reshape(2 * c, 1, h, w), pads, mode=mode)
    var = F.pad(variance[None, None], pads, mode=mode)
    height, width = x.shape[-2:]
    rows = (height - patch) // stride + 1  # patch rows on the grid
    dct = _dct2(patch).to(device)
    inverse = dct.T.contiguous()
    lows = ((torch.arange(patch)[:, None] < low) & (torch.arange(patch)[None] < low)).reshape(-1).to(device)
    num, den = torch.zeros(c, 1, height, width, device=device), torch.zeros(1, 1, height, width, device=device)
    with torch.no_grad():
        v_all = F.avg_pool2d(var, patch, stride=stride)[0, 0]  # each patch's noise variance
        # A strip of STRIP_ROWS patch rows at a time: its coefficients stay in cache through the
        # gains and the inverse transform (2.7x faster at 720p than the whole frame at once, the
        # same output to float rounding), and a GEMM a plane beat a broadcast batched one by 1.5x.
        # On a GPU the whole frame at once: a kernel launch a strip would cost more than its cache.
        strip = STRIP_ROWS if device.type == "cpu" else rows
        for first in range(0, rows, strip):
            last = min(rows, first + strip)
            top, bottom = first * stride, (last - 1) * stride + patch
            patches = F.unfold(x[:, :, top:bottom], patch, stride=stride)  # (2C, p*p, patches)
            coeffs = torch.stack([dct @ plane for plane in patches])
            ca, cq = coeffs[:c], coeffs[c:]
            v = v_all[first:last].reshape(1, 1, -1)
            gain = cq * cq
            gain = gain.div_(gain + v)
            if low:  # the pilot's lowest frequencies (module docstring)
                ca[:, lows] = cq[:, lows]
                gain[:, lows] = 1.0
            weight = 1.0 / (v * (gain * gain).sum(1, keepdim=True).mean(0, keepdim=True) + 1e-12)  # BM3D's aggregation weight
            gain.mul_(ca).mul_(weight)
            back = torch.stack([inverse @ plane for plane in gain])
            size = (bottom - top, width)
            num[..., top:bottom, :] += F.fold(back, size, patch, stride=stride)
            den[..., top:bottom, :] += F.fold(weight[0].expand(patch * patch, -1)[None], size, patch, stride=stride)
        out = (num / den)[:, 0, patch:patch + h, patch:patch + w]
        if kept is not None:
            out = torch.cat([out, kept])
        if out.shape[0] == 3:
            out = torch.einsum("dc,dhw->chw", m, out)  # the inverse of an orthonormal map
    return out
