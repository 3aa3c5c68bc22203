"""Checkpoints: weights + config + metadata in one file, loadable with weights_only=True.

Only tensors, numbers, strings, lists and dicts go in, so ``torch.load(weights_only=True)``
reads it and a checkpoint can never run code. A file that is not ours is refused by its
``format`` key, not by guessing from its contents.

A temporal (multi-frame) network is saved the same way, with its window in
``meta["temporal"] = {"k", "causal", "window", "target_index"}``; ``load_checkpoint`` rebuilds a
:class:`~b2g_deploy.temporal.model.TemporalB2GNet` from it. A checkpoint without that key is a
single-frame :class:`~b2g_deploy.model.B2GNet`, as before.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from pydantic import ValidationError

from . import __version__
from .config import FitConfig
from .errors import CheckpointError
from .io.atomic import atomic_path, check_writable
from .model import B2GNet
from .temporal.model import TemporalB2GNet

FORMAT = "b2g-deploy/checkpoint"
FORMAT_VERSION = 1
BIT_DEPTHS = (8, 16, 32)  # what an output is written back at; 32 = float TIFF


@dataclass
class Checkpoint:
    net: B2GNet | TemporalB2GNet
    config: FitConfig
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def channels(self) -> int:
        return self.net.channels

    @property
    def is_temporal(self) -> bool:
        return isinstance(self.net, TemporalB2GNet)


def temporal_settings(net: TemporalB2GNet) -> dict[str, Any]:
    """The window a temporal net reads, as stored in ``meta["temporal"]``."""
    k = (net.window - 1) // 2
    causal = net.window > 1 and net.target_index == net.window - 1
    settings = {"k": k, "causal": causal, "window": net.window, "target_index": net.target_index, "align": net.align}
    if net.mixer:  # written only when there is one, so files without it read as before
        settings["mixer"] = net.mixer
    return settings


def save_checkpoint(path: str | Path, ckpt: Checkpoint, force: bool = False) -> None:
    path = Path(path)
    check_writable(path, force)
    meta = {"channels": ckpt.channels, "package_version": __version__, **ckpt.meta}
    meta.pop("temporal", None)  # the network decides, not a copied meta dict
    if isinstance(ckpt.net, TemporalB2GNet):
        meta["temporal"] = temporal_settings(ckpt.net)
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "state_dict": {k: v.detach().cpu() for k, v in ckpt.net.state_dict().items()},
        "config": ckpt.config.model_dump(),
        "meta": meta,
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def load_checkpoint(path: str | Path, channels: int | None = None) -> Checkpoint:
    """Load and rebuild the network; ``channels`` checks the input it will be used on."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path} does not exist or is not a file")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # unpickling refused, truncated zip, not a torch file at all
        raise CheckpointError(f"{path} is not a b2g-deploy checkpoint ({type(exc).__name__})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a b2g-deploy checkpoint")
    version = payload.get("format_version", 0)
    if not _is_int(version):
        raise CheckpointError(f"{path} is a damaged b2g-deploy checkpoint: format_version {version!r} "
                              "is not a number")
    if version > FORMAT_VERSION:
        raise CheckpointError(f"{path} was written by a newer b2g-deploy; upgrade to read it")
    try:
        config = FitConfig.model_validate(payload["config"])
        meta = _checked_meta(payload["meta"])
        net = _build_net(meta, config)
        net.load_state_dict(payload["state_dict"])
    except (KeyError, ValidationError, RuntimeError, ValueError, TypeError, AttributeError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CheckpointError(f"{path} is a damaged b2g-deploy checkpoint: {first}") from None
    net.eval()
    if channels is not None and channels != net.channels:
        raise CheckpointError(
            f"{path} was fitted on {net.channels}-channel images; this input has {channels}"
        )
    return Checkpoint(net, config, meta)


def _build_net(meta: dict[str, Any], config: FitConfig) -> B2GNet | TemporalB2GNet:
    """The network class the checkpoint holds: temporal when its meta names a window."""
    if "temporal" not in meta:
        return B2GNet(meta["channels"], config.model)
    t = meta["temporal"]
    if not isinstance(t, dict) or not _is_int(t.get("k")) or not 0 <= t["k"] <= 8 \
            or not isinstance(t.get("causal"), bool):
        raise ValueError(f"meta temporal {t!r} is not a window (k 0..8, causal true/false)")
    mixer = t.get("mixer", 0)
    if not _is_int(mixer) or not 0 <= mixer <= 256:
        raise ValueError(f"meta temporal mixer {mixer!r} is not 0..256 hidden channels")
    net = TemporalB2GNet.for_k(meta["channels"], t["k"], t["causal"], config.model, align=t.get("align", "none"),
                               mixer=mixer)
    for key in ("window", "target_index"):  # written for readers; must agree with k and causal
        if key in t and t[key] != getattr(net, key):
            raise ValueError(f"meta temporal {key} {t[key]!r} does not match k={t['k']} causal={t['causal']}")
    return net


def checkpoint_is_temporal(path: str | Path) -> bool:
    """Does ``path`` hold a temporal network? False for anything else (errors come on loading)."""
    try:
        payload = torch.load(Path(path), map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 - not ours or unreadable: load_checkpoint says why
        return False
    meta = payload.get("meta") if isinstance(payload, dict) and payload.get("format") == FORMAT else None
    return isinstance(meta, dict) and "temporal" in meta


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _checked_meta(meta: Any) -> dict[str, Any]:
    """The meta dict, with the fields code relies on checked: channels, and bit_depth if given."""
    if not isinstance(meta, dict):
        raise TypeError(f"meta is a {type(meta).__name__}, not a dict")
    if not _is_int(meta.get("channels")) or meta["channels"] < 1:
        raise ValueError(f"meta channels {meta.get('channels')!r} is not a positive whole number")
    if "bit_depth" in meta and not (_is_int(meta["bit_depth"]) and meta["bit_depth"] in BIT_DEPTHS):
        allowed = ", ".join(map(str, BIT_DEPTHS))
        raise ValueError(f"meta bit_depth {meta['bit_depth']!r} is not one of {allowed}")
    return dict(meta)


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
