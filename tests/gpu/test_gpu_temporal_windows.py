"""On a CUDA machine: the torch temporal runtime builds the pipeline's windows on the GPU from
frames uploaded once each (``TorchTemporalRuntime.infer_window_frames``), with the output the
host path gives (stacked windows through ``infer_windows``), fp32 and fp16. Skipped without CUDA."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    from b2g_deploy.checkpoint import Checkpoint, save_checkpoint
    from b2g_deploy.config import preset
    from b2g_deploy.temporal.model import TemporalB2GNet

    torch.manual_seed(0)
    cfg = preset("tiny")
    path = tmp_path_factory.mktemp("gpu_windows") / "t.pt"
    save_checkpoint(path, Checkpoint(TemporalB2GNet.for_k(3, 2, False, cfg.model).eval(), cfg, {"bit_depth": 8}))
    return path


@pytest.mark.parametrize("fp16", [False, True])
def test_windows_built_on_the_gpu_match_the_host_path(checkpoint, fp16):
    from b2g_deploy.io.pipeline import TemporalFeeder
    from b2g_deploy.runtimes.temporal import TorchTemporalRuntime

    rng = np.random.default_rng(0)
    frames = [rng.random((3, 64, 96), dtype=np.float32) for _ in range(9)]
    outputs = {}
    with TorchTemporalRuntime(checkpoint, device="cuda", fp16=fp16) as rt:
        assert rt.frames_on_device
        for on_device in (False, True):
            rt.frames_on_device = on_device
            uploads = []
            upload = rt._upload
            rt._upload = lambda f, upload=upload: uploads.append(id(f)) or upload(f)
            feeder, got = TemporalFeeder(rt), []
            for first in range(0, 9, 4):
                got += feeder.push(list(enumerate(frames))[first : first + 4])
            got += feeder.flush()
            assert [i for i, _, _ in got] == list(range(9))
            assert len(uploads) == (9 if on_device else 0)
            outputs[on_device] = np.stack([d for _, _, d in got])
            del rt._upload
    assert np.abs(outputs[True] - outputs[False]).max() <= 1e-6
