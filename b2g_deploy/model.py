"""The Blind2Grad network f_theta, in one file (docs/METHOD_NOTES.md, "Network").

Conventions: tensors are (B, C, H, W) float32 in [0, 1]; masks are (B, 1, H, W) with 1 for a
visible pixel and 0 for a blind spot. H and W must be multiples of ``2 ** depth``;
:func:`denoise` pads any frame (reflect) and crops back.

Layout: a partial convolution reads the masked image at full resolution, max-pool stages go
down to H/32, and a decoder of nearest-upsample + skip-concat stages comes back up. Each decoder
stage ends with BatchNorm, channel attention and T-Standout; the stage that outputs H/2 also
carries the gradient layer ("third from the bottom" in the paper's figure 3).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .config import ModelConfig

_LEAK = 0.1  # the paper: "the hyperparameter of each ReLU is set up to 0.1"


def spatial_gradients(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Forward differences along W and H, zero in the last column/row so shapes match x."""
    dx = F.pad(x[..., :, 1:] - x[..., :, :-1], (0, 1, 0, 0))
    dy = F.pad(x[..., 1:, :] - x[..., :-1, :], (0, 0, 0, 1))
    return dx, dy


def gradient_magnitude(x: torch.Tensor) -> torch.Tensor:
    dx, dy = spatial_gradients(x)
    return torch.sqrt(dx * dx + dy * dy + 1e-12)


class PartialConv2d(nn.Conv2d):
    """3x3 convolution over visible pixels only, renormalised by how many were visible.

    out = W * (x . m) * (k*k / sum(m in window)) + b, as in Self2Self's partial-conv U-Net, so
    a window with a quarter of its pixels blinded still has the scale of a full one. With no
    mask every pixel is visible; the zero padding at the border is renormalised the same way,
    so f(y) and f(y, ones) are the same function.
    """

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__(in_channels, out_channels, 3, padding=1, bias=True)
        self.register_buffer("_ones", torch.ones(1, 1, 3, 3), persistent=False)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        if mask is None:
            mask = torch.ones_like(x[:, :1])
        with torch.no_grad():
            visible = F.conv2d(mask, self._ones, padding=1)
            ratio = 9.0 / visible.clamp(min=1.0)
            any_visible = (visible > 0).to(x.dtype)
        out = F.conv2d(x * mask, self.weight, None, padding=1)
        return (out * ratio + self.bias.view(1, -1, 1, 1)) * any_visible


class ChannelAttention(nn.Module):
    """Squeeze-and-excitation (eq. 3.12): pool, reduce (W_I), restore (W_II), sigmoid gate."""

    def __init__(self, channels: int, reduction: int):
        super().__init__()
        hidden = max(channels // reduction, 1)
        self.reduce = nn.Conv2d(channels, hidden, 1)
        self.restore = nn.Conv2d(hidden, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate = x.mean(dim=(2, 3), keepdim=True)
        gate = torch.sigmoid(self.restore(F.relu(self.reduce(gate))))
        return x * gate


class TStandout(nn.Module):
    """Dropout that never drops an activation whose local gradient is >= eps_s (eq. 3.11).

    The threshold is on a 0..255 scale while features have no fixed range, so each channel's
    gradient magnitude is first divided by that channel's max |activation| ("max") or its std
    ("std") and compared with eps_s / 255. Dropped-or-kept activations are scaled by 1/(1-p) and
    spared ones are left alone, so the expectation is the input everywhere and eval mode
    (identity) is the mean of the stochastic passes. ``mode="standard"`` is plain dropout and
    ``mode="none"`` the identity, for ablation.
    """

    def __init__(self, p: float, threshold: float, norm: str = "max", mode: str = "tstandout"):
        super().__init__()
        self.p, self.threshold, self.norm, self.mode = p, threshold / 255.0, norm, mode

    def spared(self, x: torch.Tensor) -> torch.Tensor:
        grad = gradient_magnitude(x)
        if self.norm == "max":
            scale = x.abs().amax(dim=(2, 3), keepdim=True)
        else:
            scale = x.std(dim=(2, 3), keepdim=True)
        return grad / (scale + 1e-6) >= self.threshold

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.mode == "none" or self.p == 0.0:
            return x
        keep = (torch.rand_like(x) >= self.p).to(x.dtype) / (1.0 - self.p)
        if self.mode == "tstandout":
            keep = torch.where(self.spared(x), torch.ones_like(x), keep)
        return x * keep


class GradientLayer(nn.Module):
    """Fuses the features' finite-difference gradient magnitude back into them (section 5.1.1).

    "concat": 1x1 conv over [features, |grad features|]; "add": features + 1x1 conv(|grad|).
    """

    def __init__(self, channels: int, fusion: str):
        super().__init__()
        self.fusion = fusion
        in_ch = 2 * channels if fusion == "concat" else channels
        self.mix = nn.Conv2d(in_ch, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        grad = gradient_magnitude(x)
        if self.fusion == "concat":
            return self.mix(torch.cat([x, grad], dim=1))
        return x + self.mix(grad)


def _conv(in_ch: int, out_ch: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_ch, out_ch, 3, padding=1), nn.LeakyReLU(_LEAK))


class DecoderStage(nn.Module):
    def __init__(self, cfg: ModelConfig, with_gradient_layer: bool):
        super().__init__()
        w = cfg.width
        self.convs = nn.Sequential(_conv(2 * w, w), _conv(w, w))
        self.norm = nn.BatchNorm2d(w) if cfg.norm == "batch" else nn.Identity()
        use_grad = with_gradient_layer and cfg.gradient_layer != "none"
        self.gradient = GradientLayer(w, cfg.gradient_layer) if use_grad else nn.Identity()
        self.attention = ChannelAttention(w, cfg.attention_reduction)
        self.dropout = TStandout(cfg.dropout_p, cfg.standout_threshold, cfg.standout_norm, cfg.dropout)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, scale_factor=2.0, mode="nearest")
        x = self.convs(torch.cat([x, skip], dim=1))
        return self.dropout(self.attention(self.gradient(self.norm(x))))


class B2GNet(nn.Module):
    """f_theta. ``forward(x, mask)`` sees only the visible pixels of x; mask None = all."""

    def __init__(self, channels: int, cfg: ModelConfig = ModelConfig()):
        super().__init__()
        if channels not in (1, 3):
            raise ValueError(f"channels must be 1 or 3, got {channels}")
        self.channels, self.cfg = channels, cfg
        w = cfg.width
        self.head = PartialConv2d(channels, w)
        self.down = nn.ModuleList(_conv(w, w) for _ in range(cfg.depth))
        # Decoder stage i upsamples to resolution H / 2**(depth-1-i); the gradient layer sits on
        # the one whose output is H/2, i.e. the second to last.
        self.up = nn.ModuleList(
            DecoderStage(cfg, with_gradient_layer=(i == cfg.depth - 2)) for i in range(cfg.depth)
        )
        self.tail = nn.Conv2d(w, channels, 3, padding=1)

    @property
    def multiple(self) -> int:
        return 2**self.cfg.depth

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        h = F.leaky_relu(self.head(x, mask), _LEAK)
        skips = []
        for block in self.down:
            skips.append(h)
            h = block(F.max_pool2d(h, 2))
        for stage, skip in zip(self.up, reversed(skips)):
            h = stage(h, skip)
        out = self.tail(h)
        if self.cfg.output == "sigmoid":
            return torch.sigmoid(out)
        # Linear while fitting (clamping would zero the gradient of out-of-range pixels),
        # clamped to the valid range whenever the output is used as an image.
        return out if self.training else out.clamp(0.0, 1.0)


def pad_to_multiple(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, int, int]:
    """Reflect-pad H and W up to a multiple; returns the padded tensor and the original size."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph or pw:
        # reflect needs pad < size; replicate covers 1-pixel-wide inputs too.
        mode = "reflect" if ph < h and pw < w else "replicate"
        x = F.pad(x, (0, pw, 0, ph), mode=mode)
    return x, h, w


def denoise(net: B2GNet, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """f(x) for any H, W: pad to the network's multiple, run, crop back."""
    padded, h, w = pad_to_multiple(x, net.multiple)
    if mask is not None:
        mask, _, _ = pad_to_multiple(mask, net.multiple)
    return net(padded, mask)[..., :h, :w]


def stochastic_mode(net: B2GNet) -> None:
    """Eval mode (BatchNorm running statistics, clamped output) with T-Standout sampling on:
    the paper's 40-pass ensemble."""
    net.eval()
    for m in net.modules():
        if isinstance(m, TStandout):
            m.train()
