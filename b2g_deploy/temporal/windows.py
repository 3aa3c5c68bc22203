"""Which frames form the window of frame t, and a ring buffer that assembles windows from a stream.

A window has 2k+1 slots in time order:

- centred: frames t-k .. t+k, the target in the middle (slot k); k frames of lookahead.
- causal: frames t-2k .. t, the target last (slot 2k); no lookahead, for live streams.

At the clip edges the missing slots are filled as follows, and :func:`window_indices` is the one
place that decides it (the fit, the ring buffer and the tests all go through it):

- centred: the window holds the 2k+1 consecutive frames nearest t, so near an edge it reaches
  further in on the other side (t = 0, k = 2: frames 0..4), the target in the centre slot and the
  others in order of distance (slots -1, +1, -2, +2, ..., the earlier frame first at equal
  distance): inside the clip that is t-k..t+k. Every neighbour slot holds another frame, and the
  target never sits in one (its noise would reach the network unmasked and teach the blind-spot
  fit to copy it). This replaced a window reflected about the target (t = 0: frames 2, 1, 0, 1,
  2): a frame seen twice brings no new noise draw, and on held-out clips the nearest distinct
  frames scored +0.19 / +0.16 dB on the first and last two frames (sigma 25 / 50), +0.33 / +0.19
  once fused (docs/BENCHMARKS.md, "Windows at the clip's ends"). The fit on the clip
  (``temporal.fit``) still cuts reflected windows (``edges="reflected"``): fitted on windows of
  the nearest frames, its networks scored 0.09 dB lower alone and 0.03 fused on held-out clips.
- causal: inside the clip frames t-2k .. t. The first 2k frames (t < 2k) have too few frames
  before them, and their windows hold the nearest *other* frames among frames 0..2k, the
  target in the last slot and the others in order of distance back from it (slots -1, -2, ...;
  the earlier frame first at equal distance): frame 0, k = 2: frames 4, 3, 2, 1, 0. A stream
  therefore waits for frame 2k once, at its start (frames 0..2k then come out together), and
  has no lookahead after that. Until 2026-12-06 the missing slots replicated frame 0, so frame
  0's window was frame 0 in every slot: its own noise, unmasked in the neighbour slots, which a
  network fitted on other windows copies (a grey causal network scored 27.7 dB on frame 0 of a
  held-out clip at sigma 25 against 35.3 for the single-frame one; docs/BENCHMARKS.md, "Causal
  windows at a stream's start"). The fit on the clip still cuts those replicated windows
  (``edges="reflected"``) and skips frame 0's (:func:`window_sees_own_target`).
- clips shorter than the window (n < 2k+1), centred: a slot takes the frame t+d, else its
  reflection t-d, else the nearest frame on its own side, or if that is the target, the nearest
  on the other side; so every neighbour slot holds another frame whenever n >= 2 (some twice),
  and a 1-frame clip has the frame itself in every slot. Causal windows of such a clip take the
  other frames by distance, over again from the nearest when there are fewer than 2k.

:class:`RingBuffer` keeps the last 2k+1 frames of a stream and emits each frame's window exactly
once, in order: causal windows as soon as the frame arrives (the first 2k+1 together when frame
2k arrives), centred ones k frames later (the first k+1 together when frame 2k arrives, since
they reach up to it; the last k on :meth:`RingBuffer.flush`), identical to what
:func:`window_indices` gives for the whole clip.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from typing import Union

import numpy as np
import torch

from ..errors import InputError

Frame = Union[torch.Tensor, np.ndarray]  # (C, H, W)


class FrameSizeChangedError(InputError):
    """A stream changed frame size (or channel count) mid-window; a window needs equal frames."""


def window_size(k: int) -> int:
    """Frames in a window of half-width k (centred or causal): 2k+1."""
    return 2 * k + 1


def target_slot(k: int, causal: bool) -> int:
    """The target frame's slot in the window: the last for causal windows, the centre otherwise."""
    return 2 * k if causal else k


EDGES = ("nearest", "reflected")


def _centred_indices(t: int, n: int, k: int, edges: str) -> list[int]:
    if edges == "nearest" and n >= window_size(k):  # the 2k+1 consecutive frames nearest t, by distance
        first = min(max(t - k, 0), n - window_size(k))
        others = sorted((i for i in range(first, first + window_size(k)) if i != t), key=lambda i: (abs(i - t), i))
        by_slot = {0: t, **dict(zip((d for m in range(1, k + 1) for d in (-m, m)), others))}
        return [by_slot[d] for d in range(-k, k + 1)]
    return [_reflected_index(t, d, n) for d in range(-k, k + 1)]


def _causal_indices(t: int, n: int, k: int, edges: str) -> list[int]:
    if edges == "reflected" or t >= 2 * k:  # frame 0 replicated (the fit's windows), or t-2k..t
        return [max(t + d, 0) for d in range(-2 * k, 1)]
    # One of the first 2k frames: the nearest other frames among frames 0..2k, nearest last.
    others = sorted((i for i in range(min(n, window_size(k))) if i != t), key=lambda i: (abs(i - t), i))
    if not others:  # a one-frame clip
        return [t] * window_size(k)
    return [others[j % len(others)] for j in reversed(range(2 * k))] + [t]


def _reflected_index(t: int, d: int, n: int) -> int:
    for i in (t + d, t - d):  # the frame itself, else its reflection about the target
        if 0 <= i < n:
            return i
    # Neither in the clip: the nearest frame on d's side, else on the other side.
    own_side = min(max(t + d, 0), n - 1)
    return own_side if own_side != t else min(max(t - d, 0), n - 1)


def window_indices(t: int, n_frames: int, k: int, causal: bool = False, edges: str = "nearest") -> list[int]:
    """Frame indices of frame t's window in slot order (see the module docstring for the edges;
    ``edges="reflected"``: centred windows reflected about the target and causal ones replicating
    frame 0, as the fit cuts them)."""
    if edges not in EDGES:
        raise ValueError(f"edges must be one of {', '.join(EDGES)}, got {edges!r}")
    if n_frames < 1:
        raise ValueError("a clip needs at least one frame")
    if not 0 <= t < n_frames:
        raise ValueError(f"frame {t} is outside a clip of {n_frames} frames")
    if k < 0:
        raise ValueError(f"k must be >= 0, got {k}")
    if causal:
        return _causal_indices(t, n_frames, k, edges)
    return _centred_indices(t, n_frames, k, edges)


def stack_windows(windows: Sequence[Sequence[np.ndarray]], out: np.ndarray | None = None) -> np.ndarray:
    """Windows given as their (C, H, W) frames in slot order -> one float32 (B, T*C, H, W) batch,
    equal to ``np.stack([stack_window(w, range(T)) for w in windows]).astype(np.float32)`` but
    with every frame copied once, straight into its slot. ``out`` (that shape, float32,
    C-contiguous) is filled instead of a new array: a caller that reuses it avoids allocating
    (and page-faulting in) tens of megabytes per batch at 720p."""
    c, h, w = windows[0][0].shape
    shape = (len(windows), len(windows[0]) * c, h, w)
    if out is None:
        out = np.empty(shape, np.float32)
    elif out.shape != shape or out.dtype != np.float32 or not out.flags.c_contiguous:
        raise ValueError(f"out must be a C-contiguous float32 array of shape {shape}, got {out.dtype} {out.shape}")
    for b, frames in enumerate(windows):
        for slot, frame in enumerate(frames):
            out[b, slot * c : (slot + 1) * c] = frame  # casts as astype(float32) would
    return out


def window_sees_own_target(indices: Sequence[int], target_index: int) -> bool:
    """True when a neighbour slot holds the target frame itself (its noise would be visible)."""
    t = indices[target_index]
    return any(i == t for slot, i in enumerate(indices) if slot != target_index)


def stack_window(frames: torch.Tensor | np.ndarray | Sequence[Frame], indices: Sequence[int]) -> Frame:
    """The frames at ``indices`` concatenated on the channel axis: (T*C, H, W).

    ``frames`` is an (N, C, H, W) tensor/array or a sequence of (C, H, W) frames; the result
    has the type of the frames (torch or numpy).
    """
    chosen = [frames[i] for i in indices]
    if isinstance(chosen[0], torch.Tensor):
        return torch.cat(chosen, dim=0)
    return np.concatenate(chosen, axis=0)


class RingBuffer:
    """Streaming window assembly: ``push`` frames one by one, get ``(index, window)`` pairs back.

    Every pushed frame's window is emitted exactly once, in frame order; index counts frames
    from the start of the stream. Causal buffers emit the pushed frame's window at once (zero
    frames of lookahead) from frame 2k on, frames 0..2k together when frame 2k arrives (their
    windows reach up to it); centred ones emit frame i-k when frame i arrives (frames 0..k when
    frame 2k does), and the last k frames' windows on :meth:`flush`, which also starts a new
    stream.
    All frames of a stream must have one shape; another raises :class:`FrameSizeChangedError`.
    """

    def __init__(self, k: int, causal: bool = False):
        if k < 0:
            raise ValueError(f"k must be >= 0, got {k}")
        self.k, self.causal = k, causal
        self._frames: deque[tuple[int, Frame]] = deque(maxlen=window_size(k))
        self._pushed = 0  # frames pushed in this stream
        self._emitted = 0  # windows emitted in this stream
        self._shape: tuple[int, ...] | None = None

    @property
    def latency(self) -> int:
        """Frames of lookahead: a frame's window is out this many pushes after the frame (up to
        2k for the first frames of a stream, whose windows reach further in)."""
        return 0 if self.causal else self.k

    @property
    def pending(self) -> int:
        """Frames pushed whose window has not been emitted yet."""
        return self._pushed - self._emitted

    def _frame(self, index: int) -> Frame:
        for i, frame in self._frames:
            if i == index:
                return frame
        raise AssertionError(f"frame {index} is no longer buffered")  # window_indices guarantees it

    def _window(self, t: int, n_frames: int) -> tuple[int, list[Frame]]:
        indices = window_indices(t, n_frames, self.k, self.causal)
        self._emitted = t + 1
        return t, [self._frame(i) for i in indices]

    @staticmethod
    def _stacked(windows: list[tuple[int, list[Frame]]]) -> list[tuple[int, Frame]]:
        return [(t, stack_window(frames, range(len(frames)))) for t, frames in windows]

    def push(self, frame: Frame) -> list[tuple[int, Frame]]:
        """Add the next (C, H, W) frame; returns the windows now complete (zero or one; centred:
        the first k+1 at once, when frame 2k arrives)."""
        return self._stacked(self.push_frames(frame))

    def push_frames(self, frame: Frame) -> list[tuple[int, list[Frame]]]:
        """As :meth:`push`, each window given as its frames in slot order (the pushed objects
        themselves, not copied): for a caller that assembles a batch itself, so that every frame
        is copied once, into the batch, instead of into a window and then into the batch."""
        shape = tuple(frame.shape)
        if len(shape) != 3:
            raise InputError(f"expected a (C, H, W) frame, got shape {shape}")
        if self._shape is None:
            self._shape = shape
        elif shape != self._shape:
            raise FrameSizeChangedError(
                f"frame {self._pushed} is {shape[2]}x{shape[1]} with {shape[0]} channel(s) but the stream "
                f"started at {self._shape[2]}x{self._shape[1]} with {self._shape[0]}; flush() before a new size"
            )
        self._frames.append((self._pushed, frame))
        self._pushed += 1
        if self._pushed < window_size(self.k):
            return []  # the first windows reach up to frame 2k
        # Once 2k+1 frames are in, frame t's window (causal: t <= newest; centred: t <= newest - k)
        # lies within frames max(t-2k, 0) .. max(t, 2k) (centred: max(t-k, 0) .. max(t+k, 2k)),
        # all seen: the whole clip will give it the same frames.
        return [self._window(t, self._pushed) for t in range(self._emitted, self._pushed - self.latency)]

    def flush(self) -> list[tuple[int, Frame]]:
        """End of stream: the windows still pending; then reset."""
        return self._stacked(self.flush_frames())

    def flush_frames(self) -> list[tuple[int, list[Frame]]]:
        """As :meth:`flush`, each window given as its frames in slot order (:meth:`push_frames`)."""
        n = self._pushed
        out = [self._window(t, n) for t in range(self._emitted, n)]
        self.reset()
        return out

    def reset(self) -> None:
        """Forget the stream (pending windows are dropped; call flush() to get them)."""
        self._frames.clear()
        self._pushed = self._emitted = 0
        self._shape = None
