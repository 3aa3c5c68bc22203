"""The library API called from Python, as a user would (no CLI): export, denoise_images and
denoise_video return reports, write what they say, and raise the package's typed errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from b2g_deploy import api
from b2g_deploy.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from b2g_deploy.config import preset
from b2g_deploy.errors import InputError, OutputExistsError
from b2g_deploy.model import B2GNet


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    """An untrained tiny RGB network: the API's plumbing is under test, not the denoising."""
    torch.manual_seed(0)
    cfg = preset("tiny")
    path = tmp_path_factory.mktemp("api") / "m.b2g.pt"
    save_checkpoint(path, Checkpoint(B2GNet(3, cfg.model).eval(), cfg, {"bit_depth": 8}))
    return path


@pytest.fixture(scope="module")
def onnx_model(ckpt):
    path = ckpt.with_name("m.onnx")
    api.export(ckpt, path)
    return path


def test_export_writes_an_onnx_file_that_runs_like_the_checkpoint(ckpt, onnx_model, smooth_image):
    from b2g_deploy.model import denoise
    from b2g_deploy.runtimes.ort_runtime import OrtRuntime

    x = smooth_image(40, 56, 3)[None]
    with OrtRuntime(onnx_model, provider="cpu") as rt:
        got = rt.infer(x)
    with torch.no_grad():
        want = denoise(load_checkpoint(ckpt).net, torch.from_numpy(x)).numpy()
    assert got.shape == x.shape and np.abs(got - want).max() < 1e-4


def test_export_report_says_what_was_written(ckpt, tmp_path):
    report = api.export(ckpt, tmp_path / "e.onnx", mode="ensemble", passes=3)
    assert report.onnx == tmp_path / "e.onnx" and report.onnx.is_file()
    assert "ensemble, 3 pass(es), fp32" in report.description and "max |diff|" in report.parity
    assert report.engine is None and report.triton is None and not report.temporal


def test_export_to_triton_only_keeps_no_onnx_file(ckpt, tmp_path):
    report = api.export(ckpt, triton=tmp_path / "repo", name="den", max_batch=2)
    assert report.onnx is None and report.triton.max_batch == 2
    assert (tmp_path / "repo" / "den" / "1" / "model.onnx").is_file()
    assert list(tmp_path.glob("*.onnx")) == []


def test_export_errors_write_nothing(ckpt, tmp_path):
    with pytest.raises(InputError, match="--onnx"):
        api.export(ckpt)
    with pytest.raises(InputError, match=r"\.onnx"):
        api.export(ckpt, tmp_path / "m.bin")
    with pytest.raises(InputError, match=r"\.engine"):
        api.export(ckpt, tmp_path / "m.onnx", trt=tmp_path / "m.trt")
    (tmp_path / "taken.onnx").write_bytes(b"keep")
    with pytest.raises(OutputExistsError):
        api.export(ckpt, tmp_path / "taken.onnx")
    assert (tmp_path / "taken.onnx").read_bytes() == b"keep"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken.onnx"]
