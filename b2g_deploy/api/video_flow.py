"""The one-command video flow's first half, for ``api.denoise_video`` without a model: choose
what to fit, fit on the first frames, save the checkpoint and export it for the fastest runtime
here, all beside the output. Streaming is ``api.denoise_video``'s own second half."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

from ..errors import InputError
from ..io.fit_input import DEFAULT_VIDEO_FIT_FRAMES
from .fitting import FittedNetwork

# Frames the single-frame fit reads when none are asked for: measured at 720p, more bought
# nothing once the outputs are fused (docs/BENCHMARKS.md, the N table), and fewer is quicker.
SINGLE_FIT_FRAMES = 4

# A colour camera or stream gets the causal temporal network up to this noise level (0..255
# scale, as fit.noise_level.estimate_sigma reads the first frames), the single-frame one above.
# Held-out clips run as a stream (docs/BENCHMARKS.md, "Which network a video gets, held-out
# clips"): on the 256x256 clips the causal temporal flow led by +0.25 / +0.24 / +0.10 dB at
# sigma 15 / 25 / 35 and trailed by 0.11 at 50; on the 720p mosaics it led by +0.74 / +0.70 at
# 25 / 50. 35 is the highest level at which every held-out set gained.
LIVE_COLOUR_TEMPORAL_MAX_SIGMA = 35.0


class FitChoice(NamedTuple):
    """What a video without a model is fitted with (``video_fit_choice``)."""

    temporal: bool | None  # None: fit_first_frames decides (a shipped prior, the noise level)
    causal: bool
    notes: list[str]
    temporal_max_sigma: float | None = None  # the temporal network only up to this noise level


def video_fit_choice(temporal: bool | None, causal: bool | None, k: int, live: bool,
                     channels: int = 3) -> FitChoice:
    """What a video without a model is fitted with, from what was asked (None: not asked). A
    file's window is centred, a camera's or stream's causal (no lookahead) unless ``--centred``;
    the temporal network wherever a shipped prior starts it (``fit_first_frames``).
    A colour camera or stream with nothing asked (``--temporal``, ``--causal``, ``--k``) gets it
    only up to ``LIVE_COLOUR_TEMPORAL_MAX_SIGMA``, the single-frame network above: as a stream
    the causal temporal flow won on every held-out set up to sigma 35 and lost on the 256x256
    clips at 50; in grey it won every clip at both 25 and 50, so a grey one gets it at any level
    (docs/METHOD_NOTES.md, "Which network a video gets")."""
    if live and channels != 1 and temporal is None and causal is None and k == 2:
        return FitChoice(None, True, [], LIVE_COLOUR_TEMPORAL_MAX_SIGMA)
    return FitChoice(temporal, live if causal is None else causal, [])


def default_fit_frames(temporal: bool, k: int = 2) -> int:
    """How many first frames ``denoise VIDEO`` fits on when not told: 4 for the single-frame
    network; for a temporal one ``fit VIDEO --temporal``'s 8 (what every temporal number in
    docs/BENCHMARKS.md was measured with), and never fewer than one window (2k + 1). Why not 4
    there too: a window of 2k + 1 frames does not fit in 4, so the stage would lower k to 1 and,
    the shipped temporal prior reading 5-frame windows, start from the single-frame fit instead."""
    return max(DEFAULT_VIDEO_FIT_FRAMES, 2 * k + 1) if temporal else SINGLE_FIT_FRAMES


def companion_paths(output: Path) -> tuple[Path, Path, Path]:
    """Where the flow keeps its checkpoint, ONNX model and TensorRT engine: beside the output."""
    stem = output.parent / (output.stem if output.suffix else output.name)
    return (stem.with_name(stem.name + ".b2g.pt"), stem.with_name(stem.name + ".onnx"),
            stem.with_name(stem.name + ".engine"))


def fit_first_frames(spec: str, info: Any, checkpoint: Path, *, fit_frames: int | None = None, preset: str = "fast",
                     fit_seconds: float | None = None, device: str = "auto", seed: int = 0,
                     temporal: bool | None = None, k: int = 2, causal: bool = False, force: bool = False,
                     progress: Callable[[int, int, float, float], None] | None = None,
                     check_prior: bool = False, temporal_max_sigma: float | None = None,
                     stream_check: dict[str, Any] | None = None) -> FittedNetwork:
    """Fit on the first ``fit_frames`` frames of ``spec`` (None: ``default_fit_frames``;
    ``info``: its VideoInfo) and save
    the checkpoint, also when the fit was interrupted (the caller then streams nothing: a
    half-fitted network should be a choice, not a surprise). ``check_prior``: see
    :func:`~.fitting.fit_network`.

    ``temporal`` None (not asked): the temporal network where a shipped temporal prior starts it
    (the fast preset's k=2 or wider windows: colour, and grey centred), else the single-frame
    one, with a note. Why: through the same flow on held-out clips the temporal network from
    its prior scored +0.45 / +0.30 dB at sigma 25 / 50 on colour files, +0.99 / +1.57 on grey
    ones; without a prior its fit has to learn the neighbours in a few hundred steps, and
    measured it matched the single-frame network, in more time (docs/METHOD_NOTES.md, "Temporal
    prior" and "Which network a video gets"). A temporal fit needs 2 frames or more: with fewer (asked for, or all the input has)
    it is an InputError when asked for, the single-frame network with a note when not.

    ``temporal_max_sigma`` (with ``temporal`` None; a colour camera's or stream's, from
    ``video_fit_choice``): the temporal network only where the first frames' noise
    level (``fit.noise_level.estimate_sigma``, on the 0..255 scale) is at most this, else the
    single-frame one (on its own default frames), with a note naming the level either way.

    ``stream_check`` (with ``temporal`` None): the options the output will be streamed with
    (``live`` and ``denoising.finishing_steps``'); a temporal network fitted is then replaced by
    the single-frame network it started from where that one's stream scores ahead on the fitted
    frames by more than the check's margin (``api.recorrupted_choice``; not above its noise
    limit for grey or colour frames), with a note either way."""
    import numpy as np

    from ..checkpoint import save_checkpoint
    from ..config import preset as get_preset
    from ..devices import resolve_device
    from ..io.video_readers import read_frames
    from ..priors import starting_network, temporal_starting_network
    from .fitting import fit_network

    asked = temporal is not None
    if fit_frames is not None and fit_frames < 1:
        raise InputError("--fit-frames must be at least 1")
    if temporal and fit_frames is not None and fit_frames < 2:
        raise InputError("--temporal needs at least 2 frames to fit on; pass --fit-frames N with N >= 2")
    net, cfg, init_label = starting_network(None, info.channels, get_preset(preset))
    temporal_start = temporal_starting_network(None, info.channels, k, causal, cfg) if temporal is not False else None
    notes = []
    if temporal is None:
        temporal = temporal_start[0] is not None  # looked up above: temporal was not False
        if not temporal:
            notes.append("no shipped temporal prior for this video and preset: fitted the single-frame "
                         "network (--temporal fits a temporal one from it)")
    frames_asked = fit_frames is not None
    if fit_frames is None:
        fit_frames = default_fit_frames(temporal, k)
    dev = resolve_device(device)
    frames = np.stack(read_frames(spec, limit=fit_frames, channels=info.channels))
    if temporal and len(frames) < 2:
        if asked:
            raise InputError(f"--temporal needs at least 2 frames to fit on; {spec} has {len(frames)}")
        temporal, temporal_start = False, None
        notes.append(f"{len(frames)} frame to fit on: fitted the single-frame network (a temporal one needs 2)")
    if temporal and not asked and temporal_max_sigma is not None:
        temporal, note = _temporal_by_noise(frames, temporal_max_sigma)
        notes.append(note)
        if not temporal:
            temporal_start = None
            frames = frames if frames_asked else frames[:default_fit_frames(False)]
    fitted = fit_network(
        frames, cfg, net, init_label,
        dict(preset=preset, seed=seed, source=Path(spec).name, height=info.height, width=info.width,
             bit_depth=info.bit_depth, frames=list(range(len(frames)))),
        device=dev, seed=seed, time_budget=fit_seconds, temporal=temporal, k=k, causal=causal, progress=progress,
        temporal_start=temporal_start, check_prior=check_prior,
    )
    fitted.notes[:0] = notes
    if (not asked and stream_check is not None and fitted.checkpoint.is_temporal
            and not fitted.interrupted):
        _keep_the_better_stream(fitted, spec, info, frames, stream_check)
    save_checkpoint(checkpoint, fitted.checkpoint, force=force)
    fitted.frames = frames  # what an int8 export calibrates on
    return fitted


def _keep_the_better_stream(fitted: FittedNetwork, spec: str, info: Any, frames: Any,
                            stream_check: dict[str, Any]) -> None:
    """Score the temporal network's stream against the single-frame network's on the fitted
    ``frames`` (``recorrupted_choice.score_checkpoints``) and keep the better in ``fitted``, with
    a note and the scores in its metadata (``network_check``). A file's next frames are read too,
    as far as the stream looks ahead of the last fitted one, so that the fitted frames are scored
    as they are streamed. Ctrl-C here keeps the temporal network and marks the fit interrupted
    (nothing is streamed)."""
    import numpy as np

    from ..io.video_readers import read_frames
    from ..temporal.model import window_shape
    from .recorrupted_choice import lookahead, score_checkpoints

    k, causal = window_shape(fitted.checkpoint.net)
    ahead = lookahead(stream_check["live"], k, causal, stream_check.get("fuse", True), stream_check.get("fuse_frames"))
    single = fitted.single_frame_checkpoint()
    try:
        scored = len(frames)
        if ahead:
            frames = np.stack(read_frames(spec, limit=scored + ahead, channels=info.channels))
        scores = score_checkpoints(single, fitted.checkpoint, frames, scored=scored, **stream_check)
    except KeyboardInterrupt:
        fitted.check_interrupted = True
        fitted.notes.append("interrupted while checking which network streams better: kept the temporal one")
        return
    fitted.notes.append(_check_note(scores))
    if not scores.temporal_better:
        fitted.checkpoint = single
        single.meta["temporal_fit"]["fallback"] = "the single-frame stream scored better"
    fitted.checkpoint.meta["network_check"] = scores.record()


def _check_note(scores: Any) -> str:
    """The one line that says what the check measured (``recorrupted_choice.NetworkScores``) and kept."""
    level = f"noise ~{scores.sigma * 255:.0f} of 255"
    if not scores.run:
        return (f"{level}, above the {scores.max_sigma:g} up to which the check of which network streams better "
                "ranks them reliably: kept the temporal network")
    # The difference of the two squared errors, in 8-bit levels squared: what the check measures
    # (the errors themselves it cannot give, recorrupted_choice.NetworkScores.difference).
    by = f"squared error ~{abs(scores.difference) * 255**2:.1f} lower, {level}"
    on = f"on the {scores.frames} fitted frames"
    if scores.difference >= 0:
        return f"the temporal network's stream scored ahead of the single-frame one's {on} ({by}): kept it"
    if scores.temporal_better:
        return (f"the single-frame network's stream scored ahead of the temporal one's {on} by less than twice "
                f"the check's error ({by}): kept the temporal one")
    return (f"the single-frame network's stream scored ahead of the temporal one's {on} ({by}): streaming it "
            "(--temporal keeps the temporal one)")


def _temporal_by_noise(frames: Any, max_sigma: float) -> tuple[bool, str]:
    """Whether frames this noisy get the temporal network (their estimated noise level, 0..255
    scale, at most ``max_sigma``), and the note that says which and why."""
    import torch

    from ..fit.noise_level import estimate_sigma

    level = estimate_sigma(torch.from_numpy(frames)) * 255.0
    if level <= max_sigma:
        return True, (f"noise level ~{level:.0f} of 255 (at most {max_sigma:g}): fitted the temporal "
                      "network (--single-frame: the single-frame one)")
    return False, (f"noise level ~{level:.0f} of 255 (above {max_sigma:g}): fitted the single-frame network "
                   "(--temporal fits a causal temporal one)")


def tensorrt_usable() -> bool:
    import importlib.util

    import torch

    return importlib.util.find_spec("tensorrt") is not None and torch.cuda.is_available()


def export_for_here(checkpoint: Path, onnx: Path, engine: Path, info: Any, *, runtime: str | None = None,
                    batch: int = 4, force: bool = False, notify: Callable[[str], None] = lambda line: None,
                    int8_frames: Any = None) -> Path:
    """Export the fitted network for the fastest runtime here and return the model to stream.

    TensorRT (an fp32 engine for this frame size, parity-checked like ``export --trt``; for a
    temporal network an engine for its windows of this frame size) when it and a GPU are present
    and ``runtime`` allows it; otherwise the .onnx file, which runs on ORT CUDA when
    onnxruntime-gpu has a GPU, else on the CPU in OpenVINO where it is installed, else in ORT
    (``runtime_choice.choose_runtime``). An ONNX runtime rather than torch eager on a CPU because
    ORT measured ~2.8x faster on a 720p frame with the fast preset's width-32 network on the
    2-core CPU this was built on (docs/BENCHMARKS.md, "Video"), and OpenVINO 1.4x faster again
    ("OpenVINO on the CPU").

    ``int8_frames`` (the frames fitted on): the .onnx in int8 for a CPU (ONNX Runtime's
    quantized graph, which OpenVINO runs too), calibrated on them (``export --int8``), and no engine.
    """
    from ..checkpoint import load_checkpoint, temporal_settings
    from .exporting import build_checked_engine, export

    int8 = int8_frames is not None
    report = export(checkpoint, onnx, force=force, int8=int8, calibration_frames=int8_frames)
    notify(f"wrote {onnx} ({report.description}; {report.parity})" if int8 else
           f"wrote {onnx} ({report.description})")
    if not int8 and runtime in (None, "auto", "tensorrt") and tensorrt_usable():
        from ..export.engine_sidecar import Profile

        ckpt = load_checkpoint(checkpoint)
        window = temporal_settings(ckpt.net)["window"] if ckpt.is_temporal else 1
        # The feeder hands a temporal runtime up to batch + k windows at once; the engine runs
        # larger batches in chunks of its profile's maximum.
        shape = (batch, info.channels * window, info.height, info.width)
        profile = Profile(min=(1, *shape[1:]), opt=shape, max=shape)
        built = build_checked_engine(checkpoint, onnx, engine, profile, fp16=False, force=force)
        notify(f"wrote {built.path} (parity: {built.parity})")
        return engine
    return onnx
