"""The output fusion in torch, on the device the frames are on (`denoise --fuse-flow lk`;
docs/METHOD_NOTES.md, "Fusing the outputs").

Why: :func:`fuse.fuse_window` warps with OpenCV's DIS flow and remaps, which run on the CPU only,
at ~0.5 s of a core a 720p window: behind a network on a GPU it would set the stream's pace.
Here every step is torch: the flows are ``flow_torch``'s pyramidal Lucas-Kanade between the
denoised frames' half-size grey guides (unblurred, as ``fuse.guide_of``), all of a window's
neighbours in one batch; the warps bicubic (``grid_sample``, edges replicated); the agreement
weights and the Wiener step (``refine.wiener_step_tensor``) those of ``fuse_window``, the same
formulas. On held-out clips it fused 0.10-0.11 dB under the CPU fusion with DIS's fine flow at
sigma 25 and 0.06 at sigma 50, and took 5x its time on one core (benchmarks/fusion_flow_on_clips.py
``--variants fine,lk``; docs/BENCHMARKS.md, "OpenVINO on the CPU"; on the cockatoo clip -0.22 /
0.00 dB), so it is for a stream whose network runs on a GPU, not the CPU default.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .align import _guide_scale
from .flow_torch import _gaussian, flow_between, guides, warp
from .fuse import _DECISION_BLUR  # the CPU fusion's agreement blur: the same weights


def inverse(field: torch.Tensor, iterations: int = 3) -> torch.Tensor:
    """``fuse_flows.inverse`` in torch: the flows back (B, 2, h, w) given ``field`` (a -> b),
    g(y) = -field(y + g(y)) by fixed-point iteration from -field."""
    back = -field
    for _ in range(iterations):
        back = -warp(field, back)
    return back


def window_flows(frames: torch.Tensor, slot: int, neighbours: list[int], invert_back: bool = False) -> torch.Tensor:
    """Full-size flows (N, 2, H, W) from frame ``slot`` of ``frames`` (T, C, H, W) to each of
    ``neighbours``, in full-size pixels (DIS's convention: target(x) ~ neighbour(x + flow)).
    ``invert_back``: the flow to an earlier frame is the ``inverse`` of that frame's flow to the
    target, as the CPU fusion's (``fuse_flows.window_fields``): with this flow too it fused closer
    on held-out clips than the direct one (+0.04 / +0.01 dB at sigma 25 / 50 on the disc clips,
    benchmarks/fusion_flow_on_clips.py ``fine/lk`` against ``fine/lk/direct``), at the same cost here."""
    h, w = frames.shape[-2:]
    scale = _guide_scale(h, w)
    g = guides(frames, scale, blur=0.0)
    back = [invert_back and j < slot for j in neighbours]
    sources = torch.stack([g[j] if b else g[slot] for j, b in zip(neighbours, back)])
    ends = torch.stack([g[slot] if b else g[j] for j, b in zip(neighbours, back)])
    flow = flow_between(sources, ends)  # every flow of the window in one batch
    if any(back):
        mask = torch.tensor(back, device=flow.device)
        flow[mask] = inverse(flow[mask])
    if scale > 1:
        flow = scale * F.interpolate(flow, size=(h, w), mode="bilinear", align_corners=False)
    return flow


def fuse_window_torch(frames: torch.Tensor, slot: int, sigma: float, strength: float,
                      noisy: torch.Tensor | None = None, refine: float = 0.0, invert_back: bool = False) -> torch.Tensor:
    """Denoised frames of one window (T, C, H, W) float in [0, 1], slot order -> the fused frame of
    slot ``slot`` (C, H, W), as ``fuse.fuse_window`` computes it but with Lucas-Kanade flows, on
    the frames' device. A slot holding the target frame itself (clip edges, the same tensor)
    adds nothing. ``refine`` > 0: that share is the Wiener step on the window's ``noisy`` frames
    (T, C, H, W), warped and averaged with the same weights. ``invert_back``: as ``window_flows``
    (``fuse.default_invert`` for a window)."""
    from .refine import wiener_step_tensor

    if strength <= 0 or sigma <= 0:
        raise ValueError(f"strength and sigma must be positive, got {strength}, {sigma}")
    if not 0.0 <= refine <= 1.0 or (refine > 0 and (noisy is None or noisy.shape != frames.shape)):
        raise ValueError("refine is a share in [0, 1] and needs the window's noisy frames")
    frames = frames.float()
    target = frames[slot]
    # The target's own copies (a clip's edge windows repeat frames) add nothing.
    neighbours = [j for j in range(len(frames)) if j != slot and not torch.equal(frames[j], target)]
    if not neighbours:
        return target.clone()
    with torch.no_grad():
        flow = window_flows(frames, slot, neighbours, invert_back)
        warped = warp(frames[neighbours], flow, "bicubic")  # (N, C, H, W)
        disagreement = _gaussian(((warped - target) ** 2).mean(1, keepdim=True), _DECISION_BLUR)
        weight = torch.exp(-disagreement / (strength * sigma * sigma))  # (N, 1, H, W)
        weights = 1.0 + weight.sum(0)
        fused = (target + (weight * warped).sum(0)) / weights
        if refine <= 0:
            return fused
        noisy = noisy.float()
        noisy_warped = warp(noisy[neighbours], flow, "bicubic")
        average = (noisy[slot] + (weight * noisy_warped).sum(0)) / weights
        variance = (sigma * sigma) * (1.0 + (weight * weight).sum(0)[0]) / (weights[0] * weights[0])
        wiener = wiener_step_tensor(average, fused, variance)
        return (refine * wiener + (1.0 - refine) * fused).clamp_(0.0, 1.0)


def fuse_frames(outputs, noisy, idx: list[int], slot: int, sigma: float, strength: float, share: float,
                invert_back: bool, device: str = "cpu") -> np.ndarray:
    """``fuse_window_torch`` on the frames ``idx`` of ``outputs`` (and ``noisy``), numpy arrays or
    tensors already on ``device`` (``fuse_stream.OutputFuser`` uploads each frame once) -> numpy. A frame at
    two slots (a clip's edge windows) is equal to itself there, and is skipped as the target's copy."""

    def stacked(frames) -> torch.Tensor:
        return torch.stack([torch.as_tensor(np.asarray(frames[i], np.float32)) if isinstance(frames[i], np.ndarray)
                            else frames[i] for i in idx]).to(device)

    fused = fuse_window_torch(stacked(outputs), slot, sigma, strength, stacked(noisy) if noisy is not None else None,
                              share, invert_back)
    return fused.cpu().numpy()
