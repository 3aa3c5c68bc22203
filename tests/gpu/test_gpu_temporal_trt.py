"""On a CUDA machine with TensorRT: a real temporal engine, built and parity-checked by the one
checked build ``export --trt`` uses, then streamed through the video pipeline against the
PyTorch temporal network. Skipped without CUDA or without the tensorrt package."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]

W, H, N = 96, 64, 7


@pytest.fixture(scope="module")
def temporal(tmp_path_factory):
    pytest.importorskip("tensorrt")
    from b2g_deploy.checkpoint import Checkpoint, save_checkpoint
    from b2g_deploy.config import preset
    from b2g_deploy.temporal.export import export_temporal_checkpoint
    from b2g_deploy.temporal.model import TemporalB2GNet

    root = tmp_path_factory.mktemp("gpu_temporal")
    cfg = preset("tiny")
    torch.manual_seed(0)
    net = TemporalB2GNet.for_k(3, 1, False, cfg.model).eval()
    save_checkpoint(root / "t.pt", Checkpoint(net, cfg, {"bit_depth": 8}))
    export_temporal_checkpoint(root / "t.pt", root / "t.onnx")
    return root, net


def _clip(path):
    from b2g_deploy.io.video import VideoInfo, open_sink

    rng = np.random.default_rng(0)
    sink = open_sink(path, VideoInfo(W, H, 3, 10.0, N))
    for i in range(N):
        clean = np.full((3, H, W), 0.2 + 0.08 * i, np.float32)
        clean[:, 10:40, 5 + 4 * i : 35 + 4 * i] = 0.9
        sink.write(np.clip(clean + rng.normal(0, 0.1, clean.shape), 0, 1))
    sink.close()
    return path


@pytest.mark.parametrize("fp16", [False, True], ids=["fp32", "fp16"])
def test_temporal_engine_parity_and_stream(temporal, fp16):
    from b2g_deploy.api import denoise_video, open_runtime
    from b2g_deploy.api.exporting import build_checked_engine, parse_profile
    from b2g_deploy.errors import EngineMismatchError
    from b2g_deploy.export.engine_sidecar import EngineSidecar
    from b2g_deploy.export.parity import psnr_between
    from b2g_deploy.io.video import read_frames
    from b2g_deploy.runtimes.trt_runtime import TrtTemporalRuntime
    from b2g_deploy.temporal.model import denoise_clip

    root, net = temporal
    name = "t16" if fp16 else "t32"
    engine = root / f"{name}.engine"
    profile = parse_profile(3, "1xCx32x32", "2xCx64x96", "2xCx128x128", window=3)
    report = build_checked_engine(root / "t.pt", root / "t.onnx", engine, profile, fp16=fp16, force=True)
    assert report.temporal and ("fp16" if fp16 else "fp32") in report.parity
    sidecar = EngineSidecar.load(engine)
    assert sidecar.temporal == {"window": 3, "k": 1, "causal": False, "target_index": 1}

    with open_runtime(engine) as rt:
        assert isinstance(rt, TrtTemporalRuntime)
        x = torch.rand(2, 9, 64, 96, device="cuda")
        assert rt.infer_tensor(x).shape == (2, 3, 64, 96)
        with pytest.raises(EngineMismatchError):
            rt.infer_windows(np.zeros((1, 9, 64, 400), np.float32))

    video = _clip(root / f"clip_{name}.mkv")
    out = root / f"frames_{name}"
    stats = denoise_video(video, out, engine, batch=4)
    assert stats.written == N and stats.runtime == "tensorrt"
    names = sorted(p.name for p in out.iterdir())
    assert names == [f"frame_{i:06d}.png" for i in range(N)]
    got = np.stack(read_frames(out))
    want = denoise_clip(net, torch.from_numpy(np.stack(read_frames(video)))).numpy()
    if fp16:  # half-precision rounding on top of the 8-bit output: judged as an image
        assert psnr_between(got, want) >= 45.0
    else:  # 8-bit output of an fp32 engine that met the 1e-4 parity bound
        assert np.abs(got - want).max() <= 1.5 / 255


def test_temporal_torch_fp16_matches_fp32():
    """The torch fp16 row of scripts/gpu_temporal.sh: half precision within the fp16 parity bound."""
    import tempfile
    from pathlib import Path

    from b2g_deploy.checkpoint import Checkpoint, save_checkpoint
    from b2g_deploy.config import preset
    from b2g_deploy.export.parity import parity_image_window, psnr_between
    from b2g_deploy.priors import starting_network
    from b2g_deploy.runtimes.temporal import TorchTemporalRuntime
    from b2g_deploy.temporal.model import TemporalB2GNet

    single, cfg, _ = starting_network("prior", 3, preset("fast"))  # the shipped prior: real weights
    net = TemporalB2GNet.from_single_frame(single, 2, False).eval()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "t.pt"
        save_checkpoint(path, Checkpoint(net, cfg, {}))
        x = parity_image_window(3, 5, (200, 300))
        with TorchTemporalRuntime(path, device="cuda") as a, TorchTemporalRuntime(path, device="cuda", fp16=True) as b:
            assert psnr_between(a.infer_windows(x), b.infer_windows(x)) >= 50.0
