"""The B2G losses (docs/METHOD_NOTES.md, "Loss"), as plain functions.

a = f(Omega * y), b = f(y); d_c = (1 - Omega)(a - y); d_g = grad(b) - grad(a).
gradient loss: 1/2 sum_{dir in x,y} mean((d_c + omega d_g_dir)^2) + gamma mean(d_c^2)
blindspot loss: mean(d_c^2) (Self2Self / Noise2Self).
distillation (optional, not in the paper): distill_weight * mean((1 - Omega)(b - sg(a))^2).
The gradient term constrains only the *gradients* of f(y), never its values, so on its own the
single pass can drift by an offset; the distillation term ties f(y) to the blind-spot
prediction on exactly the pixels where that prediction is trained.
Means are over the valid pixels (``weight``), so padding and crop borders do not count.
"""

from __future__ import annotations

import torch

from ..config import LossConfig
from ..model import spatial_gradients


def _mean(x: torch.Tensor, weight: torch.Tensor | None) -> torch.Tensor:
    if weight is None:
        return x.mean()
    w = weight.expand_as(x)
    return (x * w).sum() / w.sum().clamp(min=1.0)


def content_residual(a: torch.Tensor, y: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """d_c: prediction error on blind-spot pixels only (visible pixels contribute 0)."""
    return (1.0 - mask) * (a - y)


def gradient_deviation(
    a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor, blind_only: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """d_g along x and y: how the full-input prediction's gradients differ from the masked one's."""
    ax, ay = spatial_gradients(a)
    bx, by = spatial_gradients(b)
    gx, gy = bx - ax, by - ay
    if blind_only:
        gx, gy = (1.0 - mask) * gx, (1.0 - mask) * gy
    return gx, gy


def b2g_loss(
    a: torch.Tensor,
    b: torch.Tensor | None,
    y: torch.Tensor,
    mask: torch.Tensor,
    cfg: LossConfig,
    weight: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """The configured loss and its parts (as floats, for the fitting history)."""
    d_c = content_residual(a, y, mask)
    content = _mean(d_c**2, weight)
    if cfg.kind == "blindspot" or b is None:
        return content, {"content": content.detach().item()}
    gx, gy = gradient_deviation(a, b, mask, cfg.gradient_on_blind_spots_only)
    joint = 0.5 * (_mean((d_c + cfg.omega * gx) ** 2, weight) + _mean((d_c + cfg.omega * gy) ** 2, weight))
    total = joint + cfg.gamma * content
    parts = {"content": content.detach().item()}
    with torch.no_grad():
        parts["gradient"] = (0.5 * (_mean(gx**2, weight) + _mean(gy**2, weight))).item()
    if cfg.distill_weight > 0.0:
        distill = _mean(((1.0 - mask) * (b - a.detach())) ** 2, weight)
        total = total + cfg.distill_weight * distill
        parts["distill"] = distill.detach().item()
    return total, parts


def recorrupted_loss(net, y: torch.Tensor, sigma: float, alpha: float, gen: torch.Generator,
                     weight: torch.Tensor | None = None) -> tuple[torch.Tensor, dict[str, float]]:
    """Recorrupted-to-Recorrupted (Pang et al., CVPR 2021): with z ~ N(0, sigma^2),
    y + a z and y - z / a have independent noise when the noise of y is Gaussian with std sigma,
    so mean((f(y + a z) - (y - z / a))^2) trains the full pass f, the one export ships, without
    a clean image and without blind spots."""
    z = torch.randn(y.shape, generator=gen, device=gen.device).to(y.device) * sigma
    out = net(y + alpha * z)
    loss = _mean((out - (y - z / alpha)) ** 2, weight)
    return loss, {"recorrupted": loss.detach().item()}
