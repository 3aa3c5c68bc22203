"""Prior files: a pretrained network in the checkpoint format, plus what resuming needs.

A prior is an ordinary b2g-deploy checkpoint (``load_checkpoint`` reads it, so ``fit --init``
takes a prior or an earlier fit alike) whose meta says ``kind = "prior"`` and records the
objective, the pretraining config, the corpus (file count and a hash of the file list), the
steps and seconds so far and the validation curve. A ``resume`` entry adds Adam's state, so
``pretrain --resume`` continues exactly where a run stopped, on this machine or another.

The shipped priors live in ``b2g_deploy/data/`` as package data (docs/PRIORS.md says how they
were made and the terms of the photographs they came from).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import torch
from pydantic import ValidationError

from . import __version__
from .checkpoint import FORMAT, FORMAT_VERSION, load_checkpoint, temporal_settings
from .config import FitConfig, ModelConfig, PretrainConfig
from .errors import CheckpointError
from .fit.pretrain import PretrainState
from .io.atomic import atomic_path
from .model import B2GNet
from .temporal.model import TemporalB2GNet, window_shape
from .temporal.windows import target_slot, window_size

SHIPPED = {3: "prior_rgb.pt", 1: "prior_grey.pt"}


def temporal_prior_name(channels: int, k: int, causal: bool) -> str:
    """The packaged temporal prior's file name, e.g. prior_rgb_t2.pt (k=2 centred), _t2c causal."""
    return f"prior_{'rgb' if channels == 3 else 'grey'}_t{k}{'c' if causal else ''}.pt"

# Fields of ModelConfig that change the weights' shapes; the rest (dropout, T-Standout,
# output) may differ between a prior and the fit that starts from it.
SHAPE_FIELDS = ("width", "depth", "norm", "attention_reduction", "gradient_layer")


def save_prior(path: Path, state: PretrainState, cfg: PretrainConfig, corpus: dict[str, Any],
               extra_meta: dict[str, Any] | None = None) -> None:
    """Write atomically (a Ctrl-C mid-write leaves the previous file whole)."""
    extra_meta = dict(extra_meta or {})
    if isinstance(state.net, TemporalB2GNet):  # load_checkpoint rebuilds the window from it
        extra_meta["temporal"] = temporal_settings(state.net)
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "state_dict": {k: v.detach().cpu().contiguous() for k, v in state.net.state_dict().items()},
        "config": FitConfig(model=cfg.model).model_dump(),
        "meta": {
            "kind": "prior",
            "channels": state.net.channels,
            "package_version": __version__,
            "objective": cfg.objective,
            "pretrain_config": cfg.model_dump(),
            "corpus": corpus,
            "steps": state.step,
            "seconds": round(state.seconds, 1),
            "history": state.history,
            **(extra_meta or {}),
        },
        # On the CPU: a prior pretrained on a GPU must load with a plain torch.load anywhere.
        "resume": {"optimizer": _to_cpu(state.optimizer)} if state.optimizer is not None else None,
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def _to_cpu(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    if isinstance(value, dict):
        return {k: _to_cpu(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_to_cpu(v) for v in value)
    return value


def load_prior_state(path: Path) -> tuple[PretrainState, PretrainConfig, dict[str, Any]]:
    """A prior file as a resumable state, its pretraining config and its meta."""
    ckpt = load_checkpoint(path)
    meta = ckpt.meta
    if meta.get("kind") != "prior":
        raise CheckpointError(f"{path} is a fitted checkpoint, not a prior; --resume needs a prior file")
    try:
        cfg = PretrainConfig.model_validate(meta["pretrain_config"])
    except (KeyError, ValidationError) as exc:
        raise CheckpointError(f"{path} is a damaged prior: no valid pretraining config ({type(exc).__name__})") from None
    payload = torch.load(path, map_location="cpu", weights_only=True)
    resume = payload.get("resume") or {}
    state = PretrainState(ckpt.net, resume.get("optimizer"), int(meta.get("steps", 0)),
                          float(meta.get("seconds", 0.0)), list(meta.get("history", [])))
    return state, cfg, meta


def shipped_prior_path(channels: int) -> Path:
    """The packaged prior for grey (1) or RGB (3) images."""
    ref = resources.files("b2g_deploy") / "data" / SHIPPED[channels]
    path = Path(str(ref))
    if not path.is_file():
        raise CheckpointError(
            f"the shipped {'RGB' if channels == 3 else 'grey'} prior ({SHIPPED[channels]}) is missing from "
            "the installed package; reinstall b2g-deploy (pip install --force-reinstall b2g-deploy) "
            "or pass --init none"
        )
    return path


def check_compatible(prior: ModelConfig, wanted: ModelConfig, source: str) -> None:
    """Refuse a prior whose weights do not fit the network the fit will build."""
    diff = [f"{f} {getattr(prior, f)} vs {getattr(wanted, f)}" for f in SHAPE_FIELDS
            if getattr(prior, f) != getattr(wanted, f)]
    if diff:
        raise CheckpointError(f"{source} has another network shape than this preset ({', '.join(diff)})")


def grey_from_rgb(net: B2GNet | TemporalB2GNet) -> B2GNet | TemporalB2GNet:
    """A one-channel network that computes the RGB one on (g, g, g) and averages its outputs:
    a warm start for a grey prior (the head's weights summed over colours, the tail's averaged).
    A temporal network's heads are summed frame by frame (its neighbour head reads each frame's
    colours side by side), so a grey temporal prior starts as the RGB one on grey windows."""
    state = {k: v.clone() for k, v in net.state_dict().items()}
    if isinstance(net, TemporalB2GNet):
        grey: B2GNet | TemporalB2GNet = TemporalB2GNet(1, net.window, net.cfg, net.target_index, net.align, net.mixer)
        head, tail = "core.head.target.", "core.tail."
        if net.window > 1:
            weight = state["core.head.neighbours.weight"]
            out, frames = weight.shape[0], weight.shape[1] // 3
            state["core.head.neighbours.weight"] = weight.view(out, frames, 3, *weight.shape[2:]).sum(dim=2)
    else:
        grey, head, tail = B2GNet(1, net.cfg), "head.", "tail."
    state[head + "weight"] = state[head + "weight"].sum(dim=1, keepdim=True)
    state[tail + "weight"] = state[tail + "weight"].mean(dim=0, keepdim=True)
    state[tail + "bias"] = state[tail + "bias"].mean(dim=0, keepdim=True)
    grey.load_state_dict(state)
    return grey


def starting_network(init: str | Path | None, channels: int, cfg: FitConfig) -> tuple[B2GNet | None, FitConfig, str]:
    """The network a fit starts from and the config it fits with.

    ``init``: None = the preset's own choice (``cfg.init``); "prior" = the shipped prior for this
    channel count; "none" = from scratch; a path = a prior file or an earlier fit. A prior keeps
    the preset's recipe (its weights must fit the preset's network); an earlier fit keeps the
    network it was fitted with and, unless told, a fifth of the preset's steps: a new scene or
    gain needs an adjustment, not a fresh fit. Returns (network or None, config, what it was).
    """
    choice = cfg.init if init is None else init
    if str(choice) == "none":
        return None, cfg, "none"
    path = shipped_prior_path(channels) if str(choice) == "prior" else Path(choice)
    ckpt = load_checkpoint(path, channels=channels)
    if ckpt.is_temporal:
        raise CheckpointError(f"--init {path}: a temporal network starts only the temporal stage of "
                              "a fit with --temporal; give a prior or a single-frame checkpoint")
    label = "prior" if str(choice) == "prior" else path.name
    if ckpt.meta.get("kind") == "prior":
        check_compatible(ckpt.config.model, cfg.model, str(path))
        net = B2GNet(channels, cfg.model)
        net.load_state_dict(ckpt.net.state_dict())
        return net, cfg, label
    cfg = cfg.model_copy(update={"model": ckpt.config.model, "iters": max(cfg.iters // 5, 1)})
    return ckpt.net, cfg, label


def is_temporal_prior(path: str | Path) -> bool:
    from .checkpoint import checkpoint_is_temporal

    return Path(path).suffix == ".pt" and checkpoint_is_temporal(path)


def temporal_starting_network(init: str | Path | None, channels: int, k: int, causal: bool,
                              cfg: FitConfig) -> tuple[TemporalB2GNet | None, str]:
    """The temporal network a ``--temporal`` fit's temporal stage starts from, and its label.

    ``init`` "prior" (the fast preset's default): the packaged temporal prior for this window
    when there is one, else the packaged one for the widest narrower window of the same shape;
    a path to a temporal prior: that one. A prior for a narrower window of the same shape
    (centred or causal) is widened (``TemporalB2GNet.widened``: its added frames start at zero
    weight, so it is that prior on its own frames). Otherwise (None, "single-frame fit"): the
    stage starts from the single-frame fit with a zero neighbour head.
    """
    fallback = None, "single-frame fit"
    choice = cfg.init if init is None else init
    if str(choice) == "none":
        return fallback
    if str(choice) == "prior":
        data = Path(str(resources.files("b2g_deploy") / "data"))
        found = [p for p in (data / temporal_prior_name(channels, kk, causal) for kk in range(k, 0, -1))
                 if p.is_file()]
        if not found:
            return fallback
        path = found[0]
    else:
        path = Path(choice)
        if not is_temporal_prior(path):
            return fallback
    ckpt = load_checkpoint(path, channels=channels)
    net = ckpt.net
    assert isinstance(net, TemporalB2GNet)
    check_compatible(net.cfg, cfg.model, str(path))
    if (net.window, net.target_index) == (window_size(k), target_slot(k, causal)):
        return net, path.name
    net_k, net_causal = window_shape(net)
    if net_causal == causal and net_k < k:
        return net.widened(k), f"{path.name}, widened from k={net_k}"
    raise CheckpointError(f"{path} reads {net.window}-frame windows with the target in slot "
                          f"{net.target_index}; this fit asks for k={k} {'causal' if causal else 'centred'}")

