"""The output fusion on a stream: ``OutputFuser`` fuses each denoised frame with its window's
(``fuse.fuse_window``, or ``fuse_torch`` for the flow "lk") as frames arrive, in order, the
frames' flow guides, pixels and flows made once although each frame is in up to 2k+1 windows
(docs/METHOD_NOTES.md, "Fusing the outputs"). ``fuse.fuse_clip`` gives the same frames for a
whole clip at once.
"""

from __future__ import annotations

import os
from collections import deque
from typing import Any

import numpy as np

from .fuse import (DEFAULT_FLOW, DEFAULT_STRENGTH, FusionFlow, check_flow, default_direct, default_invert,
                   default_k, fuse_window, guide_of, interleaved, removed_sigma)
from .fuse_flows import FlowCache
from .windows import FrameSizeChangedError, RingBuffer, target_slot


def _torch_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


class OutputFuser:
    """Streaming :func:`fuse_window`: ``push(index, noisy, denoised)`` returns the frames whose
    windows are complete, as ``(index, noisy, fused)``, in order; ``flush`` the rest at the end.

    The noise level is estimated from each pushed frame (``removed_sigma``) and smoothed over
    frames (one frame's estimate moves with its content, the noise does not), unless given.
    ``refine``: the Wiener step on the noisy frames (``fuse_window``, ``refine.SHARE`` of the
    output). A frame size change flushes the old size's frames first (a new window stream).

    ``workers`` > 1 fuses that many windows at once on a thread pool (OpenCV's flows and remaps
    and torch's Wiener step release the GIL): the same frames in the same order, each returned up
    to ``workers`` pushes later. A 720p window costs ~0.6 s of one core with the Wiener step, so on
    a machine with cores to spare one fusion thread would cap the stream.

    ``flow`` "lk": each window is fused in torch on ``device`` (None: a CUDA GPU where torch sees
    one, else the CPU; ``fuse_torch``), each frame uploaded there once; on a GPU one worker, which
    runs one window's kernels at a time anyway.
    """

    def __init__(self, k: int | None = None, causal: bool = False, strength: float = DEFAULT_STRENGTH,
                 sigma: float | None = None, flow: FusionFlow = DEFAULT_FLOW, refine: bool = True,
                 workers: int = 1, device: str | None = None):
        if strength <= 0:
            raise ValueError(f"fusion strength must be positive, got {strength}")
        if workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        self.flow = check_flow(flow)
        self.device = "cpu" if flow != "lk" else device or _torch_device()  # lk's; the others run on the CPU
        self.workers = 1 if self.device.startswith("cuda") else workers
        self._pool: Any = None  # a ThreadPoolExecutor once workers > 1 has work
        self._running: deque[tuple[int, np.ndarray, Any]] = deque()  # (index, noisy, future), in order
        k = default_k(causal) if k is None else k
        self.ring = RingBuffer(k, causal)
        # The noisy frames in a ring of their own, pushed in step: its windows match the ring's.
        self.noisy_ring = RingBuffer(k, causal) if refine else None
        self.slot = target_slot(k, causal)
        self.strength, self.sigma = strength, sigma
        self._sigma_est: float | None = None
        self._pending: deque[tuple[int, np.ndarray]] = deque()
        # Each frame's flow guide and interleaved pixels (and the noisy frame's), made once
        # although the frame is in up to 2k+1 windows; keyed by the frame object (held here, so
        # its id is not reused) and kept while the latest window holds the frame. The copies are
        # as large as the frames (~11 MB each at 720p).
        self._prepared: dict[int, tuple[np.ndarray, tuple]] = {}
        self._on_device: dict[int, tuple[np.ndarray, Any]] = {}  # "lk": each frame's tensor on the device
        self._flows, self._direct = FlowCache(), default_direct(causal, k)  # consecutive frames' flows
        self._invert = default_invert(causal)

    @property
    def latency(self) -> int:
        return self.ring.latency

    def _noise(self, noisy: np.ndarray, denoised: np.ndarray) -> None:
        est = removed_sigma(noisy, denoised)
        self._sigma_est = est if self._sigma_est is None else 0.9 * self._sigma_est + 0.1 * est

    def _emit(self, windows: list, noisy_windows: list | None) -> list[tuple[int, np.ndarray, np.ndarray]]:
        from .refine import SHARE

        sigma = self.sigma if self.sigma is not None else self._sigma_est
        share = SHARE if noisy_windows is not None else 0.0
        out = []
        for i, (_, frames) in enumerate(windows):
            index, noisy = self._pending.popleft()
            noisy_frames = noisy_windows[i][1] if noisy_windows is not None else None
            if self.flow == "lk":  # each frame uploaded once, though it is in up to 2k+1 windows
                every = list(range(len(frames)))
                on_device = [self._upload(f) for f in frames]
                noisy_on_device = [self._upload(f) for f in noisy_frames] if noisy_frames is not None else None
                from .fuse_torch import fuse_frames

                job, args = fuse_frames, (on_device, noisy_on_device, every, self.slot, sigma, self.strength, share,
                                          self._invert, self.device)
            else:
                guides, pixels = zip(*(self._prepare(f, guide=True) for f in frames))
                noisy_pixels = [self._prepare(f)[1] for f in noisy_frames] if noisy_frames is not None else None
                job, args = fuse_window, (frames, self.slot, sigma, self.strength, guides, self.flow, noisy_frames, share,
                                          pixels, noisy_pixels, self._flows, self._direct, self._invert)
            if self.workers == 1:
                out.append((index, noisy, job(*args)))
            else:
                if self._pool is None:
                    from concurrent.futures import ThreadPoolExecutor

                    self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="fuse")
                self._running.append((index, noisy, self._pool.submit(job, *args)))
        if windows:  # the next window shares all but one of the latest window's frames
            self._forget_all_but(list(windows[-1][1]) + (list(noisy_windows[-1][1]) if noisy_windows else []))
        return out + self._collect(everything=False)

    def _collect(self, everything: bool) -> list[tuple[int, np.ndarray, np.ndarray]]:
        """The pooled windows' results, in order: all of them, or those already done at the
        front and any beyond ``workers`` in flight (waited for: the pool's backlog stays bounded)."""
        out = []
        while self._running and (everything or len(self._running) > self.workers or self._running[0][2].done()):
            index, noisy, future = self._running.popleft()
            out.append((index, noisy, future.result()))
        return out

    def _prepare(self, frame: np.ndarray, guide: bool = False) -> tuple[np.ndarray | None, np.ndarray]:
        """``frame``'s (flow guide when ``guide``, else None; pixels ``interleaved``), made once."""
        kept = self._prepared.get(id(frame))
        if kept is not None and kept[0] is frame:
            if kept[1][0] is not None or not guide:
                return kept[1]
            made = (guide_of(frame), kept[1][1])  # kept without a guide, asked for one now
        else:
            made = (guide_of(frame) if guide else None, interleaved(frame))
        self._prepared[id(frame)] = (frame, made)
        return made

    def _upload(self, frame: np.ndarray):
        """``frame`` as a float32 tensor on ``device``, made once while the windows hold it."""
        import torch

        kept = self._on_device.get(id(frame))
        if kept is None or kept[0] is not frame:
            kept = (frame, torch.as_tensor(np.asarray(frame, np.float32)).to(self.device))
            self._on_device[id(frame)] = kept
        return kept[1]

    def _forget_all_but(self, frames: list[np.ndarray]) -> None:
        keep = {id(f) for f in frames}
        self._on_device = {key: entry for key, entry in self._on_device.items() if key in keep}
        self._prepared = {key: entry for key, entry in self._prepared.items() if key in keep}
        self._flows.keep_only([entry[1][0] for entry in self._prepared.values() if entry[1][0] is not None])

    def push(self, index: int, noisy: np.ndarray, denoised: np.ndarray) -> list[tuple[int, np.ndarray, np.ndarray]]:
        ready = []
        try:
            windows = self.ring.push_frames(denoised)
        except FrameSizeChangedError:
            ready = self.flush()
            windows = self.ring.push_frames(denoised)
        noisy_windows = self.noisy_ring.push_frames(noisy) if self.noisy_ring is not None else None
        self._noise(noisy, denoised)
        self._pending.append((index, noisy))
        return ready + self._emit(windows, noisy_windows)

    def flush(self) -> list[tuple[int, np.ndarray, np.ndarray]]:
        """End of stream (or of one frame size): the pending frames' windows."""
        noisy_windows = self.noisy_ring.flush_frames() if self.noisy_ring is not None else None
        windows = self.ring.flush_frames()
        workers = self.workers
        if self._pool is None and len(windows) > 1:
            # At the end of a stream the network is done and nothing else runs beside the
            # fusion: its last windows (k of them, centred) are fused side by side on the
            # machine's cores, however few the stream used (~1 s less at the end of a 720p file).
            self.workers = max(workers, min(len(windows), os.cpu_count() or 1))
        try:
            out = self._emit(windows, noisy_windows) + self._collect(everything=True)
        finally:
            self.workers = workers
            self._prepared, self._on_device = {}, {}
            self._flows = FlowCache()
            if self._pool is not None:
                self._pool.shutdown()
                self._pool = None
        return out
