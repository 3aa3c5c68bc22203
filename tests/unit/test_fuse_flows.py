"""The fusion's flows (temporal/fuse_flows.py): a chained flow adds the steps it is made of, on a
pan it lands where a direct flow does, each consecutive pair is computed once for all the
windows that share it, and a wider window fuses a pan closer to the clean frames."""

from __future__ import annotations

import numpy as np
import pytest

from b2g_deploy.temporal import fuse_flows
from b2g_deploy.temporal.fuse import fuse_clip, guide_of
from b2g_deploy.temporal.fuse_stream import OutputFuser

SIGMA = 25 / 255


def _panned_clip(n: int, step: tuple[float, float] = (0.6, 1.1), h: int = 96, w: int = 128) -> np.ndarray:
    """n (3, h, w) frames of a textured scene moving by ``step`` px (y, x) a frame."""
    import cv2

    rng = np.random.default_rng(5)
    big = cv2.GaussianBlur(rng.random((h + 40, w + 40, 3)).astype(np.float32), (0, 0), 1.5)
    big = (big - big.min()) / (big.max() - big.min())
    frames = []
    for t in range(n):
        m = np.float32([[1, 0, -step[1] * t], [0, 1, -step[0] * t]])
        moved = cv2.warpAffine(big, m, (big.shape[1], big.shape[0]), flags=cv2.INTER_CUBIC,
                               borderMode=cv2.BORDER_REFLECT)
        frames.append(moved[20 : 20 + h, 20 : 20 + w].transpose(2, 0, 1))
    return np.ascontiguousarray(np.stack(frames))


def test_a_chained_flow_adds_its_steps():
    field = np.zeros((20, 30, 2), np.float32)
    field[..., 0] = 1.5
    step = np.zeros_like(field)
    step[..., 1] = -0.5
    out = fuse_flows.chain(field, step)
    assert np.allclose(out[..., 0], 1.5) and np.allclose(out[..., 1], -0.5)


def test_on_a_pan_a_chained_flow_lands_where_the_direct_one_does():
    clip = _panned_clip(6)
    guides = [guide_of(f) for f in clip]
    direct = fuse_flows.window_fields(guides, 0, "fine", direct_reach=None)
    chained = fuse_flows.window_fields(guides, 0, "fine", direct_reach=1)
    inner = (slice(6, -6), slice(6, -6))
    for j in range(2, 6):
        assert np.abs(chained[j][inner] - direct[j][inner]).mean() < 0.1  # guide pixels
    want = -np.array([1.1, 0.6]) * 5  # (x, y): the scene moves by -step a frame; a 96-px frame's guide is full size
    assert np.allclose(np.median(chained[5][inner].reshape(-1, 2), axis=0), want, atol=0.1)
    assert direct[0] is None and chained[0] is None


def test_each_consecutive_flow_is_computed_once_for_every_window(monkeypatch):
    calls = []
    real = fuse_flows.dis_field

    def counting(a, b, flow):
        calls.append((id(a), id(b)))
        return real(a, b, flow)

    monkeypatch.setattr(fuse_flows, "dis_field", counting)
    clip = _panned_clip(12, h=48, w=64)
    noisy = clip + np.random.default_rng(0).normal(0, SIGMA, clip.shape).astype(np.float32)
    fuse_clip(clip, noisy, k=5, sigma=SIGMA)
    # Per frame: its two consecutive flows (shared) and the direct ones 2..3 away each side; the
    # first and last k windows, which reach further into the clip, chain through pairs of their own.
    assert len(calls) == len(set(calls))
    assert len(calls) <= 12 * (2 + 2 * (fuse_flows.DIRECT_REACH - 1)) + 2 * 5


def test_a_long_clip_keeps_only_the_flows_of_the_window_at_hand(monkeypatch):
    kept = []
    real = fuse_flows.FlowCache.keep_only

    def recording(self, guides):
        real(self, guides)
        kept.append(len(self))

    monkeypatch.setattr(fuse_flows.FlowCache, "keep_only", recording)
    clip = _panned_clip(30, h=48, w=64)
    fuse_clip(clip, clip, k=5, sigma=SIGMA, refine=False)
    assert len(kept) == 29 and max(kept) <= 11 * 10  # pairs within one 11-frame window, not the clip's


def test_the_cache_forgets_frames_no_longer_held_and_never_mistakes_one_for_another():
    a, b, c = (guide_of(f) for f in _panned_clip(3, h=48, w=64))
    cache = fuse_flows.FlowCache()
    first = cache.get(a, b, "fine")
    assert cache.get(a, b, "fine") is first and len(cache) == 1
    assert cache.get(a, c, "fine") is not first
    cache.keep_only([a, c])
    assert len(cache) == 1  # a -> b dropped with b


def test_a_wider_window_fuses_a_pan_closer_to_the_clean_frames():
    clip = _panned_clip(16)
    rng = np.random.default_rng(1)
    outs = clip + rng.normal(0, 0.25 * SIGMA, clip.shape).astype(np.float32)  # a denoiser's error
    noisy = clip + rng.normal(0, SIGMA, clip.shape).astype(np.float32)
    inner = (slice(None), slice(8, -8), slice(8, -8))

    def error(k: int) -> float:
        fused = fuse_clip(outs, noisy, k=k, sigma=SIGMA)
        return float(np.mean([(fused[t] - clip[t])[inner] ** 2 for t in range(5, 11)]))

    assert error(5) < 0.9 * error(3)


@pytest.mark.parametrize("k,workers", [(5, 1), (3, 2)])
def test_the_stream_with_chained_and_inverted_flows_gives_what_the_whole_clip_gives(k, workers):
    clip = _panned_clip(9, h=48, w=64)
    noisy = clip + np.random.default_rng(2).normal(0, SIGMA, clip.shape).astype(np.float32)
    fuser, got = OutputFuser(k=k, sigma=SIGMA, workers=workers), []  # pooled: the same flows, whoever computes them
    for i in range(len(clip)):
        got += fuser.push(i, noisy[i], clip[i])
    got += fuser.flush()
    assert [i for i, _, _ in got] == list(range(9))
    want = fuse_clip(clip, noisy, k=k, sigma=SIGMA)
    assert np.allclose(np.stack([f for _, _, f in got]), want, atol=1e-6)
    assert len(fuser._flows) == 0  # flushed: nothing kept for a next stream


def test_the_inverse_of_a_flow_brings_each_pixel_back():
    import cv2

    gy, gx = np.mgrid[0:60, 0:80].astype(np.float32)
    field = np.stack([3 + 0.02 * gx, -2 + 0.01 * gy], -1).astype(np.float32)  # a pan with a zoom
    back = fuse_flows.inverse(field)
    landed = cv2.remap(field, gx + back[..., 0], gy + back[..., 1], cv2.INTER_LINEAR)
    assert np.abs(back + landed)[8:-8, 8:-8].max() < 1e-2  # y + back(y) = x where x + field(x) = y
    assert not np.allclose(back, -field, atol=0.02)  # not just the negated field: the zoom moves it


def test_inverted_backward_flows_run_dis_only_towards_later_frames(monkeypatch):
    clip = _panned_clip(7)
    guides = [guide_of(f) for f in clip]
    direct = [fuse_flows.window_fields(guides, slot, "fine") for slot in range(7)]
    order = {id(g): i for i, g in enumerate(guides)}
    calls = []
    real = fuse_flows.dis_field

    def counting(a, b, flow):
        calls.append((order[id(a)], order[id(b)]))
        return real(a, b, flow)

    monkeypatch.setattr(fuse_flows, "dis_field", counting)
    cache, inner = fuse_flows.FlowCache(), (slice(8, -8), slice(8, -8))
    for slot in range(7):  # every frame's window over the same 7 frames, in stream order
        inverted = fuse_flows.window_fields(guides, slot, "fine", cache, invert_back=True)
        for j in range(7):
            if j != slot:  # a pan: the inverse lands where DIS's own flow does
                assert np.abs(inverted[j][inner] - direct[slot][j][inner]).mean() < 0.1
    assert sorted(calls) == [(a, b) for a in range(7) for b in range(a + 1, 7)]  # each pair once, forwards


def test_a_flow_being_computed_is_waited_for_not_computed_again(monkeypatch):
    import threading
    import time

    calls = []
    real = fuse_flows.dis_field

    def slow(a, b, flow):
        calls.append(1)
        time.sleep(0.2)
        return real(a, b, flow)

    monkeypatch.setattr(fuse_flows, "dis_field", slow)
    a, b = (guide_of(f) for f in _panned_clip(2, h=48, w=64))
    cache, got = fuse_flows.FlowCache(), []
    threads = [threading.Thread(target=lambda: got.append(cache.get(a, b, "fine"))),
               threading.Thread(target=lambda: got.append(cache.get(b, a, "fine", inverted=True)))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and len(got) == 2  # one DIS run: the inverse waited for it


def test_a_failed_flow_is_not_kept(monkeypatch):
    def broken(a, b, flow):
        raise RuntimeError("no flow")

    a, b = (guide_of(f) for f in _panned_clip(2, h=48, w=64))
    cache = fuse_flows.FlowCache()
    monkeypatch.setattr(fuse_flows, "dis_field", broken)
    with pytest.raises(RuntimeError):
        cache.get(a, b, "fine")
    assert len(cache) == 0
    monkeypatch.undo()
    assert cache.get(a, b, "fine").shape == a.shape + (2,)  # tried again, not the kept failure
