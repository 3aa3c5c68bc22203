"""Fitting a TemporalB2GNet to one clip: random crops of random target frames with their windows.

Each step draws ``cfg.batch`` crops; a crop picks a target frame t, assembles t's window with
:func:`~b2g_deploy.temporal.windows.window_indices` and cuts the same square out of every frame
of it (and flips/rotates them together with ``cfg.augment``). Two losses (``TemporalConfig.loss``):

- ``blindspot`` (default): Bernoulli blind spots at ``cfg.mask.rate`` on the target frame only;
  the net predicts the target from its visible pixels and the neighbours in full, and the loss is
  the squared error at the blind spots (Noise2Self / Self2Self, as ``fit.losses`` with
  kind="blindspot"). With ``cfg.loss.distill_weight`` > 0 the deployable pass f(window) is also
  pulled towards the blind-spot prediction there (the single-frame fit's distillation term).
- ``recorrupted``: R2R (``fit.losses.recorrupted_loss``) on the target frame: the target is
  recorrupted to y + a z, the neighbours are given as they are (their noise is independent of
  the target's), and f is trained against y - z / a. It trains the deployable pass directly;
  sigma is ``cfg.loss.noise_sigma`` or :func:`~b2g_deploy.fit.noise_level.estimate_sigma`.

Windows in which a neighbour slot holds the target frame itself (a causal window at frame 0, any
window of a 1-frame clip) are never drawn: the target's noise would be visible there and the fit
would learn to copy it. The dual mask, its x_m refresh, T-Standout ensembles and MPI filling
belong to the single-frame loop (``fit.loop``) and are not used here.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import torch
from pydantic import Field, PositiveFloat

from ..config import FitConfig, _Strict
from ..devices import bf16_is_fast
from ..errors import InputError
from ..fit.masks import sample_mask
from ..model import B2GNet, pad_to_multiple
from .align import DEFAULT_ALIGN, AlignMode
from .model import TemporalB2GNet
from .windows import target_slot, window_indices, window_sees_own_target

ProgressFn = Callable[[int, float, float], None]  # (step, loss, fraction done), as fit.loop


class TemporalConfig(_Strict):
    """How a clip is fitted with a temporal window (the rest is the ordinary FitConfig)."""

    k: int = Field(2, ge=1, le=8, description="half-width: windows of 2k+1 frames")
    causal: bool = Field(False, description="frames t-2k..t (no lookahead) instead of t-k..t+k")
    align: AlignMode = Field(
        DEFAULT_ALIGN, description="dis-fine / dis: each neighbour warped onto the target with DIS optical "
        "flow, the finer or the coarser one (temporal.align), before the net sees the window, in the fit and "
        "wherever the net runs; none: as decoded",
    )
    loss: Literal["blindspot", "recorrupted"] = Field(
        "blindspot", description="blindspot: masked target, loss at its blind spots; recorrupted: "
        "R2R on the target with the neighbours in full (trains the deployable pass itself)",
    )
    # Its own crop side, not the image fit's: the temporal stage was tuned on held-out clips with
    # 64x64 crops (docs/BENCHMARKS.md, "Choosing the temporal fit"), and a step already carries
    # 2k+1 frames; the `fast` preset's 96x96 crops were chosen for single images.
    crop: int | None = Field(64, ge=8, description="side of the square crops of the windows; None: the "
                             "fit config's crop")
    bf16: bool = Field(False, description="bfloat16 autocast of the forward passes and the loss, where the "
                       "hardware has fast bf16 (else float32), as the single-frame fit's cfg.bf16")
    recorrupt_alpha: PositiveFloat | Literal["by-noise"] = Field(
        "by-noise", description="a of the recorrupted loss (y + a z against y - z / a); by-noise: from the noise "
        "level the loss estimates (alpha_by_noise); a number: that a, whatever the noise",
    )


# a of the temporal stage's recorrupted loss against the noise sigma (0..255) the loss estimates,
# interpolated and held flat outside. Chosen on held-out clips with the fit kept and fused, as the
# default streams it (docs/BENCHMARKS.md, "Choosing the temporal fit on held-out clips"): at sigma
# 50, a = 1 beat the preset's 0.5 on all four clips (+0.14 dB fused, +0.70 alone); at sigma 25, 0.5
# and 0.25 tied and 1 lost 0.14. A noisier clip needs the stronger recorruption: its fit otherwise
# learns the noise. The anchors are in *estimated* sigma, what the rule sees: 24.5-25.2 on those
# clips at sigma 25 and 46-46.7 at sigma 50 (clipping at 0 and 1 hides some of the noise).
_ALPHA_BY_SIGMA = ((25.0, 0.5), (45.0, 1.0))


def alpha_by_noise(sigma: float) -> float:
    """The recorrupted loss's a for noise of std ``sigma`` on a 0..255 scale (``_ALPHA_BY_SIGMA``)."""
    (s0, a0), (s1, a1) = _ALPHA_BY_SIGMA
    return a0 + (a1 - a0) * min(max((sigma - s0) / (s1 - s0), 0.0), 1.0)


@dataclass
class TemporalFitResult:
    net: TemporalB2GNet
    history: list[dict[str, float]] = field(default_factory=list)
    steps: int = 0
    seconds: float = 0.0
    interrupted: bool = False
    stopped_by_budget: bool = False
    noise_sigma: float | None = None  # the sigma the recorrupted loss used (0..255 scale)
    recorrupt_alpha: float | None = None  # and its a
    bf16: bool = False  # whether the steps ran under bfloat16 autocast


@dataclass
class _Clip:
    y: torch.Tensor  # (N, C, Hp, Wp), padded to the network's multiple
    weight: torch.Tensor  # (1, Hp, Wp), 1 inside the original frame
    windows: list[list[int]]  # the windows that may be drawn, as frame indices
    # With alignment: each drawable window stacked and aligned once, (len(windows), T*C, Hp, Wp)
    # in float16 (8-bit frames lose nothing that matters; halves a 720p, 32-frame clip's memory).
    aligned: torch.Tensor | None = None


def _prepare_net(net: B2GNet | TemporalB2GNet | None, channels: int, cfg: FitConfig,
                 temporal: TemporalConfig) -> TemporalB2GNet:
    if net is None:
        return TemporalB2GNet.for_k(channels, temporal.k, temporal.causal, cfg.model)
    if isinstance(net, B2GNet):  # a single-frame fit or prior as the starting point
        return TemporalB2GNet.from_single_frame(net, temporal.k, temporal.causal)
    if net.window != 2 * temporal.k + 1 or net.target_index != target_slot(temporal.k, temporal.causal):
        raise InputError(
            f"the network reads {net.window}-frame windows with the target in slot {net.target_index}, "
            f"not k={temporal.k} {'causal' if temporal.causal else 'centred'} ones"
        )
    if net.channels != channels:
        raise InputError(f"the network is for {net.channels}-channel frames, the clip has {channels}")
    return net


def _prepare_clip(frames: torch.Tensor, net: TemporalB2GNet, temporal: TemporalConfig) -> _Clip:
    y, h, w = pad_to_multiple(frames, net.multiple)
    weight = torch.zeros_like(y[0, :1])
    weight[..., :h, :w] = 1.0
    n, slot = frames.shape[0], target_slot(temporal.k, temporal.causal)
    # Reflected at the clip's ends, unlike the stream's windows: fitted on the nearest distinct
    # frames there, the networks scored 0.09 dB lower alone on held-out clips (windows.py).
    # Causal windows replicate frame 0 here, as the stream's did until 2026-12-06 (frame 0's own
    # window, its noise in every slot, is skipped); the fit was not measured the other way.
    windows = [window_indices(t, n, temporal.k, temporal.causal, edges="reflected") for t in range(n)]
    usable = [idx for idx in windows if not window_sees_own_target(idx, slot)]
    if not usable:
        raise InputError(f"a temporal fit needs at least 2 frames, got {n}")
    clip = _Clip(y, weight, usable)
    if temporal.align != "none":
        from .align import align_window

        c = frames.shape[1]
        clip.aligned = torch.stack([
            torch.from_numpy(align_window(y[idx].reshape(-1, *y.shape[-2:]).cpu().numpy(), c, slot,
                                          temporal.align)).half()
            for idx in usable]).to(y.device)
    return clip


def _batch(clip: _Clip, cfg: FitConfig, crop_side: int | None, gen: torch.Generator
           ) -> tuple[torch.Tensor, torch.Tensor]:
    """``cfg.batch`` stacked window crops (B, T*C, h, w) and their valid-pixel weights (B, 1, h, w)."""
    _, c, hp, wp = clip.y.shape
    ch, cw = min(crop_side or hp, hp), min(crop_side or wp, wp)
    windows, weights = [], []
    for _ in range(cfg.batch):
        pick = int(torch.randint(len(clip.windows), (1,), generator=gen))
        idx = clip.windows[pick]
        top = int(torch.randint(hp - ch + 1, (1,), generator=gen))
        left = int(torch.randint(wp - cw + 1, (1,), generator=gen))
        if clip.aligned is not None:
            stacked = clip.aligned[pick, :, top : top + ch, left : left + cw].float()
        else:
            stacked = clip.y[idx, :, top : top + ch, left : left + cw].reshape(-1, ch, cw)
        crop = torch.cat([stacked, clip.weight[:, top : top + ch, left : left + cw]])
        if cfg.augment:  # one transform for every frame of the window, so motion stays consistent
            if torch.rand(1, generator=gen) < 0.5:
                crop = crop.flip(-1)
            if torch.rand(1, generator=gen) < 0.5:
                crop = crop.flip(-2)
            if ch == cw:
                crop = torch.rot90(crop, int(torch.randint(4, (1,), generator=gen)), dims=(-2, -1))
        windows.append(crop[:-1])
        weights.append(crop[-1:])
    return torch.stack(windows), torch.stack(weights)


def _mean(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    w = weight.expand_as(x)
    return (x * w).sum() / w.sum().clamp(min=1.0)


def blindspot_step_loss(net: TemporalB2GNet, window: torch.Tensor, weight: torch.Tensor, rate: float,
                        distill_weight: float, gen: torch.Generator) -> tuple[torch.Tensor, dict[str, float]]:
    """Squared error of f(window, mask) against the target at the target's blind spots."""
    target = net.target_frame(window)
    mask = sample_mask(torch.full_like(target[:, :1], rate), gen)
    a = net(window, mask)  # the partial-conv head applies the mask to the target
    blind = 1.0 - mask
    content = _mean((blind * (a - target)) ** 2, weight)
    parts = {"content": content.detach().item()}
    if distill_weight <= 0.0:
        return content, parts
    distill = _mean((blind * (net(window) - a.detach())) ** 2, weight)
    parts["distill"] = distill.detach().item()
    return content + distill_weight * distill, parts


def recorrupted_step_loss(net: TemporalB2GNet, window: torch.Tensor, weight: torch.Tensor, sigma: float,
                          alpha: float, gen: torch.Generator) -> tuple[torch.Tensor, dict[str, float]]:
    """R2R on the target frame: f(window with target y + a z) against y - z / a."""
    c, slot = net.channels, net.target_index
    target = net.target_frame(window)
    z = torch.randn(target.shape, generator=gen, device=gen.device).to(window.device) * sigma
    recorrupted = window.clone()
    recorrupted[:, slot * c : (slot + 1) * c] = target + alpha * z
    loss = _mean((net(recorrupted) - (target - z / alpha)) ** 2, weight)
    return loss, {"recorrupted": loss.detach().item()}


def _lr_factor(cfg: FitConfig, done: float) -> float:
    if cfg.lr_schedule == "constant":
        return 1.0
    return 0.05 + 0.95 * 0.5 * (1.0 + math.cos(math.pi * min(done, 1.0)))  # as fit.loop


def fit_temporal(
    frames: torch.Tensor,
    cfg: FitConfig,
    temporal: TemporalConfig = TemporalConfig(),
    *,
    net: B2GNet | TemporalB2GNet | None = None,
    device: str | torch.device = "cpu",
    seed: int = 0,
    time_budget: float | None = None,
    progress: ProgressFn | None = None,
) -> TemporalFitResult:
    """Fit a temporal net to a clip ``frames`` (N, C, H, W) in [0, 1], N >= 2.

    ``net``: None starts from random weights; a B2GNet (a single-frame fit or prior, same
    ModelConfig) starts from it with a zero neighbour head; a TemporalB2GNet continues a fit.
    Uses ``cfg``'s model, iters, lr, lr_schedule, batch, augment, time_budget, mask.rate and
    loss.{distill_weight, noise_sigma}; the recorrupted loss's a is ``temporal.recorrupt_alpha``
    (by default from the noise level, not ``cfg.loss.recorrupt_alpha``); the crop is ``temporal.crop`` (``cfg``'s
    when that is None). Ctrl-C stops cleanly (``interrupted``).
    """
    if frames.dim() != 4:
        raise InputError(f"expected frames (N, C, H, W), got shape {tuple(frames.shape)}")
    time_budget = time_budget or cfg.time_budget
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = _prepare_net(net, frames.shape[1], cfg, temporal).to(device)
    model.align = temporal.align  # windows are prepared so wherever this net runs
    crop_side = temporal.crop if temporal.crop is not None else cfg.crop
    if crop_side is not None and crop_side % model.multiple:  # before the windows are aligned
        raise InputError(f"temporal crop {crop_side} must be a multiple of {model.multiple} for this network")
    clip = _prepare_clip(frames.to(device), model, temporal)
    result = TemporalFitResult(model)
    sigma = None
    if temporal.loss == "recorrupted":
        from ..fit.noise_level import estimate_sigma

        sigma = cfg.loss.noise_sigma / 255.0 if cfg.loss.noise_sigma else estimate_sigma(frames)
        result.noise_sigma = round(sigma * 255.0, 3)
        alpha = temporal.recorrupt_alpha
        result.recorrupt_alpha = alpha_by_noise(sigma * 255.0) if alpha == "by-noise" else float(alpha)
    use_bf16 = temporal.bf16 and bf16_is_fast(str(device))  # emulated bf16 would only slow the fit
    result.bf16 = use_bf16
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    every = max(1, cfg.iters // 200)
    start = time.perf_counter()
    model.train()
    try:
        for step in range(1, cfg.iters + 1):
            elapsed = time.perf_counter() - start
            if time_budget is not None and elapsed >= time_budget:
                result.stopped_by_budget = True
                break
            done = max(step / cfg.iters, elapsed / time_budget if time_budget else 0.0)
            for group in opt.param_groups:
                group["lr"] = cfg.lr * _lr_factor(cfg, done)
            window, weight = _batch(clip, cfg, crop_side, gen)
            # As fit.loop: the forward passes and the loss under autocast, not the backward.
            with torch.autocast(torch.device(device).type, dtype=torch.bfloat16, enabled=use_bf16):
                if sigma is None:
                    loss, parts = blindspot_step_loss(model, window, weight, cfg.mask.rate,
                                                      cfg.loss.distill_weight, gen)
                else:
                    loss, parts = recorrupted_step_loss(model, window, weight, sigma, result.recorrupt_alpha,
                                                        gen)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            value = loss.detach().item()
            result.steps = step
            if step % every == 0 or step == cfg.iters:
                result.history.append({"step": step, "loss": value, "seconds": elapsed, **parts})
            if progress is not None:
                progress(step, value, done)
    except KeyboardInterrupt:
        result.interrupted = True
    model.eval()
    result.seconds = time.perf_counter() - start
    return result
