"""The fitting loop: masked and full passes, the B2G loss, Adam, and the recurrent mask refresh.

The loop fits one network to N >= 1 frames of the same size, (N, C, H, W) in [0, 1]. Each step
draws ``batch`` (crop, mask) pairs, each crop from a random frame. Every ``mask.cycle`` steps
the estimate x_m of every frame is refreshed with the deterministic pass f(y) and the dual
mask's probability map rebuilt (the first cycle is Bernoulli only, as in Algorithm 1 / eq. 3.10).
Ctrl-C ends the loop cleanly: the caller gets the network as it stands and ``interrupted``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from ..config import FitConfig
from ..devices import bf16_is_fast
from ..model import B2GNet, pad_to_multiple
from .losses import b2g_loss, recorrupted_loss
from .masks import blind_probability, detail_map, sample_mask

ProgressFn = Callable[[int, float, float], None]  # (step, loss, fraction done)


@dataclass
class FitResult:
    net: B2GNet
    history: list[dict[str, float]] = field(default_factory=list)
    steps: int = 0
    seconds: float = 0.0
    interrupted: bool = False
    stopped_by_budget: bool = False
    filled: torch.Tensor | None = None  # (C, H, W) MPI filling of the first frame, when configured
    noise_sigma: float | None = None  # the sigma the recorrupted loss used (0..255 scale)
    noise_model: dict | None = None  # shot noise: var = a * brightness + b, as the fit used it
    bf16: bool = False  # whether the steps ran under bfloat16 autocast (cfg.bf16 on fast hardware)


@dataclass
class _Frames:
    """Padded frames, the valid-pixel weight and the current blind-spot probability map."""

    y: torch.Tensor  # (N, C, Hp, Wp)
    weight: torch.Tensor  # (N, 1, Hp, Wp), 1 inside the original frame
    prob: torch.Tensor  # (N, 1, Hp, Wp)
    next_refresh: int = 0  # the frame the next partial refresh starts at


def _prepare(frames: torch.Tensor, net: B2GNet, cfg: FitConfig) -> _Frames:
    y, h, w = pad_to_multiple(frames, net.multiple)
    weight = torch.zeros_like(y[:, :1])
    weight[..., :h, :w] = 1.0
    return _Frames(y, weight, blind_probability(None, cfg.mask, y))


def _refresh_mask(state: _Frames, net: B2GNet, cfg: FitConfig, every_frame: bool = False) -> None:
    """Recompute x_m = f(y) and the dual mask's probability map, for every frame or, with
    ``mask.refresh_frames``, for the next few frames in turn (each map is per frame)."""
    if cfg.mask.kind != "dual" or cfg.loss.kind == "recorrupted":  # no masks to build
        return
    n = state.y.shape[0]
    count = n if every_frame or cfg.mask.refresh_frames is None else min(cfg.mask.refresh_frames, n)
    chosen = [(state.next_refresh + k) % n for k in range(count)]
    state.next_refresh = (state.next_refresh + count) % n
    was_training = net.training
    net.eval()
    with torch.no_grad():
        for i in chosen:
            y = state.y[i : i + 1]
            state.prob[i : i + 1] = blind_probability(detail_map(y, net(y), cfg.mask), cfg.mask, y)
    net.train(was_training)


def _batch(state: _Frames, cfg: FitConfig, gen: torch.Generator) -> tuple[torch.Tensor, ...]:
    """``batch`` crops of (y, weight, prob), each from a random frame, optionally flipped/rotated."""
    n, _, hp, wp = state.y.shape
    ch = min(cfg.crop or hp, hp)
    cw = min(cfg.crop or wp, wp)
    stack = torch.cat([state.y, state.weight, state.prob], dim=1)
    crops = []
    for _ in range(cfg.batch):
        i = int(torch.randint(n, (1,), generator=gen))
        top = int(torch.randint(hp - ch + 1, (1,), generator=gen))
        left = int(torch.randint(wp - cw + 1, (1,), generator=gen))
        c = stack[i, :, top : top + ch, left : left + cw]
        if cfg.augment:
            if torch.rand(1, generator=gen) < 0.5:
                c = c.flip(-1)
            if torch.rand(1, generator=gen) < 0.5:
                c = c.flip(-2)
            if ch == cw:
                c = torch.rot90(c, int(torch.randint(4, (1,), generator=gen)), dims=(-2, -1))
        crops.append(c)
    batch = torch.stack(crops)
    channels = state.y.shape[1]
    return batch[:, :channels], batch[:, channels : channels + 1], batch[:, channels + 1 :]


def _lr_factor(cfg: FitConfig, done: float) -> float:
    if cfg.lr_schedule == "constant":
        return 1.0
    # Cosine to 5% of the peak: the last steps refine rather than stall at zero.
    return 0.05 + 0.95 * 0.5 * (1.0 + math.cos(math.pi * min(done, 1.0)))


def fit(
    frames: torch.Tensor,
    cfg: FitConfig,
    *,
    net: B2GNet | None = None,
    device: str | torch.device = "cpu",
    seed: int = 0,
    time_budget: float | None = None,
    progress: ProgressFn | None = None,
    watch: Callable[[int, B2GNet], None] | None = None,
) -> FitResult:
    """Fit f_theta to ``frames`` (N, C, H, W) or (C, H, W). ``net`` continues an earlier fit."""
    if frames.dim() == 3:
        frames = frames.unsqueeze(0)
    time_budget = time_budget or cfg.time_budget
    if cfg.bf16 and not bf16_is_fast(str(device)):  # emulated bf16 would only slow the fit down
        cfg = cfg.model_copy(update={"bf16": False})
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    fine_tune = net is not None
    net = (net if fine_tune else B2GNet(frames.shape[1], cfg.model)).to(device)
    if cfg.channels_last:
        net.to(memory_format=torch.channels_last)
    state = _prepare(frames.to(device), net, cfg)
    if fine_tune:
        _refresh_mask(state, net, cfg, every_frame=True)  # the earlier fit already gives a usable x_m
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    result = FitResult(net, bf16=cfg.bf16)
    sigma = None
    if cfg.loss.kind == "recorrupted":
        from .noise_level import estimate_sigma, residual_sigma

        # The starting network's estimate of the first frame, when a sigma estimate or the shot-noise
        # check needs it (a whole-frame pass).
        loss = cfg.loss
        judged = not loss.noise_sigma and (loss.noise_estimate != "wavelet" or loss.shot_noise != "ignore")
        first = _first_estimate(state, net, frames) if fine_tune and judged else None
        if cfg.loss.noise_sigma:
            sigma = cfg.loss.noise_sigma / 255.0
        elif first is not None and cfg.loss.noise_estimate == "prior_residual":
            sigma = residual_sigma(*first)
        elif first is not None and cfg.loss.noise_estimate == "lower":
            sigma = min(residual_sigma(*first), estimate_sigma(frames))
        else:
            sigma = estimate_sigma(frames)
        result.noise_sigma = round(sigma * 255.0, 3)
        if first is not None and cfg.loss.shot_noise != "ignore":
            marker = _shot_noise_sigma(state, net, first, (cfg.loss.signal_dependence_limit, cfg.loss.shot_share_limit),
                                       result, build_map=cfg.loss.shot_noise == "model")
            if marker and cfg.loss.shot_noise == "keep_prior":
                net.eval()
                return result  # 0 steps: the starting network is the result (result.noise_model says why)
            sigma = marker or sigma
    fill = state.y[:1].clone() if cfg.filling is not None else None  # starts from the noisy frame
    every = max(1, cfg.iters // 200)
    # Every step has the same shapes, so cuDNN's one-off algorithm search pays for itself.
    benchmark_was = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = benchmark_was or torch.device(device).type == "cuda"
    start = time.perf_counter()
    net.train()
    try:
        for step in range(1, cfg.iters + 1):
            elapsed = time.perf_counter() - start
            done = max(step / cfg.iters, elapsed / time_budget if time_budget else 0.0)
            if time_budget is not None and elapsed >= time_budget:
                result.stopped_by_budget = True
                break
            for group in opt.param_groups:
                group["lr"] = cfg.lr * _lr_factor(cfg, done)
            loss, parts = _step(net, opt, state, cfg, gen, device, sigma)
            result.steps = step
            if step % every == 0 or step == cfg.iters:
                result.history.append({"step": step, "loss": loss, "seconds": elapsed, **parts})
            if progress is not None:
                progress(step, loss, done)
            if watch is not None:  # e.g. a benchmark copying the weights along the way
                watch(step, net)
            if step % cfg.mask.cycle == 0:
                _refresh_mask(state, net, cfg)
            if fill is not None:
                _update_filling(fill, state, net, cfg, gen)
    except KeyboardInterrupt:
        result.interrupted = True
    finally:
        torch.backends.cudnn.benchmark = benchmark_was
    net.eval()
    if cfg.channels_last:  # what the fit hands on (export, checkpoint) keeps the usual layout
        net.to(memory_format=torch.contiguous_format)
    result.seconds = time.perf_counter() - start
    if fill is not None:
        result.filled = fill[0, :, : frames.shape[-2], : frames.shape[-1]].cpu()
    return result


@torch.no_grad()
def _first_estimate(state: _Frames, net: B2GNet, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(y, net(y)) of the first frame, unpadded: what the noise is judged on."""
    net.eval()
    h, w = frames.shape[-2:]
    return state.y[:1, :, :h, :w], net(state.y[:1])[..., :h, :w]


@torch.no_grad()
def _shot_noise_sigma(state: _Frames, net: B2GNet, first: tuple[torch.Tensor, torch.Tensor],
                      limits: tuple[float, float], result: FitResult, build_map: bool):
    """Is the noise shot noise (growing with brightness)? Judged on the first frame with the
    starting network's estimate (``first``: y and net(y)): the bright/dark variance ratio, or the
    share of the fitted variance that grows with brightness, over its limit (``limits``). None
    when it is not (one sigma serves). When it is, the fitted var = a * brightness + b goes into
    ``result.noise_model`` and, with ``build_map``, a per-pixel sigma map of every frame into
    ``state.prob`` (the recorrupted loss uses no masks, so that slot is free and crops carry it
    along); returns the marker "map"."""
    from .noise_level import shot_noise_model, shot_share, signal_dependence

    y0, est0 = first  # _first_estimate left the network in eval mode
    ratio = signal_dependence(y0, est0)
    a, b = shot_noise_model(y0, est0)
    share = shot_share(est0, a, b)
    if ratio <= limits[0] and share <= limits[1]:
        return None
    result.noise_sigma = None
    result.noise_model = {"signal_dependence": round(ratio, 2), "shot_share": round(share, 2), "a": a, "b": b}
    if build_map:  # every frame's (padded) estimate, only when the map is used
        estimates = torch.cat([net(state.y[i : i + 1]) for i in range(state.y.shape[0])])
        state.prob = (a * estimates.mean(dim=1, keepdim=True).clamp(min=0.0) + b).sqrt()
    return "map"


@torch.no_grad()
def _update_filling(fill: torch.Tensor, state: _Frames, net: B2GNet, cfg: FitConfig, gen: torch.Generator) -> None:
    """MPI's iterative filling: a whole-frame masked pass, and at its blind spots
    fill <- w * fill + (1 - w) * prediction. The running mean over the fit's trajectory averages
    out both the masks and the steps' parameter noise."""
    y = state.y[:1]
    mask = sample_mask(torch.full_like(y[:, :1], cfg.mask.rate), gen).to(y.device)
    was = net.training
    net.eval()
    pred = net(y * mask, mask)
    net.train(was)
    w = cfg.filling
    fill.copy_(torch.where(mask > 0, fill, w * fill + (1.0 - w) * pred))


def _step(net, opt, state, cfg, gen, device, sigma=None) -> tuple[float, dict[str, float]]:
    # The forward pass and the loss run under autocast (PyTorch's advice: not the backward);
    # Adam updates the float32 weights.
    with torch.autocast(torch.device(device).type, dtype=torch.bfloat16, enabled=cfg.bf16):
        loss, parts = _loss(net, state, cfg, gen, device, sigma)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return loss.detach().item(), parts


def _loss(net, state, cfg, gen, device, sigma) -> tuple[torch.Tensor, dict[str, float]]:
    y, weight, prob = _batch(state, cfg, gen)
    if cfg.channels_last:
        y = y.contiguous(memory_format=torch.channels_last)
    if cfg.loss.kind == "recorrupted":
        sigma_here = prob if isinstance(sigma, str) else sigma  # "map": per-pixel sigma in prob
        return recorrupted_loss(net, y, sigma_here, cfg.loss.recorrupt_alpha, gen, weight)
    mask = sample_mask(prob, gen).to(device)
    a = net(y * mask, mask)
    b = None
    if cfg.loss.kind == "gradient":
        if cfg.loss.stop_gradient_full_pass:
            with torch.no_grad():
                b = net(y)
        else:
            b = net(y)
    return b2g_loss(a, b, y, mask, cfg.loss, weight)
