"""Denoise frames larger than a runtime accepts in overlapping tiles, blended without seams.

Every tile has the same size (the last one in a row or column is shifted back inside the frame),
so an engine or a compiled graph sees one shape only. Each tile's output is weighted by a
raised-cosine window that falls towards the tile's edges, where the network saw the least
context, and the weighted sum is divided by the summed weights: in the overlap the result fades
from one tile to the next, so no seam shows.

Why tiles and the whole frame differ at all: the network's convolutions see a finite
neighbourhood, but (1) tile borders are padded instead of showing real pixels, and (2) channel
attention pools over the whole input, so its gates come from the tile's statistics rather than
the frame's. The overlap hides (1); (2) is a small global shift, measured in tests/unit/test_tiling.py.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

Infer = Callable[[np.ndarray], np.ndarray]


def tile_starts(size: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of tiles of side ``tile`` covering ``size`` with at least ``overlap`` shared."""
    if size <= tile:
        return [0]
    stride = tile - overlap
    count = -(-(size - tile) // stride) + 1  # ceil
    # Spread the tiles evenly, so every overlap is >= the asked one and the last ends at the edge.
    return [round(i * (size - tile) / (count - 1)) for i in range(count)]


def window(tile: int, overlap: int) -> np.ndarray:
    """1-D weights: raised-cosine ramps of length ``overlap`` at both ends, 1 in between, > 0."""
    w = np.ones(tile, dtype=np.float32)
    ramp = min(overlap, tile // 2)
    if ramp > 0:
        t = (np.arange(ramp, dtype=np.float32) + 0.5) / ramp
        rise = 0.5 - 0.5 * np.cos(np.pi * t)
        w[:ramp], w[tile - ramp :] = rise, rise[::-1]
    return w


def infer_tiled(infer: Infer, frames: np.ndarray, tile: tuple[int, int], overlap: int = 32,
                batch: int = 1, multiple: int = 1) -> np.ndarray:
    """``infer`` over (B, C, H, W) ``frames`` in tiles of at most ``tile`` = (th, tw).

    With ``multiple`` the frame is first reflect-padded up to it, as whole-frame inference
    does, so tiles at the bottom and right edges see the same border as the whole frame would.
    """
    h0, w0 = frames.shape[-2:]
    ph, pw = (-h0) % multiple, (-w0) % multiple
    if (ph or pw) and (h0 > tile[0] or w0 > tile[1]) and ph < h0 and pw < w0:
        padded = np.pad(frames, ((0, 0), (0, 0), (0, ph), (0, pw)), mode="reflect")
        return _tiled(infer, padded, tile, overlap, batch)[..., :h0, :w0]
    return _tiled(infer, frames, tile, overlap, batch)


def _tiled(infer: Infer, frames: np.ndarray, tile: tuple[int, int], overlap: int, batch: int) -> np.ndarray:
    b, c, h, w = frames.shape
    th, tw = min(tile[0], h), min(tile[1], w)
    if (th, tw) == (h, w):
        return infer(frames)
    if overlap >= min(th, tw):
        raise ValueError(f"overlap {overlap} must be smaller than the tile {th}x{tw}")
    weight = np.outer(window(th, overlap if th < h else 0), window(tw, overlap if tw < w else 0))
    out = np.zeros((b, c, h, w), dtype=np.float64)
    norm = np.zeros((h, w), dtype=np.float64)
    spots = [(y, x) for y in tile_starts(h, th, overlap) for x in tile_starts(w, tw, overlap)]
    for i in range(0, len(spots), batch):
        group = spots[i : i + batch]
        # Tiles of all frames at these spots go through in one call: (len(group) * B, C, th, tw).
        tiles = np.concatenate([frames[:, :, y : y + th, x : x + tw] for y, x in group])
        result = infer(np.ascontiguousarray(tiles)).reshape(len(group), b, c, th, tw)
        for (y, x), res in zip(group, result):
            out[:, :, y : y + th, x : x + tw] += res * weight
            norm[y : y + th, x : x + tw] += weight
    return (out / norm).astype(np.float32)


def needs_tiling(shape: tuple[int, ...], limit: tuple[int, int] | None) -> bool:
    return limit is not None and (shape[-2] > limit[0] or shape[-1] > limit[1])
