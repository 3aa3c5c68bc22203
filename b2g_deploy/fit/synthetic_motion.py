"""Synthetic video windows from still photographs, for pretraining a temporal prior.

A clean photograph crop becomes a window of 2k+1 frames by sliding a camera over a larger crop:
each window gets a constant velocity (pixels per frame, uniform in [-motion_max, motion_max] on
each axis, a fifth of the windows static) and each frame a small jitter (hand shake, rolling
shutter), rounded to whole pixels so that no frame is blurred by interpolation. Independent
noise is added per frame afterwards (``fit.pretrain.add_training_noise``), so the temporal head
learns what real video offers: the same content, displaced, seen again with fresh noise
(docs/METHOD_NOTES.md, "Temporal prior").

With ``cfg.deform`` > 0 the neighbours are also bent by a smooth random displacement field
(one per window, growing with the distance from the target, up to ``deform`` px a frame, resampled
bilinearly): motion that is neither rigid nor whole-pixel, which optical flow follows only
approximately, as on real video. The target frame is never resampled.

With ``cfg.occluders`` > 0 that share of the windows also has a disc of another photograph of
the batch crossing it at a velocity of its own: a second motion that one flow field does not
describe, with occlusion at its edge. Why: a net pretrained on DIS-aligned windows of one rigid
motion (``cfg.align``) learns to trust its aligned neighbours everywhere, and real video shows it
the places where alignment fails.
"""

from __future__ import annotations

import math

import numpy as np

from ..config import PretrainConfig
from ..temporal import windows
from ..temporal.windows import window_size

_STATIC_SHARE = 0.2
_JITTER_SHARE = 0.3  # frames displaced by one extra pixel from the constant-velocity path


def window_frames(cfg: PretrainConfig) -> int:
    return window_size(cfg.temporal_k)


def target_slot(cfg: PretrainConfig) -> int:
    return windows.target_slot(cfg.temporal_k, cfg.causal)


def motion_margin(cfg: PretrainConfig) -> int:
    """Pixels a frame may be displaced from the target: crops are cut this much larger per side."""
    if cfg.temporal_k == 0:
        return 0
    farthest = target_slot(cfg)  # the target's distance to the window's first frame, the farthest
    return math.ceil(cfg.motion_max * farthest) + 1  # +1 for the jitter


def synthetic_windows(big: np.ndarray, cfg: PretrainConfig, rng: np.random.Generator) -> np.ndarray:
    """Windows (n, T*C, s, s) cut from clean crops ``big`` (n, C, s + 2m, s + 2m), m = motion_margin.

    Frames are stacked in time order on the channel axis, as ``TemporalB2GNet`` reads them; the
    target frame (``target_slot``) is the centre cut of each crop.
    """
    n, c, side, _ = big.shape
    m = motion_margin(cfg)
    s = side - 2 * m
    t_count, slot = window_frames(cfg), target_slot(cfg)
    out = np.empty((n, t_count * c, s, s), big.dtype)
    for i in range(n):
        _cut_rigid(big[i], out[i], slot, m, cfg, rng)
        if cfg.deform:
            _deform(out[i], cfg, rng)
        if cfg.occluders and rng.random() < cfg.occluders:
            _add_occluder(out[i], big[(i + 1) % n] if n > 1 else big[i, :, ::-1, ::-1], cfg, rng)
    return out


def _cut_rigid(crop: np.ndarray, frames: np.ndarray, slot: int, m: int, cfg: PretrainConfig,
               rng: np.random.Generator) -> list[tuple[int, int]]:
    """Fill ``frames`` (T*C, s, s) with whole-pixel cuts of ``crop`` (C, s + 2m, s + 2m) along one
    constant velocity (a fifth of the sequences static) with a pixel of jitter on some frames,
    frame ``slot`` the centre cut; returns each frame's (dy, dx) offset."""
    c, s = crop.shape[0], frames.shape[-1]
    v = np.zeros(2) if rng.random() < _STATIC_SHARE else rng.uniform(-cfg.motion_max, cfg.motion_max, 2)
    offsets = []
    for j in range(frames.shape[0] // c):
        offset = np.rint(v * (j - slot)).astype(int)
        if j != slot and rng.random() < _JITTER_SHARE:
            offset += rng.integers(-1, 2, 2)
        dy, dx = np.clip(offset, -m, m)
        offsets.append((int(dy), int(dx)))
        frames[j * c : (j + 1) * c] = crop[:, m + dy : m + dy + s, m + dx : m + dx + s]
    return offsets


def _add_occluder(window: np.ndarray, other: np.ndarray, cfg: PretrainConfig, rng: np.random.Generator) -> None:
    """Paste a disc of ``other`` (C, s + 2m, s + 2m) into every frame of ``window`` (T*C, s, s),
    moving rigidly (its texture with it) at its own whole-pixel velocity."""
    c, m = other.shape[0], motion_margin(cfg)
    s = window.shape[-1]
    t_count, slot = window_frames(cfg), target_slot(cfg)
    radius = rng.uniform(s / 8, s / 3)
    centre = rng.uniform(0, s, 2)
    v = rng.uniform(-cfg.motion_max, cfg.motion_max, 2)
    yy, xx = np.mgrid[0:s, 0:s]
    for j in range(t_count):
        dy, dx = np.clip(np.rint(v * (j - slot)).astype(int), -m, m)
        inside = (yy - centre[0] - dy) ** 2 + (xx - centre[1] - dx) ** 2 <= radius**2
        moved = other[:, m - dy : m - dy + s, m - dx : m - dx + s]
        frame = window[j * c : (j + 1) * c]
        frame[:, inside] = moved[:, inside]


def smooth_field(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A smooth random displacement field (h, w, 2), float32: 4x4 standard-normal draws,
    cubic-upsampled (unnormalised; callers scale it to the amplitude they want)."""
    import cv2

    return cv2.resize(rng.standard_normal((4, 4, 2)).astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC)


def _deform(window: np.ndarray, cfg: PretrainConfig, rng: np.random.Generator) -> None:
    """Resample every neighbour of ``window`` (T*C, s, s) at its pixels plus (j - slot) times a
    smooth random field of at most ``cfg.deform`` px (drawn on a 4x4 grid, cubic-upsampled)."""
    import cv2

    t_count, slot = window_frames(cfg), target_slot(cfg)
    c, s = window.shape[0] // t_count, window.shape[-1]
    field = smooth_field(rng, s, s)
    field *= rng.uniform(0, cfg.deform) / max(float(np.abs(field).max()), 1e-6)
    gy, gx = np.mgrid[0:s, 0:s].astype(np.float32)
    for j in range(t_count):
        if j == slot:
            continue
        mx, my = gx + (j - slot) * field[..., 0], gy + (j - slot) * field[..., 1]
        for ch in range(j * c, (j + 1) * c):
            window[ch] = cv2.remap(window[ch], mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def pair_margin(cfg: PretrainConfig) -> int:
    """``motion_margin`` for the sequences of ``synthetic_pairs``: one frame more, after the window."""
    t_count, slot = window_frames(cfg), target_slot(cfg)
    return math.ceil(cfg.motion_max * max(slot, t_count - slot)) + 1


def synthetic_pairs(big: np.ndarray, cfg: PretrainConfig, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Sequences of T + 1 frames (n, (T+1)*C, s, s) cut from clean crops ``big`` (n, C, s + 2m,
    s + 2m), m = ``pair_margin``, and per sequence the shift d (n, 2) with which the second
    window's target lands on the first's: frames 0..T-1 are one window (target ``target_slot``),
    frames 1..T the next one (target slot + 1), and pixel p of the first target shows what pixel
    p + d of the second shows. Rigid motion (a constant velocity, the same jitter as
    ``synthetic_windows``) at whole pixels, no deformation or occluder, so that d is exact."""
    n, c, side, _ = big.shape
    m = pair_margin(cfg)
    s = side - 2 * m
    t_count, slot = window_frames(cfg) + 1, target_slot(cfg)
    out = np.empty((n, t_count * c, s, s), big.dtype)
    shifts = np.empty((n, 2), np.int64)
    for i in range(n):
        offsets = _cut_rigid(big[i], out[i], slot, m, cfg, rng)
        shifts[i] = np.subtract(offsets[slot], offsets[slot + 1])
    return out, shifts
