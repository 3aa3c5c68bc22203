"""A short real fit must denoise: PSNR well above the noisy input, for both deployable outputs."""

import numpy as np
import torch

from b2g_deploy.config import preset
from b2g_deploy.fit import ensemble, fit, single_pass
from b2g_deploy.metrics import psnr


def test_a_few_hundred_steps_raise_psnr_well_above_the_noisy_input(kodak_crop):
    clean = kodak_crop[:, :64, :64].copy()
    noisy = (clean + np.random.default_rng(0).normal(0, 25 / 255, clean.shape)).astype(np.float32)
    cfg = preset("tiny").with_overrides(
        iters=200, lr=3e-3, batch=4, crop=None, model={"width": 16, "depth": 3}, loss={"distill_weight": 1.0}
    )
    result = fit(torch.from_numpy(noisy), cfg, seed=0)
    assert result.steps == 200 and not result.interrupted
    assert result.history[-1]["loss"] < result.history[0]["loss"]
    y = torch.from_numpy(noisy)
    base = psnr(noisy, clean)
    assert psnr(single_pass(result.net, y).numpy(), clean) > base + 4.0
    assert psnr(ensemble(result.net, y, 8).numpy(), clean) > base + 4.0


def test_fit_on_several_frames_and_fine_tune(smooth_image):
    frames = torch.from_numpy(np.stack([smooth_image(32, 48, 1, seed=i) for i in range(3)]))
    cfg = preset("tiny").with_overrides(iters=10)
    first = fit(frames, cfg, seed=0)
    again = fit(frames[:1], cfg.with_overrides(iters=5), net=first.net, seed=1)
    assert again.net is first.net and again.steps == 5


def test_time_budget_stops_the_fit(smooth_image):
    y = torch.from_numpy(smooth_image(32, 32, 3))
    result = fit(y, preset("tiny").with_overrides(iters=100000), time_budget=0.5)
    assert result.stopped_by_budget and result.steps < 100000
