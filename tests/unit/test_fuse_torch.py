"""The output fusion in torch (temporal/fuse_torch.py, `--fuse-flow lk`): the formulas of the
numpy fusion, Lucas-Kanade flows that undo a pan, a stream that gives what the whole clip gives,
and a window that refuses what it cannot fuse."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_fuse_flows import SIGMA, _panned_clip

from b2g_deploy.temporal import fuse_torch
from b2g_deploy.temporal.fuse import fuse_clip, fuse_window
from b2g_deploy.temporal.fuse_stream import OutputFuser


def _noisy_outputs(clip: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    outs = (clip + rng.normal(0, 0.25 * SIGMA, clip.shape)).astype(np.float32)  # a denoiser's error
    noisy = (clip + rng.normal(0, SIGMA, clip.shape)).astype(np.float32)
    return outs, noisy


def test_on_a_still_scene_it_computes_what_the_numpy_fusion_does():
    still = np.repeat(_panned_clip(1), 7, axis=0)
    outs, noisy = _noisy_outputs(still)
    want = fuse_window(list(outs), 3, SIGMA, noisy=list(noisy), refine=0.7)
    got = fuse_torch.fuse_window_torch(torch.from_numpy(outs), 3, SIGMA, 0.12, torch.from_numpy(noisy), 0.7).numpy()
    inner = (slice(None), slice(8, -8), slice(8, -8))
    assert np.abs(got - want)[inner].mean() < 2e-3  # the flows differ (~0 px each), not the formulas


def test_lucas_kanade_undoes_a_pan_and_the_fusion_gains_from_it():
    clip = _panned_clip(7)
    outs, noisy = _noisy_outputs(clip)
    flows = fuse_torch.window_flows(torch.from_numpy(outs), 3, [0, 6])
    inner = (slice(None), slice(None), slice(10, -10), slice(10, -10))
    median = flows[inner].flatten(2).median(dim=2).values
    # (x, y) px: the scene moves by -step a frame, so frame 0 lies +3 steps from frame 3
    assert torch.allclose(median, torch.tensor([[1.1, 0.6], [-1.1, -0.6]]) * 3, atol=0.15)
    inverted = fuse_torch.window_flows(torch.from_numpy(outs), 3, [0, 6], invert_back=True)
    assert torch.equal(inverted[1], flows[1])  # the later frame's flow is the same
    assert (inverted[0] - flows[0])[inner[1:]].abs().mean() < 0.1  # the earlier one's inverse lands there too
    fused = fuse_torch.fuse_window_torch(torch.from_numpy(outs), 3, SIGMA, 0.12, torch.from_numpy(noisy), 0.7).numpy()
    crop = (slice(None), slice(10, -10), slice(10, -10))
    assert np.mean((fused - clip[3])[crop] ** 2) < 0.5 * np.mean((outs[3] - clip[3])[crop] ** 2)


def test_the_stream_gives_what_the_whole_clip_gives():
    clip = _panned_clip(8, h=48, w=64)
    outs, noisy = _noisy_outputs(clip, 3)
    fuser, got = OutputFuser(sigma=SIGMA, flow="lk", workers=2), []
    for i in range(len(clip)):
        got += fuser.push(i, noisy[i], outs[i])
    got += fuser.flush()
    assert [i for i, _, _ in got] == list(range(8))
    want = fuse_clip(outs, noisy, sigma=SIGMA, flow="lk")
    assert np.allclose(np.stack([f for _, _, f in got]), want, atol=1e-6)


def test_a_window_of_copies_of_the_target_is_the_target_and_bad_calls_are_refused():
    frame = torch.rand(3, 32, 48)
    window = torch.stack([frame] * 5)
    assert torch.equal(fuse_torch.fuse_window_torch(window, 2, SIGMA, 0.12), frame)
    with pytest.raises(ValueError):
        fuse_torch.fuse_window_torch(window, 2, 0.0, 0.12)
    with pytest.raises(ValueError):
        fuse_torch.fuse_window_torch(window, 2, SIGMA, 0.12, refine=0.5)  # no noisy frames
    with pytest.raises(ValueError, match="torch"):
        fuse_window(list(window.numpy()), 2, SIGMA, flow="lk")


def test_the_wiener_step_is_the_same_on_tensors():
    from b2g_deploy.temporal.refine import wiener_step, wiener_step_tensor

    rng = np.random.default_rng(4)
    a, q = (rng.random((3, 40, 56), dtype=np.float32) for _ in range(2))
    v = np.full((40, 56), 1e-3, np.float32)
    got = wiener_step_tensor(torch.from_numpy(a), torch.from_numpy(q), torch.from_numpy(v)).numpy()
    assert np.array_equal(got, wiener_step(a, q, v))


def test_the_stream_uploads_each_frame_once(monkeypatch):
    clip = _panned_clip(8, h=32, w=48)
    outs, noisy = _noisy_outputs(clip, 5)
    made = []
    real = OutputFuser._upload

    def recording(self, frame):
        tensor = real(self, frame)
        made.append(tensor)  # held, so no id is reused
        return tensor

    monkeypatch.setattr(OutputFuser, "_upload", recording)
    fuser = OutputFuser(sigma=SIGMA, flow="lk")
    for i in range(len(clip)):
        fuser.push(i, noisy[i], outs[i])
    fuser.flush()
    assert len(made) > 2 * 8 and len({id(t) for t in made}) == 2 * 8  # asked for once per window, made once per frame
