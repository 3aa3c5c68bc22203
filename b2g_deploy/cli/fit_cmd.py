"""`b2g-deploy fit NOISY`: fit B2G, write the denoised image and a checkpoint (api.fit does it)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ._common import LazyBar, Rate, user_errors


@user_errors
def fit_command(
    noisy: Annotated[Path, typer.Argument(help="noisy image (PNG/TIFF/JPEG, 8/16-bit, grey or RGB), or a video / image folder")],
    output: Annotated[Optional[Path], typer.Option("-o", "--output", help="denoised image")] = None,
    checkpoint: Annotated[Optional[Path], typer.Option("--checkpoint", help="checkpoint to write")] = None,
    preset: Annotated[str, typer.Option(help="fast (from the prior) | scratch | paper | tiny")] = "fast",
    config: Annotated[Optional[Path], typer.Option(help="TOML/JSON file of changes to the preset, e.g. [loss] omega = 0.0, or inline JSON: '{\"iters\": 300}'")] = None,
    iters: Annotated[Optional[int], typer.Option(help="iterations (default: the preset's)")] = None,
    time_budget: Annotated[Optional[float], typer.Option(help="stop fitting after SECONDS")] = None,
    device: Annotated[str, typer.Option(help="cpu | cuda | cuda:N | auto")] = "auto",
    seed: Annotated[int, typer.Option(help="seed for masks, crops and dropout")] = 0,
    init: Annotated[Optional[str], typer.Option(help="prior (the shipped one) | none (from scratch) | a prior or checkpoint file; default: the preset's")] = None,
    passes: Annotated[Optional[int], typer.Option(help="ensemble passes (default: the preset's)")] = None,
    single_pass: Annotated[bool, typer.Option("--single-pass", help="write f(y) itself, not the ensemble or the mean over flips/turns")] = False,
    reference: Annotated[Optional[Path], typer.Option(help="clean image: print PSNR against it")] = None,
    force: Annotated[bool, typer.Option("--force", help="overwrite existing outputs")] = False,
    frames: Annotated[Optional[int], typer.Option(help="video input: fit one network on N frames spread over it (--temporal: the first N consecutive frames)")] = None,
    threads: Annotated[Optional[int], typer.Option(help="CPU threads (default: 1 for crop-based presets, whose steps are too small to share)")] = None,
    temporal: Annotated[bool, typer.Option("--temporal", help="video input: then fit a multi-frame network (windows of 2k+1 frames) if the noise is independent between frames")] = False,
    k: Annotated[int, typer.Option("--k", help="--temporal: window half-width, 2k+1 frames")] = 2,
    causal: Annotated[bool, typer.Option("--causal", help="--temporal: frames t-2k..t (no lookahead) instead of t-k..t+k")] = False,
    align: Annotated[str, typer.Option(help="--temporal: dis-fine (neighbours warped onto each frame with optical flow) | dis (a 10x cheaper flow) | lk (a torch flow: runs on the GPU with the network) | none")] = "dis-fine",
) -> None:
    """Fit Blind2Grad to NOISY and write the denoised image and a reusable checkpoint."""
    from .. import api

    with LazyBar("fitting", "loss") as bar:
        steps = Rate()

        def on_step(step: int, total: int, loss: float, done: float) -> None:
            bar.update(int(done * total), total, loss=f"{loss:.5f}", rate=f"{steps(step):.1f} it/s")

        report = api.fit(
            noisy, output, checkpoint, preset=preset, config=config, iters=iters, time_budget=time_budget,
            device=device, seed=seed, init=Path(init) if init not in (None, "prior", "none") else init,
            passes=passes, single_pass=single_pass, threads=threads, reference=reference, force=force, frames=frames,
            temporal=temporal, k=k, causal=causal, align=align, progress=on_step,
        )
    for note in report.notes:
        typer.echo(f"note: {note}", err=True)
    if report.interrupted:
        typer.echo(f"interrupted after {report.steps} steps; checkpoint written", err=True)
    typer.echo(f"wrote {report.output} ({report.what}; started from {report.init})")
    typer.echo(f"wrote {report.checkpoint} ({report.steps} steps, {report.seconds:.1f} s)")
    if report.psnr:
        p = report.psnr
        typer.echo(f"PSNR noisy {p['noisy']:.2f} dB | single pass {p['single']:.2f} dB | output {p['output']:.2f} dB")
    if report.interrupted:
        raise typer.Exit(130)
