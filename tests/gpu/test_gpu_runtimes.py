"""On a CUDA machine: torch fp16/compile, ONNX Runtime GPU providers and native TensorRT against
PyTorch fp32. Everything here is skipped without CUDA (and per package without it)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    from b2g_deploy.checkpoint import Checkpoint, save_checkpoint
    from b2g_deploy.config import preset
    from b2g_deploy.export.onnx_export import export_onnx
    from b2g_deploy.export.parity import parity_image
    from b2g_deploy.fit import fit

    root = tmp_path_factory.mktemp("gpu")
    cfg = preset("tiny").with_overrides(iters=30)
    net = fit(torch.from_numpy(parity_image(3, (64, 96))[0]), cfg, device="cuda").net.cpu()
    save_checkpoint(root / "m.pt", Checkpoint(net, cfg, {"bit_depth": 8}))
    export_onnx(root / "m.pt", root / "m.onnx")
    return root


def frame():
    from b2g_deploy.export.parity import parity_image

    return parity_image(3, (200, 300))


def reference(models):
    from b2g_deploy.runtimes import load_runtime

    with load_runtime(models / "m.pt", device="cpu") as rt:
        return rt.infer(frame())


def test_torch_cuda_fp32_and_fp16(models):
    from b2g_deploy.export.parity import psnr_between
    from b2g_deploy.runtimes import load_runtime

    ref = reference(models)
    with load_runtime(models / "m.pt", device="cuda") as rt:
        assert np.abs(rt.infer(frame()) - ref).max() <= 1e-3  # cuDNN may pick TF32-free but different algorithms
    with load_runtime(models / "m.pt", device="cuda", fp16=True) as rt:
        assert psnr_between(rt.infer(frame()), ref) >= 50.0


def test_torch_cuda_fp16_flips_match_the_cpu_self_ensemble(models):
    """`denoise --mode flips` on the GPU in half precision: the fit's x8 output function."""
    from b2g_deploy.checkpoint import load_checkpoint
    from b2g_deploy.export.parity import psnr_between
    from b2g_deploy.fit import self_ensemble
    from b2g_deploy.runtimes import load_runtime

    ref = self_ensemble(load_checkpoint(models / "m.pt").net, torch.from_numpy(frame()), 8).numpy()
    with load_runtime(models / "m.pt", device="cuda", fp16=True, mode="flips", passes=8) as rt:
        assert psnr_between(rt.infer(frame()), ref) >= 50.0


def test_torch_compile(models):
    from b2g_deploy.runtimes import load_runtime

    ref = reference(models)
    with load_runtime(models / "m.pt", device="cuda", compile=True) as rt:
        assert np.abs(rt.infer(frame()) - ref).max() <= 1e-3


def test_onnxruntime_cuda_provider(models):
    ort = pytest.importorskip("onnxruntime")
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        pytest.skip("onnxruntime-gpu not installed")
    from b2g_deploy.runtimes import load_runtime

    with load_runtime(models / "m.onnx", provider="cuda") as rt:
        assert np.abs(rt.infer(frame()) - reference(models)).max() <= 1e-3


def test_tensorrt_engine_parity_and_profile(models):
    pytest.importorskip("tensorrt")
    from b2g_deploy.errors import EngineMismatchError
    from b2g_deploy.export.engine_sidecar import Profile
    from b2g_deploy.export.tensorrt_build import build_engine, engine_parity
    from b2g_deploy.runtimes import load_runtime

    engine = models / "m.engine"
    build_engine(models / "m.onnx", engine, Profile((1, 3, 64, 64), (1, 3, 256, 256), (2, 3, 320, 320)))
    with load_runtime(engine) as rt:
        assert engine_parity(rt, models / "m.pt").passed
        assert rt.infer(frame()).shape == frame().shape
        with pytest.raises(EngineMismatchError):
            rt.infer(np.zeros((1, 3, 64, 400), np.float32))
