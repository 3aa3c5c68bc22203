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


def denoised_targets(nets: list, frames: torch.Tensor, targets: list[int], chunk: int = 4) -> list[np.ndarray]:
    """Each net's deployable pass on the frames ``targets``: (len(targets), C, H, W) per net. The
    nets share their window and alignment, so each chunk's windows are built (and aligned: the
    flows are most of the cost) once for all of them."""
    from ..model import denoise
    from .model import clip_windows

    outs: list[list[np.ndarray]] = [[] for _ in nets]
    with torch.no_grad():
        for first in range(0, len(targets), chunk):
            windows = clip_windows(nets[0], frames, targets[first : first + chunk])
            for out, net in zip(outs, nets):
                out.append(denoise(net.eval(), windows).cpu().numpy())
    return [np.concatenate(out) for out in outs]


def neighbour_scores(nets: list, frames: torch.Tensor, max_frames: int = 8) -> list[float] | None:
    """The mean squared difference of each temporal net's output and warped out-of-window noisy
    frames, over up to ``max_frames`` frames of ``frames`` (N, C, H, W). None when no frame has
    a reference outside its window (a clip no longer than the window). The nets must read the
    same windows (window, target slot and alignment)."""
    from .model import window_shape
    from .windows import window_indices

    n = int(frames.shape[0])
    k, causal = window_shape(nets[0])
    pairs = [(t, r) for t in range(n)
             if (r := reference_index(t, window_indices(t, n, k, causal), n)) is not None][:max_frames]
    if not pairs:
        return None
    host = frames.detach().cpu().numpy().astype(np.float32, copy=False)
    h, w = host.shape[-2:]
    b = _BORDER if min(h, w) > 4 * _BORDER else 0
    inner = (slice(None), slice(b, h - b or None), slice(b, w - b or None))
    refs = [warped_reference(host, t, r)[inner] for t, r in pairs]
    outs = denoised_targets(nets, frames, [t for t, _ in pairs])
    return [float(np.mean([np.mean((out[i][inner] - ref) ** 2) for i, ref in enumerate(refs)])) for out in outs]
