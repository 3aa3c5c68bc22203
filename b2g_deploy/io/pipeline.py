"""Decode -> batched inference -> encode, pipelined with threads and bounded queues.

Three stages overlap: a decoder thread reads frames into a small queue, the calling thread
stacks whatever frames are ready (up to ``batch``) and runs the runtime on them, and an encoder
thread writes the results. The queues are bounded, so a fast decoder never holds more than
``queue_size`` frames in memory and a slow encoder throttles inference instead of piling up.
Inference stays on the calling thread so that Ctrl-C (delivered to the main thread) lands
where we can handle it: on KeyboardInterrupt the decoder is told to stop, every frame already
denoised is still written, and the sink is closed (its file renamed into place) in a finally
block. The stats say ``interrupted``; the caller decides the exit code.

A temporal runtime (``runtimes.temporal``: windows of frames in, the target frame out) is fed
through a :class:`~b2g_deploy.temporal.windows.RingBuffer` (:class:`TemporalFeeder`): the
output still has exactly one frame per decoded input frame, in order, under the input frame's
index. Causal windows are emitted as their frame arrives; centred ones k frames later (the first
k+1 when frame 2k arrives), and the last k when the source ends (not after Ctrl-C: the frames already
denoised are kept, the pending k are not run). Frames the source skips are not pushed (the
window closes over the gap); a frame size change mid-stream flushes the old size's windows
and starts a new window stream. The ring hands each window over as its frames, not concatenated:
the runtime copies every frame once, into a batch array it reuses (``infer_window_frames``), or,
torch on a GPU, uploads every frame once and builds the windows there. With ``prepare_ahead``
(files, not live sources) a network whose windows are aligned on the host has the next batch
stacked and aligned on a thread of its own while it runs this one; after Ctrl-C a batch
prepared but not run is dropped with the pending frames.

An :class:`~b2g_deploy.temporal.fuse_stream.OutputFuser` (``fuse``), when given, takes the denoised
frames next, on the encoder thread (so it overlaps the next frames' inference): each is
averaged with its neighbours' outputs where they agree after motion compensation, and it holds
back the frames whose later neighbours have not been denoised yet (none for causal fusion);
they are flushed when the encoder sees the end, so after Ctrl-C too every denoised frame is
still written. An :class:`~b2g_deploy.clipping.Unclipper` (``unclip``) then maps each frame back
from the bias that clipping at black and white leaves in a denoiser of noisy data.

Torch, ONNX Runtime and TensorRT release the GIL while they compute, and OpenCV does while it
decodes and encodes, so threads (not processes) are enough to overlap the three.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from ..errors import InputError
from ..modelfile.info import ModelInfo
from .temporal import TemporalBlend

if TYPE_CHECKING:
    from ..clipping import Unclipper
    from ..temporal.fuse_stream import OutputFuser

_END = object()  # end-of-stream marker passed down the queues


class FrameDenoiser(Protocol):
    """What the pipeline needs of a runtime (any ``runtimes.Runtime`` is one). A temporal runtime
    (``runtimes.temporal``, ``temporal = True``) has ``infer_windows``, ``k`` and ``causal``
    instead and goes through :class:`TemporalFeeder`."""

    info: ModelInfo

    def infer(self, frames: np.ndarray) -> np.ndarray: ...


@dataclass
class PipelineStats:
    written: int = 0
    skipped: int = 0  # frames the source could not decode (corrupt, dropped stream)
    skipped_frames: list[str] = field(default_factory=list)  # those frames, named
    seconds: float = 0.0
    interrupted: bool = False
    reconnects: int = 0
    # Frames the container's header announces that never decoded after the last good one (a
    # truncated file); known only when the source was read to its end.
    missing: int = 0

    @property
    def fps(self) -> float:
        return self.written / self.seconds if self.seconds > 0 else 0.0


ProgressFn = Callable[[PipelineStats], None]


class _Failure:
    """An exception raised in a worker thread, carried to the main thread to be re-raised."""

    def __init__(self, exc: BaseException):
        self.exc = exc


def _put(q: queue.Queue, item: object, stop: threading.Event) -> bool:
    """Put unless told to stop; a bounded queue must not block a thread that should exit."""
    while not stop.is_set():
        try:
            q.put(item, timeout=0.1)
            return True
        except queue.Full:
            continue
    return False


def _decode(source, q_in: queue.Queue, stop: threading.Event, limit: int | None) -> None:
    try:
        for n, (index, frame) in enumerate(source):
            if (limit is not None and n >= limit) or not _put(q_in, (index, frame), stop):
                break
        _put(q_in, _END, stop)
    except BaseException as exc:  # noqa: BLE001 - re-raised on the main thread
        _put(q_in, _Failure(exc), stop)


def _put_while_alive(q: queue.Queue, item: object, worker: threading.Thread) -> None:
    """Put for the encoder: blocks while it works through its queue, gives up if it died."""
    while worker.is_alive():
        try:
            q.put(item, timeout=0.1)
            return
        except queue.Full:
            continue


class _Finish:
    """What happens to each denoised frame on the encoder thread before it is written: the
    output fusion (which holds frames back until their later neighbours arrive), the mapping
    back from clipping's bias (``clipping.Unclipper``), then the blend. All run there, not on
    the inference thread, so they overlap the next frames' inference instead of adding to it."""

    def __init__(self, fuse: OutputFuser | None, blend: TemporalBlend | None, unclip: Unclipper | None = None):
        self.fuse, self.blend, self.unclip = fuse, blend, unclip

    def _finish(self, results) -> list[tuple[int, np.ndarray]]:
        if self.unclip is not None:
            results = [(index, noisy, self.unclip(noisy, frame)) for index, noisy, frame in results]
        if self.blend is None:
            return [(index, frame) for index, _, frame in results]
        return [(index, self.blend(noisy, frame)) for index, noisy, frame in results]

    def push(self, index: int, noisy: np.ndarray, denoised: np.ndarray) -> list[tuple[int, np.ndarray]]:
        results = self.fuse.push(index, noisy, denoised) if self.fuse is not None else [(index, noisy, denoised)]
        return self._finish(results)

    def flush(self) -> list[tuple[int, np.ndarray]]:
        return self._finish(self.fuse.flush()) if self.fuse is not None else []


def _encode(sink, q_out: queue.Queue, stats: PipelineStats, source, progress, errors: list,
            finish: _Finish) -> None:
    def write(frames) -> None:
        for index, frame in frames:
            sink.write(frame, index)
            stats.written += 1
            stats.skipped = source.skipped
            if progress is not None:
                progress(stats)

    try:
        while True:
            item = q_out.get()
            if item is _END:  # the end of the stream, an error or Ctrl-C: what the fusion holds too
                write(finish.flush())
                return
            write(finish.push(*item))
    except BaseException as exc:  # noqa: BLE001 - re-raised on the main thread
        errors.append(exc)


def _next_batch(q_in: queue.Queue, batch: int, errors: list) -> tuple[list, bool]:
    """Block for one frame, then take whatever else is ready up to ``batch`` (no waiting for a
    full batch: on a live stream that would add latency). Returns (items, ended)."""
    items: list = []
    while not items:
        if errors:  # the encoder died: stop feeding it
            return items, True
        try:
            item = q_in.get(timeout=0.1)
        except queue.Empty:
            continue
        if item is _END:
            return items, True
        if isinstance(item, _Failure):
            raise item.exc
        items.append(item)
    while len(items) < batch:
        try:
            item = q_in.get_nowait()
        except queue.Empty:
            break
        if item is _END:
            return items, True
        if isinstance(item, _Failure):
            raise item.exc
        items.append(item)
    return items, False


class TemporalFeeder:
    """Frames in, (index, noisy frame, denoised frame) out, through a temporal runtime's windows.

    ``push`` takes decoded ``(index, frame)`` items and returns the frames whose windows are now
    complete (denoised as one batch); ``flush`` returns the rest at the end of the stream.

    ``ahead``: a runtime that aligns its windows on the host (DIS) has the next batch stacked
    and aligned on a thread of its own while the network runs this one (``prepare_window_frames``
    / ``run_prepared``): at 720p on the CPU the alignment is ~0.1-0.2 s a frame that would
    otherwise wait for the network on the one thread that runs it. The same frames come out in
    the same order, one batch later (``push`` returns the batch before the one it completes), so
    a live source, whose frames should leave as soon as they can, does not use it.
    """

    def __init__(self, runtime, ahead: bool = False):
        from ..temporal.windows import RingBuffer

        self.runtime = runtime
        self.ring = RingBuffer(runtime.k, runtime.causal)
        self._pending: deque[tuple[int, np.ndarray]] = deque()  # pushed, window not emitted yet
        self.ahead = (ahead and getattr(runtime, "align", "none") in ("dis", "dis-fine")
                      and hasattr(runtime, "prepare_window_frames"))
        self._pool: Any = None  # the preparing thread (a ThreadPoolExecutor) once ahead has work
        self._prepared: deque[Any] = deque()  # futures of prepared batches, in order

    def _infer(self, windows: list) -> np.ndarray:
        """The ring's windows (each as its frames) through the runtime: straight from the frames
        when it can take them (each frame copied once, into the batch), else stacked here."""
        frames = [w for _, w in windows]
        if hasattr(self.runtime, "infer_window_frames"):
            return self.runtime.infer_window_frames(frames)
        from ..temporal.windows import stack_windows

        return self.runtime.infer_windows(stack_windows(frames))

    def _results(self, out: np.ndarray) -> list[tuple[int, np.ndarray, np.ndarray]]:
        ready = []
        for denoised in out:  # the ring emits each pushed frame's window once, in push order
            index, noisy = self._pending.popleft()
            ready.append((index, noisy, denoised))
        return ready

    def _take(self, windows: list, keep: int = 1) -> list[tuple[int, np.ndarray, np.ndarray]]:
        """``windows`` denoised, or with ``ahead`` queued for preparation; then every prepared
        batch run but the last ``keep``."""
        if not self.ahead:
            return self._results(self._infer(windows)) if windows else []
        if windows:
            if self._pool is None:
                from concurrent.futures import ThreadPoolExecutor

                self._pool = ThreadPoolExecutor(1, thread_name_prefix="prepare")
            frames = [w for _, w in windows]
            self._prepared.append(self._pool.submit(self.runtime.prepare_window_frames, frames))
        ready = []
        while len(self._prepared) > keep:
            ready += self._results(self.runtime.run_prepared(self._prepared.popleft().result()))
        return ready

    def push(self, items: list[tuple[int, np.ndarray]]) -> list[tuple[int, np.ndarray, np.ndarray]]:
        from ..temporal.windows import FrameSizeChangedError

        windows: list = []
        ready: list = []
        for index, frame in items:
            try:
                emitted = self.ring.push_frames(frame)
            except FrameSizeChangedError:  # a new stream size: finish the old one's windows first
                ready += self._take(windows + self.ring.flush_frames())
                windows = []
                emitted = self.ring.push_frames(frame)
            self._pending.append((index, frame))
            windows += emitted
        return ready + self._take(windows)

    def flush(self) -> list[tuple[int, np.ndarray, np.ndarray]]:
        try:
            return self._take(self.ring.flush_frames(), keep=0)
        finally:
            self.close()

    def close(self) -> None:
        """Stop the preparing thread (after Ctrl-C: batches prepared but not run are dropped)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
            self._prepared.clear()


def check_channels(runtime: FrameDenoiser, source) -> None:
    want, have = runtime.info.channels, source.info.channels
    if want != have:
        raise InputError(f"the model was fitted on {want}-channel frames; this video has {have} channels")


def run_pipeline(
    source,
    runtime: FrameDenoiser,
    sink,
    *,
    batch: int = 4,
    queue_size: int = 8,
    blend: TemporalBlend | None = None,
    fuse: OutputFuser | None = None,
    limit: int | None = None,
    progress: ProgressFn | None = None,
    prepare_ahead: bool = False,
    unclip: Unclipper | None = None,
) -> PipelineStats:
    """Denoise every frame of ``source`` with ``runtime`` into ``sink``; closes the sink (not the
    source or runtime). ``limit`` stops after that many frames (an early stop, like Ctrl-C).
    ``fuse``: the denoised frames go through this output fusion (``temporal.fuse_stream``), then
    ``unclip`` (mapped back from clipping's bias, ``clipping.Unclipper``), then ``blend``, on
    the encoder thread; what the fusion holds is written at the end, after an error and after
    Ctrl-C. ``prepare_ahead``: a temporal runtime's next windows are aligned
    while the network runs (``TemporalFeeder``'s ``ahead``; not for live sources)."""
    check_channels(runtime, source)
    stats = PipelineStats()
    stop = threading.Event()
    q_in: queue.Queue = queue.Queue(maxsize=queue_size)
    q_out: queue.Queue = queue.Queue(maxsize=queue_size)
    errors: list[BaseException] = []
    decoder = threading.Thread(target=_decode, args=(source, q_in, stop, limit), daemon=True, name="decode")
    finish = _Finish(fuse, blend, unclip)
    encoder = threading.Thread(target=_encode, args=(sink, q_out, stats, source, progress, errors, finish),
                               daemon=True, name="encode")
    feeder = TemporalFeeder(runtime, ahead=prepare_ahead) if getattr(runtime, "temporal", False) else None
    start = time.perf_counter()
    decoder.start()
    encoder.start()

    def emit(results) -> None:
        for item in results:  # (index, noisy, denoised)
            _put_while_alive(q_out, item, encoder)  # waits, never drops

    try:
        ended = False
        while not ended:
            items, ended = _next_batch(q_in, batch, errors)
            if not items:
                break
            if feeder is not None:
                emit(feeder.push(items))
                continue
            frames = np.stack([frame for _, frame in items]).astype(np.float32, copy=False)
            out = runtime.infer(frames)
            emit((index, noisy, denoised) for (index, noisy), denoised in zip(items, out))
        if feeder is not None and not errors:
            emit(feeder.flush())  # the source ended: the last k centred windows
    except KeyboardInterrupt:
        stats.interrupted = True
    finally:
        stop.set()
        if feeder is not None:
            feeder.close()
        try:
            # After every denoised frame: all are written, with what the fusion still held.
            _put_while_alive(q_out, _END, encoder)
            encoder.join()
            decoder.join(timeout=5.0)
        finally:
            # Even a second Ctrl-C while draining must not skip this: release() finalises the
            # container and the rename puts the frames written so far in place.
            stats.seconds = time.perf_counter() - start
            stats.skipped = source.skipped
            stats.skipped_frames = list(getattr(source, "skipped_frames", []))
            stats.reconnects = getattr(source, "reconnected", 0)
            stats.missing = getattr(source, "missing", 0)
            sink.close()
    if errors:
        raise errors[0]
    return stats
