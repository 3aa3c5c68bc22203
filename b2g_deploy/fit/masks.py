"""Blind-spot masks (docs/METHOD_NOTES.md, "Dual mask"). 1 = visible pixel, 0 = blind spot; (B, 1, H, W).

The dual mask is expressed as a per-pixel blind-spot probability map: detail pixels get
``rate * detail_rate_ratio`` and flat pixels whatever keeps the image-wide rate at ``rate``.
A probability map crops and flips along with the image, so random crops keep the scheme.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..config import MaskConfig


def detail_map(y: torch.Tensor, estimate: torch.Tensor, cfg: MaskConfig) -> torch.Tensor:
    """D = [ ||y - x_m||_2 >= eps_g ] over channels, (N, 1, H, W) bool.

    With ``detail_window`` > 1 the squared distance is averaged over a box first: per pixel,
    the distance at sigma >= 25 is mostly noise, a local mean of it is mostly structure that
    the current estimate has not yet recovered.
    """
    sq = ((y - estimate) ** 2).sum(dim=1, keepdim=True)
    k = cfg.detail_window
    if k > 1:
        sq = F.avg_pool2d(sq, k, stride=1, padding=k // 2, count_include_pad=False)
    return sq.sqrt() >= cfg.detail_threshold / 255.0


def blind_probability(detail: torch.Tensor | None, cfg: MaskConfig, like: torch.Tensor) -> torch.Tensor:
    """Per-pixel probability of being a blind spot, (N, 1, H, W); overall mean == cfg.rate."""
    n, _, h, w = like.shape
    if cfg.kind == "bernoulli" or detail is None:
        return torch.full((n, 1, h, w), cfg.rate, device=like.device)
    detail = detail.to(like.dtype)
    frac = detail.mean(dim=(1, 2, 3), keepdim=True)
    p_detail = cfg.rate * cfg.detail_rate_ratio
    # Flat pixels take up what the detail pixels gave away; if nearly everything is detail the
    # flat rate saturates at 1 and the overall rate falls short of 25%, which is the best left.
    p_flat = ((cfg.rate - frac * p_detail) / (1.0 - frac).clamp(min=1e-6)).clamp(max=1.0)
    return detail * p_detail + (1.0 - detail) * p_flat


def sample_mask(prob: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Visible (1) / blind (0) mask with P(blind) = prob, float, shape of prob.

    The uniforms are drawn on the generator's device and then moved to ``prob``'s: a CPU
    generator cannot draw CUDA tensors, and drawing on the CPU keeps a seed's masks the same
    whichever device fits.
    """
    where = generator.device if generator is not None else prob.device
    u = torch.rand(prob.shape, generator=generator, device=where).to(prob.device)
    return (u >= prob).to(torch.float32)
