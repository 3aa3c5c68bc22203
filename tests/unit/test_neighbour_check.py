"""The frame-to-frame check that keeps a temporal fit only when it beats its prior: references
lie outside each window, the better denoiser scores lower, and the fit stage records it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from b2g_deploy.temporal import neighbour_check
from b2g_deploy.temporal.neighbour_check import neighbour_scores, reference_index
from b2g_deploy.temporal.windows import window_indices


def test_the_reference_frame_is_never_in_the_window():
    for n in (4, 6, 9):
        for causal in (False, True):
            for t in range(n):
                window = window_indices(t, n, 1, causal)
                r = reference_index(t, window, n)
                assert r is not None and r not in window
    assert reference_index(1, window_indices(1, 3, 1), 3) is None  # the window is the whole clip


class _Stub:
    """A k=1 centred 'temporal net' whose outputs are replaced below."""

    window, target_index, align, channels = 3, 1, "none", 1

    def __init__(self, kind: str):
        self.kind = kind


@pytest.fixture
def static_clip():
    rng = np.random.default_rng(0)
    clean = np.repeat(rng.random((1, 1, 48, 64), dtype=np.float32), 8, axis=0)
    noisy = clean + rng.normal(0, 0.1, clean.shape).astype(np.float32)  # independent per frame
    return torch.from_numpy(clean), torch.from_numpy(noisy)


def test_the_better_denoiser_scores_lower_without_clean_frames(monkeypatch, static_clip):
    clean, noisy = static_clip
    outputs = {"perfect": clean, "identity": noisy, "blurred": clean * 0.9 + 0.05}
    monkeypatch.setattr(neighbour_check, "denoised_targets",
                        lambda nets, frames, targets: [outputs[net.kind].numpy()[targets] for net in nets])
    monkeypatch.setattr(neighbour_check, "warped_reference", lambda frames, t, r: frames[r])  # static: no flow
    perfect, blurred, identity = neighbour_scores([_Stub("perfect"), _Stub("blurred"), _Stub("identity")], noisy)
    # perfect: only the reference's noise (0.01); the identity output adds its own noise again
    assert perfect == pytest.approx(0.01, rel=0.05) and identity == pytest.approx(0.02, rel=0.05)
    assert perfect < blurred < identity


def test_the_temporal_stage_keeps_the_better_of_prior_and_fit():
    from b2g_deploy.api import fit_temporal_stage
    from b2g_deploy.config import preset
    from b2g_deploy.priors import starting_network
    from b2g_deploy.temporal.model import TemporalB2GNet

    torch.set_num_threads(1)
    single, cfg, _ = starting_network("prior", 1, preset("fast"))
    rng = np.random.default_rng(3)
    frames = torch.from_numpy((0.5 + rng.normal(0, 0.1, (6, 1, 48, 48))).clip(0, 1).astype(np.float32))
    start = TemporalB2GNet.from_single_frame(single, 1, False)
    stage = fit_temporal_stage(frames, single, cfg.with_overrides(iters=2), k=1, start=start,
                               start_label="the prior", align="none", check_prior=True)
    check = stage.record["neighbour_check"]
    assert check["kept"] in ("prior", "fitted") and check["prior"] > 0 and check["fitted"] > 0
    assert (check["kept"] == "prior") == (check["prior"] < check["fitted"])
    assert (check["kept"] == "prior") == any("kept the prior" in n for n in stage.notes)


def test_the_single_frame_fit_keeps_the_better_of_prior_and_fit():
    """The same check for a single-frame fit on video frames: a net whose output is the noise
    left in is the worse one, whichever side it is on."""
    from b2g_deploy.api.keep_better import keep_the_better_single
    from b2g_deploy.config import preset
    from b2g_deploy.model import B2GNet
    from b2g_deploy.priors import starting_network

    torch.set_num_threads(1)
    good, cfg, _ = starting_network("prior", 1, preset("fast"))
    bad = B2GNet(1, cfg.model)  # untrained: far from the frames
    rng = np.random.default_rng(5)
    clean = np.repeat(0.3 + 0.4 * rng.random((1, 1, 48, 48), dtype=np.float32), 4, axis=0)
    frames = torch.from_numpy((clean + rng.normal(0, 0.1, clean.shape)).clip(0, 1).astype(np.float32))
    meta, notes = {}, []
    assert keep_the_better_single(good, bad, frames, "prior", meta, notes) is good
    assert meta["single_check"]["kept"] == "prior"
    assert len(notes) == 1 and notes[0].startswith("the single-frame fit scored worse than the prior network")
    meta, notes = {}, []
    assert keep_the_better_single(bad, good, frames, "prior", meta, notes) is good
    assert meta["single_check"]["kept"] == "fitted" and notes == []
    # A single image has no other frame to check against: the fit is kept as it is.
    meta = {}
    assert keep_the_better_single(good, bad, frames[:1], "prior", meta, []) is bad and meta == {}


def test_fitting_video_frames_from_a_prior_records_the_single_frame_check():
    from b2g_deploy.api.fitting import fit_network
    from b2g_deploy.config import preset
    from b2g_deploy.priors import starting_network

    torch.set_num_threads(1)
    rng = np.random.default_rng(6)
    stack = (0.5 + rng.normal(0, 0.1, (3, 1, 32, 32))).clip(0, 1).astype(np.float32)
    facts = dict(preset="fast", seed=0, source="clip", height=32, width=32, bit_depth=8)
    for frames, checked in ((stack, True), (stack[:1], False)):
        net, cfg, label = starting_network("prior", 1, preset("fast").with_overrides(iters=2))
        fitted = fit_network(frames, cfg, net, label, facts, device="cpu", check_prior=True)
        assert ("single_check" in fitted.checkpoint.meta) == checked
    net, cfg, label = starting_network("prior", 1, preset("fast").with_overrides(iters=2))
    assert "single_check" not in fit_network(stack, cfg, net, label, facts, device="cpu").checkpoint.meta  # off
