"""Runtimes: chosen by file type, torch and ONNX Runtime agree, bad input and missing packages."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

from b2g_deploy.checkpoint import Checkpoint, save_checkpoint
from b2g_deploy.config import preset
from b2g_deploy.errors import CheckpointError, EngineMismatchError, InputError, MissingPackageError
from b2g_deploy.export.onnx_export import export_onnx
from b2g_deploy.export.parity import parity_image
from b2g_deploy.fit import fit
from b2g_deploy.runtimes import load_runtime
from b2g_deploy.runtimes.factory import runtime_for


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """A tiny fitted RGB checkpoint and its single and 2-pass ensemble ONNX exports."""
    root = tmp_path_factory.mktemp("models")
    cfg = preset("tiny").with_overrides(iters=15)
    net = fit(torch.from_numpy(parity_image(3, (48, 64))[0]), cfg).net
    save_checkpoint(root / "m.pt", Checkpoint(net, cfg, {"bit_depth": 16}))
    x = parity_image(3, (40, 56))
    export_onnx(root / "m.pt", root / "single.onnx", parity_input=x)
    export_onnx(root / "m.pt", root / "ens.onnx", mode="ensemble", passes=2, parity_input=x)
    return root


def frames(shape=(2, 3, 30, 45)):
    return np.random.default_rng(0).random(shape, dtype=np.float32)


def test_chosen_by_file_type(models):
    with load_runtime(models / "m.pt") as rt:
        assert rt.name == "torch" and rt.info.channels == 3 and rt.info.bit_depth == 16
    with load_runtime(models / "single.onnx") as rt:
        assert rt.name == "onnxruntime" and rt.info.mode == "single"
    assert runtime_for(models / "x.engine", None) == "tensorrt"
    with pytest.raises(InputError, match="cannot load a .onnx"):
        runtime_for(models / "single.onnx", "torch")
    with pytest.raises(InputError, match="unknown model type"):
        runtime_for(models / "x.bin", None)


@pytest.mark.parametrize(("onnx_name", "mode"), [("single.onnx", "single"), ("ens.onnx", "ensemble")])
def test_torch_and_onnxruntime_agree(models, onnx_name, mode):
    x = frames()
    with load_runtime(models / "m.pt", mode=mode, passes=2) as t, load_runtime(models / onnx_name) as o:
        a, b = t.infer(x), o.infer(x)
    assert a.shape == b.shape == x.shape and a.dtype == b.dtype == np.float32
    assert np.abs(a - b).max() <= 1e-4


def test_frames_smaller_than_the_multiple(models):
    x = frames((1, 3, 8, 5))  # reflect padding in the graph alone could not reach 8
    with load_runtime(models / "m.pt") as t, load_runtime(models / "single.onnx") as o:
        a, b = t.infer(x), o.infer(x)
    assert a.shape == x.shape and np.abs(a - b).max() <= 1e-4


def test_bad_frames_and_options(models):
    with load_runtime(models / "single.onnx") as rt:
        with pytest.raises(InputError, match="3-channel"):
            rt.infer(frames((1, 1, 16, 16)))
        with pytest.raises(InputError, match="B, C, H, W"):
            rt.infer(frames((3, 16, 16)))
    with pytest.raises(CheckpointError, match="this input has 1"):
        load_runtime(models / "single.onnx", channels=1)
    with pytest.raises(InputError, match="no option"):
        load_runtime(models / "single.onnx", compile=True)
    with pytest.raises(InputError, match="CUDA"):
        load_runtime(models / "m.pt", fp16=True)
    with pytest.raises(InputError, match="does not exist"):
        load_runtime(models / "missing.onnx")


def test_missing_onnxruntime_names_the_extra(models, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import now raises ImportError
    with pytest.raises(MissingPackageError, match=r"b2g-deploy\[gpu\]"):
        load_runtime(models / "single.onnx")


def test_gpu_provider_without_onnxruntime_gpu(models):
    import onnxruntime

    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("onnxruntime-gpu is installed here")
    with pytest.raises(MissingPackageError, match="onnxruntime-gpu"):
        load_runtime(models / "single.onnx", provider="cuda")


def test_missing_tensorrt_names_the_extra(models, monkeypatch):
    engine = models / "x.engine"
    engine.write_bytes(b"not an engine")
    with pytest.raises(EngineMismatchError, match="no sidecar"):
        load_runtime(engine)
    (models / "x.engine.json").write_text(
        '{"format": "b2g-deploy/tensorrt-engine", "tensorrt_version": "10.0", "gpu_name": "X",'
        ' "compute_capability": "9.0", "profile": {"min": [1,3,8,8], "opt": [1,3,8,8], "max": [1,3,8,8]},'
        ' "fp16": false, "channels": 3}'
    )
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    with pytest.raises(MissingPackageError, match=r"b2g-deploy\[trt\]"):
        load_runtime(engine)



def test_temporal_torch_fp16_needs_cuda(tmp_path):
    from b2g_deploy.runtimes.temporal import TorchTemporalRuntime, load_temporal_runtime
    from b2g_deploy.temporal.model import TemporalB2GNet

    cfg = preset("tiny")
    save_checkpoint(tmp_path / "t.pt", Checkpoint(TemporalB2GNet.for_k(1, 1, False, cfg.model), cfg, {}))
    with pytest.raises(InputError, match="fp16 .* needs a CUDA device"):
        load_temporal_runtime(tmp_path / "t.pt", device="cpu", fp16=True)
    with TorchTemporalRuntime(tmp_path / "t.pt") as rt:  # fp32 on the CPU: windows on the device in, frames out
        x = torch.rand(2, 3, 20, 24)
        assert rt.infer_tensor(x).shape == (2, 1, 20, 24) and not rt.info.extra["fp16"]


def test_temporal_torch_flips_average_the_turned_windows(tmp_path):
    """--mode flips on a temporal checkpoint: the window's output averaged over its flips and
    turns (every frame turned together), each output turned back; the ensemble is refused."""
    from b2g_deploy.runtimes.temporal import TorchTemporalRuntime
    from b2g_deploy.temporal.model import TemporalB2GNet

    cfg = preset("tiny")
    torch.manual_seed(0)
    net = TemporalB2GNet.for_k(1, 1, False, cfg.model)
    for p in net.parameters():  # a zero neighbour head would hide the window's frames
        p.data.normal_(0.0, 0.2)
    save_checkpoint(tmp_path / "t.pt", Checkpoint(net, cfg, {}))
    x = torch.rand(1, 3, 16, 24)
    net.eval()
    with torch.no_grad():
        turned = [torch.rot90(net(torch.rot90(x.flip(-1) if flip else x, r, (-2, -1))), -r, (-2, -1))
                  for r in range(4) for flip in (False, True)]
        want = sum(o.flip(-1) if i % 2 else o for i, o in enumerate(turned)) / 8
    with TorchTemporalRuntime(tmp_path / "t.pt", mode="flips", passes=8) as rt:
        out = rt.infer_tensor(x)
        assert (rt.info.mode, rt.info.passes) == ("flips", 8)
    with TorchTemporalRuntime(tmp_path / "t.pt") as rt:
        single = rt.infer_tensor(x)
    assert out.shape == want.shape == (1, 1, 16, 24)
    assert torch.allclose(out, want, atol=1e-5) and not torch.allclose(out, single, atol=1e-3)
    with pytest.raises(InputError, match="ensemble does not apply to a temporal"):
        TorchTemporalRuntime(tmp_path / "t.pt", mode="ensemble")
