"""The modules that get exported: the fitted network wrapped so any frame size and batch work.

All three wrappers take (B, C, H, W) float32 in [0, 1] and return the same shape. They pad H and W
(reflect, like :func:`b2g_deploy.model.denoise`) up to the network's multiple and crop back, so
the traced graph carries the padding and an exported model accepts any frame of side >= the
multiple (runtimes edge-pad smaller frames first, see ``runtimes/_frames.py``).

``EnsembleModule`` is the exportable form of docs/METHOD_NOTES.md "Inference", path 2: K Bernoulli masks
drawn once with a fixed seed are stored as constant (K, 1, T, T) tiles, tiled and cropped in the
graph to the padded frame, folded into the batch as B*K masked passes f(x*m, m) and averaged.
T-Standout is the identity in eval mode, so neither graph contains a random op.

``FlipsModule`` is f(y) averaged over flips and 90-degree turns of the frame (the geometric
self-ensemble, docs/METHOD_NOTES.md "Inference"): what ``fit`` writes by default, so a later
frame denoised or exported with ``mode="flips"`` gets the fit's own output function.

The torch runtime runs these same wrappers, so torch and ONNX outputs are comparable; that is
why they live in this low layer and not in ``export``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import InputError
from ..model import B2GNet

# A 128x128 tile repeats every 128 pixels: far beyond the masks' 1-pixel structure, so the
# repetition is invisible, and 8 passes of constants cost 512 KiB in the file.
MASK_TILE = 128


def _pad_reflect(x: torch.Tensor, multiple: int) -> torch.Tensor:
    # Written with shape arithmetic (not Python ints) so the tracer records it as graph ops and
    # the exported model stays dynamic in H and W.
    h, w = x.shape[-2], x.shape[-1]
    ph = (multiple - h % multiple) % multiple
    pw = (multiple - w % multiple) % multiple
    return F.pad(x, (0, pw, 0, ph), mode="reflect")


class SingleModule(nn.Module):
    """f(y) in eval mode, any size: the deterministic single pass."""

    def __init__(self, net: B2GNet, half: bool = False):
        super().__init__()
        self.net, self.half = net.eval(), half

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2], x.shape[-1]
        xp = _pad_reflect(x, self.net.multiple)
        # fp16: the network runs in half, the boundary stays float32 for every caller.
        out = self.net(xp.half() if self.half else xp)
        return out[..., :h, :w].float()


FLIP_TRANSFORMS = (2, 4, 8)
_FLIP_DIMS = ((), (-1,), (-2,), (-2, -1))  # none, left-right, top-bottom, both (= a half turn)


class FlipsModule(nn.Module):
    """f(y) averaged over the first ``transforms`` of the frame's eight symmetries, each output
    turned back. Transform k mirrors left-right (bit 0) and top-bottom (bit 1) after transposing
    (bit 2), so 2 = the frame and its mirror image, 4 = every flip (the frame's shape is kept: one
    batched pass) and 8 adds the transposed frame's four (a second pass, H and W swapped).
    ``batched=False`` runs the flips one at a time: the memory of one pass, for large frames."""

    def __init__(self, net: B2GNet, transforms: int, half: bool = False, batched: bool = True):
        super().__init__()
        if transforms not in FLIP_TRANSFORMS:
            raise ValueError(f"transforms must be one of {FLIP_TRANSFORMS}, got {transforms}")
        self.single, self.transforms, self.batched = SingleModule(net, half), transforms, batched

    @property
    def passes(self) -> int:
        return self.transforms

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dims = _FLIP_DIMS[: min(self.transforms, 4)]
        total = None  # not zeros_like(x): a temporal window in has more channels than the frame out
        for transposed in (False, True) if self.transforms == 8 else (False,):
            xt = x.transpose(-2, -1) if transposed else x
            if self.batched:
                out = self.single(torch.cat([xt.flip(d) if d else xt for d in dims]))
                out = out.reshape(len(dims), -1, *out.shape[1:])  # (flips, B, ...): no traced batch constant
            else:
                out = [self.single(xt.flip(d) if d else xt) for d in dims]
            undone = sum(o.flip(d) if d else o for o, d in zip(out, dims))  # a flip is its own inverse
            undone = undone.transpose(-2, -1) if transposed else undone
            total = undone if total is None else total + undone
        return total / self.transforms


def fixed_masks(passes: int, rate: float, seed: int, tile: int = MASK_TILE) -> torch.Tensor:
    """(K, 1, tile, tile) visible(1)/blind(0) masks, the same for the same arguments.

    Blind with probability ``rate``, drawn on the CPU as ``fit.masks.sample_mask`` draws them
    (tests/unit/test_layers.py checks that both give the same masks for a seed).
    """
    gen = torch.Generator().manual_seed(seed)
    u = torch.rand((passes, 1, tile, tile), generator=gen)
    return (u >= torch.full_like(u, rate)).to(torch.float32)


class EnsembleModule(nn.Module):
    """K masked passes f(x*m_k, m_k) with fixed masks, folded into the batch and averaged."""

    def __init__(self, net: B2GNet, masks: torch.Tensor, half: bool = False):
        super().__init__()
        self.net, self.half = net.eval(), half
        self.register_buffer("masks", masks.half() if half else masks)

    @property
    def passes(self) -> int:
        return int(self.masks.shape[0])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        xp = _pad_reflect(x, self.net.multiple)
        if self.half:
            xp = xp.half()
        hp, wp = xp.shape[-2], xp.shape[-1]
        tile = self.masks.shape[-1]
        m = self.masks.repeat(1, 1, (hp + tile - 1) // tile, (wp + tile - 1) // tile)[..., :hp, :wp]
        k = self.masks.shape[0]
        xk = (xp.unsqueeze(1) * m.unsqueeze(0)).reshape(-1, c, hp, wp)  # (B*K, C, Hp, Wp)
        mk = m.unsqueeze(0).expand(b, k, 1, hp, wp).reshape(-1, 1, hp, wp)
        out = self.net(xk, mk).reshape(b, k, c, hp, wp)
        # As in fit.ensemble: each pass is trusted at its blind spots (where the loss trained
        # it); a pixel no pass blinded falls back to the plain mean.
        blind = (1 - m).unsqueeze(0)  # (1, K, 1, Hp, Wp)
        count = blind.sum(dim=1)
        weighted = (out * blind).sum(dim=1) / count.clamp(min=1)
        out = torch.where(count > 0, weighted, out.mean(dim=1))
        return out[..., :h, :w].float()


MODES = ("single", "ensemble", "flips")


def check_mode(mode: str, passes: int) -> int:
    """The passes ``mode`` runs (1 for single), or one InputError line naming the bad choice."""
    if mode not in MODES:
        raise InputError(f"unknown mode '{mode}'; use {', '.join(MODES)}")
    if mode == "ensemble" and not 1 <= passes <= 64:
        raise InputError(f"--passes must be between 1 and 64 for the ensemble, got {passes}")
    if mode == "flips" and passes not in FLIP_TRANSFORMS:
        raise InputError(f"--passes must be 2, 4 or 8 for flips (the frame's flips and turns), got {passes}")
    return 1 if mode == "single" else passes


def build_module(net: B2GNet, mode: str, passes: int, rate: float, seed: int, half: bool,
                 batched: bool = True) -> nn.Module:
    """The wrapper for ``mode`` ("single", "ensemble" of ``passes`` masks, or "flips": ``passes``
    flips/turns); ``net`` is copied, never changed."""
    import copy

    net = copy.deepcopy(net).cpu().eval()
    if half:
        net = net.half()
    if mode == "single":
        return SingleModule(net, half).eval()
    if mode == "ensemble":
        return EnsembleModule(net, fixed_masks(passes, rate, seed), half).eval()
    if mode == "flips":
        return FlipsModule(net, passes, half, batched).eval()
    raise ValueError(f"unknown mode {mode!r}")

