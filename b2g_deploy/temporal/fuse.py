"""Motion-compensated fusion of denoised frames: each output frame averaged with its neighbours'
outputs, warped onto it, wherever they agree (docs/METHOD_NOTES.md, "Fusing the outputs").

Why: a denoiser's error on frame t and its error on frame t+1 are largely independent (they come
from independent noise), while the scene is the same once motion is undone. So the outputs of a
window of frames, aligned onto the target, are several estimates of one clean frame, and their
average has a smaller error wherever the alignment is right. Where it is wrong (occlusions,
non-rigid motion, a flow error) a neighbour disagrees with the target by far more than the
denoisers' error, and its weight falls to zero:

    fused = (out_t + sum_j w_j W_j(out_j)) / (1 + sum_j w_j),
    w_j   = exp(-G(mean_c (W_j(out_j) - out_t)^2) / (strength * sigma^2))

with W_j the warp of neighbour j onto t (DIS optical flow between the *denoised* frames, which
follows the scene, not the noise, down to a vector per guide pixel, and bicubic resampling:
``FUSION_FLOWS``), G a Gaussian blur (the decision is local, not per pixel:
a per-pixel difference is dominated by the denoisers' own errors) and sigma the input's noise
level, estimated as the std of what the denoiser removed (noisy - denoised). The network is not
involved, so the same stage follows a single-frame or a temporal network, in the fit's measurements
(``fuse_clip``) and in a stream (``fuse_stream.OutputFuser``, whose windows are
``windows.window_indices``': centred ones add k frames of latency, causal ones none). The same
fusion in torch, for a stream whose network runs on a GPU, is ``fuse_torch`` (flow "lk").
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np

from .fuse_flows import DIRECT_REACH, FlowCache, window_fields
from .windows import target_slot, window_indices

# Chosen on held-out clips (benchmarks/tune_output_fusion.py): best or within 0.03 dB of it for
# both networks, both windows and both noise levels.
DEFAULT_STRENGTH = 0.12
# Frames each side (centred) and twice that before (causal), also chosen there: centred windows
# of k=3 beat k=2 by 0.04-0.12 dB, causal ones of k=3 (six frames back) did not beat k=2.
DEFAULT_K, DEFAULT_CAUSAL_K = 3, 2
_DECISION_BLUR = 1.5  # px, Gaussian sigma of the agreement map

# How neighbours are warped onto the target (docs/METHOD_NOTES.md, "Fusing the outputs"):
# "fine" (the default since 2026-11-29): DIS's fast preset down to its finest scale 0 (a flow
# vector per guide pixel) and bicubic resampling; "medium": DIS's medium preset (finest scale
# 1) and bilinear resampling, what the fusion did before, its flows ~3x cheaper. Averaging
# *denoised* frames, a quarter-pixel misalignment or bilinear's softening blurs the fused frame:
# on 256x256 held-out clips "fine" fused 0.19-0.38 dB higher (benchmarks/tune_output_fusion.py;
# the medium preset at scale 0 was no better than the fast one), on the 720p cockatoo clip
# +0.07 / +0.02 dB for the temporal default at sigma 25 / 50 (docs/BENCHMARKS.md); on held-out
# 720p mosaics +0.60 / +0.44, and fewer refinement iterations in "fine" saved at most 18% of the
# fusion's time for 0.03-0.09 dB there (benchmarks/fusion_flow_on_clips.py).
# "lk": the whole fusion in torch on the stream's device with the Lucas-Kanade flow
# (``fuse_torch``), 0.06-0.11 dB under "fine" on held-out clips: for a network on a GPU.
FusionFlow = Literal["fine", "medium", "lk"]
FUSION_FLOWS = ("fine", "medium", "lk")
DEFAULT_FLOW: FusionFlow = "fine"


def default_k(causal: bool) -> int:
    return DEFAULT_CAUSAL_K if causal else DEFAULT_K


def default_direct(causal: bool, k: int) -> int:
    """How far a window's flows are direct (``fuse_flows.window_fields``): causal windows keep
    direct flows to all their 2k frames, as measured before chained flows existed."""
    return 2 * k if causal else DIRECT_REACH


def default_invert(causal: bool) -> bool:
    """Whether a window's backward flows are the inverses of its earlier frames' forward ones
    (``fuse_flows.window_fields``' ``invert_back``): in centred windows, where every earlier
    frame's own window computed that forward flow (half the DIS runs); a causal window's frames
    never look forward, so there would be nothing to invert."""
    return not causal


def check_flow(flow: str) -> str:
    """``flow`` if it is one of ``FUSION_FLOWS``, else a ValueError naming them."""
    if flow not in FUSION_FLOWS:
        raise ValueError(f"fusion flow must be one of {', '.join(FUSION_FLOWS)}, got {flow!r}")
    return flow


def _dis(flow: str = DEFAULT_FLOW):
    """A fresh DIS object per flow, as in ``align._dis`` (a reused one keeps state between calls)."""
    import cv2

    if flow == "medium":
        return cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_FAST)
    dis.setFinestScale(0)
    return dis


def _flow_maps(field: np.ndarray, scale: int, grid):
    """The remap maps that resample a frame at the target's pixels plus ``field``, the flow from
    the target to the frame at guide resolution (``fuse_flows.window_fields``)."""
    import cv2

    h, w = grid[0].shape
    if scale > 1:
        field = cv2.resize(field, (w, h), interpolation=cv2.INTER_LINEAR) * float(scale)
    # Fixed-point maps (1/32 px): built once for all channels (and for the noisy frame too when
    # the output is refined), and remap reads them faster.
    return cv2.convertMaps(grid[1] + field[..., 0], grid[0] + field[..., 1], cv2.CV_16SC2)


def _remap(frame: np.ndarray, maps, flow: str = DEFAULT_FLOW) -> np.ndarray:
    """``frame`` (H, W, C), C <= 4 (``interleaved``), resampled by ``_flow_maps``' maps -> (H, W, C)."""
    import cv2

    interpolation = cv2.INTER_LINEAR if flow == "medium" else cv2.INTER_CUBIC
    out = cv2.remap(frame, maps[0], maps[1], interpolation, borderMode=cv2.BORDER_REPLICATE)
    return out.reshape(frame.shape)  # OpenCV drops a single channel's axis


def interleaved(frame: np.ndarray) -> np.ndarray:
    """(C, H, W) -> (H, W, C) float32, contiguous: how the fusion keeps a frame. One remap call
    resamples all channels of an interleaved frame, 1.4x faster than a call per plane (720p,
    bicubic, one core), and a frame is in up to 2k+1 windows, so the stream converts it once."""
    return np.ascontiguousarray(np.asarray(frame, np.float32).transpose(1, 2, 0))


def _mean_square(diff: np.ndarray) -> np.ndarray:
    """(H, W, C) -> the mean over channels of its square, (H, W). A sum of channel slices: numpy's
    reduction over the short last axis took 6x as long at 720p."""
    diff *= diff
    total = diff[..., 0].copy()
    for c in range(1, diff.shape[2]):
        total += diff[..., c]
    return total / diff.shape[2]


def fuse_window(frames: Sequence[np.ndarray], slot: int, sigma: float,
                strength: float = DEFAULT_STRENGTH, guides: Sequence[np.ndarray] | None = None,
                flow: FusionFlow = DEFAULT_FLOW, noisy: Sequence[np.ndarray] | None = None,
                refine: float = 0.0, pixels: Sequence[np.ndarray] | None = None,
                noisy_pixels: Sequence[np.ndarray] | None = None, flows: FlowCache | None = None,
                direct_reach: int | None = None, invert_back: bool = False) -> np.ndarray:
    """Denoised frames of one window (each (C, H, W) float in [0, 1], slot order) -> the fused
    frame of slot ``slot`` (float32). ``sigma``: the input's noise level in [0, 1] units. A slot holding
    the target frame itself (clip edges) adds nothing and is skipped. ``guides``: the frames'
    flow guides (``guide_of``), ``pixels`` and ``noisy_pixels`` the frames and noisy frames
    ``interleaved``, when the caller keeps them from window to window. ``flow``: one of
    ``FUSION_FLOWS``. ``refine`` > 0: that share of the output is the Wiener step
    (``refine.wiener_step``) on the window's ``noisy`` frames (slot order), warped and averaged
    as the denoised ones are, with the fused frame as its pilot. ``flows``: the consecutive
    frames' flows kept from window to window; ``direct_reach``: how far the flows are direct
    (``fuse_flows.window_fields``; None: all of them); ``invert_back``: the flows to earlier
    frames are the inverses of their flows to this one (``default_invert``; there)."""
    import cv2

    from .align import _grid, _guide_scale

    if strength <= 0 or sigma <= 0:
        raise ValueError(f"strength and sigma must be positive, got {strength}, {sigma}")
    if not 0.0 <= refine <= 1.0 or (refine > 0 and (noisy is None or len(noisy) != len(frames))):
        raise ValueError("refine is a share in [0, 1] and needs the window's noisy frames")
    if check_flow(flow) == "lk":
        raise ValueError("the lk fusion runs in torch: fuse_torch.fuse_window_torch")
    h, w = frames[slot].shape[-2:]
    scale = _guide_scale(h, w)
    if guides is None:
        guides = [guide_of(f) for f in frames]
    if pixels is None:
        pixels = [interleaved(f) for f in frames]
    if refine > 0 and noisy_pixels is None:
        noisy_pixels = [interleaved(f) for f in noisy]
    grid = _grid(h, w)
    target = pixels[slot]
    total = target.copy()
    weights = np.ones((h, w), np.float32)
    if refine > 0:
        noisy_total = noisy_pixels[slot].copy()
        squares = np.ones((h, w), np.float32)  # sum of squared weights: the average's noise
    fields = window_fields(guides, slot, flow, flows, direct_reach, invert_back)
    h2 = strength * sigma * sigma
    seen = 0  # neighbours that are not the target itself
    for j, frame in enumerate(frames):
        if j == slot or np.may_share_memory(frame, frames[slot]):
            continue
        seen += 1
        maps = _flow_maps(fields[j], scale, grid)
        warped = _remap(pixels[j], maps, flow)
        disagreement = cv2.GaussianBlur(_mean_square(warped - target), (0, 0), _DECISION_BLUR)
        # In place where a temporary would be a frame-sized allocation (a 720p window has up to
        # 2k of these neighbours): the same values as exp(-d / h2) and total += w * warped.
        weight = np.exp(np.divide(disagreement, -h2, out=disagreement), out=disagreement)
        total += np.multiply(warped, weight[..., None], out=warped)
        weights += weight
        if refine > 0:
            noisy_warped = _remap(noisy_pixels[j], maps, flow)
            noisy_total += np.multiply(noisy_warped, weight[..., None], out=noisy_warped)
            squares += weight * weight
    fused = (total / weights[..., None]).transpose(2, 0, 1)
    if refine <= 0 or seen == 0:  # one noisy frame alone is no better than the pilot it would refine
        return np.ascontiguousarray(fused)
    from .refine import wiener_step

    variance = (sigma * sigma) * squares / (weights * weights)
    wiener = wiener_step((noisy_total / weights[..., None]).transpose(2, 0, 1), fused, variance)
    return np.clip(refine * wiener + (1.0 - refine) * fused, 0.0, 1.0)


def guide_of(frame: np.ndarray) -> np.ndarray:
    """The flow guide ``fuse_window`` uses for a (C, H, W) denoised frame: ``align``'s guide
    without its blur (the frame is already clean)."""
    from .align import _guide, _guide_scale

    return _guide(np.asarray(frame, np.float32), _guide_scale(*frame.shape[-2:]), blur=0.0)


def removed_sigma(noisy: np.ndarray, denoised: np.ndarray) -> float:
    """The noise level a denoiser removed from a frame: std(noisy - denoised), in [0, 1] units."""
    return max(float(np.std(np.asarray(noisy, np.float32) - np.asarray(denoised, np.float32))), 1e-4)


def fuse_clip(outputs: np.ndarray, noisy: np.ndarray, k: int | None = None, causal: bool = False,
              strength: float = DEFAULT_STRENGTH, sigma: float | None = None,
              flow: FusionFlow = DEFAULT_FLOW, refine: bool | float = True,
              direct_reach: int | None = None, flow_frames: np.ndarray | None = None,
              invert_back: bool | None = None) -> np.ndarray:
    """Every frame of a denoised clip (N, C, H, W) fused with its window's (``window_indices``):
    what ``fuse_stream.OutputFuser`` gives for the same frames streamed. ``k`` None: ``default_k``;
    ``sigma`` None: the mean of ``removed_sigma`` over the clip; ``refine``: the Wiener step on
    the noisy frames, ``refine.SHARE`` of the output when True, or this share (a float in [0, 1];
    0 or False: none); ``direct_reach`` None: ``default_direct``; ``flow_frames``: the frames the
    flows are computed between (None: the outputs, as a stream does; an analysis may pass others);
    ``invert_back`` None: ``default_invert``."""
    from . import refine as step

    k = default_k(causal) if k is None else k
    n = len(outputs)
    if len(noisy) != n:
        raise ValueError(f"{n} denoised frames but {len(noisy)} noisy ones")
    if sigma is None:
        sigma = float(np.mean([removed_sigma(y, o) for y, o in zip(noisy, outputs)]))
    share = step.SHARE if refine is True else float(refine)
    slot = target_slot(k, causal)
    invert = default_invert(causal) if invert_back is None else invert_back
    if check_flow(flow) == "lk":
        from .fuse_torch import fuse_frames

        return np.stack([fuse_frames(outputs, noisy if share > 0 else None, window_indices(t, n, k, causal), slot,
                                     sigma, strength, share, invert) for t in range(n)])
    # Once per frame, not once per window it is in.
    guides = [guide_of(o) for o in (outputs if flow_frames is None else flow_frames)]
    pixels = [interleaved(o) for o in outputs]
    noisy_pixels = [interleaved(y) for y in noisy] if share > 0 else None
    flows, direct = FlowCache(), default_direct(causal, k) if direct_reach is None else direct_reach
    fused = []
    for t in range(n):
        idx = window_indices(t, n, k, causal)
        fused.append(fuse_window([outputs[i] for i in idx], slot, sigma, strength, [guides[i] for i in idx], flow,
                                 [noisy[i] for i in idx], share, [pixels[i] for i in idx],
                                 [noisy_pixels[i] for i in idx] if noisy_pixels is not None else None,
                                 flows, direct, invert))
        if t + 1 < n:  # only the next window's flows are needed again (~1.8 MB each at 720p)
            flows.keep_only([guides[i] for i in window_indices(t + 1, n, k, causal)])
    return np.stack(fused)
