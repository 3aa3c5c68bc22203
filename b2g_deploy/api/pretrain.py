"""api.pretrain: pretrain (or continue pretraining) a prior on clean photographs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InputError, OutputExistsError


@dataclass
class PretrainReport:
    output: Path
    steps: int
    total_steps: int
    seconds: float
    steps_this_run: int
    interrupted: bool
    corpus_files: int
    skipped: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    history: list[dict[str, float]] = field(default_factory=list)


_RESUMABLE_KEYS = {"lr"}


def _check_prior_output(output: Path, resume: Path | None, force: bool) -> None:
    if output.suffix.lower() != ".pt":
        raise InputError(f"{output}: a prior is a torch file; name it *.pt")
    if not output.parent.is_dir():
        raise InputError(f"the folder {output.parent} does not exist")
    if output.is_dir():
        raise InputError(f"{output} is a folder, not a file")
    if output.exists() and not force:
        same = resume is not None and resume.resolve() == output.resolve()
        hint = " (to continue a run in place, add --force)" if same else ""
        raise OutputExistsError(f"{output} exists; pass --force to overwrite it{hint}")


def pretrain(
    roots: list[Path],
    output: Path,
    *,
    objective: str | None = None,
    steps: int | None = None,
    time_budget: float | None = None,
    resume: Path | None = None,
    init_from: Path | None = None,
    grey: bool = False,
    holdout: int | None = None,
    device: str = "cpu",
    seed: int = 0,
    changes: dict[str, Any] | None = None,
    force: bool = False,
    save_every: float = 300.0,
    snapshot_dir: Path | None = None,
    snapshot_every: int = 0,
    progress: Callable[[int, int, float], None] | None = None,
    fit_to_budget: bool = False,
) -> PretrainReport:
    """Pretrain (or, with ``resume``, continue pretraining) a prior on clean photographs.

    ``init_from`` starts the run from another prior: an RGB one for a grey run is converted
    (``priors.grey_from_rgb``), a single-frame one for a temporal run (``temporal_k`` in
    ``changes``) gets a zero neighbour head, so it begins as that prior on the target, and a
    temporal one for a wider window of the same shape is widened (``TemporalB2GNet.widened``:
    the frames added start at zero weight). The output
    is written every ``save_every`` seconds, at the end and on Ctrl-C; with ``snapshot_dir``,
    a copy every ``snapshot_every`` steps (for the PSNR-against-pretraining curve).
    ``fit_to_budget`` sets the step count from the measured speed so that the run, learning-rate
    decay included, ends inside ``time_budget`` (a fixed-time GPU run).
    """
    if steps is not None and steps < 1:
        raise InputError("--steps must be at least 1")
    if time_budget is not None and time_budget <= 0:
        raise InputError("--time-budget must be positive")
    if fit_to_budget and time_budget is None:
        raise InputError("--fit-to-budget needs --time-budget")
    if holdout is not None and holdout < 0:
        raise InputError("--holdout must be 0 or more")
    if not roots:
        raise InputError("give at least one folder of clean photographs")
    for root in roots:
        if not root.exists():
            raise InputError(f"{root} does not exist")
    _check_prior_output(output, resume, force)
    if snapshot_dir is not None and not snapshot_dir.is_dir():
        raise InputError(f"the snapshot folder {snapshot_dir} does not exist")

    import torch

    from ..config import PretrainConfig
    from ..devices import resolve_device
    from ..fit.pretrain import PretrainState
    from ..fit.pretrain import pretrain as run
    from ..io.corpus import load_corpus
    from ..model import B2GNet
    from ..fit.synthetic_motion import motion_margin
    from ..priors import load_prior_state, save_prior
    from ..temporal.model import TemporalB2GNet

    dev = resolve_device(device)
    notes: list[str] = []
    if resume is not None:
        state, cfg, meta = load_prior_state(resume)
        if objective is not None and objective != cfg.objective:
            raise InputError(f"{resume} was pretrained with the '{cfg.objective}' objective, not '{objective}'")
        if grey != cfg.grey:
            raise InputError(f"{resume} is a {'grey' if cfg.grey else 'RGB'} prior; "
                             f"{'drop' if cfg.grey is False else 'add'} --grey to resume it")
        # Only the learning rate may change on resume: a stable phase that spikes is continued
        # lower (docs/PRIORS.md); anything else would make the file describe another run.
        # A setting repeated with the run's own value (the command line it started with) is no change.
        fixed = sorted(k for k in set(changes or {}) - _RESUMABLE_KEYS if changes[k] != getattr(cfg, k, None))
        if fixed:
            raise InputError(f"cannot change {', '.join(f'{k} ({getattr(cfg, k, None)!r} in the run)' for k in fixed)} "
                             f"of a run being resumed (only {', '.join(sorted(_RESUMABLE_KEYS))} may change)")
        update: dict[str, Any] = {"steps": steps} if steps is not None else {}
        if changes and "lr" in changes:
            try:
                lr = float(changes["lr"])
            except (TypeError, ValueError):
                raise InputError(f"pretrain config: lr must be a number, not {changes['lr']!r}") from None
            if not lr > 0:
                raise InputError("pretrain config: lr must be positive")
            if lr != cfg.lr:
                notes.append(f"learning rate {cfg.lr:g} -> {lr:g} from step {state.step}")
            update["lr"] = lr
        cfg = cfg.model_copy(update=update)
        corpus_before = meta.get("corpus", {})
        if holdout is None:  # the same photographs held out as when the run started
            holdout = len(corpus_before.get("holdout", []))
    else:
        data: dict[str, Any] = dict(changes or {})
        data.update({k: v for k, v in {"objective": objective, "steps": steps}.items() if v is not None})
        data["grey"] = grey
        try:
            cfg = PretrainConfig.model_validate({**PretrainConfig().model_dump(), **data})
        except Exception as exc:  # pydantic's ValidationError: name the first bad key
            raise InputError(f"pretrain config: {str(exc).splitlines()[1:3]}") from None
        cfg.check()
        torch.manual_seed(seed)  # the initial weights, so a seed names the whole run
        if init_from is not None:
            net, cfg, init_steps = _start_from(init_from, cfg, notes)
        elif cfg.temporal_k:
            net = TemporalB2GNet.for_k(1 if grey else 3, cfg.temporal_k, cfg.causal, cfg.model,
                                       mixer=cfg.temporal_mixer)
        else:
            net = B2GNet(1 if grey else 3, cfg.model)
        state, corpus_before = PretrainState(net), {}
    cfg.check()
    holdout = 16 if holdout is None else holdout
    if state.step >= cfg.steps:
        raise InputError(f"the run is already at step {state.step} of {cfg.steps}; pass a larger --steps")

    corpus = load_corpus(roots, grey=cfg.grey, min_side=cfg.crop + 2 * motion_margin(cfg), holdout=holdout)
    summary = corpus.summary
    if corpus_before and corpus_before.get("sha256") != summary["sha256"]:
        notes.append("the corpus differs from the one this run started on (file list hash); continuing")
    if dev == "cpu":
        torch.set_num_threads(max(1, torch.get_num_threads()))
    extra: dict[str, Any] = {}
    if init_from is not None and resume is None:
        extra = {"init_from": init_from.name, "init_from_steps": init_steps}
    elif resume is not None:  # keep what the run started from
        extra = {k: meta[k] for k in ("init_from", "init_from_steps", "init_rgb") if k in meta}

    def save(s: PretrainState, c: PretrainConfig) -> None:
        save_prior(output, s, c, summary, extra)

    def snap(s: PretrainState, c: PretrainConfig) -> None:
        assert snapshot_dir is not None
        save_prior(snapshot_dir / f"{output.stem}.step{s.step:06d}.pt", s, c, summary, extra)

    result = run(
        corpus, cfg, state, device=dev, seed=seed, time_budget=time_budget, save=save,
        save_every=save_every, snapshot=snap if snapshot_dir else None, snapshot_every=snapshot_every,
        progress=progress, fit_to_budget=fit_to_budget,
    )
    if fit_to_budget and result.cfg is not None and result.cfg.steps != cfg.steps:
        notes.append(f"steps set to {result.cfg.steps} from the measured speed (--fit-to-budget)")
        cfg = result.cfg
    return PretrainReport(output, state.step, cfg.steps, state.seconds, result.steps_this_run,
                          result.interrupted, len(corpus.files), corpus.skipped, notes, state.history)


def _start_from(path: Path, cfg: Any, notes: list[str]) -> tuple[Any, Any, int]:
    """The network a new run starts from when it is given another prior, and its config (the
    network shape is the source's)."""
    from ..priors import grey_from_rgb, load_prior_state
    from ..temporal.model import TemporalB2GNet, window_shape
    from ..temporal.windows import target_slot, window_size

    src, _, src_meta = load_prior_state(path)
    net, done = src.net, []
    channels = 1 if cfg.grey else 3
    if isinstance(net, TemporalB2GNet):
        wanted = (window_size(cfg.temporal_k), target_slot(cfg.temporal_k, cfg.causal))
        k, causal = window_shape(net)
        if cfg.temporal_k and causal == cfg.causal and k < cfg.temporal_k:
            net = net.widened(cfg.temporal_k)  # a narrower prior of the same shape: outer frames start at zero
            done.append(f"widened from k={k}, the frames added read with zero weights")
        elif not cfg.temporal_k or (net.window, net.target_index) != wanted:
            shape = lambda c: "causal" if c else "centred"  # noqa: E731
            raise InputError(f"{path} is a temporal prior for {net.window}-frame {shape(causal)} windows; this run "
                             + (f"reads {wanted[0]}-frame {shape(cfg.causal)} ones" if cfg.temporal_k
                                else "is single-frame"))
    if net.channels != channels:
        if net.channels != 3:
            raise InputError(f"{path} is a {net.channels}-channel prior; this run is {'grey' if cfg.grey else 'RGB'}")
        net = grey_from_rgb(net)
        done.append("converted to grey")
    if cfg.temporal_k and not isinstance(net, TemporalB2GNet):
        net = TemporalB2GNet.from_single_frame(net, cfg.temporal_k, cfg.causal)
        if cfg.fusion_init == "mean":
            net.init_neighbours_as_mean()
        done.append("head reading the window's mean" if cfg.fusion_init == "mean" else "neighbour head zero")
    if isinstance(net, TemporalB2GNet):
        if cfg.temporal_mixer and not net.mixer:
            net = net.with_mixer(cfg.temporal_mixer)
            done.append(f"a {cfg.temporal_mixer}-channel head mixer added at zero")
        elif cfg.temporal_mixer and net.mixer != cfg.temporal_mixer:
            raise InputError(f"{path} has a {net.mixer}-channel head mixer; this run asks for {cfg.temporal_mixer}")
        cfg = cfg.model_copy(update={"temporal_mixer": net.mixer})
    # The source's whole lineage: a prior that itself continued another counts those steps too.
    steps = src.step + int(src_meta.get("init_from_steps", 0))
    notes.append(f"started from {path.name} ({steps} steps)" + "".join(f", {d}" for d in done))
    return net, cfg.model_copy(update={"model": net.cfg}), steps

