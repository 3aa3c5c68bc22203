"""Checks every runtime applies at its public boundary: (B, C, H, W) float32, the model's C."""

from __future__ import annotations

import numpy as np

from ..errors import InputError


def check_frames(frames: np.ndarray, channels: int) -> np.ndarray:
    """A C-contiguous float32 (B, C, H, W) batch with the model's channel count, or InputError."""
    if not isinstance(frames, np.ndarray) or frames.ndim != 4:
        shape = getattr(frames, "shape", None)
        raise InputError(f"frames must be a (B, C, H, W) array, got shape {shape}")
    if frames.shape[1] != channels:
        raise InputError(f"the model takes {channels}-channel frames, got {frames.shape[1]}")
    if frames.shape[0] == 0:
        raise InputError("empty batch")
    return np.ascontiguousarray(frames, dtype=np.float32)


def pad_small(frames: np.ndarray, multiple: int) -> tuple[np.ndarray, int, int]:
    """Edge-pad frames with a side below ``multiple``: in-graph reflect padding needs pad < side."""
    h, w = frames.shape[-2:]
    ph, pw = max(multiple - h, 0), max(multiple - w, 0)
    if ph or pw:
        frames = np.pad(frames, ((0, 0), (0, 0), (0, ph), (0, pw)), mode="edge")
    return frames, h, w
