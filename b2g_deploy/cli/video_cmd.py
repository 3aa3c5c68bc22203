"""Video for the CLI: frames to fit on (``fit VIDEO --frames N``) and ``denoise VIDEO``.

``denoise_video`` is the library entry the ``denoise`` command dispatches to for a video, an
image folder, a camera index or a stream URL. Without a model it is the one-command flow: fit
on the first frames, save the checkpoint and the exported model next to the output, and stream
every frame through the fastest runtime available here. With ``temporal`` the fit goes on to a
multi-frame network (``api.fit_temporal_stage``) and the exported temporal model streams
through a ring buffer of frames (``io.pipeline.TemporalFeeder``). A ``-m`` model that is
temporal (.pt or .onnx) is recognised by its metadata and streamed the same way.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import typer

from ..errors import InputError
from ._common import progress_bar


def companion_paths(output: Path) -> tuple[Path, Path]:
    """Where the one-command flow keeps its checkpoint and exported model: beside the output."""
    stem = output.parent / (output.stem if output.suffix else output.name)
    return stem.with_name(stem.name + ".b2g.pt"), stem.with_name(stem.name + ".onnx")


@dataclass
class VideoOptions:
    fit_frames: int = 4
    preset: str = "fast"
    fit_seconds: float | None = None
    device: str = "auto"
    seed: int = 0
    runtime: str | None = None
    batch: int = 4
    codec: str = "ffv1"
    bit_depth: int | None = None
    blend: float = 0.0
    blend_threshold: float = 0.3
    sigma: float | None = None  # noise sigma on a 0..255 scale for the blend; None = estimated
    limit: int | None = None
    reconnects: int = 3
    mode: str = "single"  # .pt models only: single | ensemble (exported models carry their mode)
    passes: int = 8
    force: bool = False
    temporal: bool = False  # without a model: fit a temporal network after the single-frame one
    k: int = 2
    causal: bool = False
    server: str | None = None  # a Triton server URL: frames are denoised there (runtimes.triton_client)
    server_model: str = "b2g_denoiser"


def _fit_first_frames(source_spec: str, opts: VideoOptions, ckpt_path: Path):
    """Fit on the first ``fit_frames`` frames and save the checkpoint; returns the Checkpoint.

    Ctrl-C while fitting keeps the checkpoint as it stands and ends the command (exit 130)
    without streaming: a half-fitted network should be a choice (``-m`` it), not a surprise.
    """
    import torch

    from ..checkpoint import Checkpoint, save_checkpoint
    from ..config import preset as get_preset
    from ..io.video import read_frames
    from ._common import fit_with_progress, resolve_device

    if opts.fit_frames < 1:
        raise InputError("--fit-frames must be at least 1")
    if opts.temporal and opts.fit_frames < 2:
        raise InputError("--temporal needs at least 2 frames to fit on; pass --fit-frames N with N >= 2")
    from ..priors import starting_network

    frames = read_frames(source_spec, limit=opts.fit_frames)
    net, cfg, init_label = starting_network(None, frames[0].shape[0], get_preset(opts.preset))
    result = fit_with_progress(
        torch.from_numpy(np.stack(frames)), cfg, net=net, device=resolve_device(opts.device),
        seed=opts.seed, time_budget=opts.fit_seconds,
    )
    meta = {
        "preset": opts.preset, "seed": opts.seed, "steps": result.steps, "seconds": round(result.seconds, 3),
        "interrupted": result.interrupted, "source": Path(source_spec).name, "frames": list(range(len(frames))),
        "size": list(frames[0].shape[-2:]), "bit_depth": 8, "history": result.history, "init": init_label,
    }
    net, interrupted = result.net, result.interrupted
    if opts.temporal and not interrupted:
        from ..api import fit_temporal_stage

        stage = fit_temporal_stage(torch.from_numpy(np.stack(frames)), result.net, cfg, k=opts.k,
                                   causal=opts.causal, device=resolve_device(opts.device), seed=opts.seed,
                                   time_budget=opts.fit_seconds)
        for note in stage.notes:
            typer.echo(f"note: {note}", err=True)
        meta["temporal_fit"] = stage.record
        net, interrupted = stage.net, stage.interrupted
        meta["interrupted"] = interrupted
    ckpt = Checkpoint(net.cpu().eval(), cfg, meta)
    save_checkpoint(ckpt_path, ckpt, force=opts.force)
    kind = " temporal" if ckpt.is_temporal else ""
    typer.echo(f"wrote {ckpt_path} ({len(frames)} frames,{kind} {result.steps} steps, {result.seconds:.1f} s)", err=True)
    if interrupted:
        typer.echo("interrupted while fitting: checkpoint kept, nothing denoised (pass it with -m)", err=True)
        raise typer.Exit(130)
    return ckpt


def _tensorrt_usable() -> bool:
    import importlib.util

    import torch

    return importlib.util.find_spec("tensorrt") is not None and torch.cuda.is_available()


def _export_fastest(ckpt_path: Path, onnx_path: Path, info, opts: VideoOptions) -> Path:
    """Export the fitted network for the fastest runtime here and return the model to load.

    TensorRT (fp32 engine for this frame size) when it and a GPU are present; otherwise the
    .onnx file, which the runtime factory runs on ORT CUDA when onnxruntime-gpu has a GPU, else
    on ORT CPU. ORT CPU rather than torch eager on a CPU because it measured ~2.8x faster on a
    720p frame with the fast preset's width-32 network on the 2-core CPU this was built on
    (docs/BENCHMARKS.md, "Video").
    """
    from ..checkpoint import checkpoint_is_temporal
    from ..export.onnx_export import export_onnx

    if checkpoint_is_temporal(ckpt_path):  # no TensorRT path for windows yet: ORT
        from ..temporal.export import export_temporal_checkpoint

        export_temporal_checkpoint(ckpt_path, onnx_path, force=opts.force)
        typer.echo(f"wrote {onnx_path} (temporal)", err=True)
        return onnx_path
    export_onnx(ckpt_path, onnx_path, force=opts.force)
    typer.echo(f"wrote {onnx_path}", err=True)
    if opts.runtime in (None, "auto", "tensorrt") and _tensorrt_usable():
        from ..export.engine_sidecar import Profile
        from ..export.tensorrt_build import build_engine

        engine = onnx_path.with_suffix(".engine")
        shape = (opts.batch, info.channels, info.height, info.width)
        profile = Profile(min=(1, *shape[1:]), opt=shape, max=shape)
        build_engine(onnx_path, engine, profile, fp16=False, force=opts.force)
        typer.echo(f"wrote {engine}", err=True)
        return engine
    return onnx_path


def _open_runtime(model: Path | None, opts: VideoOptions):
    from ..runtimes.factory import load_runtime, runtime_for
    from ..runtimes.temporal import is_temporal_model, load_temporal_runtime

    if opts.server is not None:  # -m, if given, is the model the server should hold
        from ..runtimes.triton_client import connect

        return connect(opts.server, opts.server_model, str(model) if model else None)

    if is_temporal_model(model):  # windows of frames through a ring buffer (io.pipeline)
        if opts.mode != "single":
            raise InputError("--mode ensemble does not apply to a temporal model")
        options: dict[str, Any] = {}
        if model.suffix.lower() in (".pt", ".pth"):
            from ._common import resolve_device

            options["device"] = resolve_device(opts.device)
        elif opts.device in ("cpu", "cuda"):
            options["provider"] = opts.device
        return load_temporal_runtime(model, opts.runtime, **options)

    name = runtime_for(model, opts.runtime)
    options: dict[str, Any] = {}
    if name == "torch":
        from ._common import resolve_device

        options.update(device=resolve_device(opts.device), mode=opts.mode, passes=opts.passes)
    elif opts.mode != "single":
        raise InputError("--mode applies to .pt checkpoints; an exported model has its mode built in")
    if name == "onnxruntime" and opts.device in ("cpu", "cuda", "tensorrt"):
        options["provider"] = opts.device
    return load_runtime(model, name, **options)


def denoise_video(source_spec: str, output: Path, model: Path | None, opts: VideoOptions):
    """Denoise a whole video or stream into ``output``; returns the pipeline's stats."""
    from ..io.atomic import check_writable
    from ..io.video import check_output_not_input

    if opts.batch < 1:
        raise InputError("--batch must be at least 1")
    if model is not None and (opts.temporal or opts.causal or opts.k != 2):
        raise InputError("--temporal, --k and --causal choose what to fit without -m; "
                         "a model given with -m brings its own window")
    if opts.temporal and not 1 <= opts.k <= 8:
        raise InputError(f"--k must be between 1 and 8, got {opts.k}")
    if not opts.temporal and (opts.causal or opts.k != 2):
        raise InputError("--k and --causal choose the temporal window; add --temporal")
    check_output_not_input(source_spec, output)  # --force or not: never overwrite the input
    _check_sink_free(output, opts.force)  # before minutes of fitting, not after
    if model is None and opts.server is None:
        ckpt_path, onnx_path = companion_paths(output)
        for path in (ckpt_path, onnx_path, onnx_path.with_suffix(".engine")):
            check_writable(path, opts.force)
        probe = _open(source_spec, None, opts)  # the fit follows the video: grey or colour
        info = probe.info
        probe.close()
        _fit_first_frames(source_spec, opts, ckpt_path)
        model = _export_fastest(ckpt_path, onnx_path, info, opts)
    with _open_runtime(model, opts) as runtime:
        # The model decides the channels: a colour model reads a grey video as three equal
        # planes; a grey model on a colour video is refused by the reader.
        source = _open(source_spec, runtime.info.channels, opts)
        try:
            stats = _stream(source, runtime, output, opts)
        finally:
            source.close()
    what = "interrupted: kept" if stats.interrupted else "wrote"
    typer.echo(
        f"{what} {stats.written} frames to {output} ({stats.fps:.2f} fps end to end, {runtime.name};"
        f" {stats.skipped} skipped, {stats.reconnects} reconnects)", err=True,
    )
    if stats.missing:
        total = source.info.frame_count
        typer.echo(
            f"warning: {source_spec} announces {total} frames but ended after {total - stats.missing}:"
            f" {stats.missing} missing (a truncated file?)", err=True,
        )
    return stats


def _open(spec: str, channels: int | None, opts: VideoOptions):
    from ..io.video import open_source

    if spec.isdigit() or "://" in spec:
        return open_source(spec, channels, reconnects=opts.reconnects)
    return open_source(spec, channels)


def _stream(source, runtime, output: Path, opts: VideoOptions):
    from ..io.pipeline import check_channels, run_pipeline
    from ..io.temporal import TemporalBlend
    from ..io.video import open_sink

    check_channels(runtime, source)
    sink = open_sink(output, source.info, opts.codec, opts.bit_depth, opts.force)
    blend = None
    if opts.blend > 0:
        sigma = opts.sigma / 255.0 if opts.sigma is not None else None
        blend = TemporalBlend(opts.blend, opts.blend_threshold, sigma)
    total = source.info.frame_count
    if opts.limit is not None:
        total = min(opts.limit, total or opts.limit)
    with progress_bar("denoising", total, "skipped") as bar:
        task = bar.add_task("denoise", total=total, skipped=0, rate="")
        t0 = time.perf_counter()

        def on_frame(stats) -> None:
            fps = stats.written / max(time.perf_counter() - t0, 1e-9)
            bar.update(task, completed=stats.written, skipped=stats.skipped, rate=f"{fps:.2f} fps")

        return run_pipeline(source, runtime, sink, batch=opts.batch, blend=blend, limit=opts.limit, progress=on_frame)


def _check_sink_free(output: Path, force: bool) -> None:
    """Refuse an existing output before minutes of fitting, not after."""
    from ..errors import OutputExistsError

    if output.exists() and not force and (output.is_file() or any(output.iterdir())):
        raise OutputExistsError(f"{output} exists; pass --force to overwrite it")


def source_spec(input: Path | str) -> str:
    """The reader spec from a CLI argument: typer's Path folds ``rtsp://h/x`` to ``rtsp:/h/x``."""
    import re

    return re.sub(r"^([A-Za-z][A-Za-z0-9+.-]*):/(?!/)", r"\1://", str(input))


def is_video_job(input: Path | str, output: Path) -> bool:
    """Does ``denoise INPUT -o OUTPUT`` go through the video pipeline? Video files, cameras and
    URLs always; an image folder only when the output is a video file (folder -> folder of the
    same names stays the image path)."""
    from ..io.video import VIDEO_SUFFIXES, is_video_input

    spec = source_spec(input)
    if Path(spec).is_dir():
        return output.suffix.lower() in VIDEO_SUFFIXES
    return is_video_input(spec)


def run_video_cli(input: Path | str, output: Path, model: Path | None, runtime: str, device: str, **options: Any) -> None:
    """The ``denoise`` command's video branch: exit 130 after an interrupt (the frames written
    are kept, the file is playable), 0 otherwise."""
    opts = VideoOptions(runtime=None if runtime == "auto" else runtime, device=device, **options)
    stats = denoise_video(source_spec(input), output, model, opts)
    if stats.interrupted:
        raise typer.Exit(130)
