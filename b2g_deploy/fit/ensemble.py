"""Inference after fitting (docs/METHOD_NOTES.md, "Inference"): the deterministic single pass f(y), its
average over flips and rotations of the frame (the geometric self-ensemble), and the paper's stochastic
ensemble (fresh Bernoulli masks, T-Standout sampling, averaged)."""

from __future__ import annotations

import torch

from ..model import B2GNet, denoise, stochastic_mode
from ..modelfile.graph import build_module
from .masks import sample_mask


@torch.no_grad()
def single_pass(net: B2GNet, y: torch.Tensor) -> torch.Tensor:
    """f(y) in eval mode for a (C, H, W) or (B, C, H, W) tensor: what export ships."""
    net.eval()
    batch = y if y.dim() == 4 else y.unsqueeze(0)
    out = denoise(net, batch)
    return out if y.dim() == 4 else out[0]


@torch.no_grad()
def self_ensemble(net: B2GNet, y: torch.Tensor, transforms: int = 8) -> torch.Tensor:
    """f(y) of a (C, H, W) or (B, C, H, W) tensor averaged over ``transforms`` (1, 2, 4 or 8)
    flips/turns of the frame, each output turned back (Lim et al. 2017's geometric
    self-ensemble; ``modelfile.graph.FlipsModule``, which export and the runtimes run too). The
    fits train on randomly flipped and rotated crops, so each transform is an equally good but
    not identical denoiser and their errors partly cancel: after the `fast` fit x8 gained 0.21 dB
    over f(y) at sigma 25 and 50 on the prior's held-out photographs (docs/METHOD_NOTES.md,
    "Inference"). Costs ``transforms`` passes."""
    if transforms == 1:
        return single_pass(net, y)
    # One flip at a time: the fit's output frame can be large (a 4K frame's batch of four would
    # need four passes' memory at once).
    module = build_module(net, "flips", transforms, 0.0, 0, half=False, batched=False).to(y.device)
    out = module(y if y.dim() == 4 else y.unsqueeze(0))
    return out if y.dim() == 4 else out[0]


@torch.no_grad()
def ensemble(
    net: B2GNet, y: torch.Tensor, passes: int, rate: float = 0.25, seed: int = 0, chunk: int = 4
) -> torch.Tensor:
    """Average of ``passes`` stochastic passes f(Omega y) of a (C, H, W) frame.

    Each pass is trusted at its blind spots only: the loss trains f(Omega y) there and nowhere
    else, so at visible pixels a young fit can be far off. A pixel that no pass blinded (chance
    0.75**passes) falls back to the plain average of all passes.
    """
    stochastic_mode(net)
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)  # T-Standout draws from the global generator
    blind_sum, blind_count = torch.zeros_like(y), torch.zeros_like(y[:1])
    plain_sum = torch.zeros_like(y)
    done = 0
    try:
        while done < passes:
            k = min(chunk, passes - done)
            prob = torch.full((k, 1, *y.shape[-2:]), rate)
            mask = sample_mask(prob, gen).to(y.device)
            out = denoise(net, y.unsqueeze(0) * mask, mask)
            plain_sum += out.sum(dim=0)
            blind_sum += ((1.0 - mask) * out).sum(dim=0)
            blind_count += (1.0 - mask).sum(dim=0)
            done += k
    finally:
        net.eval()
    return torch.where(blind_count > 0, blind_sum / blind_count.clamp(min=1.0), plain_sum / passes)
