"""The OpenVINO runtime: reads the .onnx exports, agrees with ONNX Runtime (float32 to float
rounding, bfloat16 to its precision), compiles one graph per shape, and refuses what it cannot do
with one line."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

from b2g_deploy import api
from b2g_deploy.checkpoint import Checkpoint, save_checkpoint
from b2g_deploy.config import preset
from b2g_deploy.errors import CheckpointError, InputError, MissingPackageError
from b2g_deploy.export.onnx_export import export_onnx
from b2g_deploy.export.parity import parity_image
from b2g_deploy.fit import fit
from b2g_deploy.runtimes import load_runtime
from b2g_deploy.runtimes.factory import runtime_for
from b2g_deploy.runtimes.temporal import load_temporal_runtime

pytest.importorskip("openvino", reason="the openvino extra is not installed")

from b2g_deploy.runtimes import openvino_runtime  # noqa: E402
from b2g_deploy.runtimes.openvino_runtime import KEEP_SHAPES, CompiledShapes, resolve_precision  # noqa: E402


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """A tiny fitted RGB single-frame network and a tiny k=1 temporal one, with their ONNX exports."""
    from b2g_deploy.temporal.model import TemporalB2GNet

    root = tmp_path_factory.mktemp("ov_models")
    cfg = preset("tiny").with_overrides(iters=15)
    net = fit(torch.from_numpy(parity_image(3, (48, 64))[0]), cfg).net
    save_checkpoint(root / "m.pt", Checkpoint(net, cfg, {"bit_depth": 8}))
    export_onnx(root / "m.pt", root / "single.onnx", parity_input=parity_image(3, (40, 56)))
    torch.manual_seed(0)
    tnet = TemporalB2GNet.for_k(3, 1, False, cfg.model).eval()
    with torch.no_grad():
        for p in tnet.parameters():  # a zero neighbour head would hide the window's frames
            p.add_(torch.randn_like(p) * 0.05)
    save_checkpoint(root / "t.pt", Checkpoint(tnet, cfg, {"bit_depth": 8}))
    api.export(root / "t.pt", root / "t.onnx", force=True)
    return root


def frames(shape, seed=0):
    return np.random.default_rng(seed).random(shape, dtype=np.float32)


def test_float32_matches_onnx_runtime(models):
    x = frames((2, 3, 30, 45))
    with load_runtime(models / "single.onnx") as ort, load_runtime(models / "single.onnx", "openvino",
                                                                   precision="f32", threads=1) as ov:
        want, got = ort.infer(x), ov.infer(x)
        assert ov.name == "openvino (f32)" and ov.info.channels == 3 and ov.info.bit_depth == 8
    assert got.shape == x.shape and got.dtype == np.float32
    assert np.abs(got - want).max() <= 1e-4


def test_bfloat16_is_close_but_not_float32(models):
    x = frames((1, 3, 32, 48), seed=1)
    with load_runtime(models / "single.onnx") as ort, load_runtime(models / "single.onnx", "openvino",
                                                                   precision="bf16", threads=1) as ov:
        want, got = ort.infer(x), ov.infer(x)
    # bfloat16 keeps 8 bits of mantissa: outputs within a few 8-bit levels, never bit for bit
    assert np.abs(got - want).max() <= 2e-2 and np.abs(got - want).mean() <= 3e-3


def test_frames_below_the_multiple_are_padded(models):
    x = frames((1, 3, 8, 5), seed=2)
    with load_runtime(models / "single.onnx") as ort, load_runtime(models / "single.onnx", "openvino",
                                                                   precision="f32") as ov:
        assert np.abs(ov.infer(x) - ort.infer(x)).max() <= 1e-4


def test_temporal_windows_match_onnx_runtime(models):
    clip = frames((5, 3, 20, 24), seed=3)
    with load_temporal_runtime(models / "t.onnx", provider="cpu", threads=1) as ort, \
            load_temporal_runtime(models / "t.onnx", "openvino", precision="f32", threads=1) as ov:
        want, got = ort.denoise_clip(clip, batch=2), ov.denoise_clip(clip, batch=2)
        assert (ov.k, ov.causal, ov.window) == (ort.k, ort.causal, ort.window) == (1, False, 3)
        assert ov.name == "openvino (f32)" and ov.info.extra["temporal"]
    assert got.shape == (5, 3, 20, 24) and np.abs(got - want).max() <= 1e-4


def test_one_compiled_graph_per_shape_the_last_few_kept(models, monkeypatch):
    compiled = CompiledShapes(models / "single.onnx", "f32", threads=1)
    calls = []
    compile_model = compiled.core.compile_model
    monkeypatch.setattr(compiled.core, "compile_model", lambda *a, **k: calls.append(1) or compile_model(*a, **k))
    a = frames((1, 3, 16, 16))
    first = compiled.run(a)
    assert np.array_equal(compiled.run(a), first) and len(calls) == 1  # the same shape: compiled once
    for side in range(17, 17 + KEEP_SHAPES):
        compiled.run(frames((1, 3, side, 16)))
    assert len(compiled._compiled) == KEEP_SHAPES and (1, 3, 16, 16) not in compiled._compiled
    compiled.run(a)
    assert len(calls) == 2 + KEEP_SHAPES  # the oldest shape was dropped, so compiled again


def test_the_choice_and_its_refusals(models):
    assert runtime_for(models / "single.onnx", "openvino") == "openvino"
    with pytest.raises(InputError, match="cannot load a .pt"):
        runtime_for(models / "m.pt", "openvino")
    with pytest.raises(InputError, match="runs on torch, not openvino"):
        load_temporal_runtime(models / "t.pt", "openvino")
    with pytest.raises(InputError, match="unknown OpenVINO precision 'f16'"):
        load_runtime(models / "single.onnx", "openvino", precision="f16")
    with pytest.raises(InputError, match="temporal"):
        load_runtime(models / "t.onnx", "openvino")
    with pytest.raises(CheckpointError, match="this input has 1"):
        load_runtime(models / "single.onnx", "openvino", channels=1)
    assert resolve_precision("auto") == ("bf16" if openvino_runtime.native_bf16() else "f32")
    bad = models / "bad.onnx"
    bad.write_bytes(b"not a graph")
    with pytest.raises(CheckpointError, match="not a readable ONNX file"):
        load_runtime(bad, "openvino")


def test_precision_and_device_belong_to_openvino(models, tmp_path):
    from b2g_deploy.api.runtime_choice import runtime_options

    assert runtime_options("openvino", "cpu", precision="bf16", threads=2) == {"precision": "bf16", "threads": 2}
    with pytest.raises(InputError, match="--precision applies to the openvino runtime"):
        runtime_options("onnxruntime", precision="bf16")
    with pytest.raises(InputError, match="runs on the CPU"):
        runtime_options("openvino", "cuda")


def test_missing_openvino_names_the_extra(models, monkeypatch):
    monkeypatch.setitem(sys.modules, "openvino", None)  # import now raises ImportError
    with pytest.raises(MissingPackageError, match=r"b2g-deploy\[openvino\]"):
        load_runtime(models / "single.onnx", "openvino", precision="f32")


def test_an_onnx_file_on_the_cpu_goes_to_openvino_unless_asked(models, monkeypatch):
    from b2g_deploy.api import runtime_choice
    from b2g_deploy.api.runtime_choice import choose_runtime, open_runtime

    for model in (models / "single.onnx", models / "t.onnx"):
        assert choose_runtime(model, "auto", "cpu") == choose_runtime(model, None, "auto") == "openvino"
        assert choose_runtime(model, "onnxruntime", "cpu") == "onnxruntime"
        assert choose_runtime(model, None, "cuda") == "onnxruntime"  # a GPU provider: ONNX Runtime's
    assert choose_runtime(models / "m.pt", None, "cpu") == "torch"
    with open_runtime(models / "t.onnx", device="cpu", precision="bf16") as rt:
        assert rt.name == "openvino (bf16)" and rt.info.extra["inference_precision"] == "bf16"
    monkeypatch.setattr(runtime_choice, "_openvino_installed", lambda: False)
    assert choose_runtime(models / "single.onnx", None, "cpu") == "onnxruntime"
    with pytest.raises(InputError, match="--precision applies to the openvino runtime"):
        open_runtime(models / "single.onnx", device="cpu", precision="bf16")


def test_a_graph_that_cannot_take_the_frames_is_one_error(tmp_path):
    """A graph fixed to 8x8 frames (a constant Reshape) given 16x16 ones: a CheckpointError naming
    the shape, not OpenVINO's exception."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from b2g_deploy.modelfile.onnx_metadata import ExportMetadata, write_props

    shape = numpy_helper.from_array(np.array([1, 3, 8, 8], np.int64), "shape")
    graph = helper.make_graph([helper.make_node("Reshape", ["input", "shape"], ["output"])], "g",
                              [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["b", 3, "h", "w"])],
                              [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 3, 8, 8])],
                              initializer=[shape])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    write_props(model, ExportMetadata(3, 8, "single", 1, "fp32", 8, 17, "ab" * 32))
    onnx.save(model, str(tmp_path / "fixed.onnx"))
    with load_runtime(tmp_path / "fixed.onnx", "openvino") as rt:
        assert rt.infer(frames((1, 3, 8, 8))).shape == (1, 3, 8, 8)
        with pytest.raises(CheckpointError, match="cannot run on input 1x3x16x16 in OpenVINO"):
            rt.infer(frames((1, 3, 16, 16)))
