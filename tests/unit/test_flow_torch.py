"""temporal.flow_torch: the torch Lucas-Kanade flow behind align mode "lk"."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from b2g_deploy.temporal.align import align_window
from b2g_deploy.temporal.flow_torch import align_windows_torch, flow_between, guides, warp


def _texture(h: int = 96, w: int = 128, channels: int = 3, seed: int = 0) -> torch.Tensor:
    """A smooth random texture (1, C, h, w) in [0, 1]: structure at several scales, as a photograph."""
    gen = torch.Generator().manual_seed(seed)
    out = torch.zeros(1, channels, h, w)
    for scale in (4, 8, 16):
        coarse = torch.rand(1, channels, h // scale + 3, w // scale + 3, generator=gen)
        out += torch.nn.functional.interpolate(coarse, scale_factor=scale, mode="bicubic",
                                               align_corners=False)[..., :h, :w]
    return ((out - out.min()) / (out.max() - out.min())).clamp(0, 1)


def _shifted(image: torch.Tensor, dx: float, dy: float) -> torch.Tensor:
    """``image`` moved by (dx, dy): the content at x is the original's at x - (dx, dy)."""
    flow = torch.tensor([-dx, -dy]).view(1, 2, 1, 1).expand(1, 2, *image.shape[-2:])
    return warp(image, flow)


@pytest.mark.parametrize("dx, dy", [(1.3, -2.7), (-4.5, 0.6), (0.0, 0.0)])
def test_the_flow_of_a_shifted_texture_is_the_shift(dx, dy):
    image = _texture()
    moved = _shifted(image, dx, dy)
    g = guides(torch.cat([image, moved]), 1)
    flow = flow_between(g[:1], g[1:])[0, :, 16:-16, 16:-16]  # target(x) = neighbour(x + flow)
    assert flow[0].median().item() == pytest.approx(dx, abs=0.15)
    assert flow[1].median().item() == pytest.approx(dy, abs=0.15)


def test_aligning_a_window_brings_each_neighbour_onto_the_target_and_leaves_the_target_alone():
    image = _texture(h=96, w=128)
    frames = [_shifted(image, 2.0 * d, -1.0 * d) for d in (-2, -1, 0, 1, 2)]
    window = torch.cat(frames, 1)  # (1, 5*3, h, w), target in slot 2
    out = align_windows_torch(window, 3, 2)
    assert torch.equal(out[:, 6:9], window[:, 6:9])
    inner = (slice(None), slice(None), slice(12, -12), slice(12, -12))
    target = window[:, 6:9][inner]
    for j in (0, 1, 3, 4):
        before = (window[:, 3 * j : 3 * j + 3][inner] - target).abs().mean().item()
        after = (out[:, 3 * j : 3 * j + 3][inner] - target).abs().mean().item()
        assert after < 0.2 * before, (j, before, after)


def test_windows_align_alike_one_by_one_batched_and_through_the_numpy_entry_point():
    a = torch.cat([_texture(64, 64, 1, seed=s) for s in (1, 2, 3)], 1)
    b = torch.cat([_texture(64, 64, 1, seed=s) for s in (4, 5, 6)], 1)
    both = align_windows_torch(torch.cat([a, b]), 1, 1)
    assert torch.allclose(both[:1], align_windows_torch(a, 1, 1), atol=1e-5)
    assert torch.allclose(both[1:], align_windows_torch(b, 1, 1), atol=1e-5)
    via_numpy = align_window(a[0].numpy(), 1, 1, "lk")
    assert isinstance(via_numpy, np.ndarray) and np.allclose(via_numpy, both[0].numpy(), atol=1e-5)
