"""Checkpoints: weights + config + metadata in one file, loadable with weights_only=True.

Only tensors, numbers, strings, lists and dicts go in, so ``torch.load(weights_only=True)``
reads it and a checkpoint can never run code. A file that is not ours is refused by its
``format`` key, not by guessing from its contents.
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

FORMAT = "b2g-deploy/checkpoint"
FORMAT_VERSION = 1
BIT_DEPTHS = (8, 16, 32)  # what an output is written back at; 32 = float TIFF


@dataclass
class Checkpoint:
    net: B2GNet
    config: FitConfig
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def channels(self) -> int:
        return self.net.channels


def save_checkpoint(path: str | Path, ckpt: Checkpoint, force: bool = False) -> None:
    path = Path(path)
    check_writable(path, force)
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "state_dict": {k: v.detach().cpu() for k, v in ckpt.net.state_dict().items()},
        "config": ckpt.config.model_dump(),
        "meta": {"channels": ckpt.channels, "package_version": __version__, **ckpt.meta},
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
        net = B2GNet(meta["channels"], config.model)
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
