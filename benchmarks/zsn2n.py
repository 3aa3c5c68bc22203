"""Zero-Shot Noise2Noise (Mansour & Heckel, CVPR 2023), the benchmark's zero-shot peer.

Written from the paper's description, independent of b2g_deploy so that a bug there cannot
leak into the peer:

- Two fixed downsamplers halve the noisy image with 2x2 diagonal averages, stride 2:
  D1 averages the main diagonal (top-left, bottom-right), D2 the anti-diagonal. D1(y) and D2(y)
  see the same scene with (nearly) independent noise, so each is a Noise2Noise target for the other.
- The network is tiny on purpose (about 22k parameters at 48 channels): 3x3 conv -> LeakyReLU
  -> 3x3 conv -> LeakyReLU -> 1x1 conv, predicting the *noise*; the denoiser is x - net(x).
- Loss = residual + consistency:
  residual    = 1/2 (||D1 y - f(D2 y)||^2 + ||D2 y - f(D1 y)||^2)
  consistency = 1/2 (||f(D1 y) - D1 f(y)||^2 + ||f(D2 y) - D2 f(y)||^2)
  with f(x) = x - net(x); the consistency term ties the full-resolution output (the one we keep)
  to the half-resolution pairs the residual term trains on.
- Adam at 1e-3, 2000 iterations, the learning rate halved every 1000 (the paper's step decay).

Tensors are (1, C, H, W) float32 in [0, 1] (noisy inputs may leave that range: we do not clip
before fitting, only the output). Odd H or W: the last row/column is dropped by the downsampler,
the full-resolution pass is unaffected.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

_LEAK = 0.2  # the LeakyReLU slope the ZS-N2N paper uses


class ZSN2NNet(nn.Module):
    def __init__(self, channels: int, hidden: int = 48):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, hidden, 3, padding=1)
        self.conv2 = nn.Conv2d(hidden, hidden, 3, padding=1)
        self.conv3 = nn.Conv2d(hidden, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The noise estimate of x."""
        h = F.leaky_relu(self.conv1(x), _LEAK)
        h = F.leaky_relu(self.conv2(h), _LEAK)
        return self.conv3(h)


def downsample_pair(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(D1 x, D2 x): 2x2 diagonal and anti-diagonal averages, stride 2, depthwise."""
    c = x.shape[1]
    k1 = torch.tensor([[0.5, 0.0], [0.0, 0.5]], dtype=x.dtype, device=x.device)
    k2 = torch.tensor([[0.0, 0.5], [0.5, 0.0]], dtype=x.dtype, device=x.device)
    k1 = k1.expand(c, 1, 2, 2)
    k2 = k2.expand(c, 1, 2, 2)
    return F.conv2d(x, k1, stride=2, groups=c), F.conv2d(x, k2, stride=2, groups=c)


def zsn2n_loss(net: ZSN2NNet, y: torch.Tensor) -> torch.Tensor:
    def f(x: torch.Tensor) -> torch.Tensor:
        return x - net(x)

    d1, d2 = downsample_pair(y)
    f1, f2 = f(d1), f(d2)
    residual = 0.5 * (F.mse_loss(f2, d1) + F.mse_loss(f1, d2))
    full1, full2 = downsample_pair(f(y))
    consistency = 0.5 * (F.mse_loss(f1, full1) + F.mse_loss(f2, full2))
    return residual + consistency


@torch.no_grad()
def apply(net: ZSN2NNet, y: torch.Tensor) -> torch.Tensor:
    return (y - net(y)).clamp(0.0, 1.0)


# (step, fit seconds so far, net) -> None, called after that step; its own time is not counted.
Checkpoint = Callable[[int, float, ZSN2NNet], None]


def denoise_zsn2n(
    noisy: np.ndarray,
    *,
    iters: int = 2000,
    lr: float = 1e-3,
    hidden: int = 48,
    seed: int = 0,
    device: str = "cpu",
    checkpoints: dict[int, Checkpoint] | None = None,
) -> tuple[np.ndarray, float]:
    """Fit ZS-N2N to one noisy (C, H, W) image; returns (denoised (C, H, W) in [0, 1], fit seconds)."""
    if noisy.ndim != 3 or min(noisy.shape[1:]) < 2:
        raise ValueError(f"expected a (C, H, W) image with H, W >= 2, got shape {noisy.shape}")
    torch.manual_seed(seed)
    y = torch.from_numpy(np.ascontiguousarray(noisy, dtype=np.float32))[None].to(device)
    net = ZSN2NNet(y.shape[1], hidden).to(device)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    # Step decay: halve every 1000 iterations (scaled down for short runs so they decay too).
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=max(1, min(1000, iters // 2)), gamma=0.5)
    seconds, t0 = 0.0, time.perf_counter()
    for step in range(1, iters + 1):
        loss = zsn2n_loss(net, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if checkpoints and step in checkpoints:
            seconds += time.perf_counter() - t0
            checkpoints[step](step, seconds, net)
            t0 = time.perf_counter()
    seconds += time.perf_counter() - t0
    out = apply(net, y)[0].cpu().numpy()
    return out, seconds
