"""Crafted or damaged model files are one-line CheckpointErrors, never TypeError, ValueError or
IndexError tracebacks: checkpoints with odd ``format_version`` or meta fields, ONNX files with
our metadata but another input or output shape."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from b2g_deploy.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from b2g_deploy.cli import app
from b2g_deploy.config import preset
from b2g_deploy.errors import CheckpointError
from b2g_deploy.io.images import write_image
from b2g_deploy.model import B2GNet
from b2g_deploy.modelfile.onnx_metadata import ExportMetadata, write_props
from b2g_deploy.runtimes import load_runtime


@pytest.fixture(scope="module")
def payload(tmp_path_factory):
    cfg = preset("tiny")
    path = tmp_path_factory.mktemp("ckpt") / "m.pt"
    save_checkpoint(path, Checkpoint(B2GNet(3, cfg.model), cfg, {"bit_depth": 8}))
    return torch.load(path, weights_only=True)


@pytest.mark.parametrize("change, words", [
    ({"format_version": "1"}, "format_version '1'"),
    ({"format_version": None}, "format_version None"),
    ({"format_version": True}, "format_version True"),
    ({"format_version": 2.5}, "format_version 2.5"),
    ({"format_version": 99}, "newer b2g-deploy"),
    ({"meta": [1, 2]}, "meta is a list"),
    ({"meta": {"channels": None}}, "channels None"),
    ({"meta": {"channels": "3"}}, "channels '3'"),
    ({"meta": {"channels": 3, "bit_depth": "eight"}}, "bit_depth 'eight'"),
    ({"meta": {"channels": 3, "bit_depth": 12}}, "bit_depth 12"),
    ({"meta": {"channels": 3, "bit_depth": 8.0}}, "bit_depth 8.0"),
    ({"state_dict": [1, 2, 3]}, "damaged"),
    ({"config": "fast"}, "damaged"),
])
def test_crafted_checkpoint_fields(tmp_path, payload, change, words):
    path = tmp_path / "crafted.pt"
    torch.save({**payload, **change}, path)
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(path)
    assert words in str(err.value) and str(path) in str(err.value)


def test_valid_bit_depths_and_missing_version_load(tmp_path, payload):
    for depth in (8, 16, 32):
        torch.save({**payload, "meta": {**payload["meta"], "bit_depth": depth}}, tmp_path / "ok.pt")
        assert load_checkpoint(tmp_path / "ok.pt").meta["bit_depth"] == depth
    old = {k: v for k, v in payload.items() if k != "format_version"}  # before versions existed
    torch.save(old, tmp_path / "old.pt")
    assert load_checkpoint(tmp_path / "old.pt").channels == 3


def onnx_with(tmp_path, node, out_shape, in_shape=("b", 3, "h", "w"), name="odd.onnx"):
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [node], "g",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, list(in_shape))],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, out_shape)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    write_props(model, ExportMetadata(3, 8, "single", 1, "fp32", 32, 17, "ab" * 32))
    path = tmp_path / name
    onnx.save(model, str(path))
    return path


# Each check holds for both runtimes that read an .onnx file on the CPU.
ONNX_CPU_RUNTIMES = [pytest.param(("onnxruntime", {"provider": "cpu"}), id="onnxruntime"),
                     pytest.param(("openvino", {}), id="openvino", marks=pytest.mark.skipif(
                         importlib.util.find_spec("openvino") is None, reason="the openvino extra is not installed"))]


@pytest.mark.parametrize("runtime", ONNX_CPU_RUNTIMES)
def test_onnx_with_another_output_shape_is_refused_at_load(tmp_path, runtime):
    from onnx import helper

    name, options = runtime
    scalar = onnx_with(tmp_path, helper.make_node("ReduceMean", ["input"], ["output"], keepdims=0), [])
    with pytest.raises(CheckpointError, match="output shape scalar"):
        load_runtime(scalar, name, **options)
    pool = helper.make_node("ReduceMean", ["input"], ["output"], axes=[2, 3], keepdims=0)
    pooled = onnx_with(tmp_path, pool, ["b", 3], name="pooled.onnx")
    with pytest.raises(CheckpointError, match=r"output shape \?x3"):
        load_runtime(pooled, name, **options)
    flat = onnx_with(tmp_path, helper.make_node("Identity", ["input"], ["output"]), ["n"], in_shape=["n"],
                     name="flat.onnx")
    with pytest.raises(CheckpointError, match="input shape"):
        load_runtime(flat, name, **options)


@pytest.mark.parametrize("runtime", ONNX_CPU_RUNTIMES)
def test_onnx_whose_output_differs_at_run_time_is_refused(tmp_path, runtime):
    """Declared (B, C, H, W) but computes something smaller: caught on the first frames."""
    from onnx import helper

    name, options = runtime
    pool = helper.make_node("MaxPool", ["input"], ["output"], kernel_shape=[2, 2], strides=[2, 2])
    path = onnx_with(tmp_path, pool, ["b", 3, "h2", "w2"])
    frames = np.zeros((1, 3, 40, 40), np.float32)
    shrunk = "returned shape 1x3x20x20 for input 1x3x40x40"
    with load_runtime(path, name, **options) as rt, pytest.raises(CheckpointError, match=shrunk):
        rt.infer(frames)


def test_cli_says_it_in_one_line(tmp_path):
    from onnx import helper

    model = onnx_with(tmp_path, helper.make_node("ReduceMean", ["input"], ["output"], keepdims=0), [])
    image = tmp_path / "a.png"
    write_image(image, np.full((3, 40, 40), 0.5, np.float32), 8)
    result = CliRunner().invoke(app, ["denoise", str(image), "-m", str(model), "-o", str(tmp_path / "o.png"),
                                      "--device", "cpu"])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "output shape" in lines[0]
