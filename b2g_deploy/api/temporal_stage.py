"""api.fit_temporal_stage: the temporal network fitted on video frames after the single-frame
fit (noise-independence check, the fit from a temporal prior or the single-frame net, and on
request the check that keeps the prior when it scores better); used by ``api.fitting``."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..errors import InputError
from ..temporal.align import DEFAULT_ALIGN
from .keep_better import keep_the_better_temporal


@dataclass
class TemporalStage:
    """What :func:`fit_temporal_stage` did: the network to keep and why."""

    net: Any  # the TemporalB2GNet, or the single-frame B2GNet it was given (fallback)
    temporal: bool  # net is temporal
    record: dict[str, Any]  # for the checkpoint's meta["temporal_fit"]
    notes: list[str] = field(default_factory=list)
    interrupted: bool = False


def fit_temporal_stage(
    frames: Any,
    single_net: Any,
    cfg: Any,
    *,
    k: int = 2,
    causal: bool = False,
    device: Any = "cpu",
    seed: int = 0,
    time_budget: float | None = None,
    progress: Callable[[int, float, float], None] | None = None,
    start: Any = None,
    start_label: str = "single-frame fit",
    align: str = DEFAULT_ALIGN,
    bf16: bool = False,
    check_prior: bool = False,
    recorrupt_alpha: float | str = "by-noise",
) -> TemporalStage:
    """After a single-frame fit on consecutive ``frames`` (N, C, H, W) tensor: check that the
    noise is independent from frame to frame (``temporal.noise_check``) with the single-frame
    net, and if so fit a temporal net starting from it; otherwise keep the single-frame net.

    ``k`` larger than the clip allows (2k+1 > N) is lowered to what the frames allow, with a
    note; a single frame is refused (InputError). The loss follows the preset: "recorrupted"
    when ``cfg.loss.kind`` is, else "blindspot". ``start``: a temporal prior (see
    ``priors.temporal_starting_network``) to fit from instead of the single-frame net with a
    zero neighbour head; the single-frame net still judges the noise and is the fallback.
    ``bf16``: bfloat16 autocast of the stage's steps where the hardware has it.
    ``recorrupt_alpha``: a of the recorrupted loss (``TemporalConfig.recorrupt_alpha``; by default
    from the noise level the loss estimates).
    ``check_prior``: keep ``start`` instead of the fit when the frame-to-frame check scores it
    better (``api.keep_better``). It judges the network's outputs as they are; off by default,
    because the outputs are fused by default, and fused the fit won where the check kept the prior
    (docs/BENCHMARKS.md, "Keeping the fit for the output fusion").
    """
    import torch

    from ..model import denoise
    from ..temporal.fit import TemporalConfig, fit_temporal
    from ..temporal.noise_check import INDEPENDENCE_THRESHOLD, check_temporal_noise

    n = int(frames.shape[0])
    if n < 2:
        raise InputError("a temporal fit needs at least 2 consecutive frames; this input gave 1")
    notes: list[str] = []
    k_used = k
    if 2 * k + 1 > n:
        k_used = max(1, (n - 1) // 2)
        if k_used != k:
            notes.append(f"{n} frames are too few for k={k} ({2 * k + 1}-frame windows): using k={k_used}")
    loss = "recorrupted" if cfg.loss.kind == "recorrupted" else "blindspot"
    try:
        tcfg = TemporalConfig(k=k_used, causal=causal, loss=loss, align=align, bf16=bf16,
                              recorrupt_alpha=recorrupt_alpha)
    except Exception as exc:  # pydantic's ValidationError: k out of range
        raise InputError(f"--k {k}: {str(exc).splitlines()[-1].strip()}") from None
    single_net = single_net.to(device).eval()
    with torch.no_grad():
        independent, corr = check_temporal_noise(frames.to(device), lambda y: denoise(single_net, y))
    if start is not None and start.window != 2 * k_used + 1:
        notes.append(f"{start_label} reads {start.window}-frame windows: started from the single-frame fit")
        start, start_label = None, "single-frame fit"
    record: dict[str, Any] = {"k": k_used, "causal": causal, "loss": loss, "noise_correlation": round(corr, 4),
                              "threshold": INDEPENDENCE_THRESHOLD, "frames": n, "start": start_label,
                              "align": align}
    if not independent:
        notes.append(f"the noise is correlated from frame to frame (residual correlation {corr:.3f} > "
                     f"{INDEPENDENCE_THRESHOLD}): kept the single-frame network")
        record["fallback"] = "correlated noise"
        return TemporalStage(single_net, False, record, notes)
    unfitted = copy.deepcopy(start) if start is not None and check_prior else None  # the fit trains start in place
    result = fit_temporal(frames, cfg, tcfg, net=start.to(device) if start is not None else single_net,
                          device=device, seed=seed,
                          time_budget=time_budget, progress=progress)
    record.update(steps=result.steps, seconds=round(result.seconds, 3), interrupted=result.interrupted,
                  history=result.history, bf16=result.bf16)
    if result.noise_sigma is not None:
        record.update(noise_sigma=result.noise_sigma, recorrupt_alpha=round(result.recorrupt_alpha, 4))
    net = result.net
    if unfitted is not None and not result.interrupted:
        net = keep_the_better_temporal(unfitted.to(device), result.net, frames.to(device), start_label, record, notes)
    return TemporalStage(net, True, record, notes, result.interrupted)
