"""`b2g-deploy fit NOISY`: fit B2G, write the denoised image and a checkpoint."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import numpy as np
import typer

from ..errors import InputError
from ._common import fit_with_progress, resolve_device, user_errors


def default_outputs(noisy: Path, output: Path | None, checkpoint: Path | None) -> tuple[Path, Path]:
    suffix = noisy.suffix if noisy.suffix.lower() in {".png", ".tif", ".tiff"} else ".png"
    output = output or noisy.with_name(f"{noisy.stem}_b2g{suffix}")
    checkpoint = checkpoint or output.with_suffix(".b2g.pt")
    return output, checkpoint


@user_errors
def fit_command(
    noisy: Annotated[Path, typer.Argument(help="noisy image (PNG/TIFF/JPEG, 8/16-bit, grey or RGB), or a video / image folder")],
    output: Annotated[Optional[Path], typer.Option("-o", "--output", help="denoised image")] = None,
    checkpoint: Annotated[Optional[Path], typer.Option("--checkpoint", help="checkpoint to write")] = None,
    preset: Annotated[str, typer.Option(help="paper | fast | tiny")] = "fast",
    config: Annotated[Optional[Path], typer.Option(help="TOML/JSON file of changes to the preset, e.g. [loss] omega = 0.0")] = None,
    iters: Annotated[Optional[int], typer.Option(help="iterations (default: the preset's)")] = None,
    time_budget: Annotated[Optional[float], typer.Option(help="stop fitting after SECONDS")] = None,
    device: Annotated[str, typer.Option(help="cpu | cuda | cuda:N | auto")] = "auto",
    seed: Annotated[int, typer.Option(help="seed for masks, crops and dropout")] = 0,
    init: Annotated[Optional[Path], typer.Option(help="fine-tune from this checkpoint")] = None,
    passes: Annotated[Optional[int], typer.Option(help="ensemble passes (default: the preset's)")] = None,
    single_pass: Annotated[bool, typer.Option("--single-pass", help="write f(y), not the ensemble")] = False,
    reference: Annotated[Optional[Path], typer.Option(help="clean image: print PSNR against it")] = None,
    force: Annotated[bool, typer.Option("--force", help="overwrite existing outputs")] = False,
    frames: Annotated[Optional[int], typer.Option(help="video input: fit one network on N frames spread over it")] = None,
) -> None:
    """Fit Blind2Grad to NOISY and write the denoised image and a reusable checkpoint."""
    import torch

    from ..checkpoint import Checkpoint, load_checkpoint, save_checkpoint
    from ..config import apply_changes, load_changes
    from ..config import preset as get_preset
    from ..fit import ensemble
    from ..fit.ensemble import single_pass as run_single_pass
    from ..io.images import check_image_output, default_bit_depth_for, read_image, write_image
    from ..io.atomic import check_writable
    from .video_cmd import load_fit_input

    if iters is not None and iters < 1:
        raise InputError("--iters must be at least 1")
    if time_budget is not None and time_budget <= 0:
        raise InputError("--time-budget must be positive")
    if passes is not None and passes < 1:
        raise InputError("--passes must be at least 1")
    dev = resolve_device(device)
    stack, info, frames_meta = load_fit_input(noisy, frames)  # (N, C, H, W); N = 1 for an image
    image = stack[0]
    cfg = get_preset(preset)
    if config is not None:
        cfg = apply_changes(cfg, load_changes(config), source=str(config))
    start_net = None
    if init is not None:
        earlier = load_checkpoint(init, channels=info.channels)
        # Fine-tuning keeps the architecture it was fitted with and, unless told, a fifth of
        # the preset's iterations: a new scene or gain needs an adjustment, not a fresh fit.
        cfg = cfg.model_copy(update={"model": earlier.config.model})
        iters = iters or max(cfg.iters // 5, 1)
        start_net = earlier.net
    cfg = cfg.with_overrides(iters=iters, ensemble_passes=passes)
    output, checkpoint = default_outputs(noisy, output, checkpoint)
    out_depth = default_bit_depth_for(output, info.bit_depth)
    check_image_output(output, out_depth, force)
    check_writable(checkpoint, force)
    clean = read_image(reference)[0] if reference is not None else None

    y = torch.from_numpy(image)  # the image, or the first fitted frame: what -o shows
    result = fit_with_progress(
        torch.from_numpy(stack), cfg, net=start_net, device=dev, seed=seed, time_budget=time_budget
    )
    meta = {
        "bit_depth": info.bit_depth,
        "preset": preset,
        "config_file": config.name if config else None,
        "seed": seed,
        "steps": result.steps,
        "seconds": round(result.seconds, 3),
        "interrupted": result.interrupted,
        "source": noisy.name,
        "size": [info.height, info.width],
        "history": result.history,
        "init": init.name if init else None,
        **frames_meta,  # video input: which frames were fitted on
    }
    save_checkpoint(checkpoint, Checkpoint(result.net, cfg, meta), force=force)
    if result.interrupted:
        typer.echo(f"interrupted after {result.steps} steps; checkpoint written", err=True)
    y_dev = y.to(dev)
    single = run_single_pass(result.net, y_dev).cpu()
    use_single = single_pass or result.interrupted  # after Ctrl-C, the quick pass, not 40 more
    out = single if use_single else ensemble(result.net, y_dev, cfg.ensemble_passes, cfg.mask.rate, seed).cpu()
    write_image(output, out.numpy(), out_depth, force=force)
    typer.echo(f"wrote {output} ({'single pass' if use_single else f'{cfg.ensemble_passes}-pass ensemble'})")
    typer.echo(f"wrote {checkpoint} ({result.steps} steps, {result.seconds:.1f} s)")
    if clean is not None:
        _report_psnr(clean, image, single.numpy(), out.numpy())


def _report_psnr(clean: np.ndarray, noisy: np.ndarray, single: np.ndarray, out: np.ndarray) -> None:
    from ..metrics import psnr

    if clean.shape != noisy.shape:
        raise InputError(f"--reference has shape {clean.shape}, the noisy image {noisy.shape}")
    typer.echo(
        f"PSNR noisy {psnr(noisy, clean):.2f} dB | single pass {psnr(single, clean):.2f} dB"
        f" | output {psnr(out, clean):.2f} dB"
    )
