"""Is the noise independent from frame to frame? The temporal net's precondition, checked.

The temporal net reads the neighbouring frames unmasked. That is only safe when their noise is
independent of the target's: if it is not (noise reduction or compression that carries noise
over between frames, a fixed-pattern sensor noise, duplicated frames), the blind-spot or R2R fit
learns to recover the target's noise from the neighbours and leaves it in the output.

The check: denoise every frame with a single-frame network f, take the residuals
r_t = y_t - f(y_t) (mostly noise), and average the Pearson correlation of r_t and r_{t+1} over
all pixels and channels, across consecutive pairs. Independent noise gives about 0 (a 64x64 frame
has 4096 samples, so chance correlations are around 0.02); noise carried over between frames
gives the carried-over share. Scene content the denoiser removed also correlates across frames
where the scene is still, so an over-smoothing f reads a little high: the threshold leaves room.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

# Above 0.1 a tenth of the residual's variance is shared with the next frame's: enough for a
# temporal fit to learn to copy noise, and well above the ~0.02 of chance or mild oversmoothing.
INDEPENDENCE_THRESHOLD = 0.1


def _as_array(x: torch.Tensor | np.ndarray) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.float64)


def temporal_residual_correlation(noisy: torch.Tensor | np.ndarray, denoised: torch.Tensor | np.ndarray) -> float:
    """Mean over t of corr(r_t, r_{t+1}), r_t = noisy_t - denoised_t; frames (N, C, H, W), N >= 2."""
    y, f = _as_array(noisy), _as_array(denoised)
    if y.shape != f.shape:
        raise ValueError(f"noisy frames {y.shape} and denoised frames {f.shape} differ in shape")
    if y.ndim != 4 or y.shape[0] < 2:
        raise ValueError(f"need at least two (C, H, W) frames as (N, C, H, W), got {y.shape}")
    r = (y - f).reshape(y.shape[0], -1)
    r = r - r.mean(axis=1, keepdims=True)
    norms = np.sqrt((r * r).sum(axis=1))
    pairs = []
    for t in range(len(r) - 1):
        denom = norms[t] * norms[t + 1]
        # A frame with no residual at all (f is the identity there) says nothing: skip the pair.
        if denom > 0.0:
            pairs.append(float((r[t] * r[t + 1]).sum() / denom))
    return float(np.mean(pairs)) if pairs else 0.0


def temporal_noise_is_independent(corr: float, threshold: float = INDEPENDENCE_THRESHOLD) -> bool:
    """True if the residual correlation allows a temporal fit; else use the single-frame net.

    The magnitude is tested: a strongly negative correlation (alternating fixed patterns) is
    dependence too.
    """
    return abs(corr) <= threshold


@torch.no_grad()
def check_temporal_noise(frames: torch.Tensor, single_frame: Callable[[torch.Tensor], torch.Tensor],
                         threshold: float = INDEPENDENCE_THRESHOLD) -> tuple[bool, float]:
    """(independent?, correlation) for frames (N, C, H, W) and a single-frame denoiser.

    ``single_frame`` maps (B, C, H, W) to its denoised frames, e.g.
    ``lambda y: b2g_deploy.model.denoise(net.eval(), y)``.
    """
    denoised = torch.cat([single_frame(frames[t : t + 1]) for t in range(frames.shape[0])])
    corr = temporal_residual_correlation(frames, denoised)
    return temporal_noise_is_independent(corr, threshold), corr
