"""Pretraining a prior for B2G on clean photographs (docs/METHOD_NOTES.md, "Prior").

Two objectives:
- ``masked`` (MPI, Ma et al. 2024): the clean crop is the input, a random blind-spot mask hides
  ``mask_rate`` of its pixels and the loss is the reconstruction error at the blind spots. No
  noise model: the prior learns image statistics only.
- ``noisy``: Gaussian (sigma in [0, sigma_max]) or Poisson-Gaussian noise is added to the clean
  crop, and the clean crop is the target of both passes the per-image fit uses: the masked pass
  f(Omega y) at its blind spots and the full pass f(y) everywhere.

With ``temporal_k`` > 0 the prior is a ``TemporalB2GNet``: its input is a window of 2k+1 frames
cut from one photograph with synthetic motion (``synthetic_motion``), each frame with its own
noise, the target frame masked in the masked pass; the clean target frame is the target.

The run is resumable: the state (weights, Adam moments, step, seconds) goes into the prior file
itself, and the crops of step k depend only on (seed, k), so a run resumed on another machine
draws what an uninterrupted one would have. The learning rate is warm-up / stable / decay
("WSD"): constant until the last fifth of ``steps``, then cosine to 1%, so extending ``steps``
before the decay has begun changes nothing already done. With ``fit_to_budget`` the run first
measures its own speed and then sets ``steps`` to what it reaches inside the time budget, so a
fixed-time run (a GPU lease) ends decayed rather than cut off in its stable phase.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from ..config import PretrainConfig
from ..io.corpus import Corpus, random_crops
from ..model import B2GNet
from ..temporal.model import TemporalB2GNet
from .synthetic_motion import motion_margin, pair_margin, synthetic_pairs, synthetic_windows, target_slot, window_frames

_WARMUP = 500
_VALIDATION_SIGMA = 25.0
_VALIDATION_CROP = 128
# fit_to_budget: the speed is measured after this share of the budget (past the first steps,
# which carry the one-off costs of a device's warm-up), and the step count keeps a margin for
# validation and the final save.
_PROBE_SHARE = 0.05
_BUDGET_MARGIN = 0.93


@dataclass
class PretrainState:
    net: B2GNet | TemporalB2GNet
    optimizer: dict | None = None  # Adam's state_dict, to resume
    step: int = 0
    seconds: float = 0.0
    history: list[dict[str, float]] = field(default_factory=list)


@dataclass
class PretrainResult:
    state: PretrainState
    interrupted: bool = False
    stopped_by_budget: bool = False
    steps_this_run: int = 0
    cfg: PretrainConfig | None = None  # the config the run ended with (fit_to_budget sets steps)


def lr_at(cfg: PretrainConfig, step: int) -> float:
    warmup = min(_WARMUP, cfg.steps // 10)  # a short run is not all warm-up
    if step < warmup:
        return cfg.lr * (step + 1) / warmup
    decay_start = int(0.8 * cfg.steps)
    if step < decay_start:
        return cfg.lr
    done = min((step - decay_start) / max(cfg.steps - decay_start, 1), 1.0)
    return cfg.lr * (0.01 + 0.99 * 0.5 * (1.0 + math.cos(math.pi * done)))


def add_training_noise(x: torch.Tensor, cfg: PretrainConfig, gen: torch.Generator) -> torch.Tensor:
    """Per crop: Gaussian with sigma ~ U[0, sigma_max]/255, or (poisson_share of crops)
    Poisson(lam x)/lam with lam log-uniform in poisson_lam plus a little Gaussian read noise.
    Not clipped, like the benchmarks' test noise."""
    n, dev = x.shape[0], x.device
    sigma = torch.rand(n, 1, 1, 1, generator=gen, device=dev) * cfg.sigma_max / 255.0
    y = x + sigma * torch.randn(x.shape, generator=gen, device=dev)
    poisson = torch.rand(n, generator=gen, device=dev) < cfg.poisson_share
    if poisson.any():
        lo, hi = (math.log(v) for v in cfg.poisson_lam)
        lam = torch.exp(lo + (hi - lo) * torch.rand(int(poisson.sum()), 1, 1, 1, generator=gen, device=dev))
        xp = x[poisson]
        read = torch.rand(xp.shape[0], 1, 1, 1, generator=gen, device=dev) * 5.0 / 255.0
        y[poisson] = torch.poisson(lam * xp, generator=gen) / lam + read * torch.randn(xp.shape, generator=gen, device=dev)
    return y


def draw_inputs(x: torch.Tensor, cfg: PretrainConfig, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """The network's input y and the visible-pixel mask (B, 1, H, W) for clean crops x, drawn
    with ``gen`` on x's device: the CPU by default, so that a seed gives the same run on any
    device (``noise_on_device``: the training device, fast on a GPU)."""
    mask = (torch.rand(x.shape[0], 1, *x.shape[-2:], generator=gen, device=x.device) >= cfg.mask_rate).to(x.dtype)
    y = x if cfg.objective == "masked" else add_training_noise(x, cfg, gen)
    return aligned(y, cfg), mask


def aligned(y: torch.Tensor, cfg: PretrainConfig) -> torch.Tensor:
    """Noisy windows as the net sees them where it runs: with ``cfg.align`` "dis"/"dis-fine" each neighbour
    warped onto the target (``temporal.align``, on the noisy frames, as in a fit or a stream).
    Why: trained on raw windows, where four windows in five move by up to ``motion_max`` px a
    frame, the net learns to distrust its neighbours, and it is then shown aligned ones."""
    if not cfg.temporal_k or cfg.align == "none":
        return y
    from ..temporal.align import align_windows

    frames = window_frames(cfg)
    out = align_windows(y.detach().float().cpu().numpy(), y.shape[1] // frames, target_slot(cfg), cfg.align)
    return torch.from_numpy(out).to(y.device, y.dtype)


def clean_batch(corpus: Corpus, cfg: PretrainConfig, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """The clean network input (B, T*C, crop, crop) and the clean target frame (B, C, crop, crop).

    A single-frame prior (T = 1) sees the crop itself; a temporal prior a window cut from a
    larger crop with synthetic motion (``synthetic_motion``)."""
    big = random_crops(corpus, cfg.batch, cfg.crop + 2 * motion_margin(cfg), rng)
    if not cfg.temporal_k:
        x = torch.from_numpy(big)
        return x, x
    windows = torch.from_numpy(synthetic_windows(big, cfg, rng))
    c, slot = big.shape[1], target_slot(cfg)
    return windows, windows[:, slot * c : (slot + 1) * c]


def pretrain_loss(net: B2GNet | TemporalB2GNet, x: torch.Tensor, y: torch.Tensor, mask: torch.Tensor,
                  cfg: PretrainConfig) -> tuple[torch.Tensor, dict[str, float]]:
    """``x`` the clean target frame, ``y`` the (noisy) input window, ``mask`` the target's blind spots.

    The partial-conv head applies ``mask`` itself, to the target frame only (a temporal net's
    neighbours stay whole), so the input is not multiplied by it here."""
    blind = 1.0 - mask
    a = net(y, mask).float()
    masked = ((a - x) ** 2 * blind).sum() / (blind.sum() * x.shape[1]).clamp(min=1.0)
    if cfg.objective == "masked":
        return masked, {"masked": masked.item()}
    full = ((net(y).float() - x) ** 2).mean()
    return masked + full, {"masked": masked.item(), "full": full.item()}


def pair_batch(corpus: Corpus, cfg: PretrainConfig, rng: np.random.Generator
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """``cfg.pair_batch`` clean sequences of two overlapping windows (``synthetic_pairs``) and
    the shift that aligns the second window's target onto the first's."""
    big = random_crops(corpus, cfg.pair_batch, cfg.crop + 2 * pair_margin(cfg), rng)
    seq, shifts = synthetic_pairs(big, cfg, rng)
    return torch.from_numpy(seq), torch.from_numpy(shifts)


def shifted(e: torch.Tensor, d: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """``e`` (C, H, W) read at p + d, and where p + d is inside the frame (1, H, W)."""
    h, w = e.shape[-2:]
    out = torch.roll(e, shifts=(-d[0], -d[1]), dims=(-2, -1))
    valid = torch.zeros(1, h, w, dtype=e.dtype, device=e.device)
    valid[:, max(0, -d[0]) : h - max(0, d[0]), max(0, -d[1]) : w - max(0, d[1])] = 1.0
    return out, valid


def pair_loss(net: TemporalB2GNet, seq: torch.Tensor, noisy: torch.Tensor, shifts: torch.Tensor,
              cfg: PretrainConfig, layout: torch.memory_format) -> torch.Tensor:
    """The squared error of the mean of two neighbouring outputs, the second's shifted onto the
    first's target: (e_a + S e_b)^2 / 4 = (e_a^2 + e_b^2 + 2 e_a S e_b) / 4, so besides each
    output's own error it penalises what they share, the part of the error that the output
    fusion (``temporal.fuse``) cannot average away. ``seq``/``noisy`` (B, (T+1)*C, H, W) clean
    and noisy sequences; the windows are aligned as everywhere else (``aligned``)."""
    t_count, slot = window_frames(cfg), target_slot(cfg)
    c = seq.shape[1] // (t_count + 1)
    dev = next(net.parameters()).device
    first = aligned(noisy[:, : t_count * c], cfg).to(dev, memory_format=layout)
    second = aligned(noisy[:, c:], cfg).to(dev, memory_format=layout)
    e_a = net(first).float() - seq[:, slot * c : (slot + 1) * c].to(dev)
    e_b = net(second).float() - seq[:, (slot + 1) * c : (slot + 2) * c].to(dev)
    total, count = e_a.new_zeros(()), e_a.new_zeros(())
    for i in range(seq.shape[0]):
        moved, valid = shifted(e_b[i], (int(shifts[i, 0]), int(shifts[i, 1])))
        total = total + (valid * ((e_a[i] + moved) / 2) ** 2).sum()
        count = count + valid.sum() * c
    return total / count.clamp(min=1.0)


def validation_set(corpus: Corpus, cfg: PretrainConfig, limit: int = 16, sigma: float = _VALIDATION_SIGMA,
                   crop: int = _VALIDATION_CROP) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Centre crops of the held-out photographs with fixed (seeded) sigma-25 noise: (clean
    target, noisy input). A temporal prior's input is a window with fixed synthetic motion."""
    crops = []
    s = crop + 2 * motion_margin(cfg)
    for im in corpus.held[:limit]:
        if min(im.shape[:2]) < s:
            continue
        top, left = (im.shape[0] - s) // 2, (im.shape[1] - s) // 2
        crops.append(im[top : top + s, left : left + s].transpose(2, 0, 1))
    if not crops:
        return None
    big = np.stack(crops).astype(np.float32) / 255.0
    clean = torch.from_numpy(big)
    target = clean
    if cfg.temporal_k:
        clean = torch.from_numpy(synthetic_windows(big, cfg, np.random.default_rng(1234)))
        c, slot = big.shape[1], target_slot(cfg)
        target = clean[:, slot * c : (slot + 1) * c]
    gen = torch.Generator().manual_seed(1234)
    return target, aligned(clean + sigma / 255.0 * torch.randn(clean.shape, generator=gen), cfg)


@torch.no_grad()
def validate(net: B2GNet | TemporalB2GNet, data: tuple[torch.Tensor, torch.Tensor], device: torch.device) -> float:
    """Mean PSNR (dB) of f(y) on the validation crops."""
    clean, noisy = data
    was = net.training
    net.eval()
    out = net(noisy.to(device)).float().clamp(0, 1).cpu()
    net.train(was)
    mse = ((out - clean) ** 2).mean(dim=(1, 2, 3))
    return float((10 * torch.log10(1.0 / mse.clamp(min=1e-12))).mean())


def pretrain(
    corpus: Corpus,
    cfg: PretrainConfig,
    state: PretrainState,
    *,
    device: str | torch.device = "cpu",
    seed: int = 0,
    time_budget: float | None = None,
    save: Callable[[PretrainState, PretrainConfig], None] | None = None,
    save_every: float = 300.0,
    validate_every: int = 1000,
    snapshot: Callable[[PretrainState, PretrainConfig], None] | None = None,
    snapshot_every: int = 0,
    progress: Callable[[int, int, float], None] | None = None,
    fit_to_budget: bool = False,
) -> PretrainResult:
    """Train ``state.net`` from ``state.step`` to ``cfg.steps``. ``save`` is called every
    ``save_every`` seconds, at the end and on Ctrl-C, so a run killed any way but SIGKILL
    leaves a checkpoint at most that old. ``fit_to_budget`` (needs ``time_budget``) replaces
    ``cfg.steps`` once the speed is known; ``result.cfg`` is the config the run ended with."""
    if fit_to_budget and not time_budget:
        raise ValueError("fit_to_budget needs a time budget")
    device = torch.device(device)
    layout = torch.channels_last if cfg.channels_last else torch.contiguous_format
    net = state.net.to(device, memory_format=layout).train()
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    if state.optimizer is not None:
        opt.load_state_dict(state.optimizer)
    val = validation_set(corpus, cfg)
    use_bf16 = cfg.bf16 and device.type in ("cpu", "cuda")
    result = PretrainResult(state, cfg=cfg)
    start = time.perf_counter()
    probe: tuple[int, float] | None = None  # (steps this run, seconds) when the speed clock started
    seconds_before, last_save = state.seconds, time.perf_counter()

    def sync() -> None:
        state.optimizer = opt.state_dict()
        state.seconds = seconds_before + time.perf_counter() - start

    try:
        while state.step < cfg.steps:
            if time_budget is not None and time.perf_counter() - start >= time_budget:
                result.stopped_by_budget = True
                break
            # Crops and noise of step k depend on (seed, k) only: a resumed run draws the same.
            rng = np.random.default_rng([seed, state.step])
            draw_on = device if cfg.noise_on_device else torch.device("cpu")
            gen = torch.Generator(device=draw_on).manual_seed(seed * 1_000_003 + state.step)
            x, target = clean_batch(corpus, cfg, rng)
            if cfg.noise_on_device:
                x, target = x.to(device, non_blocking=True), target.to(device, non_blocking=True)
            for group in opt.param_groups:
                group["lr"] = lr_at(cfg, state.step)
            y, mask = draw_inputs(x, cfg, gen)
            if cfg.pair_weight:  # drawn after the step's own crops, from the same (seed, step)
                seq, shifts = pair_batch(corpus, cfg, rng)
                noisy_seq = add_training_noise(seq.to(draw_on), cfg, gen)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16):
                loss, parts = pretrain_loss(net, target.to(device), y.to(device, memory_format=layout),
                                            mask.to(device, memory_format=layout), cfg)
                if cfg.pair_weight:
                    pair = pair_loss(net, seq, noisy_seq, shifts, cfg, layout)
                    loss = loss + cfg.pair_weight * pair
                    parts["pair"] = pair.item()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            state.step += 1
            result.steps_this_run += 1
            if fit_to_budget and result.steps_this_run >= 10:
                cfg = _fit_steps(cfg, state.step, result.steps_this_run, time.perf_counter() - start, time_budget, probe)
                if probe is None:
                    probe = (result.steps_this_run, time.perf_counter() - start)
                elif cfg is not result.cfg:
                    result.cfg, fit_to_budget = cfg, False
            if progress is not None:
                progress(state.step, cfg.steps, loss.item())
            if state.step % validate_every == 0 or state.step == cfg.steps:
                sync()
                row = {"step": state.step, "seconds": round(state.seconds, 1), "lr": lr_at(cfg, state.step - 1),
                       "loss": loss.item(), **parts}
                if val is not None:
                    row["val_psnr"] = round(validate(net, val, device), 3)
                state.history.append(row)
            if snapshot is not None and snapshot_every and state.step % snapshot_every == 0:
                sync()
                snapshot(state, cfg)
            if save is not None and time.perf_counter() - last_save >= save_every:
                sync()
                save(state, cfg)
                last_save = time.perf_counter()
    except KeyboardInterrupt:
        result.interrupted = True
    sync()
    net.eval()
    if save is not None:
        save(state, cfg)
    return result


def _fit_steps(cfg: PretrainConfig, step: int, steps_run: int, elapsed: float, budget: float,
               probe: tuple[int, float] | None) -> PretrainConfig:
    """``cfg`` with ``steps`` set from the speed measured since ``probe``, once a share of the
    budget has passed; ``cfg`` itself until then (and while the clock is not started)."""
    if probe is None or elapsed < _PROBE_SHARE * budget or steps_run <= probe[0]:
        return cfg
    rate = (steps_run - probe[0]) / max(elapsed - probe[1], 1e-9)
    total = step + max(1, int(rate * (budget - elapsed) * _BUDGET_MARGIN))
    return cfg.model_copy(update={"steps": total})
