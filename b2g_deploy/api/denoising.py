"""api.denoise_images and api.denoise_video: a fitted model applied to images, folders, video
files, image sequences, cameras and streams.

``denoise_video`` without a model is the one-command flow: fit on the first frames, save the
checkpoint and the exported model beside the output (``video_flow``), and stream every frame
through the fastest runtime here. For a file the fit goes on by default to a multi-frame
network (``temporal=False``: the single-frame one; a camera or stream gets the causal temporal
one, in colour only up to a noise level, ``video_flow.video_fit_choice``) and the exported temporal model streams
through a ring buffer of frames
(``io.pipeline.TemporalFeeder``); a given model that is temporal (.pt or .onnx) is recognised
by its metadata and streamed the same way.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InputError

# The widest output fusion `denoise --fuse-frames` takes: its window holds 2k+1 frames, each
# with its copies (~45 MB at 720p), and on the 720p clip measured 5 and 7 already lost to 3.
MAX_FUSE_FRAMES = 8


@dataclass
class ImagesReport:
    written: list[Path]
    skipped: list[tuple[Path, str]]  # (file, why)
    runtime: str  # the runtime's name, e.g. "onnxruntime (cpu)"

    @property
    def total(self) -> int:
        return len(self.written) + len(self.skipped)


def denoise_images(
    source: Path,
    output: Path,
    model: Path | None,
    *,
    runtime: str = "auto",
    device: str = "auto",
    precision: str | None = None,
    server: str | None = None,
    server_model: str = "b2g_denoiser",
    tile: int | None = None,
    batch: int = 1,
    mode: str = "single",
    passes: int = 8,
    force: bool = False,
    on_skip: Callable[[Path, str], None] | None = None,
    on_written: Callable[[int, int, Path], None] | None = None,
) -> ImagesReport:
    """Denoise an image into ``output``, or a folder of images into a folder of the same names.

    In a folder a bad file is skipped, named to ``on_skip(file, why)`` and listed in the
    report; InputError when no image could be denoised. ``on_written(done, total, file)``
    follows the progress. Every output is checked before anything is denoised. ``server``: a
    Triton server URL (http:// or grpc://) holding ``server_model`` denoises instead of a local
    runtime; ``model``, if given, is then the .onnx the server should hold."""
    from ..io.image_batch import denoise_image_files, image_jobs, tile_for
    from ..io.images import IMAGE_SUFFIXES, read_image
    from ..runtimes.factory import load_runtime
    from .runtime_choice import choose_runtime, open_server, runtime_options

    if model is None and server is None:
        raise InputError("-m/--model (or --server URL) is required for images; only a video can be fitted on the fly")
    source, output = Path(source), Path(output)
    model = Path(model) if model is not None else None
    if batch < 1:
        raise InputError("--batch must be at least 1")
    if tile is not None and tile < 32:
        raise InputError("--tile must be at least 32")
    if not source.exists():
        raise InputError(f"{source} does not exist")
    if not (source.is_dir() or source.suffix.lower() in IMAGE_SUFFIXES):
        raise InputError(f"{source}: not an image or a folder of images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    jobs = image_jobs(source, output, force)
    # One image: its errors are the call's (and its channels are checked against the model);
    # a folder: a bad file is skipped and named, and the model's channels decide what is bad.
    channels = None if source.is_dir() else read_image(source)[1].channels
    written = (lambda done, file: on_written(done, len(jobs), file)) if on_written else None
    if server is not None:
        opened = open_server(server, server_model, model, channels, runtime=runtime, device=device, mode=mode,
                             precision=precision)
    else:
        assert model is not None
        name = choose_runtime(model, runtime, device)
        opened = load_runtime(model, name, channels, **runtime_options(name, device, mode, passes,
                                                                        precision=precision))
    with opened as rt:
        batch_report = denoise_image_files(rt, jobs, tile_for(rt, tile), batch, force, on_skip=on_skip,
                                           on_written=written)
    if not batch_report.written:
        raise InputError(f"no image in {source} could be denoised "
                         f"({len(batch_report.skipped)} skipped, each named above)")
    return ImagesReport(batch_report.written, batch_report.skipped, rt.name)


@dataclass
class VideoReport:
    """What :func:`denoise_video` did. ``interrupted``: Ctrl-C while fitting (``streamed`` is
    False: the checkpoint is kept, nothing denoised) or while streaming (the frames written are
    kept, the file plays)."""

    output: Path
    streamed: bool = False
    written: int = 0
    skipped: int = 0
    skipped_frames: list[str] = field(default_factory=list)  # each skipped frame, named
    reconnects: int = 0
    missing: int = 0  # frames the file's header announces that never came (a truncated file)
    announced: int | None = None  # the frame count the source announces (None: a live stream)
    seconds: float = 0.0
    interrupted: bool = False
    runtime: str = ""
    checkpoint: Path | None = None  # written by the flow without a model
    model: Path | None = None  # the model streamed
    notes: list[str] = field(default_factory=list)

    @property
    def fps(self) -> float:
        return self.written / self.seconds if self.seconds > 0 else 0.0


def source_spec(source: Path | str) -> str:
    """The reader spec of a source: a Path folds ``rtsp://h/x`` to ``rtsp:/h/x``; unfold it."""
    return re.sub(r"^([A-Za-z][A-Za-z0-9+.-]*):/(?!/)", r"\1://", str(source))


def is_video_job(source: Path | str, output: Path) -> bool:
    """Does ``source`` -> ``output`` go through the video pipeline? Video files, cameras and
    URLs always; an image folder only when the output is a video file (folder -> folder of the
    same names stays an image job)."""
    from ..io.video_formats import VIDEO_SUFFIXES
    from ..io.video_readers import is_video_input

    spec = source_spec(source)
    if Path(spec).is_dir():
        return Path(output).suffix.lower() in VIDEO_SUFFIXES
    return is_video_input(spec)


def denoise_video(
    source: Path | str,
    output: Path,
    model: Path | None = None,
    *,
    runtime: str = "auto",
    device: str = "auto",
    precision: str | None = None,
    server: str | None = None,
    server_model: str = "b2g_denoiser",
    batch: int = 4,
    mode: str = "single",
    passes: int = 8,
    threads: int | None = None,
    codec: str = "ffv1",
    bit_depth: int | None = None,
    blend: float | None = None,
    blend_threshold: float | None = None,
    sigma: float | None = None,
    fuse: bool = True,
    fuse_flow: str = "fine",
    fuse_frames: int | None = None,
    refine: bool = True,
    unclip: bool = True,
    limit: int | None = None,
    reconnects: int = 3,
    force: bool = False,
    fit_frames: int | None = None,
    preset: str = "fast",
    fit_seconds: float | None = None,
    seed: int = 0,
    temporal: bool | None = None,
    k: int = 2,
    causal: bool | None = None,
    int8: bool = False,
    fit_progress: Callable[[int, int, float, float], None] | None = None,
    progress: Callable[[int, int | None, int], None] | None = None,
    notify: Callable[[str], None] | None = None,
) -> VideoReport:
    """Denoise a video file, image sequence (folder or glob), camera index or stream URL into a
    video file or a folder of frames; one output frame per input frame, in order.

    ``model``: a checkpoint, .onnx or .engine, single-frame or temporal. None: fit on the first
    ``fit_frames`` frames (None: 8 for a temporal network, 4 for a single-frame one,
    ``video_flow.default_fit_frames``; ``preset``, ``fit_seconds``), export beside the output and
    stream. What is fitted: ``temporal`` True a network over windows of 2k+1 frames (``k``),
    False the single-frame network, None (the default) ``video_flow.video_fit_choice``'s: for a file the
    temporal one wherever a shipped temporal prior starts it (``video_flow.fit_first_frames``),
    for a camera or stream the causal one, in colour only up to a noise level;
    ``causal`` (None: for a camera index or stream URL, not for a file) the window's last 2k+1
    frames; ``int8``: export the fitted
    network in int8 for ONNX Runtime on a CPU, calibrated on the fitted frames. ``blend`` > 0: a motion-aware
    temporal blend (``sigma`` on the 0..255 scale, None = estimated); None: ``io.temporal.FUSED_BLEND``
    on a fused output, none without the fusion (``blend_threshold`` None: ``FUSED_BLEND``'s on a
    fused output, ``io.temporal.BLEND_THRESHOLD`` otherwise). ``fuse``: each denoised
    frame averaged with its neighbours' outputs, motion-compensated, where they agree
    (``temporal.fuse``: 3 frames each side, or the 4 before it for a causal model or a live
    source; ``fuse_frames`` frames each side, or twice that before, instead), its optical flow
    ``fuse_flow`` (``temporal.fuse.FUSION_FLOWS``); ``refine``: the
    fusion's Wiener step on the noisy frames (``temporal.refine``); ``unclip``: each output
    frame mapped back from the bias that clipping at black and white leaves in a denoiser of
    noisy data (``clipping``; ``sigma`` if given, else estimated). ``threads``: ONNX
    Runtime's or OpenVINO's CPU threads (None: its own choice); ``precision``: OpenVINO's (``runtime``
    "openvino": auto | bf16 | f32). Callbacks: ``fit_progress(step, total, loss,
    fraction)``, ``progress(written, total or None, skipped)``, ``notify(line)`` for each file
    written on the way (checkpoint, exported model). ``server``: denoise on a Triton server
    (see :func:`denoise_images`); nothing is fitted then."""
    from ..io.atomic import check_writable
    from ..io.video_formats import VIDEO_SUFFIXES
    from ..io.video_overwrite_guard import check_output_not_input
    from ..io.video_writers import check_codec
    from .runtime_choice import open_runtime, open_server

    output, say = Path(output), notify or (lambda line: None)
    spec = source_spec(source)
    if batch < 1:
        raise InputError("--batch must be at least 1")
    _check_fuse_flow(fuse_flow)
    if blend is not None and not 0.0 <= blend < 1.0:
        raise InputError(f"--blend must be in [0, 1) (0 = off), got {blend}")
    if fuse_frames is not None and not 1 <= fuse_frames <= MAX_FUSE_FRAMES:
        raise InputError(f"--fuse-frames must be between 1 and {MAX_FUSE_FRAMES}, got {fuse_frames}")
    fit_choices = temporal is not None or causal is not None or k != 2
    if model is not None and fit_choices:
        raise InputError("--temporal/--single-frame, --k and --causal/--centred choose what to fit without -m; "
                         "a model given with -m brings its own window")
    if server is not None and fit_choices:
        raise InputError("--temporal/--single-frame, --k and --causal/--centred fit a model here; "
                         "--server denoises with the server's")
    if int8 and (model is not None or server is not None):
        raise InputError("--int8 exports the network fitted here; for an existing checkpoint: "
                         "b2g-deploy export CHECKPOINT --onnx OUT.onnx --int8 --calibrate VIDEO")
    if temporal is False and (causal is not None or k != 2):
        raise InputError("--k and --causal/--centred choose the temporal window; drop --single-frame")
    if temporal is not False and not 1 <= k <= 8:
        raise InputError(f"--k must be between 1 and 8, got {k}")
    if model is None and server is None and mode != "single":  # refused before the fit, not after it
        raise InputError(f"--mode {mode} applies to a .pt checkpoint given with -m; without -m the "
                         "fitted model streams as exported (denoise again with -m CHECKPOINT --mode flips)")
    check_output_not_input(spec, output)  # force or not: never overwrite the input
    _check_sink_free(output, force)  # before minutes of fitting, not after
    if output.suffix.lower() in VIDEO_SUFFIXES:
        check_codec(output, codec)
    report = VideoReport(output)
    if model is None and server is None:
        from .video_flow import companion_paths, export_for_here, fit_first_frames, video_fit_choice

        checkpoint, onnx, engine = companion_paths(output)
        for path in (checkpoint, onnx, engine):
            check_writable(path, force)
        probe = _open(spec, None, reconnects)  # the fit follows the video: grey or colour
        info = probe.info
        probe.close()
        choice = video_fit_choice(temporal, causal, k, _is_live(spec), info.channels)
        fitted = fit_first_frames(spec, info, checkpoint, fit_frames=fit_frames, preset=preset,
                                  fit_seconds=fit_seconds, device=device, seed=seed, temporal=choice.temporal, k=k,
                                  causal=choice.causal, force=force, progress=fit_progress,
                                  # unfused, the priors beat the fits on a 720p clip; fused, the fits won
                                  check_prior=not fuse, temporal_max_sigma=choice.temporal_max_sigma,
                                  stream_check=dict(live=_is_live(spec), blend=blend, blend_threshold=blend_threshold,
                                                    sigma=sigma, fuse=fuse, fuse_flow=fuse_flow,
                                                    fuse_frames=fuse_frames, refine=refine, unclip=unclip))
        kind = " temporal" if fitted.checkpoint.is_temporal else ""
        say(f"wrote {checkpoint} ({len(fitted.checkpoint.meta['frames'])} frames,{kind} "
            f"{fitted.steps} steps, {fitted.seconds:.1f} s)")
        report.checkpoint, report.notes = checkpoint, [*choice.notes, *fitted.notes]
        if fitted.interrupted:
            report.interrupted = True
            return report
        model = export_for_here(checkpoint, onnx, engine, info, runtime=runtime, batch=batch, force=force,
                                notify=say, int8_frames=fitted.frames if int8 else None)
    report.model = Path(model) if model is not None else None
    opened = (open_server(server, server_model, model, runtime=runtime, device=device, mode=mode,
                          precision=precision)
              if server is not None else open_runtime(Path(model), runtime, device, mode, passes, threads=threads,
                                                      precision=precision))
    with opened as rt:
        # The model decides the channels: a colour model reads a grey video as three equal
        # planes; a grey model on a colour video is refused by the reader.
        reader = _open(spec, rt.info.channels, reconnects)
        try:
            stats = _stream(reader, rt, output, codec=codec, bit_depth=bit_depth, force=force, batch=batch,
                            blend=blend, blend_threshold=blend_threshold, sigma=sigma, limit=limit,
                            progress=progress, fuse=fuse, fuse_flow=fuse_flow, fuse_frames=fuse_frames,
                            refine=refine, unclip=unclip, live=_is_live(spec))
        finally:
            reader.close()
    report.streamed, report.runtime, report.announced = True, rt.name, reader.info.frame_count
    report.written, report.skipped, report.reconnects = stats.written, stats.skipped, stats.reconnects
    report.skipped_frames = stats.skipped_frames
    report.missing, report.seconds, report.interrupted = stats.missing, stats.seconds, stats.interrupted
    return report


def _is_live(spec: str) -> bool:
    """A camera index or a stream URL: no end to wait for, and no lookahead wanted."""
    return spec.isdigit() or "://" in spec


def _open(spec: str, channels: int | None, reconnects: int) -> Any:
    from ..io.video_readers import open_source

    if _is_live(spec):  # only live sources reconnect
        return open_source(spec, channels, reconnects=reconnects)
    return open_source(spec, channels)


def _stream(source: Any, runtime: Any, output: Path, *, codec: str, bit_depth: int | None, force: bool,
            batch: int, limit: int | None, progress: Callable[[int, int | None, int], None] | None,
            live: bool = False, **finishing: Any):
    """``source`` through ``runtime`` and ``finishing_steps(runtime, live=live, **finishing)``
    into a new video file or folder ``output``."""
    from ..io.pipeline import check_channels, run_pipeline
    from ..io.video_writers import open_sink

    check_channels(runtime, source)
    steps = finishing_steps(runtime, live=live, **finishing)  # before the sink: a bad option leaves no file
    sink = open_sink(output, source.info, codec, bit_depth, force)
    total = source.info.frame_count
    if limit is not None:
        total = min(limit, total or limit)
    on_frame = (lambda stats: progress(stats.written, total, stats.skipped)) if progress else None
    # A file's next windows are aligned while the network runs (io.pipeline.TemporalFeeder);
    # a live source's frames leave as soon as they are denoised.
    return run_pipeline(source, runtime, sink, batch=batch, limit=limit, progress=on_frame, prepare_ahead=not live,
                        **steps)


def finishing_steps(runtime: Any, *, blend: float | None = None, blend_threshold: float | None = None,
                    sigma: float | None = None, fuse: bool = True, fuse_flow: str = "fine",
                    fuse_frames: int | None = None, refine: bool = True, unclip: bool = True,
                    live: bool = False) -> dict[str, Any]:
    """What follows ``runtime``'s network in a stream, as ``io.pipeline.run_pipeline``'s
    ``fuse``, ``unclip`` and ``blend`` (options as :func:`denoise_video`'s; ``live``: a camera or
    stream, nothing read ahead). The stream and the check that picks a video's network
    (``api.recorrupted_choice``) build them here, so the check judges what is streamed."""
    from ..io.temporal import BLEND_THRESHOLD, FUSED_BLEND, TemporalBlend

    if blend is None:  # a light blend on a fused output (io.temporal.FUSED_BLEND), none on a network's own
        blend = FUSED_BLEND[0] if fuse else 0.0
    if blend_threshold is None:
        blend_threshold = FUSED_BLEND[1] if fuse else BLEND_THRESHOLD
    blender = TemporalBlend(blend, blend_threshold, sigma / 255.0 if sigma is not None else None) if blend > 0 else None
    fuser = None
    if fuse:
        from ..temporal.fuse_stream import OutputFuser

        # Its own window (chosen on held-out clips), past frames only where the model or the
        # source wants no lookahead.
        causal = bool(getattr(runtime, "temporal", False) and runtime.causal) or live
        # Windows fused side by side, one per core up to 4 (a 720p window with the Wiener step is
        # ~0.6 s of one core): with the network in OpenVINO it no longer fills a core of a 2-core
        # CPU, and a second worker there made the 2-thread streams 12-21% faster (docs/BENCHMARKS.md,
        # "OpenVINO on the CPU"; with ONNX Runtime's slower network it had gained nothing). A live
        # source keeps one: a pooled window comes back up to `workers` frames later.
        workers = 1 if live else max(1, min(4, os.cpu_count() or 1))
        fuser = OutputFuser(k=fuse_frames, causal=causal, sigma=sigma / 255.0 if sigma is not None else None,
                            flow=fuse_flow, refine=refine, workers=workers)  # "lk": on the GPU where there is one
    unclipper = None
    if unclip:
        from ..clipping import Unclipper

        # Every frame a reader gives was clipped to its bit depth's range (docs/METHOD_NOTES.md,
        # "Clipping's bias").
        unclipper = Unclipper(sigma / 255.0 if sigma is not None else None)
    return {"fuse": fuser, "unclip": unclipper, "blend": blender}


def _check_fuse_flow(flow: str) -> None:
    """``temporal.fuse.check_flow`` before any work, as the one-line error the CLI prints."""
    from ..temporal.fuse import FUSION_FLOWS, check_flow

    try:
        check_flow(flow)
    except ValueError:
        raise InputError(f"--fuse-flow must be one of {', '.join(FUSION_FLOWS)}, got {flow!r}") from None


def _check_sink_free(output: Path, force: bool) -> None:
    """Refuse an existing output before minutes of fitting, not after."""
    from ..errors import OutputExistsError

    if output.exists() and not force and (output.is_file() or any(output.iterdir())):
        raise OutputExistsError(f"{output} exists; pass --force to overwrite it")
