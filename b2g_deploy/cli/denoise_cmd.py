"""`b2g-deploy denoise INPUT -o OUTPUT [-m MODEL]`: images and folders (``api.denoise_images``),
video files, sequences, cameras and streams (``api.denoise_video``, which fits on the first
frames when no model is given). This module parses, prints and maps errors to exit codes."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import InputError
from ._common import LazyBar, Rate, user_errors


@user_errors
def denoise_command(
    input: Annotated[Path, typer.Argument(
        metavar="INPUT", help="an image, a folder of images, a video, a camera index or a stream URL")],
    output: Annotated[Path, typer.Option("-o", "--output", help="output image, or folder for a folder")],
    model: Annotated[Optional[Path], typer.Option("-m", "--model", help=".pt checkpoint, .onnx or .engine; video: omit to fit on the first frames")] = None,
    runtime: Annotated[str, typer.Option(help="auto (by file type) | torch | onnxruntime | openvino (an .onnx file on the CPU) | tensorrt")] = "auto",
    device: Annotated[str, typer.Option(help="torch: cpu | cuda | auto; onnxruntime: cpu | cuda | tensorrt | auto")] = "auto",
    precision: Annotated[Optional[str], typer.Option(help="openvino (the runtime of an .onnx file on the CPU where it is installed): f32 (the default: ONNX Runtime's outputs, the 720p temporal network ~1.4x faster) | bf16 (~2.2x faster than ONNX Runtime; outputs within ~1e-3: fused on held-out clips -0.01 dB at sigma 25, -0.03 at 10; -0.08 on the cockatoo clip at 25) | auto (bf16 where the CPU computes it natively, else f32)")] = None,
    tile: Annotated[Optional[int], typer.Option(help="denoise frames larger than N x N in overlapping tiles")] = None,
    batch: Annotated[int, typer.Option(help="frames (or tiles) per call")] = 1,
    mode: Annotated[str, typer.Option(help="torch checkpoints only: single | ensemble | flips (f(y) averaged over flips/turns, as fit writes; a temporal checkpoint: single | flips)")] = "single",
    passes: Annotated[int, typer.Option(help="torch checkpoints only: ensemble masks, or flips 2 | 4 | 8")] = 8,
    force: Annotated[bool, typer.Option("--force", help="overwrite existing outputs")] = False,
    fit_frames: Annotated[Optional[int], typer.Option(help="video without -m: fit on this many first frames (default 8 and at least one window of 2k+1; --single-frame: 4)")] = None,
    preset: Annotated[str, typer.Option(help="video without -m: fitting preset (paper | fast | tiny)")] = "fast",
    codec: Annotated[str, typer.Option(help="video output: ffv1 (lossless, .mkv) | hfyu (lossless HuffYUV, .mkv/.avi: ~5x faster to write, ~2.5x larger) | mp4v | mjpg")] = "ffv1",
    blend: Annotated[Optional[float], typer.Option(help="video: motion-aware temporal blend strength, 0 = off; default 0.12 on the fused output (held-out clips: no PSNR lost, a little less flicker), off with --no-fuse")] = None,
    fuse: Annotated[bool, typer.Option("--fuse/--no-fuse", help="video: average each output with its neighbours' where they agree after motion compensation (+0.3 to +1.9 dB measured; its optical flow runs on the CPU: --no-fuse or --fuse-flow lk for GPU throughput)")] = True,
    fuse_flow: Annotated[str, typer.Option(help="video, --fuse: the fusion's optical flow: fine (a vector per pixel of the half-size guide, bicubic warps) | medium (DIS medium, bilinear: flows ~3x cheaper; measured 0.3-0.6 dB lower on held-out clips, 256x256 and 720p, within 0.1 dB on the cockatoo clip) | lk (the whole fusion in torch with a Lucas-Kanade flow, on the GPU where there is one: for a network on a GPU; held-out clips 0.06-0.11 dB under fine, the cockatoo clip 0.22 / 0.00 at sigma 25 / 50, on the CPU 5x its time)")] = "fine",
    fuse_frames: Annotated[Optional[int], typer.Option(help="video, --fuse: frames fused each side (default 3; a causal model or a live source fuses the 2N before, by default 4). Wider helps a steady camera (held-out pans: +0.2-0.5 dB at 5) and costs a moving one (the 720p cockatoo clip: -0.07 dB at 5, -0.17 at 7); the fusion takes ~1.2x its time at 5, ~1.5x at 7")] = None,
    refine: Annotated[bool, typer.Option("--refine/--no-refine", help="video, --fuse: also average the noisy frames as the outputs are averaged and Wiener-filter that with the fused frame as pilot (held-out clips: +0.4 dB at sigma 25, +0.2 at 50; ~0.3 s more a 720p frame on one CPU core)")] = True,
    unclip: Annotated[bool, typer.Option("--unclip/--no-unclip", help="video: map each output back from the bias that clipping at black and white leaves in a denoiser of noisy data (Foi 2009; held-out clips: +0.2 to +1 dB at sigma 25, +1 to +2 at 50, most where the picture is near black or white)")] = True,
    frames_limit: Annotated[Optional[int], typer.Option(help="video: stop after N frames")] = None,
    temporal: Annotated[Optional[bool], typer.Option("--temporal/--single-frame", help="video without -m: fit, export and stream a network over windows of 2k+1 frames (the default for a video file wherever a shipped temporal prior starts it, colour or grey; held-out colour clips: +0.45 / +0.30 dB over --single-frame at sigma 25 / 50, for ~1.8x the time to fit), or the single-frame network. A camera or stream gets the causal temporal network, in colour only where the first frames' noise level is at most 35 of 255 (as a stream on held-out colour clips it measured +0.25 / +0.24 / +0.10 / -0.11 dB against the single-frame network at sigma 15 / 25 / 35 / 50 on 256x256 clips, +0.74 / +0.70 at 25 / 50 on 720p ones; in grey +0.68 / +1.11 at 25 / 50); --temporal --centred, k frames of delay: +0.46 / +0.32 in colour. Unasked, a video then gets whichever of the temporal network and the single-frame fit it started from streams better on the fitted frames, recorrupted (noise up to 55 of 255 in colour, 40 in grey; a note says which)")] = None,
    k: Annotated[int, typer.Option("--k", help="temporal: window half-width, 2k+1 frames")] = 2,
    causal: Annotated[Optional[bool], typer.Option("--causal/--centred", help="temporal: frames t-2k..t (no lookahead once a stream's first 2k+1 frames are in; the default for a camera or stream) or t-k..t+k (the default for a file; on a stream k frames of delay)")] = None,
    int8: Annotated[bool, typer.Option("--int8", help="video without -m: export the fitted network in int8 for ONNX Runtime on a CPU, calibrated on the fitted frames (~1.5x faster network)")] = False,
    server: Annotated[Optional[str], typer.Option(help="denoise on a Triton server: http://HOST:PORT or grpc://HOST:PORT (-m, if given: the .onnx it should hold)")] = None,
    server_model: Annotated[str, typer.Option(help="--server: the model's name there")] = "b2g_denoiser",
) -> None:
    """Denoise INPUT with a fitted MODEL (or on a Triton --server) and write OUTPUT (same names
    for a folder)."""
    from .. import api

    if api.is_video_job(input, output):  # video files, cameras, streams, folder -> video file
        return _denoise_video(api, input, output, model, runtime=runtime, device=device, precision=precision, batch=batch, force=force,
                              fit_frames=fit_frames, preset=preset, codec=codec, blend=blend, fuse=fuse, fuse_flow=fuse_flow, fuse_frames=fuse_frames, refine=refine, unclip=unclip, limit=frames_limit,
                              mode=mode, passes=passes, temporal=temporal, k=k, causal=causal, int8=int8, server=server,
                              server_model=server_model)
    if temporal is not None or causal is not None or k != 2 or int8 or fuse_frames is not None:
        raise InputError("--temporal/--single-frame, --k, --causal/--centred, --int8 and --fuse-frames apply to video input")
    with LazyBar("denoising", "file") as bar:
        t0 = time.perf_counter()

        def on_skip(path: Path, why: str) -> None:
            if bar.bar is not None:
                bar.bar.console.print(f"skipped: {why}", markup=False, highlight=False, soft_wrap=True)
            else:
                typer.echo(f"skipped: {why}", err=True)

        def on_written(done: int, total: int, path: Path) -> None:
            rate = done / max(time.perf_counter() - t0, 1e-9)
            bar.update(done, total, file=path.name, rate=f"{rate:.2f} img/s")

        report = api.denoise_images(input, output, model, runtime=runtime, device=device, precision=precision, server=server,
                                    server_model=server_model, tile=tile, batch=batch,
                                    mode=mode, passes=passes, force=force, on_skip=on_skip, on_written=on_written)
    typer.echo(f"wrote {len(report.written)} image(s) to {output} with {report.runtime}")
    if report.skipped:
        typer.echo(f"warning: skipped {len(report.skipped)} of {report.total} images (named above)", err=True)


def _denoise_video(api, input: Path, output: Path, model: Optional[Path], **options) -> None:
    """The video branch: progress bars for the fit and the frames, the files written on the
    way, and exit 130 after an interrupt (the frames written are kept, the file plays)."""
    with LazyBar("fitting", "loss") as fit_bar, LazyBar("denoising", "skipped") as bar:
        steps, frames = Rate(), Rate()

        def say(line: str) -> None:
            fit_bar.stop()  # a file written: the fit is over
            typer.echo(line, err=True)

        def on_step(step: int, total: int, loss: float, done: float) -> None:
            fit_bar.update(int(done * total), total, loss=f"{loss:.5f}", rate=f"{steps(step):.1f} it/s")

        def on_frame(written: int, total: Optional[int], skipped: int) -> None:
            fit_bar.stop()  # the fit is over: its bar stops before the frames' starts
            bar.update(written, total, skipped=str(skipped), rate=f"{frames(written):.2f} fps")

        report = api.denoise_video(input, output, model, fit_progress=on_step, progress=on_frame, notify=say,
                                   **options)
    say = lambda line: typer.echo(line, err=True)  # noqa: E731
    for note in report.notes:
        say(f"note: {note}")
    if not report.streamed:  # interrupted while fitting
        say("interrupted while fitting: checkpoint kept, nothing denoised (pass it with -m)")
        raise typer.Exit(130)
    what = "interrupted: kept" if report.interrupted else "wrote"
    say(f"{what} {report.written} frames to {output} ({report.fps:.2f} fps end to end, {report.runtime};"
        f" {report.skipped} skipped, {report.reconnects} reconnects)")
    if report.skipped_frames:
        shown = report.skipped_frames[:20]
        more = f" and {len(report.skipped_frames) - 20} more" if len(report.skipped_frames) > 20 else ""
        say(f"skipped: {'; '.join(shown)}{more}")
    if report.missing:
        say(f"warning: {api.source_spec(input)} announces {report.announced} frames but ended after "
            f"{report.announced - report.missing}: {report.missing} missing (a truncated file?)")
    if report.interrupted:
        raise typer.Exit(130)
