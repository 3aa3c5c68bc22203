"""Motion alignment of a frame window: each neighbour warped onto the target frame with OpenCV's
DIS optical flow before the temporal network sees it (docs/METHOD_NOTES.md, "Temporal alignment").

Why: the temporal head fuses the frames in its first 3x3 layer, so it can only use a neighbour
whose content lies within a pixel or two of the target's. On the cockatoo clip the camera pans
by a median 6.8 px per frame (up to 20) at 640x360, and the temporal prior gained nothing on
raw windows; on aligned ones it gained 0.6-0.7 dB over the single-frame prior (sigma 25 and 50).

The flow is computed from the target to each neighbour on blurred grey guides (DIS on raw noisy
frames follows the noise), then the neighbour is resampled at the target's pixel positions plus
the flow (bilinear, edges replicated). The target frame itself is never touched, so the blind
spot the fit relies on stays intact. The flow runs on half-size guides (``_guide_scale``).

Two flows (``ALIGN_MODES``): "dis-fine" (the default of new fits) and "dis" (DIS's fast
preset). Both run DIS's fast preset on the half-size guides; "dis" stops at its default finest
scale 2, so its flow field is 1/8 of the frame's size (160x90 at 720p), "dis-fine" goes one
scale further (1/4; ~4x the flow's cost, 11-15 ms against 3 ms at 640x360 on one core, still
under the medium preset's 18-19 ms for the same quality). With the first temporal priors the
coarse flow measured as good; a prior pretrained on aligned windows uses its neighbours far
more and gains from the finer one (docs/METHOD_NOTES.md, "Temporal alignment"). "dis" stays
what it was, so a checkpoint or export that says "dis" still gets the windows it was fitted on.

A third, "lk" (``temporal.flow_torch``): pyramidal Lucas-Kanade in torch, which runs on the
device the frames are on, so a GPU stream aligns its windows on the GPU; here it is reached
through the same numpy functions as the DIS modes.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

import numpy as np

AlignMode = Literal["none", "dis", "dis-fine", "lk"]
ALIGN_MODES = ("none", "dis", "dis-fine", "lk")
DEFAULT_ALIGN = "dis-fine"  # what a new temporal fit (and the shipped priors' rows) uses
_GUIDE_BLUR = 2.0  # px, Gaussian sigma of the flow guide: noise out, edges kept
GREY_WEIGHTS = (0.299, 0.587, 0.114)  # RGB -> the guide's grey (ITU-R BT.601 luma)


def _dis(mode: str = "dis"):
    """A fresh DIS object for every flow (``mode`` "dis": the fast preset, "dis-fine": the same
    down to finest scale 1). One reused object is not a pure function: from its second ``calc`` on it
    returned a different flow for the same pair (it keeps state between calls), so the same
    window aligned twice, or in another order, differed. A new object costs ~5 us, nothing
    beside the flow's milliseconds, and is thread-safe by construction."""
    import cv2

    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_FAST)
    if mode == "dis-fine":
        dis.setFinestScale(1)
    return dis


def check_align(mode: str) -> str:
    """``mode`` if it is one of ``ALIGN_MODES``, else a ValueError naming them."""
    if mode not in ALIGN_MODES:
        raise ValueError(f"align must be one of {', '.join(ALIGN_MODES)}, got {mode!r}")
    return mode


def _guide_scale(h: int, w: int) -> int:
    """Flow is computed at 1/2 (or 1/4 from 1440 px up) of the frame size: the guide is blurred
    anyway, and DIS's cost grows with the pixel count (at 1280x720 full-size flow for four
    neighbours took ~0.5 s a frame here)."""
    side = min(h, w)
    return 4 if side >= 1440 else 2 if side >= 256 else 1


def _guide(frame: np.ndarray, scale: int, blur: float = _GUIDE_BLUR) -> np.ndarray:
    """(C, H, W) float in [0, 1] -> grey uint8 at 1/scale of the size, blurred by ``blur`` px
    (of the full size; 0 = not blurred: a denoised frame), what DIS reads."""
    import cv2

    # Bit for bit what the fits and the shipped priors saw (the ordered float32 sum w0 x0 + w1 x1
    # + w2 x2; weights with 255 folded in round a few guide pixels the other way, and that alone
    # moved a 720p temporal fit by 0.26 dB at sigma 50: docs/BENCHMARKS.md). einsum, not
    # tensordot: the same sums without BLAS, whose worker thread spun ~4 s of a core beside a
    # 24-frame 720p stream, and whose kernel rounds differently on some CPUs.
    grey = frame[0] if frame.shape[0] == 1 else np.einsum("c,chw->hw", np.array(GREY_WEIGHTS, np.float32),
                                                            frame[:3])
    grey = np.clip(grey * 255.0 + 0.5, 0, 255).astype(np.uint8)
    if scale > 1:
        grey = cv2.resize(grey, (grey.shape[1] // scale, grey.shape[0] // scale), interpolation=cv2.INTER_AREA)
    return cv2.GaussianBlur(grey, (0, 0), blur / scale) if blur > 0 else grey


@lru_cache(maxsize=4)
def _grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel coordinates (y, x) of an h x w frame: the same for every window of a stream."""
    gy, gx = np.mgrid[0:h, 0:w].astype(np.float32)
    return gy, gx


def align_window(window: np.ndarray, channels: int, target_slot: int, mode: str = "dis",
                 inplace: bool = False) -> np.ndarray:
    """A stacked window (T*C, H, W) with every neighbour warped onto frame ``target_slot`` by the
    flow ``mode`` names ("dis" or "dis-fine"; "none" returns the window as it is). ``inplace``:
    the neighbours are overwritten in ``window`` (a C-contiguous float32 array the caller owns),
    which is returned; a stream aligns its batch array so, without copying every window twice."""
    import cv2

    if check_align(mode) == "none":
        return window
    if mode == "lk":
        return align_windows(window[None], channels, target_slot, mode, inplace)[0]

    if inplace and not (window.dtype == np.float32 and window.flags["C_CONTIGUOUS"]):
        raise ValueError("aligning in place needs a C-contiguous float32 window")
    t = window.shape[0] // channels
    h, w = window.shape[-2:]
    frames = np.asarray(window, dtype=np.float32).reshape(t, channels, h, w)
    out = frames if inplace else frames.copy()
    scale = _guide_scale(h, w)
    target = _guide(frames[target_slot], scale)
    gy, gx = _grid(h, w)
    plane = np.empty((h, w), np.float32)  # remap's output, copied over the neighbour's plane
    for j in range(t):
        if j == target_slot:
            continue
        flow = _dis(mode).calc(target, _guide(frames[j], scale), None)
        if scale > 1:  # back to full size, in full-size pixels
            flow = cv2.resize(flow, (w, h), interpolation=cv2.INTER_LINEAR) * float(scale)
        mx, my = gx + flow[..., 0], gy + flow[..., 1]
        for c in range(channels):
            cv2.remap(frames[j, c], mx, my, cv2.INTER_LINEAR, dst=plane, borderMode=cv2.BORDER_REPLICATE)
            out[j, c] = plane
    return out.reshape(window.shape)


def align_windows(windows: np.ndarray, channels: int, target_slot: int, mode: str = "dis",
                  inplace: bool = False) -> np.ndarray:
    """``align_window`` over a batch (B, T*C, H, W); ``inplace`` as there."""
    if check_align(mode) == "none":
        return windows
    if mode == "lk":
        import torch

        from .flow_torch import align_windows_torch

        with torch.no_grad():
            aligned = align_windows_torch(torch.from_numpy(np.ascontiguousarray(windows, dtype=np.float32)), channels,
                                          target_slot).numpy()
        if inplace:
            windows[...] = aligned
            return windows
        return aligned
    if inplace:
        for window in windows:
            align_window(window, channels, target_slot, mode, inplace=True)
        return windows
    return np.stack([align_window(w, channels, target_slot, mode) for w in windows])
