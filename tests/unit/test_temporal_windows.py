"""Temporal windows (temporal/windows.py): which frames a window holds at clip edges, centred and
causal, stacking them, and the ring buffer that streams them in order."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from b2g_deploy.errors import InputError
from b2g_deploy.temporal.windows import (
    FrameSizeChangedError,
    RingBuffer,
    stack_window,
    target_slot,
    window_indices,
    window_sees_own_target,
)


def _numbered_frames(n: int, channels: int = 1, size: int = 4) -> torch.Tensor:
    """Frame i is filled with the value i, so a window shows which frames went into it."""
    return torch.arange(n, dtype=torch.float32).view(n, 1, 1, 1).expand(n, channels, size, size).clone()


# --- window assembly --------------------------------------------------------------------------


def test_centred_window_inside_the_clip():
    assert window_indices(5, 12, 2) == [3, 4, 5, 6, 7]


def test_centred_window_takes_the_nearest_distinct_frames_at_the_edges():
    assert window_indices(0, 12, 2) == [3, 1, 0, 2, 4]  # frames 0..4, nearer ones in nearer slots
    assert window_indices(1, 12, 2) == [3, 0, 1, 2, 4]
    assert window_indices(11, 12, 2) == [8, 10, 11, 9, 7]
    assert window_indices(10, 12, 2) == [8, 9, 10, 11, 7]
    assert window_indices(2, 5, 2) == [0, 1, 2, 3, 4]  # a clip exactly one window long


def test_the_fit_cuts_windows_reflected_about_the_target():
    assert window_indices(0, 12, 2, edges="reflected") == [2, 1, 0, 1, 2]
    assert window_indices(1, 12, 2, edges="reflected") == [3, 0, 1, 2, 3]  # never frame 1 in a neighbour slot
    assert window_indices(11, 12, 2, edges="reflected") == [9, 10, 11, 10, 9]
    assert window_indices(5, 12, 2, edges="reflected") == window_indices(5, 12, 2)
    assert window_indices(0, 2, 2, edges="reflected") == window_indices(0, 2, 2)  # short clips: one rule
    with pytest.raises(ValueError, match="edges"):
        window_indices(0, 12, 2, edges="mirror")


@pytest.mark.parametrize("k", [1, 2, 3])
def test_centred_windows_hold_distinct_frames_nearest_the_target(k):
    for n in range(2 * k + 1, 12):
        for t in range(n):
            idx = window_indices(t, n, k)
            assert len(set(idx)) == 2 * k + 1  # no frame twice
            assert max(idx) - min(idx) == 2 * k and t in idx  # consecutive frames around t
            distance = [abs(idx[k + d] - t) for d in range(1, k + 1)] + [abs(idx[k - d] - t) for d in range(1, k + 1)]
            slot_distance = list(range(1, k + 1)) * 2
            # nearer frames never sit in farther slots
            pairs = sorted(zip(slot_distance, distance))
            assert [d for _, d in pairs] == sorted(distance)


def test_causal_window_ends_at_the_target_and_starts_from_the_nearest_other_frames():
    assert window_indices(5, 12, 2, causal=True) == [1, 2, 3, 4, 5]
    assert window_indices(4, 12, 2, causal=True) == [0, 1, 2, 3, 4]
    # The first 2k frames: frames 0..2k other than the target, nearer ones in nearer slots.
    assert window_indices(0, 12, 2, causal=True) == [4, 3, 2, 1, 0]
    assert window_indices(1, 12, 2, causal=True) == [4, 3, 2, 0, 1]  # frame 0 before 2 at equal distance
    assert window_indices(3, 12, 2, causal=True) == [0, 1, 4, 2, 3]
    assert not window_sees_own_target(window_indices(0, 12, 2, causal=True), target_slot(2, True))
    # The fit's windows (edges="reflected") replicate frame 0, as before.
    assert window_indices(1, 12, 2, causal=True, edges="reflected") == [0, 0, 0, 0, 1]
    assert window_indices(0, 12, 2, causal=True, edges="reflected") == [0] * 5
    assert window_indices(6, 12, 2, causal=True, edges="reflected") == [2, 3, 4, 5, 6]


@pytest.mark.parametrize("k", [1, 2, 3])
def test_causal_windows_of_the_first_frames_are_distinct_and_ordered_by_distance(k):
    for n in (2 * k + 1, 12):
        for t in range(2 * k):
            idx = window_indices(t, n, k, causal=True)
            assert sorted(idx) == list(range(2 * k + 1))  # frames 0..2k, each once
            back = [abs(idx[2 * k - d] - t) for d in range(1, 2 * k + 1)]  # slot -1, -2, ...
            assert back == sorted(back)  # nearer frames never sit in farther slots


def test_clips_shorter_than_the_window_fall_back_to_the_nearest_frames():
    assert window_indices(0, 1, 2) == [0] * 5
    assert window_indices(0, 2, 2) == [1, 1, 0, 1, 1]
    assert window_indices(1, 2, 2) == [0, 0, 1, 0, 0]


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("k", [1, 2, 3])
def test_windows_stay_in_the_clip_and_never_repeat_the_target(k, causal):
    for n in range(1, 10):
        for t in range(n):
            idx = window_indices(t, n, k, causal)
            assert len(idx) == 2 * k + 1 and idx[target_slot(k, causal)] == t
            assert all(0 <= i < n for i in idx)
            if causal:
                assert all(i <= max(t, 2 * k) for i in idx)  # no lookahead past the stream's first 2k+1 frames
            # Only a 1-frame clip has no other frame to offer.
            assert window_sees_own_target(idx, target_slot(k, causal)) == (n == 1)


def test_window_indices_rejects_frames_outside_the_clip():
    with pytest.raises(ValueError):
        window_indices(3, 3, 1)


def test_stack_window_concatenates_channels_for_torch_and_numpy():
    frames = _numbered_frames(6, channels=3)
    stacked = stack_window(frames, [4, 5, 5])
    assert stacked.shape == (9, 4, 4)
    assert stacked[:3].eq(4).all() and stacked[3:].eq(5).all()
    as_numpy = stack_window([f.numpy() for f in frames], [0, 1, 2])
    assert isinstance(as_numpy, np.ndarray) and as_numpy.shape == (9, 4, 4)


# --- streaming --------------------------------------------------------------------------------


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("n", [1, 2, 3, 5, 12])
def test_ring_buffer_emits_every_frame_once_in_order_with_the_offline_window(n, causal):
    k = 2
    frames = _numbered_frames(n)
    buffer = RingBuffer(k, causal)
    emitted = []
    for i in range(n):
        out = buffer.push(frames[i])
        # Causal: the pushed frame's window at once, the first 2k+1 together once frame 2k is in.
        # Centred: frame i-k's, the first k+1 together once frame 2k is in (their windows reach
        # up to it).
        if causal:
            expected_now = list(range(2 * k + 1)) if i == 2 * k else [i] if i > 2 * k else []
        else:
            expected_now = list(range(k + 1)) if i == 2 * k else [i - k] if i > 2 * k else []
        assert [t for t, _ in out] == expected_now
        emitted += out
    tail = buffer.flush()
    if causal:  # nothing waits for the end once frame 2k is in; a shorter stream waits for it
        assert [t for t, _ in tail] == ([] if n > 2 * k else list(range(n)))
    emitted += tail
    assert [t for t, _ in emitted] == list(range(n))
    for t, window in emitted:
        assert torch.equal(window, stack_window(frames, window_indices(t, n, k, causal)))


def test_ring_buffer_latency_and_new_stream_after_flush():
    buffer = RingBuffer(2)
    assert buffer.latency == 2 and RingBuffer(2, causal=True).latency == 0
    for frame in _numbered_frames(3):
        buffer.push(frame)
    assert buffer.pending == 3  # a stream shorter than the window waits for the end (or frame 2k)
    assert [t for t, _ in buffer.flush()] == [0, 1, 2]
    for frame in _numbered_frames(7):
        buffer.push(frame)
    assert buffer.pending == 2
    assert [t for t, _ in buffer.flush()] == [5, 6]
    assert [t for t, _ in buffer.push(torch.zeros(1, 8, 8))] == []  # a new stream, new size allowed
    assert [t for t, _ in buffer.flush()] == [0]


def test_ring_buffer_refuses_a_frame_of_another_size():
    buffer = RingBuffer(1, causal=True)
    buffer.push(torch.zeros(3, 16, 16))
    with pytest.raises(FrameSizeChangedError, match="16x16") as info:
        buffer.push(torch.zeros(3, 16, 24))
    assert isinstance(info.value, InputError)
