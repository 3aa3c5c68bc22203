"""The methods benchmarks/bench_temporal.py compares (issue 9): the single-frame fit, the temporal
stage and temporal priors, each applied to every frame of the clip, and OpenCV NLM with its
oracle strength. Each returns the outputs and its timings; bench_temporal.py scores and stores them."""

from __future__ import annotations

import copy
import time
from pathlib import Path

import numpy as np

from benchmarks.helpers import centre_crop, run_nlm

# h = hColor = k sigma, k the best of these on a 256x256 centre crop of frame 0 against its clean
# frame: an oracle choice that favours NLM (Kodak's k = 0.5 is far too weak on this clip).
NLM_KS = (0.4, 0.5, 0.6, 0.8, 1.0, 1.2)


def fit_single(noisy: list[np.ndarray], args, seed: int = 0):
    """The `fast` preset from the shipped prior (or --prior) on the first N frames: (net, cfg, seconds, facts)."""
    import torch

    from b2g_deploy.config import preset
    from b2g_deploy.fit import fit
    from b2g_deploy.priors import starting_network

    cfg = preset("fast").with_overrides(iters=args.iters)
    net, cfg, label = starting_network(args.prior, noisy[0].shape[0], cfg)
    stack = torch.from_numpy(np.stack(noisy[: args.fit_frames]))
    t0 = time.perf_counter()
    res = fit(stack, cfg, net=net, seed=seed)
    seconds = time.perf_counter() - t0
    if res.interrupted:
        raise KeyboardInterrupt
    return res.net, cfg, seconds, {"steps": res.steps, "init": label, "iters": cfg.iters}


def single_prior(args):
    """The single-frame prior fit_single starts from, unfitted (the SPRIOR row)."""
    from b2g_deploy.config import preset
    from b2g_deploy.priors import starting_network

    net, _, label = starting_network(args.prior, 3, preset("fast"))
    return net.eval(), {"init": label}


def check_single_fit(prior, fitted, noisy: list[np.ndarray], args, label: str) -> dict | None:
    """The frame-to-frame check ``denoise VIDEO --no-fuse`` runs after the single-frame fit
    (api.keep_better, what fit_network(check_prior=True) calls) on the N fitted frames: its record
    {"prior", "fitted", "kept"}, or None when it could not judge (the fit is then kept)."""
    import torch

    from b2g_deploy.api.keep_better import keep_the_better_single

    meta: dict = {}
    frames = torch.from_numpy(np.stack(noisy[: args.fit_frames]))
    keep_the_better_single(prior, fitted, frames, label, meta, [])
    return meta.get("single_check")


def apply_single(net, noisy: list[np.ndarray], flips: int = 1) -> tuple[list[np.ndarray], float]:
    """f(y) frame by frame, or its average over ``flips`` flips/turns (``--mode flips``):
    (outputs, seconds per frame)."""
    import torch

    from b2g_deploy.fit import self_ensemble

    t0 = time.perf_counter()
    with torch.no_grad():
        outs = [self_ensemble(net, torch.from_numpy(y), flips).numpy() for y in noisy]
    return outs, (time.perf_counter() - t0) / len(noisy)


def fit_and_apply_temporal(single_net, cfg, noisy: list[np.ndarray], args, causal: bool, seed: int = 0,
                           start=None, start_label: str = "single-frame fit", align: str = "none"):
    """api.fit_temporal_stage on the N fitted frames, then denoise_clip on all F:
    (outputs, fit seconds, seconds per frame, facts, the network kept)."""
    import torch

    from b2g_deploy.api import fit_temporal_stage
    from b2g_deploy.fit import single_pass
    from b2g_deploy.temporal.model import denoise_clip

    stack = torch.from_numpy(np.stack(noisy[: args.fit_frames]))
    t0 = time.perf_counter()
    stage = fit_temporal_stage(stack, copy.deepcopy(single_net), cfg, k=2, causal=causal, seed=seed,
                               start=copy.deepcopy(start) if start is not None else None, start_label=start_label,
                               align=align)
    fit_s = time.perf_counter() - t0
    if stage.interrupted:
        raise KeyboardInterrupt
    rec = stage.record
    facts = {"temporal": stage.temporal, "k": rec["k"], "causal": causal, "loss": rec["loss"],
             "noise_correlation": rec["noise_correlation"], "noise_threshold": rec["threshold"],
             "steps": rec.get("steps", 0), "temporal_fit_s": rec.get("seconds", 0.0),
             "noise_sigma_used": rec.get("noise_sigma"), "notes": stage.notes, "align": align}
    clip = torch.from_numpy(np.stack(noisy))
    t1 = time.perf_counter()
    with torch.no_grad():
        if stage.temporal:
            outs = [o.numpy() for o in denoise_clip(stage.net, clip)]
        else:  # correlated noise: the stage kept the single-frame network
            outs = [single_pass(stage.net, y).numpy() for y in clip]
    return outs, fit_s, (time.perf_counter() - t1) / len(noisy), facts, stage.net


def load_temporal_prior(args, causal: bool = False):
    """The temporal prior (k=2) a TFIT row starts from: --temporal-prior or the packaged one;
    ``causal``: --causal-prior or the packaged causal one (CFIT)."""
    from b2g_deploy.checkpoint import load_checkpoint
    from b2g_deploy.priors import temporal_prior_name

    path = args.causal_prior if causal else args.temporal_prior
    if path is None:
        from importlib import resources

        path = Path(str(resources.files("b2g_deploy") / "data" / temporal_prior_name(3, 2, causal)))
    if not path.is_file():
        return None, {}
    ckpt = load_checkpoint(path)
    return ckpt.net, {"temporal_prior": path.name, "temporal_prior_steps": ckpt.meta.get("steps")}


def apply_temporal(net, noisy: list[np.ndarray], flips: int = 1) -> tuple[list[np.ndarray], float]:
    """The temporal net on every frame's (aligned) window, or each window's output averaged over
    ``flips`` flips/turns of the window (``--mode flips``, ``modelfile.graph.FlipsModule``)."""
    import torch

    from b2g_deploy.modelfile.graph import FlipsModule
    from b2g_deploy.temporal.model import clip_windows, denoise_clip

    t0 = time.perf_counter()
    clip = torch.from_numpy(np.stack(noisy))
    with torch.no_grad():
        if flips == 1:
            outs = [o.numpy() for o in denoise_clip(net, clip)]
        else:
            module = FlipsModule(net.eval(), flips, batched=False)
            outs = [module(clip_windows(net, clip, [t]))[0].numpy() for t in range(len(noisy))]
    return outs, (time.perf_counter() - t0) / len(noisy)


def best_nlm_k(noisy: np.ndarray, clean: np.ndarray, sigma: float) -> float:
    from b2g_deploy.metrics import psnr

    crop = centre_crop(noisy.shape)
    return max(NLM_KS, key=lambda k: psnr(run_nlm(noisy[crop], f"{sigma:g}", k=k)[0], clean[crop]))


def apply_nlm(noisy: list[np.ndarray], sigma: float, clean0: np.ndarray) -> tuple[list[np.ndarray], float, dict]:
    k = best_nlm_k(noisy[0], clean0, sigma)
    t0 = time.perf_counter()
    outs, extra = [], {}
    for y in noisy:
        out, extra = run_nlm(y, f"{sigma:g}", k=k)
        outs.append(out)
    return outs, (time.perf_counter() - t0) / len(noisy), extra
