"""Motion alignment of temporal windows (temporal/align.py) and that it travels with the model."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch

from b2g_deploy.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from b2g_deploy.config import preset
from b2g_deploy.temporal.align import align_window
from b2g_deploy.temporal.model import TemporalB2GNet, denoise_clip


def _texture(h: int = 96, w: int = 128, seed: int = 0) -> np.ndarray:
    import cv2

    rng = np.random.default_rng(seed)
    base = cv2.GaussianBlur(rng.random((h, w)).astype(np.float32), (0, 0), 2.0)
    base = (base - base.min()) / (base.max() - base.min())
    return np.stack([base, base[::-1, ::-1].copy(), 0.5 * base + 0.25])


def _shifted(img: np.ndarray, dy: int, dx: int) -> np.ndarray:
    return np.roll(img, (dy, dx), axis=(1, 2))


@pytest.mark.parametrize("mode", ["dis", "dis-fine", "lk"])
def test_align_window_warps_each_neighbour_onto_the_target_and_leaves_the_target_alone(mode):
    target = _texture()
    moves = [(-4, 6), (-2, 3), (2, -3), (4, -6)]  # a pan of (2, -3) px per frame
    frames = [_shifted(target, *moves[0]), _shifted(target, *moves[1]), target,
              _shifted(target, *moves[2]), _shifted(target, *moves[3])]
    window = np.concatenate(frames)
    out = align_window(window, 3, 2, mode)
    assert np.array_equal(out[6:9], target)
    inner = (slice(None), slice(12, -12), slice(12, -12))  # away from the rolled-in border
    for j in (0, 1, 3, 4):
        before = np.abs(window[3 * j : 3 * j + 3][inner] - target[inner]).mean()
        after = np.abs(out[3 * j : 3 * j + 3][inner] - target[inner]).mean()
        assert after < 0.15 * before, (j, before, after)


def test_the_two_flows_differ_and_none_is_the_window_itself():
    rng = np.random.default_rng(2)
    window = np.clip(np.concatenate([_shifted(_texture(64, 80), 2 * i, -i) for i in range(3)])
                     + rng.normal(0, 0.1, (9, 64, 80)), 0, 1).astype(np.float32)
    fast, medium = align_window(window, 3, 1, "dis"), align_window(window, 3, 1, "dis-fine")
    assert np.array_equal(fast[3:6], window[3:6]) and np.array_equal(medium[3:6], window[3:6])
    assert not np.array_equal(fast, medium)
    assert align_window(window, 3, 1, "none") is window
    with pytest.raises(ValueError, match="dis-fine"):
        align_window(window, 3, 1, "farneback")


@pytest.mark.parametrize("mode", ["dis", "dis-fine", "lk"])
def test_aligning_in_place_gives_what_a_copy_gets_and_needs_an_array_it_can_write(mode):
    from b2g_deploy.temporal.align import align_windows

    rng = np.random.default_rng(5)
    batch = np.clip(np.stack([np.concatenate([_shifted(_texture(64, 80, seed=s), 2 * i, -i) for i in range(3)])
                              for s in range(2)]) + rng.normal(0, 0.1, (2, 9, 64, 80)), 0, 1).astype(np.float32)
    want = align_windows(batch, 3, 1, mode)
    inplace = batch.copy()
    assert align_windows(inplace, 3, 1, mode, inplace=True) is inplace
    assert np.array_equal(inplace, want) and not np.array_equal(batch, want)
    if mode != "lk":
        with pytest.raises(ValueError, match="in place"):
            align_window(batch[0].astype(np.float64), 3, 1, mode, inplace=True)


@pytest.mark.parametrize("mode", ["dis", "dis-fine", "lk"])
def test_aligned_nets_prepare_windows_wherever_they_run(tmp_path, mode):
    from b2g_deploy.runtimes.temporal import load_temporal_runtime
    from b2g_deploy.temporal.export import export_temporal_checkpoint, read_temporal_metadata

    cfg = preset("tiny")
    torch.manual_seed(0)
    net = TemporalB2GNet.for_k(3, 1, False, cfg.model, align=mode).eval()
    clip = np.stack([_shifted(_texture(64, 64), 2 * i, -i) for i in range(4)]).astype(np.float32)
    ckpt = tmp_path / "t.pt"
    save_checkpoint(ckpt, Checkpoint(net, cfg, {"bit_depth": 8}))
    expected = denoise_clip(load_checkpoint(ckpt).net, torch.from_numpy(clip)).numpy()
    unaligned = TemporalB2GNet.for_k(3, 1, False, cfg.model)
    unaligned.load_state_dict(net.state_dict())
    assert np.abs(denoise_clip(unaligned.eval(), torch.from_numpy(clip)).numpy() - expected).max() > 1e-3

    onnx = tmp_path / "t.onnx"
    export_temporal_checkpoint(ckpt, onnx)
    assert read_temporal_metadata(onnx).align == mode
    for model in (ckpt, onnx):
        with load_temporal_runtime(model, channels=3) as rt:
            assert rt.align == mode
            assert np.abs(rt.denoise_clip(clip) - expected).max() < 1e-4, model


def test_alignment_is_a_pure_function_of_the_window():
    # A reused DIS object kept state between calls: the same window aligned again after another
    # one got a different flow (at 64x80: 0.01 px of flow), so a clip's output depended on what
    # the thread had aligned before it. Small frames show it; 96x128 ones happened not to.
    rng = np.random.default_rng(1)
    noisy = [np.clip(np.concatenate([_shifted(_texture(64, 80, seed=s), i, -2 * i) for i in range(3)])
                     + rng.normal(0, 0.1, (9, 64, 80)), 0, 1).astype(np.float32) for s in (0, 1)]
    with ThreadPoolExecutor(1) as fresh_thread:  # a thread that has aligned nothing yet
        first = fresh_thread.submit(align_window, noisy[0], 3, 1).result()
    again = align_window(noisy[0], 3, 1)
    align_window(noisy[1], 3, 1)
    assert np.array_equal(again, first)
    assert np.array_equal(align_window(noisy[0], 3, 1), first)


def test_the_flow_guide_is_bit_for_bit_the_grey_the_fits_saw():
    # Summing the planes one by one rounds about one pixel in 100,000 the other way, and that
    # alone moved a 720p temporal fit by 0.26 dB at sigma 50 (docs/BENCHMARKS.md): the grey stays
    # the ordered float32 sum w0 x0 + w1 x1 + w2 x2, which np.tensordot gave on the machine the
    # fits ran on. Its BLAS kernel is not the same everywhere (on another 2-core EPYC, 2026-12-06,
    # it rounded 3 pixels of this frame the other way), so the reference is the sum itself, in
    # numpy's elementwise arithmetic, which every machine rounds alike; the 720p temporal fits
    # reproduced to the digit there with it. A 720p frame, so that such a rounding shows.
    from b2g_deploy.temporal.align import _guide

    frame = np.random.default_rng(7).random((3, 720, 1280), dtype=np.float32)
    w = np.array([0.299, 0.587, 0.114], np.float32)
    grey = (w[0] * frame[0] + w[1] * frame[1]) + w[2] * frame[2]
    want = np.clip(grey * 255.0 + 0.5, 0, 255).astype(np.uint8)
    assert np.array_equal(_guide(frame, 1, blur=0.0), want)
