"""Pretraining on CUDA with the masks and noise drawn on the GPU (``noise_on_device``)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytestmark = pytest.mark.gpu


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_pretraining_on_cuda_with_noise_drawn_there(tmp_path):
    import cv2

    from b2g_deploy import api
    from b2g_deploy.priors import load_prior_state

    folder = tmp_path / "corpus"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(4):
        cv2.imwrite(str(folder / f"im{i}.png"), rng.integers(0, 255, (80, 96, 3), dtype=np.uint8))
    tiny = {"model": {"width": 8, "depth": 3, "norm": "none", "dropout": "none"}, "crop": 32, "batch": 4,
            "noise_on_device": True}
    for extra in ({}, {"temporal_k": 1}):
        out = tmp_path / f"p{len(extra)}.pt"
        report = api.pretrain([folder], out, steps=5, changes={**tiny, **extra}, holdout=1, device="cuda")
        assert report.steps == 5
        state, cfg, _ = load_prior_state(out)
        assert cfg.noise_on_device and next(state.net.parameters()).device.type == "cpu"
