"""`b2g-deploy export CK --triton REPO` end to end on a real tiny checkpoint: the repository's
config.pbtxt parses with Triton's schema and describes the ONNX model stored beside it."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from b2g_deploy.checkpoint import Checkpoint, file_sha256, save_checkpoint
from b2g_deploy.cli import app
from b2g_deploy.config import preset
from b2g_deploy.export.parity import parity_image
from b2g_deploy.fit import fit

runner = CliRunner()


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("triton")
    cfg = preset("tiny").with_overrides(iters=15)
    net = fit(torch.from_numpy(parity_image(3, (48, 64))[0]), cfg, seed=0).net
    save_checkpoint(root / "m.pt", Checkpoint(net, cfg, {"bit_depth": 8, "preset": "tiny"}))
    return root / "m.pt"


def test_export_writes_a_triton_repository(ckpt, tmp_path):
    pb2 = pytest.importorskip("tritonclient.grpc.model_config_pb2", exc_type=ImportError,
                              reason="tritonclient[grpc] is not installed: pip install 'tritonclient[grpc]'")
    import onnxruntime as ort
    from google.protobuf import text_format

    repo = tmp_path / "repo"
    result = runner.invoke(app, ["export", str(ckpt), "--triton", str(repo), "--name", "denoiser",
                                 "--version", "2", "--max-batch", "4"])
    assert result.exit_code == 0, result.output
    assert "wrote Triton model denoiser version 2" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["repo"]  # no ONNX or temporary folder beside it
    cfg = text_format.Parse((repo / "denoiser" / "config.pbtxt").read_text(), pb2.ModelConfig())
    assert (cfg.name, cfg.platform, cfg.max_batch_size) == ("denoiser", "onnxruntime_onnx", 4)
    tensors = [(t.name, t.data_type, list(t.dims)) for t in [*cfg.input, *cfg.output]]
    assert tensors == [("input", pb2.TYPE_FP32, [3, -1, -1]), ("output", pb2.TYPE_FP32, [3, -1, -1])]
    assert list(cfg.dynamic_batching.preferred_batch_size) == [2, 4]
    expected_kind = "KIND_GPU" if torch.cuda.is_available() else "KIND_CPU"
    assert cfg.instance_group[0].kind == pb2.ModelInstanceGroup.Kind.Value(expected_kind)
    params = {k: v.string_value for k, v in cfg.parameters.items()}
    assert params["b2g.format"] == "b2g-deploy/onnx" and params["b2g.channels"] == "3"
    assert params["b2g.checkpoint_sha256"] == file_sha256(ckpt) and params["b2g.preset"] == "tiny"
    # The stored model takes what the config promises: a batch of 4 at an odd frame size.
    stored = repo / "denoiser" / "2" / "model.onnx"
    session = ort.InferenceSession(str(stored), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).random((4, 3, 37, 53), dtype=np.float32)
    assert session.run([cfg.output[0].name], {cfg.input[0].name: x})[0].shape == x.shape


def test_export_onnx_and_triton_together(ckpt, tmp_path):
    args = ["export", str(ckpt), "--onnx", str(tmp_path / "m.onnx"), "--triton", str(tmp_path / "repo")]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    stored = tmp_path / "repo" / "b2g_denoiser" / "1" / "model.onnx"
    assert stored.read_bytes() == (tmp_path / "m.onnx").read_bytes()
    again = runner.invoke(app, args)  # both outputs exist now
    assert again.exit_code == 2 and again.output.startswith("error: ")
    assert runner.invoke(app, [*args, "--force", "--version", "2"]).exit_code == 0
    model_dir = tmp_path / "repo" / "b2g_denoiser"
    assert sorted(p.name for p in model_dir.iterdir()) == ["1", "2", "config.pbtxt"]
