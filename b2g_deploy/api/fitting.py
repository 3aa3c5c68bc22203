"""api.fit: fit an image or video frames (optionally the temporal network) and write the outputs."""

from __future__ import annotations

import copy

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..temporal.align import ALIGN_MODES, DEFAULT_ALIGN
from .keep_better import keep_the_better_single
from .temporal_stage import TemporalStage, fit_temporal_stage


@dataclass
class FitReport:
    output: Path
    checkpoint: Path
    steps: int
    seconds: float
    interrupted: bool
    what: str  # "single pass" or "K-pass ensemble"
    init: str
    psnr: dict[str, float] = field(default_factory=dict)  # with a reference: noisy, single, output
    notes: list[str] = field(default_factory=list)  # one line each: fallbacks and what was chosen
    temporal: dict[str, Any] | None = None  # the temporal stage's record (None: not asked for)
    temporal_net: bool = False  # the checkpoint holds a temporal network


@dataclass
class FittedNetwork:
    """What :func:`fit_network` made: the checkpoint to save (the network kept, its config and
    metadata), the single-frame fit's result and the temporal stage (None: not run)."""

    checkpoint: Any  # checkpoint.Checkpoint
    result: Any  # fit.FitResult of the single-frame fit
    stage: TemporalStage | None
    notes: list[str]
    frames: Any = None  # (N, C, H, W) the frames fitted on, where the caller kept them (video flow)
    single: Any = None  # the single-frame network the temporal stage started from (fitted, or the prior kept)
    check_interrupted: bool = False  # Ctrl-C during the video flow's check of which network to stream

    def single_frame_checkpoint(self) -> Any:
        """The single-frame network as a checkpoint of its own; its metadata keeps the temporal
        stage's record (``temporal_fit``), as a fallback for correlated noise does."""
        import copy

        from ..checkpoint import Checkpoint

        meta = copy.deepcopy(self.checkpoint.meta)
        meta["interrupted"] = self.result.interrupted
        return Checkpoint(self.single.cpu().eval(), self.checkpoint.config, meta)

    @property
    def interrupted(self) -> bool:
        return (self.result.interrupted or (self.stage is not None and self.stage.interrupted)
                or self.check_interrupted)

    @property
    def steps(self) -> int:
        return self.result.steps + (self.stage.record.get("steps", 0) if self.stage is not None else 0)

    @property
    def seconds(self) -> float:
        return self.result.seconds + (self.stage.record.get("seconds", 0.0) if self.stage is not None else 0.0)


def checkpoint_meta(result: Any, *, init: str, preset: str, seed: int, source: str, height: int, width: int,
                    bit_depth: int, config_file: str | None = None, **extra: Any) -> dict[str, Any]:
    """The metadata a fitted checkpoint carries: what it was fitted on (``bit_depth`` is the
    input's, so outputs are written at it), with what, and how the fit went. ``extra``: e.g.
    the video frames fitted on."""
    return {
        "bit_depth": bit_depth, "preset": preset, "config_file": config_file, "seed": seed,
        "steps": result.steps, "seconds": round(result.seconds, 3), "interrupted": result.interrupted,
        "source": source, "size": [height, width], "history": result.history, "init": init,
        "noise_sigma": result.noise_sigma, "noise_model": result.noise_model, **extra,
    }


def fit_network(
    stack: Any,
    cfg: Any,
    start_net: Any,
    init_label: str,
    meta: dict[str, Any],
    *,
    device: Any,
    seed: int = 0,
    time_budget: float | None = None,
    temporal: bool = False,
    k: int = 2,
    causal: bool = False,
    progress: Callable[[int, int, float, float], None] | None = None,
    temporal_start: tuple[Any, str] | None = None,
    align: str = DEFAULT_ALIGN,
    check_prior: bool = False,
) -> FittedNetwork:
    """Fit ``stack`` ((N, C, H, W) float32 array) from ``start_net`` and, with ``temporal``, the
    temporal stage after it (not after an interrupted single-frame fit). ``meta``: the input
    facts, as keyword arguments of :func:`checkpoint_meta` (source, height, width, bit_depth,
    preset, seed, ...); the fit's own are added here. This is what :func:`fit` and the video
    flow (``api.denoise_video`` without a model) share between reading frames and saving.
    ``check_prior``: after each fit (single-frame on video frames, and the temporal stage), keep
    the prior it started from when the frame-to-frame check scores the prior better
    (``api.keep_better``). Off by default: the check judges outputs as they are, and after the
    output fusion (on by default) the fits were the better ones on the cockatoo clip where the
    check kept the priors (docs/BENCHMARKS.md, "Keeping the fit for the output fusion");
    ``denoise VIDEO --no-fuse`` turns it on."""
    import torch

    from ..checkpoint import Checkpoint
    from ..fit import fit as run_fit

    frames = torch.from_numpy(stack)
    on_step = (lambda step, loss, done: progress(step, cfg.iters, loss, done)) if progress else None
    # Video frames from a prior: keep an unfitted copy, so the frame-to-frame check can keep the
    # prior when the fit made it worse (docs/METHOD_NOTES.md, "Keeping the fit only when it
    # helps"). A single image has no second frame to check against.
    unfitted = (copy.deepcopy(start_net) if check_prior and start_net is not None and init_label != "none"
                and len(stack) >= 2 else None)
    result = run_fit(frames, cfg, net=start_net, device=device, seed=seed, time_budget=time_budget,
                     progress=on_step)
    meta = checkpoint_meta(result, init=init_label, **meta)
    notes: list[str] = []
    single_net = result.net
    if unfitted is not None and not result.interrupted and result.steps > 0:
        single_net = keep_the_better_single(unfitted.to(device), result.net, frames.to(device), init_label,
                                            meta, notes)
    if result.noise_model:
        nm = result.noise_model
        what = ("kept the prior unfitted (loss.shot_noise = keep_prior)" if result.steps == 0 else
                f"recorrupted with var = {nm['a']:.4g} * brightness + {nm['b']:.3g}")
        notes.append(f"the noise grows with brightness (variance ratio {nm['signal_dependence']}, "
                     f"shot share {nm['shot_share']}: shot noise): {what}")
    elif result.steps == 0 and not result.interrupted:
        notes.append(f"the time budget ended before the first step: the output is the {init_label} "
                     "network's, unfitted" if init_label != "none" else
                     "the time budget ended before the first step: the output is an untrained network's")
    stage = None
    if temporal and result.interrupted:
        notes.append("interrupted during the single-frame fit: no temporal fit, single-frame checkpoint")
    elif temporal:
        start, label = temporal_start or (None, "single-frame fit")
        stage = fit_temporal_stage(frames, single_net, cfg, k=k, causal=causal, device=device, seed=seed,
                                   time_budget=time_budget, progress=on_step, start=start, start_label=label,
                                   align=align, check_prior=check_prior)
        notes += stage.notes
        meta["temporal_fit"] = stage.record
        meta["interrupted"] = stage.interrupted
    net = stage.net if stage is not None and stage.temporal else single_net
    return FittedNetwork(Checkpoint(net.cpu().eval() if stage is not None and stage.temporal else net, cfg, meta),
                         result, stage, notes, single=single_net)


def default_fit_outputs(noisy: Path, output: Path | None, checkpoint: Path | None) -> tuple[Path, Path]:
    suffix = noisy.suffix if noisy.suffix.lower() in {".png", ".tif", ".tiff"} else ".png"
    output = output or noisy.with_name(f"{noisy.stem}_b2g{suffix}")
    checkpoint = checkpoint or output.with_suffix(".b2g.pt")
    return output, checkpoint


def _check_distinct(noisy: Path, output: Path, checkpoint: Path) -> None:
    """No output may be the input or the other output, whatever --force says."""
    same = lambda a, b: a.resolve() == b.resolve()  # noqa: E731
    if same(output, checkpoint):
        raise InputError(f"the image and the checkpoint would both be written to {output}")
    for out in (output, checkpoint):
        if same(out, noisy):
            raise InputError(f"{out} would overwrite the input {noisy}")
    if checkpoint.suffix.lower() != ".pt":
        raise InputError(f"--checkpoint {checkpoint}: a checkpoint is a torch file; name it *.pt")


def fit(
    noisy: Path,
    output: Path | None = None,
    checkpoint: Path | None = None,
    *,
    preset: str = "fast",
    config: Path | None = None,
    iters: int | None = None,
    time_budget: float | None = None,
    device: str = "auto",
    seed: int = 0,
    init: str | Path | None = None,
    passes: int | None = None,
    single_pass: bool = False,
    reference: Path | None = None,
    force: bool = False,
    frames: int | None = None,
    temporal: bool = False,
    k: int = 2,
    causal: bool = False,
    align: str = DEFAULT_ALIGN,
    threads: int | None = None,
    progress: Callable[[int, int, float, float], None] | None = None,
) -> FitReport:
    """Fit B2G to an image (or ``frames`` frames of a video) and write the denoised image and a
    checkpoint. ``init``: "prior", "none" or a checkpoint path (None = the preset's choice).
    ``progress(step, total, loss, fraction_done)`` is called every step (for each stage).

    ``temporal``: video input only. The first ``frames`` consecutive frames are fitted
    single-frame as usual, then (see :func:`fit_temporal_stage`) a temporal network with
    windows of 2k+1 frames (``causal``: the target last) is fitted from it, unless the noise is
    correlated between frames; the checkpoint holds whichever network was kept (``notes`` say
    which and why) and -o is the first frame denoised with it."""
    if iters is not None and iters < 1:
        raise InputError("--iters must be at least 1")
    if time_budget is not None and time_budget <= 0:
        raise InputError("--time-budget must be positive")
    if passes is not None and passes < 1:
        raise InputError("--passes must be at least 1")
    if frames is not None and frames < 1:
        raise InputError("--frames must be at least 1")
    if align not in ALIGN_MODES:
        raise InputError(f"unknown --align '{align}'; use {', '.join(reversed(ALIGN_MODES))}")
    if temporal and not 1 <= k <= 8:
        raise InputError(f"--k must be between 1 and 8, got {k}")
    if not temporal and (causal or k != 2):
        raise InputError("--k and --causal choose the temporal window; add --temporal")
    is_stream = "://" in str(noisy) or str(noisy).isdigit()
    if not is_stream and not noisy.exists():  # before torch is imported: a typo answers at once
        raise InputError(f"{noisy} does not exist")
    from ..config import apply_changes, load_changes
    from ..config import preset as get_preset

    cfg = get_preset(preset)
    if str(init) == "none" and cfg.init == "prior":
        # From scratch, the prior's short recipe would not converge: B2G's own zero-shot recipe.
        cfg = get_preset("scratch")
    if config is not None:
        cfg = apply_changes(cfg, load_changes(config), source=str(config))
    output, checkpoint = default_fit_outputs(noisy, output, checkpoint)
    _check_distinct(noisy, output, checkpoint)

    import torch

    from ..checkpoint import save_checkpoint
    from ..devices import resolve_device
    from ..fit import ensemble
    from ..fit.ensemble import self_ensemble
    from ..fit.ensemble import single_pass as run_single_pass
    from ..io.atomic import check_writable
    from ..io.fit_input import load_fit_input
    from ..io.images import check_image_output, default_bit_depth_for, read_image, write_image
    from ..priors import is_temporal_prior, starting_network, temporal_starting_network

    dev = resolve_device(device)
    if threads is not None and threads < 1:
        raise InputError("--threads must be at least 1")
    if dev == "cpu" and (threads or cfg.crop is not None):
        # Steps on 64x64 crops are too small to share between cores: on the 2-core machine, with
        # other jobs running, 2 threads took 264 s for the sample fit and 1 thread 31 s.
        torch.set_num_threads(threads or 1)
    if temporal:  # neighbours, not frames spread over the clip
        from ..io.fit_input import load_consecutive_frames

        stack, info, frames_meta = load_consecutive_frames(noisy, frames)
        if stack.shape[0] < 2:
            raise InputError(f"--temporal needs at least 2 frames; {noisy} gave {stack.shape[0]} "
                             "(pass --frames N with N >= 2, or fit it without --temporal)")
    else:
        stack, info, frames_meta = load_fit_input(noisy, frames)  # (N, C, H, W); N = 1 for an image
    temporal_start = None
    if temporal:
        temporal_start = temporal_starting_network(init, info.channels, k, causal, cfg)
        if init is not None and is_temporal_prior(init):
            init = "prior"  # the temporal prior starts the temporal stage; the shipped one the single-frame fit
    start_net, cfg, init_label = starting_network(init, info.channels, cfg)
    cfg = cfg.with_overrides(iters=iters, ensemble_passes=passes)
    out_depth = default_bit_depth_for(output, info.bit_depth)
    check_image_output(output, out_depth, force)
    check_writable(checkpoint, force)
    clean = read_image(reference)[0] if reference is not None else None
    if clean is not None and clean.shape != stack[0].shape:
        raise InputError(f"--reference is {clean.shape[2]}x{clean.shape[1]}x{clean.shape[0]}, "
                         f"the noisy image {stack.shape[3]}x{stack.shape[2]}x{stack.shape[1]}")

    fitted = fit_network(
        stack, cfg, start_net, init_label,
        dict(preset=preset, seed=seed, source=noisy.name, height=info.height, width=info.width,
             bit_depth=info.bit_depth, config_file=config.name if config else None,
             **frames_meta),  # video input: which frames were fitted on
        device=dev, seed=seed, time_budget=time_budget, temporal=temporal, k=k, causal=causal, progress=progress,
        temporal_start=temporal_start, align=align,
    )
    result, stage, notes = fitted.result, fitted.stage, fitted.notes
    save_checkpoint(checkpoint, fitted.checkpoint, force=force)
    if stage is not None and stage.temporal:
        from ..temporal.model import denoise_clip

        with torch.no_grad():  # frame 0 from its window of the fitted (consecutive) frames
            single = out = denoise_clip(fitted.checkpoint.net, torch.from_numpy(stack))[0]
        write_image(output, out.numpy(), out_depth, force=force)
        window = f"k={stage.record['k']} {'causal' if causal else 'centred'}"
        report = FitReport(output, checkpoint, fitted.steps, fitted.seconds, stage.interrupted,
                           f"temporal, {2 * stage.record['k'] + 1}-frame {window} window", init_label)
    else:
        y_dev = torch.from_numpy(stack[0]).to(dev)  # the image, or the first fitted frame: what -o shows
        # After Ctrl-C the quick pass, not K more; f(y) when the preset or the caller asks for it.
        use_single = single_pass or result.interrupted or cfg.output == "single" or cfg.ensemble_passes == 1
        flips = 1 if single_pass or result.interrupted else cfg.self_ensemble
        if not use_single:
            out, what = ensemble(result.net, y_dev, cfg.ensemble_passes, cfg.mask.rate, seed).cpu(), \
                f"{cfg.ensemble_passes}-pass ensemble"
        elif flips > 1:
            out, what = self_ensemble(result.net, y_dev, flips).cpu(), f"single pass, mean of {flips} flips/rotations"
        else:
            out, what = run_single_pass(result.net, y_dev).cpu(), "single pass"
        write_image(output, out.numpy(), out_depth, force=force)
        if clean is not None:  # f(y) beside the output, only when there is a reference to score it
            single = out if what == "single pass" else run_single_pass(result.net, y_dev).cpu()
        report = FitReport(output, checkpoint, result.steps, result.seconds, result.interrupted, what, init_label)
    report.notes = notes
    report.temporal = stage.record if stage is not None else None
    report.temporal_net = stage is not None and stage.temporal
    if clean is not None:
        from ..metrics import psnr

        report.psnr = {"noisy": psnr(stack[0], clean), "single": psnr(single.numpy(), clean),
                       "output": psnr(out.numpy(), clean)}
    return report
