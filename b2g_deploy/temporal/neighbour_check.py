"""Which of two temporal networks denoises a clip better, judged on the noisy clip alone
(docs/METHOD_NOTES.md, "Keeping the fit only when it helps").

Each output frame t is compared with a noisy frame r that lies *outside* t's window, warped onto
t with the same DIS flow the windows use (``temporal.align``): Noise2Noise across time. When
the noise is independent from frame to frame (``temporal.noise_check`` has checked it), r's
noise is independent of the output, so the expected squared difference is the output's own
error plus terms that do not depend on the network (r's noise, the warp's error). The lower
score is the better network, with no clean frame anywhere.

Why it exists: fitted on the clip with a self-supervised loss, the temporal stage can end worse
than the temporal prior it started from (at high noise on real footage it measured up to 1 dB
worse); this check lets the fit keep whichever is better.
"""

from __future__ import annotations

import numpy as np
import torch

_BORDER = 8  # px left out at each edge: warped references replicate their borders there


def reference_index(t: int, window: list[int], n: int) -> int | None:
    """The frame nearest to t that is not in its window (later frames first), or None."""
    inside = set(window)
    for d in range(1, n):
        for r in (t + d, t - d):
            if 0 <= r < n and r not in inside:
                return r
    return None


def warped_reference(frames: np.ndarray, t: int, r: int) -> np.ndarray:
    """Frame r warped onto frame t (C, H, W), by the alignment the temporal windows use."""
    from .align import align_window

    c = frames.shape[1]
    return align_window(np.concatenate([frames[t], frames[r]]), c, 0)[c:]


def neighbour_scores(nets: list, frames: torch.Tensor, max_frames: int = 8) -> list[float] | None:
    """The mean squared difference of each temporal net's output and warped out-of-window noisy
    frames, over up to ``max_frames`` frames of ``frames`` (N, C, H, W). None when no frame has
    a reference outside its window (a clip no longer than the window)."""
    from .model import denoise_clip
    from .windows import window_indices

    n = int(frames.shape[0])
    net0 = nets[0]
    k = (net0.window - 1) // 2
    causal = net0.target_index == net0.window - 1 and net0.window > 1
    pairs = [(t, r) for t in range(n)
             if (r := reference_index(t, window_indices(t, n, k, causal), n)) is not None][:max_frames]
    if not pairs:
        return None
    host = frames.detach().cpu().numpy().astype(np.float32, copy=False)
    refs = {(t, r): warped_reference(host, t, r) for t, r in pairs}
    h, w = host.shape[-2:]
    b = _BORDER if min(h, w) > 4 * _BORDER else 0
    inner = (slice(None), slice(b, h - b or None), slice(b, w - b or None))
    scores = []
    with torch.no_grad():
        for net in nets:
            out = denoise_clip(net, frames).cpu().numpy()
            scores.append(float(np.mean([np.mean((out[t][inner] - refs[(t, r)][inner]) ** 2) for t, r in pairs])))
    return scores
