"""`b2g-deploy pretrain DIR... -o prior.pt`: pretrain a prior on clean photographs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ._common import LazyBar, user_errors


@user_errors
def pretrain_command(
    corpus: Annotated[list[Path], typer.Argument(help="folders (searched recursively) or files of clean photographs")],
    output: Annotated[Path, typer.Option("-o", "--output", help="prior file to write (*.pt)")],
    objective: Annotated[Optional[str], typer.Option(help="noisy (default) or masked (MPI)")] = None,
    steps: Annotated[Optional[int], typer.Option(help="total steps of the run (default 40000)")] = None,
    time_budget: Annotated[Optional[float], typer.Option(help="stop after SECONDS; --resume continues")] = None,
    fit_to_budget: Annotated[bool, typer.Option("--fit-to-budget", help="with --time-budget: measure the speed, then set --steps so the run, learning-rate decay included, ends inside the budget")] = False,
    resume: Annotated[Optional[Path], typer.Option(help="continue the run saved in this prior file")] = None,
    grey: Annotated[bool, typer.Option("--grey", help="a one-channel prior for grey images")] = False,
    init_from: Annotated[Optional[Path], typer.Option(help="start from this prior (an RGB one for --grey is converted; a single-frame one for --temporal-k gets a zero neighbour head; a temporal one for a smaller k is widened, its added frames at zero weight)")] = None,
    init_rgb: Annotated[Optional[Path], typer.Option(hidden=True, help="old name of --init-from")] = None,
    temporal_k: Annotated[Optional[int], typer.Option(help="a temporal prior for windows of 2K+1 frames (synthetic motion)")] = None,
    causal: Annotated[bool, typer.Option("--causal", help="with --temporal-k: causal windows t-2K..t (live streams)")] = False,
    holdout: Annotated[Optional[int], typer.Option(help="photographs kept out of training, for the validation curve (default 16; a resumed run keeps its own)")] = None,
    config: Annotated[Optional[Path], typer.Option(help="TOML/JSON file of pretraining settings, or inline JSON: '{\"lr\": 2e-4}'")] = None,
    device: Annotated[str, typer.Option(help="cpu | cuda | cuda:N | auto")] = "auto",
    seed: Annotated[int, typer.Option(help="seed of crops, masks and noise")] = 0,
    save_every: Annotated[float, typer.Option(help="write the prior every SECONDS while running")] = 300.0,
    snapshots: Annotated[Optional[Path], typer.Option(help="folder for a copy every --snapshot-every steps")] = None,
    snapshot_every: Annotated[int, typer.Option(help="steps between snapshots")] = 0,
    force: Annotated[bool, typer.Option("--force", help="overwrite the output (or continue a run in place)")] = False,
) -> None:
    """Pretrain the B2G network on clean photographs: the prior a fit starts from."""
    from .. import api
    from ..config import load_changes

    if objective is not None and objective not in ("noisy", "masked"):
        from ..errors import InputError

        raise InputError(f"unknown objective '{objective}'; use noisy or masked")
    changes = load_changes(config) if config is not None else None
    # Flags override the config only when given: --temporal-k without --causal keeps a config's
    # "causal": true (it used to reset it to centred).
    if temporal_k is not None:
        changes = {**(changes or {}), "temporal_k": temporal_k}
    if causal:
        changes = {**(changes or {}), "causal": True}
    if init_from is not None and init_rgb is not None:
        from ..errors import InputError

        raise InputError("give --init-from once (--init-rgb is its old name)")
    _stop_cleanly_on_signals()
    with LazyBar("pretraining", "step", "loss") as bar:

        def on_step(step: int, total: int, loss: float) -> None:
            if step % 10 == 0 or step == total:
                bar.update(step, total, step=f"{step}/{total}", loss=f"{loss:.5f}")

        report = api.pretrain(
            corpus, output, objective=objective, steps=steps, time_budget=time_budget, resume=resume,
            init_from=init_from or init_rgb, grey=grey, holdout=holdout, device=device, seed=seed, changes=changes,
            force=force, save_every=save_every, snapshot_dir=snapshots, snapshot_every=snapshot_every,
            progress=on_step, fit_to_budget=fit_to_budget,
        )
    for note in report.notes:
        typer.echo(f"note: {note}", err=True)
    if report.skipped:
        typer.echo(f"skipped {len(report.skipped)} file(s): {'; '.join(report.skipped[:5])}"
                   f"{' ...' if len(report.skipped) > 5 else ''}", err=True)
    last = report.history[-1] if report.history else {}
    val = f", validation f(y) {last['val_psnr']:.2f} dB at sigma 25" if "val_psnr" in last else ""
    typer.echo(f"wrote {output}: step {report.steps}/{report.total_steps} ({report.steps_this_run} this run), "
               f"{report.seconds:.0f} s in all, {report.corpus_files} photographs{val}")
    if report.interrupted:
        typer.echo("interrupted; continue with --resume", err=True)
        raise typer.Exit(130)


def _stop_cleanly_on_signals() -> None:
    """SIGTERM (``kill``) and SIGINT stop the run like Ctrl-C: the prior is saved, resumable.
    A job started in the background by a non-interactive shell inherits SIGINT as ignored,
    so Python's own Ctrl-C handler is installed explicitly."""
    import signal

    def interrupt(signum, frame):  # noqa: ARG001
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, interrupt)
