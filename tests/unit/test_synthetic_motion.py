"""Synthetic video windows for pretraining temporal priors (fit/synthetic_motion.py): whole-pixel
motion of one crop, occluders, deformation, and the overlapping pairs of the pair_weight term."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from b2g_deploy.config import PretrainConfig


def _cfg(**changes) -> PretrainConfig:
    return PretrainConfig.model_validate({"crop": 32, **changes})


def test_synthetic_windows_displace_the_target_by_the_drawn_motion():
    from b2g_deploy.fit.synthetic_motion import motion_margin, synthetic_windows, target_slot

    cfg = _cfg(temporal_k=2, motion_max=1.5)
    m = motion_margin(cfg)
    assert m == math.ceil(1.5 * 2) + 1 and target_slot(cfg) == 2
    big = np.random.default_rng(0).random((6, 3, 16 + 2 * m, 16 + 2 * m)).astype(np.float32)
    win = synthetic_windows(big, cfg, np.random.default_rng(1))
    assert win.shape == (6, 15, 16, 16)
    for i in range(6):
        # The target is the centre cut; every frame is a whole-pixel shift of the same crop.
        assert np.array_equal(win[i, 6:9], big[i, :, m : m + 16, m : m + 16])
        for j in range(5):
            hits = [(dy, dx) for dy in range(-m, m + 1) for dx in range(-m, m + 1)
                    if np.array_equal(win[i, 3 * j : 3 * j + 3], big[i, :, m + dy : m + dy + 16, m + dx : m + dx + 16])]
            assert hits, (i, j)
    causal = _cfg(temporal_k=1, causal=True, motion_max=0.0)
    assert target_slot(causal) == 2 and motion_margin(causal) == 1
    still = synthetic_windows(big[:, :, : 16 + 2, : 16 + 2], causal, np.random.default_rng(2))
    assert np.abs(still[:, 6:9] - big[:, :, 1:17, 1:17]).max() == 0


@pytest.mark.parametrize("causal", [False, True])
def test_pair_sequences_overlap_by_a_window_and_their_shift_aligns_the_two_targets(causal):
    from b2g_deploy.fit.pretrain import shifted
    from b2g_deploy.fit.synthetic_motion import pair_margin, synthetic_pairs, target_slot

    cfg = _cfg(temporal_k=1, causal=causal, motion_max=2.5)
    m, slot = pair_margin(cfg), target_slot(cfg)
    big = np.random.default_rng(0).random((8, 3, 24 + 2 * m, 24 + 2 * m)).astype(np.float32)
    seq, shifts = synthetic_pairs(big, cfg, np.random.default_rng(3))
    assert seq.shape == (8, 12, 24, 24) and shifts.shape == (8, 2)
    assert np.abs(shifts).max() > 0  # moving sequences are drawn
    for i in range(8):
        first = torch.from_numpy(seq[i, 3 * slot : 3 * slot + 3])
        second = torch.from_numpy(seq[i, 3 * slot + 3 : 3 * slot + 6])
        moved, valid = shifted(second, (int(shifts[i, 0]), int(shifts[i, 1])))
        assert valid.sum() > 0.5 * 24 * 24
        assert torch.equal(moved * valid, first * valid)  # the second target, read at p + d, is the first


def test_occluders_move_a_disc_of_another_photograph_across_every_frame():
    from b2g_deploy.fit.synthetic_motion import motion_margin, synthetic_windows

    cfg = _cfg(temporal_k=2, motion_max=3.0, crop=64, occluders=1.0)
    m = motion_margin(cfg)
    big = np.random.default_rng(0).uniform(0.2, 1.0, (3, 3, 64 + 2 * m, 64 + 2 * m)).astype(np.float32)
    big[1] = 0.0  # the photograph window 0's disc is cut from
    plain = synthetic_windows(big, cfg.model_copy(update={"occluders": 0.0}), np.random.default_rng(5))
    win = synthetic_windows(big, cfg, np.random.default_rng(5))
    discs = [(win[0, 3 * j : 3 * j + 3] == 0).all(axis=0) for j in range(5)]
    areas = [d.sum() for d in discs]
    assert min(areas) > 0.01 * 64 * 64, areas
    assert any(not np.array_equal(discs[0], d) for d in discs[1:])  # it moves
    # Outside the disc the window is what it would have been without one.
    assert np.array_equal(win[0, :3][:, ~discs[0]], plain[0, :3][:, ~discs[0]])


def test_deform_bends_the_neighbours_and_leaves_the_target_as_cut():
    from b2g_deploy.fit.synthetic_motion import motion_margin, synthetic_windows

    cfg = _cfg(temporal_k=2, motion_max=1.0, crop=32, deform=3.0)
    m = motion_margin(cfg)
    big = np.random.default_rng(0).random((4, 3, 32 + 2 * m, 32 + 2 * m)).astype(np.float32)
    rigid = synthetic_windows(big, cfg.model_copy(update={"deform": 0.0}), np.random.default_rng(7))
    bent = synthetic_windows(big, cfg, np.random.default_rng(7))
    assert np.array_equal(bent[:, 6:9], rigid[:, 6:9])  # the target: never resampled
    for j in (0, 1, 3, 4):
        assert not np.array_equal(bent[:, 3 * j : 3 * j + 3], rigid[:, 3 * j : 3 * j + 3]), j
