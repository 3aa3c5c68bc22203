"""The output fusion (temporal/fuse.py): averaging aligned neighbours' outputs lowers an error
that is independent from frame to frame, a neighbour that shows something else is ignored, the
stream gives what the whole clip gives, and the pipeline writes every frame, in order, even
after Ctrl-C."""

from __future__ import annotations

import numpy as np
import pytest

from b2g_deploy.temporal.fuse import fuse_clip, fuse_window, removed_sigma
from b2g_deploy.temporal.fuse_stream import OutputFuser

SIGMA = 25 / 255


def _scene(h: int = 64, w: int = 80, seed: int = 0) -> np.ndarray:
    """A smooth RGB texture with edges: something optical flow can lock onto."""
    import cv2

    rng = np.random.default_rng(seed)
    base = cv2.GaussianBlur(rng.random((h, w, 3)).astype(np.float32), (0, 0), 2.0)
    base = (base - base.min()) / (base.max() - base.min())
    base[h // 3 : h // 2, w // 4 : w // 2] = 0.9
    return np.ascontiguousarray(base.transpose(2, 0, 1))


def _outputs(clean: np.ndarray, n: int, error: float, seed: int = 1) -> np.ndarray:
    """n 'denoised' frames of a still scene: clean + an independent error of std ``error``."""
    rng = np.random.default_rng(seed)
    return np.stack([clean + rng.normal(0, error, clean.shape).astype(np.float32) for _ in range(n)])


def test_fusing_a_still_window_averages_away_the_independent_error():
    clean = _scene()
    outs = _outputs(clean, 5, 0.2 * SIGMA)
    fused = fuse_window(list(outs), 2, SIGMA)
    crop = (slice(None), slice(4, -4), slice(4, -4))
    before = np.mean((outs[2] - clean)[crop] ** 2)
    after = np.mean((fused - clean)[crop] ** 2)
    assert after < 0.5 * before  # five estimates of one frame: ideally a fifth


def test_a_neighbour_that_shows_something_else_is_ignored():
    clean = _scene()
    outs = _outputs(clean, 5, 0.2 * SIGMA)
    intruder = outs[3].copy()
    intruder[:, 8:40, 40:72] = 1.0 - intruder[:, 8:40, 40:72]  # an object the target does not show
    fused = fuse_window([outs[0], outs[1], outs[2], intruder, outs[4]], 2, SIGMA)
    region = (slice(None), slice(14, 34), slice(46, 66))
    assert np.abs(fused - clean)[region].max() < 0.1  # no ghost of the intruder
    assert np.abs(fused[region] - intruder[region]).mean() > 0.2


def test_a_window_of_one_frame_repeated_returns_that_frame():
    frame = _scene()
    assert np.array_equal(fuse_window([frame] * 3, 1, SIGMA), frame)
    outs = np.stack([frame, frame + 0.01])
    clip = fuse_clip(outs[:1], outs[:1], k=2)  # a 1-frame clip: every slot is the frame itself
    assert np.array_equal(clip[0], frame)


@pytest.mark.parametrize("causal", [False, True])
def test_the_stream_gives_what_the_whole_clip_gives_in_order(causal):
    clean = _scene()
    outs = _outputs(clean, 7, 0.2 * SIGMA)
    noisy = outs + np.random.default_rng(2).normal(0, SIGMA, outs.shape).astype(np.float32)
    fuser, got = OutputFuser(k=2, causal=causal, sigma=SIGMA), []
    for i in range(len(outs)):
        got += fuser.push(i + 10, noisy[i], outs[i])
        # causal: at once, centred: k frames later; both the first ones together once frame 2k is in
        assert len(got) == (0 if i < 4 else i + 1 - fuser.latency)
    got += fuser.flush()
    assert [i for i, _, _ in got] == [i + 10 for i in range(7)]
    assert all(np.array_equal(y, noisy[i]) for i, (_, y, _) in enumerate(got))  # each keeps its own input
    want = fuse_clip(outs, noisy, k=2, causal=causal, sigma=SIGMA)
    assert np.allclose(np.stack([f for _, _, f in got]), want, atol=1e-6)


def test_a_frame_size_change_flushes_the_old_size_first():
    fuser = OutputFuser(k=1, sigma=SIGMA)
    small, large = _scene(32, 40), _scene(48, 64)
    got = fuser.push(0, small, small) + fuser.push(1, small, small) + fuser.push(2, large, large)
    got += fuser.flush()
    assert [i for i, _, _ in got] == [0, 1, 2] and got[2][2].shape == large.shape


def test_bad_settings_are_refused_and_sigma_is_what_was_removed():
    with pytest.raises(ValueError, match="strength"):
        OutputFuser(strength=0)
    with pytest.raises(ValueError, match="positive"):
        fuse_window([_scene()] * 3, 1, 0.0)
    with pytest.raises(ValueError, match="noisy"):
        fuse_clip(np.zeros((3, 3, 8, 8), np.float32), np.zeros((2, 3, 8, 8), np.float32))
    clean = _scene()
    noisy = clean + np.random.default_rng(0).normal(0, SIGMA, clean.shape).astype(np.float32)
    assert removed_sigma(noisy, clean) == pytest.approx(SIGMA, rel=0.05)


def test_the_pipeline_fuses_every_frame_and_flushes_them_after_ctrl_c():
    from b2g_deploy.io.pipeline import run_pipeline
    from b2g_deploy.modelfile.info import ModelInfo

    clean = _scene()
    frames = list(_outputs(clean, 6, SIGMA, seed=3))

    class Source:
        skipped = 0

        def __iter__(self):
            return iter(enumerate(frames))

    class Sink:
        def __init__(self):
            self.frames, self.closed = [], False

        def write(self, frame, index):
            self.frames.append((index, frame))

        def close(self):
            self.closed = True

    class Identity:  # a "denoiser" that interrupts after four frames, like Ctrl-C would
        info = ModelInfo(3, 8, "single", 1, {})
        calls = 0

        def infer(self, batch):
            self.calls += len(batch)
            if self.calls > 4:
                raise KeyboardInterrupt
            return batch

    Source.info = Identity.info
    sink = Sink()
    stats = run_pipeline(Source(), Identity(), sink, batch=1, fuse=OutputFuser(k=2, sigma=SIGMA))
    assert stats.interrupted and sink.closed
    assert [i for i, _ in sink.frames] == [0, 1, 2, 3]  # the two the fusion still held were flushed
    want = fuse_clip(np.stack(frames[:4]), np.stack(frames[:4]), k=2, sigma=SIGMA)
    assert np.allclose(np.stack([f for _, f in sink.frames]), want, atol=1e-6)


def test_the_default_window_is_three_frames_each_side_or_four_back():
    from b2g_deploy.temporal.fuse import default_k

    assert (default_k(False), default_k(True)) == (3, 2)
    assert OutputFuser().latency == 3 and OutputFuser(causal=True).latency == 0


def test_frames_in_another_memory_layout_fuse_like_contiguous_ones():
    clean = _scene()
    outs = _outputs(clean, 5, 0.2 * SIGMA)
    strided = [np.ascontiguousarray(o.transpose(1, 2, 0)).transpose(2, 0, 1) for o in outs]  # HWC-backed views
    assert not strided[2].flags["C_CONTIGUOUS"]
    assert np.array_equal(fuse_window(strided, 2, SIGMA), fuse_window(list(outs), 2, SIGMA))


def _pan(frame: np.ndarray, dy: float, dx: float) -> np.ndarray:
    """``frame`` (C, H, W) moved by a sub-pixel (dy, dx), bicubic, edges reflected."""
    import cv2

    m = np.float32([[1, 0, dx], [0, 1, dy]])
    hwc = cv2.warpAffine(np.ascontiguousarray(frame.transpose(1, 2, 0)), m, (frame.shape[2], frame.shape[1]),
                         flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
    return np.ascontiguousarray(hwc.transpose(2, 0, 1))


def test_the_fine_flow_warps_a_sub_pixel_pan_closer_than_the_medium_one():
    from b2g_deploy.temporal.align import _grid, _guide_scale
    from b2g_deploy.temporal.fuse import _flow_maps, _remap, guide_of, interleaved
    from b2g_deploy.temporal.fuse_flows import dis_field

    clean = _scene(96, 128, seed=3)
    moved = _pan(clean, 0.4, 1.3)
    inner = (slice(None), slice(8, -8), slice(8, -8))
    errors = {}
    for flow in ("fine", "medium"):
        maps = _flow_maps(dis_field(guide_of(clean), guide_of(moved), flow), _guide_scale(96, 128), _grid(96, 128))
        out = _remap(interleaved(moved), maps, flow).transpose(2, 0, 1)
        errors[flow] = float(np.mean((out - clean)[inner] ** 2))
    assert errors["fine"] < 0.8 * errors["medium"]


def test_an_unknown_fusion_flow_is_refused():
    with pytest.raises(ValueError, match="fine, medium"):
        OutputFuser(flow="slow")
    with pytest.raises(ValueError, match="fusion flow"):
        fuse_window([_scene()] * 3, 1, SIGMA, flow="slow")
