"""The flows the output fusion warps a window's neighbours with (docs/METHOD_NOTES.md, "Fusing
the outputs"): a direct DIS flow from the target to each neighbour up to ``DIRECT_REACH`` frames
away, and beyond that a flow *chained* through consecutive frames: the flow to t+d is the flow to
t+d-1 plus the flow from t+d-1 to t+d, read where the first one lands.

Why chained: the fusion's average (and the Wiener step's average of the noisy frames) gains
from every further frame that still agrees, but a direct flow costs a DIS run per neighbour per
target, the fusion's largest cost (about half of a 720p window at 3 frames each side). A flow
between consecutive frames is already a direct flow of a window (d = +-1), computed once and
kept for the windows that chain through it (``FlowCache``), so chaining adds neighbours for the
price of their remaps. On
held-out clips the chained flows lose to direct ones (composed errors add up: -0.07 dB at 3
frames each side with every flow chained, -0.02 chained from 2 frames away), so the near frames
keep their direct flows, where most of the weight is (benchmarks/tune_fusion_width.py;
docs/BENCHMARKS.md, "Wider fusion windows").

A centred window's flows to its earlier frames are *inverted* (``inverse``; ``window_fields``'
``invert_back``): the flow from t to t-d is the inverse of the flow from t-d to t, which frame
t-d's own window computed as one of its forward flows and the cache still holds. Each window then
runs DIS only towards its later frames, half the runs, and on held-out clips the fused frames
were the same to 0.01 dB (benchmarks/fusion_flow_on_clips.py; docs/BENCHMARKS.md, "OpenVINO on
the CPU"): where a flow has no inverse (occlusions) the neighbour disagrees with the target
either way, and its weight falls.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import Future
from functools import lru_cache

import numpy as np

# Neighbours up to this many frames from the target get a direct flow; further ones a chained one.
DIRECT_REACH = 3


def dis_field(target_guide: np.ndarray, guide: np.ndarray, flow: str) -> np.ndarray:
    """The DIS flow (h, w, 2) from ``target_guide`` to ``guide`` with the fusion flow ``flow``."""
    from .fuse import _dis

    return _dis(flow).calc(target_guide, guide, None)


@lru_cache(maxsize=4)
def _guide_grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    gy, gx = np.mgrid[0:h, 0:w].astype(np.float32)
    gy.flags.writeable = gx.flags.writeable = False  # shared between calls and threads
    return gy, gx


def chain(field: np.ndarray, step: np.ndarray) -> np.ndarray:
    """The flow to a frame one further: ``field`` (target -> a) plus ``step`` (a -> b) sampled
    where ``field`` lands (bilinear; borders replicated)."""
    import cv2

    gy, gx = _guide_grid(*field.shape[:2])
    moved = cv2.remap(step, gx + field[..., 0], gy + field[..., 1], cv2.INTER_LINEAR,
                      borderMode=cv2.BORDER_REPLICATE)
    return field + moved


def inverse(field: np.ndarray, iterations: int = 3) -> np.ndarray:
    """The flow back from b to a, given ``field`` (a -> b): g(y) = -field(y + g(y)), the pixel y
    of b coming from the x of a with x + field(x) = y, solved by fixed-point iteration from
    g = -field (bilinear; borders replicated). Where ``field`` folds (occlusions) there is no
    inverse and the iteration settles on one of the pixels that land there."""
    import cv2

    gy, gx = _guide_grid(*field.shape[:2])
    back = -field
    for _ in range(iterations):
        back = -cv2.remap(field, gx + back[..., 0], gy + back[..., 1], cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)
    return back


class FlowCache:
    """Flows between frame pairs (the consecutive ones are what later windows chain through),
    each computed once for the windows that share it; keyed by the guides' identity (each entry
    holds its guides, so an id reused by a new guide is never mistaken for the old one).
    Thread-safe: a pooled fusion reads it from several threads, and a flow one thread is
    computing is waited for by the others, not computed again (window t+1 inverts the flow from
    t to t+1 while window t computes it)."""

    def __init__(self):
        self._flows: dict[tuple[int, int, str], tuple[np.ndarray, np.ndarray, Future]] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._flows)

    def get(self, target_guide: np.ndarray, guide: np.ndarray, flow: str, inverted: bool = False) -> np.ndarray:
        """The flow from ``target_guide`` to ``guide``: DIS's, or with ``inverted`` the ``inverse``
        of the flow the other way (itself kept: it is the other frame's direct flow)."""
        key = (id(target_guide), id(guide), flow + "/inverted" * inverted)
        with self._lock:
            kept = self._flows.get(key)
            mine = kept is None or kept[0] is not target_guide or kept[1] is not guide
            if mine:
                kept = (target_guide, guide, Future())
                self._flows[key] = kept
        if not mine:
            return kept[2].result()
        # Outside the lock: DIS and remap release the GIL. An inverse waits only for a DIS run and
        # a DIS run for nothing, so no threads can wait on each other in a circle.
        try:
            field = inverse(self.get(guide, target_guide, flow)) if inverted else dis_field(target_guide, guide, flow)
        except BaseException as exc:
            with self._lock:
                if self._flows.get(key) is kept:
                    del self._flows[key]
            kept[2].set_exception(exc)
            raise
        kept[2].set_result(field)
        return field

    def keep_only(self, guides: Sequence[np.ndarray]) -> None:
        """Drop the flows of frames no longer held (both ends must be among ``guides``)."""
        keep = {id(g) for g in guides}
        with self._lock:
            self._flows = {k: v for k, v in self._flows.items() if k[0] in keep and k[1] in keep}


def window_fields(guides: Sequence[np.ndarray], slot: int, flow: str, cache: FlowCache | None = None,
                  direct_reach: int | None = None, invert_back: bool = False) -> list[np.ndarray | None]:
    """The flow (at guide resolution) from slot ``slot``'s guide to every other slot's, in slot
    order (None at ``slot``): direct up to ``direct_reach`` slots away (None: all direct), chained
    slot by slot beyond. ``cache`` keeps the consecutive slots' flows for the next windows.
    ``invert_back``: a flow from a frame to an earlier one is the ``inverse`` of the earlier
    frame's flow to it, which that frame's own centred window computed (and ``cache`` kept), so
    each window of a stream runs DIS only towards its later frames."""
    cache = cache if cache is not None else FlowCache()
    fields: list[np.ndarray | None] = [None] * len(guides)

    def pair(a: int, b: int) -> np.ndarray:
        if guides[a] is guides[b]:  # a clip shorter than the window has frames twice in it
            return np.zeros(guides[a].shape[:2] + (2,), np.float32)
        return cache.get(guides[a], guides[b], flow, inverted=invert_back and b < a)

    for sign in (-1, 1):
        j = slot + sign
        while 0 <= j < len(guides):
            if direct_reach is None or abs(j - slot) <= direct_reach:
                fields[j] = pair(slot, j)
            else:
                fields[j] = chain(fields[j - sign], pair(j - sign, j))
            j += sign
    return fields
