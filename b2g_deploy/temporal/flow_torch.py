"""Dense optical flow in torch (pyramidal Lucas-Kanade), for alignment that runs where the
network runs: align mode "lk" (temporal.align).

Why: DIS (OpenCV) runs on the CPU only. On a GPU the network denoises a 720p frame in 2.9 ms, while
four DIS flows a window cost ~150 ms of host time (docs/BENCHMARKS.md, "Temporal video on a GPU"):
aligned video cannot be real time there unless the flow runs on the GPU too. This flow is a few
convolutions and resamplings a pyramid level, so it batches over windows and runs on whatever
device the frames are on, and the same code gives the same windows in a CPU fit and a GPU stream.

The method (Lucas and Kanade 1981, coarse to fine as Bouguet 2000): blurred grey guides (as
``align._guide``: half size, Gaussian sigma 2 px of the full frame), a pyramid of 2x averages,
and at each level from the coarsest a few Gauss-Newton steps: the neighbour is warped by the
current flow, and every pixel solves the 2x2 least-squares system of the linearised brightness
constancy, its sums taken over a Gaussian window. A ridge on that system keeps flat regions (no
texture, no information) at the flow the coarser levels gave; it is relative to the guide's mean
contrast, since an absolute one stalled the steps on low-contrast texture. A blur of the flow after
each step stands in for DIS's variational smoothing. The window, blur and ridge were chosen on
held-out clips (benchmarks/align_flows.py, docs/METHOD_NOTES.md "Temporal alignment"). The convention is DIS's: ``target(x)``
is ``neighbour(x + flow(x))``, the flow in pixels, (x, y) in the channel dimension.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .align import _GUIDE_BLUR, GREY_WEIGHTS, _guide_scale

_WINDOW = 4.0  # px at each level: Gaussian sigma of the Lucas-Kanade sums
_FLOW_BLUR = 2.0  # px at each level: the flow's smoothing after each step
_RIDGE = 0.1  # added to the 2x2 system's diagonal, times the mean of its trace over the guide
_STEPS = 3  # Gauss-Newton steps per level
_MIN_SIDE = 16  # the coarsest level's shorter side, at least


def _gaussian(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of (B, C, H, W), edges replicated."""
    radius = max(1, int(3.0 * sigma + 0.5))
    taps = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    taps = torch.exp(-0.5 * (taps / sigma) ** 2)
    taps = taps / taps.sum()
    c = x.shape[1]
    x = F.pad(x, (radius, radius, 0, 0), mode="replicate")
    x = F.conv2d(x, taps.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    x = F.pad(x, (0, 0, radius, radius), mode="replicate")
    return F.conv2d(x, taps.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def guides(frames: torch.Tensor, scale: int, blur: float = _GUIDE_BLUR) -> torch.Tensor:
    """(B, C, H, W) in [0, 1] -> (B, 1, H/scale, W/scale) grey guides (1 or 3 channels in),
    blurred by ``blur`` px of the full size (0: not; denoised frames, ``fuse_torch``)."""
    if frames.shape[1] == 3:
        weights = torch.tensor(GREY_WEIGHTS, dtype=frames.dtype, device=frames.device).view(1, 3, 1, 1)
        grey = (frames * weights).sum(1, keepdim=True)
    else:
        grey = frames[:, :1]
    if scale > 1:
        grey = F.avg_pool2d(grey, scale)  # INTER_AREA for an integer factor
    return _gaussian(grey, blur / scale) if blur > 0 else grey


def _base_grid(h: int, w: int, like: torch.Tensor) -> torch.Tensor:
    ys, xs = torch.meshgrid(torch.arange(h, dtype=like.dtype, device=like.device),
                            torch.arange(w, dtype=like.dtype, device=like.device), indexing="ij")
    return torch.stack([xs, ys])[None]  # (1, 2, h, w), (x, y)


def warp(image: torch.Tensor, flow: torch.Tensor, mode: str = "bilinear") -> torch.Tensor:
    """``image`` (B, C, H, W) sampled at x + ``flow`` (B, 2, H, W) (``mode``: bilinear, or bicubic
    as the output fusion warps, ``fuse_torch``; edges replicated)."""
    h, w = image.shape[-2:]
    pos = _base_grid(h, w, flow) + flow
    grid = torch.stack([2.0 * pos[:, 0] / max(w - 1, 1) - 1.0, 2.0 * pos[:, 1] / max(h - 1, 1) - 1.0], dim=-1)
    return F.grid_sample(image, grid.to(image.dtype), mode=mode, padding_mode="border", align_corners=True)


def _gradients(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Central differences (one-sided at the edges) of (B, 1, H, W)."""
    p = F.pad(x, (1, 1, 1, 1), mode="replicate")
    return 0.5 * (p[..., 1:-1, 2:] - p[..., 1:-1, :-2]), 0.5 * (p[..., 2:, 1:-1] - p[..., :-2, 1:-1])


def _refine(target: torch.Tensor, neighbour: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """``_STEPS`` Lucas-Kanade steps at one level, from ``flow``."""
    tx, ty = _gradients(target)
    for _ in range(_STEPS):
        moved = warp(neighbour, flow)
        mx, my = _gradients(moved)
        gx, gy = 0.5 * (tx + mx), 0.5 * (ty + my)  # symmetric gradients: steadier than either alone
        it = moved - target
        sums = _gaussian(torch.cat([gx * gx, gx * gy, gy * gy, gx * it, gy * it], 1), _WINDOW)
        a, b, c, bx, by = sums.unbind(1)
        ridge = _RIDGE * (a + c).mean(dim=(-2, -1), keepdim=True)  # relative: the guides' contrast varies
        a, c = a + ridge, c + ridge
        det = a * c - b * b
        du = -(c * bx - b * by) / det
        dv = -(a * by - b * bx) / det
        flow = _gaussian(flow + torch.stack([du, dv], 1).clamp(-2.0, 2.0), _FLOW_BLUR)
    return flow


def flow_between(target: torch.Tensor, neighbour: torch.Tensor) -> torch.Tensor:
    """Flow (B, 2, h, w) from guides ``target`` to ``neighbour`` (B, 1, h, w): target(x) ~
    neighbour(x + flow(x)), in pixels of the guides."""
    pyramid = [(target.float(), neighbour.float())]
    while min(pyramid[-1][0].shape[-2:]) >= 2 * _MIN_SIDE:
        t, n = pyramid[-1]
        pyramid.append((F.avg_pool2d(t, 2), F.avg_pool2d(n, 2)))
    flow = torch.zeros(target.shape[0], 2, *pyramid[-1][0].shape[-2:], device=target.device)
    for level, (t, n) in enumerate(reversed(pyramid)):
        if level:  # up one level: twice the size, twice the pixels
            flow = 2.0 * F.interpolate(flow, size=t.shape[-2:], mode="bilinear", align_corners=False)
        flow = _refine(t, n, flow)
    return flow


def align_windows_torch(windows: torch.Tensor, channels: int, target_slot: int) -> torch.Tensor:
    """Stacked windows (B, T*C, H, W) in [0, 1] with every neighbour warped onto the frame in
    ``target_slot`` by this flow, on the windows' own device; the target is left as it is."""
    b, tc, h, w = windows.shape
    t = tc // channels
    frames = windows.float().reshape(b, t, channels, h, w)
    neighbours = [j for j in range(t) if j != target_slot]
    if not neighbours:
        return windows
    scale = _guide_scale(h, w)
    target_guide = guides(frames[:, target_slot], scale)
    # Every neighbour of every window in one batch: (B * (T-1), ...).
    nb = frames[:, neighbours].reshape(-1, channels, h, w)
    flow = flow_between(target_guide.repeat_interleave(len(neighbours), 0), guides(nb, scale))
    if scale > 1:  # back to full size, in full-size pixels
        flow = scale * F.interpolate(flow, size=(h, w), mode="bilinear", align_corners=False)
    out = frames.clone()
    out[:, neighbours] = warp(nb, flow).reshape(b, len(neighbours), channels, h, w)
    return out.reshape(b, tc, h, w).to(windows.dtype)
