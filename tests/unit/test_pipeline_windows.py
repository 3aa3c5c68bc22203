"""The temporal pipeline's batch assembly (io.pipeline.TemporalFeeder -> RingBuffer.push_frames ->
runtime.infer_window_frames): every frame copied once into a reused batch array, or uploaded once
to the device, with the same output, frame for frame, as stacking windows and calling
infer_windows (what the pipeline did before, and what TemporalRuntime.denoise_clip still does)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from b2g_deploy.io.pipeline import TemporalFeeder, run_pipeline
from b2g_deploy.runtimes.temporal import TemporalRuntime, _info
from b2g_deploy.temporal.windows import RingBuffer, stack_window, stack_windows, target_slot, window_size


def _clip(n: int, c: int = 3, h: int = 12, w: int = 16, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.random((c, h, w), dtype=np.float32) for _ in range(n)]


class _TargetView(TemporalRuntime):
    """No network: returns each window's target frame as a *view* of its input (the worst case
    for a reused batch array: the output must not be overwritten by the next batch)."""

    def __init__(self, k: int = 2, causal: bool = False, channels: int = 3):
        self.k, self.causal, self.window, self.multiple = k, causal, window_size(k), 1
        self.info = _info(channels, k, causal, self.window)

    def _run(self, windows: np.ndarray) -> np.ndarray:
        c, s = self.info.channels, target_slot(self.k, self.causal)
        return windows[:, s * c : (s + 1) * c]


def _feed(runtime, frames: list[np.ndarray], batch: int) -> list[tuple[int, np.ndarray]]:
    feeder, out = TemporalFeeder(runtime), []
    items = list(enumerate(frames))
    for first in range(0, len(items), batch):
        out += [(i, d) for i, _, d in feeder.push(items[first : first + batch])]
    return out + [(i, d) for i, _, d in feeder.flush()]


def _stacked_reference(runtime, frames: list[np.ndarray], batch: int) -> np.ndarray:
    """What the feeder gave before: each window concatenated by the ring, the batch np.stack-ed,
    then infer_windows; the same batches as _feed (a network's float sums may depend on the batch)."""
    ring, outs = RingBuffer(runtime.k, runtime.causal), []

    def run(windows):
        if windows:
            outs.append(runtime.infer_windows(np.stack([w for _, w in windows]).astype(np.float32)))

    for first in range(0, len(frames), batch):
        run([w for f in frames[first : first + batch] for w in ring.push(f)])
    run(ring.flush())
    return np.concatenate(outs)


def test_stack_windows_equals_stacking_each_window_and_reuses_out():
    frames = _clip(5, c=2)
    windows = [[frames[i] for i in (0, 1, 2)], [frames[i] for i in (2, 3, 4)]]
    want = np.stack([stack_window(w, range(3)) for w in windows])
    got = stack_windows(windows)
    assert got.dtype == np.float32 and np.array_equal(got, want)
    out = np.full(want.shape, -1.0, np.float32)
    assert stack_windows(windows, out) is out and np.array_equal(out, want)
    as64 = [[f.astype(np.float64) + 1e-9 for f in w] for w in windows]  # cast as astype(float32) does
    assert np.array_equal(stack_windows(as64), np.stack([stack_window(w, range(3)) for w in as64]).astype(np.float32))
    with pytest.raises(ValueError, match="out must be"):
        stack_windows(windows, np.empty((1, 6, 12, 16), np.float32))


@pytest.mark.parametrize("causal", [False, True])
def test_push_frames_gives_the_frames_push_would_stack(causal):
    frames = _clip(6)
    lazy, eager = RingBuffer(2, causal), RingBuffer(2, causal)
    got, want = [], []
    for f in frames:
        got += lazy.push_frames(f)
        want += eager.push(f)
    got += lazy.flush_frames()
    want += eager.flush()
    assert [t for t, _ in got] == [t for t, _ in want] == list(range(6))
    for (_, slots), (_, window) in zip(got, want):
        assert all(any(s is f for f in frames) for s in slots)  # the pushed objects, not copies
        assert np.array_equal(np.concatenate(slots), window)


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("batch", [1, 3, 4])
def test_feeder_output_is_each_frame_in_order_even_when_the_runtime_returns_views(causal, batch):
    frames = _clip(9)
    out = _feed(_TargetView(2, causal), frames, batch)
    assert [i for i, _ in out] == list(range(9))
    for (_, denoised), frame in zip(out, frames):  # earlier outputs were not overwritten by later batches
        assert np.array_equal(denoised, frame)


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("batch", [1, 3])
def test_preparing_the_next_batch_ahead_gives_the_same_frames_in_the_same_order(causal, batch):
    class Aligned(_TargetView):
        align = "dis"

        def _run(self, windows):  # every slot in the output: what alignment did shows
            return windows.reshape(len(windows), self.window, self.info.channels, *windows.shape[-2:]).mean(1)

    frames = [f.repeat(4, 1).repeat(4, 2) for f in _clip(8, h=16, w=16)]  # 64x64: big enough for DIS
    results = {}
    for ahead in (False, True):
        feeder, out = TemporalFeeder(Aligned(2, causal), ahead=ahead), []
        assert feeder.ahead == ahead
        items = list(enumerate(frames))
        for first in range(0, len(items), batch):
            got = feeder.push(items[first : first + batch])
            assert not ahead or len(out) + len(got) <= first  # a batch later, never earlier
            out += got
        out += feeder.flush()
        assert feeder._pool is None  # the preparing thread is gone
        assert [i for i, _, _ in out] == list(range(8))
        results[ahead] = np.stack([d for _, _, d in out])
    assert np.array_equal(results[True], results[False])
    assert not TemporalFeeder(_TargetView(2), ahead=True).ahead  # nothing to align: nothing to gain


def test_infer_window_frames_reuses_its_batch_array_when_the_output_is_fresh():
    class Copying(_TargetView):
        def _run(self, windows):
            return super()._run(windows).copy()

    rt, frames = Copying(1), _clip(6)
    windows = [[frames[t + d] for d in range(3)] for t in range(4)]
    first = rt.infer_window_frames(windows[:2])
    [kept] = rt._spares
    second = rt.infer_window_frames(windows[2:])
    assert len(rt._spares) == 1 and rt._spares[0] is kept  # filled again, not allocated again
    assert np.array_equal(first, np.stack(frames[1:3])) and np.array_equal(second, np.stack(frames[3:5]))
    rt.infer_window_frames(windows[:1])  # a smaller batch: the kept array's first row
    assert rt._spares[0] is kept
    # Two batches prepared before either runs (a stream preparing ahead) are two arrays.
    a, b = rt.prepare_window_frames(windows[:2]), rt.prepare_window_frames(windows[2:])
    assert not np.may_share_memory(a, b)
    assert np.array_equal(rt.run_prepared(a), first) and np.array_equal(rt.run_prepared(b), second)
    view = _TargetView(1)
    view.infer_window_frames(windows[:2])
    assert not view._spares  # its output aliases the batch: a new array next time


class _Source:
    """The frames as a 3-channel video source."""

    info = type("I", (), {"channels": 3})()
    skipped = 0

    def __init__(self, frames: list[np.ndarray]):
        self.frames = frames

    def __iter__(self):
        return iter(enumerate(self.frames))


class _Sink:
    """Keeps what is written, as (index, a copy of the frame)."""

    def __init__(self):
        self.got = []

    def write(self, frame, index=None):
        self.got.append((index, frame.copy()))

    def close(self):
        pass


def test_pipeline_with_a_view_returning_runtime_writes_every_frame_unchanged():
    frames = _clip(7)
    sink = _Sink()
    stats = run_pipeline(_Source(frames), _TargetView(2), sink, batch=3)
    assert stats.written == 7 and [i for i, _ in sink.got] == list(range(7))
    assert all(np.array_equal(f, g) for f, (_, g) in zip(frames, sink.got))


@pytest.mark.parametrize("interrupt_after", [None, 2])
def test_a_pipeline_preparing_ahead_writes_what_it_denoised_and_leaves_no_thread(interrupt_after):
    import threading

    frames = [f.repeat(4, 1).repeat(4, 2) for f in _clip(7, h=16, w=16)]  # 64x64: big enough for DIS

    class Aligned(_TargetView):
        align, runs = "dis", 0

        def _run(self, windows):
            self.runs += 1
            if interrupt_after is not None and self.runs > interrupt_after:
                raise KeyboardInterrupt  # as Ctrl-C lands on the thread that runs the network
            return super()._run(windows).copy()

    sink = _Sink()
    stats = run_pipeline(_Source(frames), Aligned(2), sink, batch=1, prepare_ahead=True)
    # One batch a pushed frame, the first holding frames 0..k (their windows reach up to frame 2k).
    want = 7 if interrupt_after is None else 3 + interrupt_after - 1
    assert stats.interrupted == (interrupt_after is not None)
    assert stats.written == want and [i for i, _ in sink.got] == list(range(want))
    assert not any(t.name.startswith("prepare") for t in threading.enumerate())


@pytest.fixture(scope="module")
def tiny_temporal(tmp_path_factory):
    """A tiny k=1 centred TemporalB2GNet (random neighbour head) as a checkpoint and its ONNX export."""
    from b2g_deploy import api
    from b2g_deploy.checkpoint import Checkpoint, save_checkpoint
    from b2g_deploy.config import preset
    from b2g_deploy.temporal.model import TemporalB2GNet

    torch.manual_seed(0)
    cfg = preset("tiny")
    net = TemporalB2GNet.for_k(3, 1, False, cfg.model).eval()
    with torch.no_grad():
        for p in net.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    folder = tmp_path_factory.mktemp("tiny_temporal")
    ckpt = folder / "t.pt"
    save_checkpoint(ckpt, Checkpoint(net, cfg, {"bit_depth": 8}), force=True)
    onnx = folder / "t.onnx"
    api.export(ckpt, onnx, force=True)
    return ckpt, onnx


@pytest.mark.parametrize("on_device", [False, True])
def test_torch_runtime_through_the_feeder_matches_stacked_windows(tiny_temporal, on_device):
    from b2g_deploy.runtimes.temporal import TorchTemporalRuntime

    torch.set_num_threads(1)
    frames = _clip(7, h=20, w=24, seed=1)
    with TorchTemporalRuntime(tiny_temporal[0]) as rt:
        want = _stacked_reference(rt, frames, batch=3)
        clip = rt.denoise_clip(np.stack(frames), batch=3)  # other batches: equal up to float sums
        rt.frames_on_device = on_device  # the GPU path's assembly, run on the CPU
        uploads = []
        upload = rt._upload
        rt._upload = lambda f: uploads.append(id(f)) or upload(f)
        got = _feed(rt, frames, batch=3)
    assert [i for i, _ in got] == list(range(7))
    assert np.array_equal(np.stack([d for _, d in got]), want)
    assert np.abs(want - clip).max() < 1e-5
    if on_device:
        assert len(uploads) == len(frames)  # each frame crossed to the device once, not 2k+1 times
    else:
        assert not uploads


def test_torch_runtime_on_device_path_falls_back_where_frames_need_padding(tiny_temporal):
    from b2g_deploy.runtimes.temporal import TorchTemporalRuntime

    frames = _clip(4, h=5, w=7, seed=2)  # below the net's multiple: padded on the host
    with TorchTemporalRuntime(tiny_temporal[0]) as rt:
        want = _stacked_reference(rt, frames, batch=2)
        rt.frames_on_device = True
        got = _feed(rt, frames, batch=2)
        assert not rt._uploaded
    assert np.array_equal(np.stack([d for _, d in got]), want)


def test_ort_runtime_through_the_feeder_matches_stacked_windows(tiny_temporal):
    from b2g_deploy.runtimes.temporal import OrtTemporalRuntime

    frames = _clip(6, h=20, w=24, seed=3)
    with OrtTemporalRuntime(tiny_temporal[1], provider="cpu", threads=1) as rt:
        want = _stacked_reference(rt, frames, batch=4)
        got = _feed(rt, frames, batch=4)
    assert [i for i, _ in got] == list(range(6))
    assert np.array_equal(np.stack([d for _, d in got]), want)


def test_infer_window_frames_refuses_an_empty_batch(tiny_temporal):
    from b2g_deploy.errors import InputError
    from b2g_deploy.runtimes.temporal import TorchTemporalRuntime

    with pytest.raises(InputError, match="empty batch"):
        _TargetView(1).infer_window_frames([])
    with TorchTemporalRuntime(tiny_temporal[0]) as rt:
        rt.frames_on_device = True
        with pytest.raises(InputError, match="empty batch"):
            rt.infer_window_frames([])


def test_the_pipeline_unclips_every_frame_it_writes():
    from b2g_deploy.clipping import Unclipper, clipped_mean

    sigma = 25 / 255
    rng = np.random.default_rng(0)
    clean = np.concatenate([np.ones((3, 8, 16)), 0.3 + 0.4 * rng.random((3, 8, 16))], axis=1).astype(np.float32)
    biased = clipped_mean(clean, sigma).astype(np.float32)  # a denoiser of clipped data: its white too dark
    plain, fixed = _Sink(), _Sink()
    run_pipeline(_Source([biased.copy() for _ in range(6)]), _TargetView(2), plain, batch=2)
    run_pipeline(_Source([biased.copy() for _ in range(6)]), _TargetView(2), fixed, batch=2, unclip=Unclipper(sigma, smooth=1))
    assert [i for i, _ in fixed.got] == list(range(6))
    assert all(np.array_equal(f, biased) for _, f in plain.got)
    assert all(np.abs(f - clean).max() < 2e-3 for _, f in fixed.got)
