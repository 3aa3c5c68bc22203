"""ONNX export: numbers against PyTorch (single/ensemble, fp32/fp16, odd sizes, batches, grey
and RGB), no random ops, metadata round trip, and the bad-input errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from b2g_deploy.checkpoint import Checkpoint, file_sha256, load_checkpoint, save_checkpoint
from b2g_deploy.config import preset
from b2g_deploy.errors import CheckpointError, OutputExistsError, ParityError
from b2g_deploy.export import onnx_export
from b2g_deploy.export.graph import build_module
from b2g_deploy.export.metadata import read_onnx_metadata
from b2g_deploy.export.onnx_export import export_onnx, random_ops
from b2g_deploy.export.parity import parity_image
from b2g_deploy.fit import fit, single_pass

SMALL = (70, 90)  # parity image for tests: small, and not a multiple of 8


def fit_tiny(path, channels: int):
    cfg = preset("tiny").with_overrides(iters=15)
    y = torch.from_numpy(parity_image(channels, (48, 64))[0])
    net = fit(y, cfg, seed=0).net
    save_checkpoint(path, Checkpoint(net, cfg, {"bit_depth": 8, "preset": "tiny"}))
    return path


@pytest.fixture(scope="module")
def ckpt_rgb(tmp_path_factory):
    return fit_tiny(tmp_path_factory.mktemp("rgb") / "tiny.pt", 3)


@pytest.fixture(scope="module")
def ckpt_grey(tmp_path_factory):
    return fit_tiny(tmp_path_factory.mktemp("grey") / "tiny.pt", 1)


def ort_run(path, x):
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"input": x})[0]


@pytest.mark.parametrize("channels", [1, 3])
def test_single_matches_torch_any_size_and_batch(tmp_path, ckpt_rgb, ckpt_grey, channels):
    ckpt = ckpt_rgb if channels == 3 else ckpt_grey
    out = tmp_path / "m.onnx"
    result = export_onnx(ckpt, out, parity_input=parity_image(channels, SMALL))
    assert result.parity.passed and result.parity.max_abs <= 1e-4
    net = load_checkpoint(ckpt).net  # the real PyTorch path (model.denoise), not the wrapper
    for shape in [(1, channels, 37, 45), (3, channels, 64, 24), (2, channels, 9, 130)]:
        x = np.random.default_rng(1).random(shape, dtype=np.float32)
        ref = single_pass(net, torch.from_numpy(x)).numpy()
        got = ort_run(out, x)
        assert got.shape == shape
        assert np.abs(got - ref).max() <= 1e-4


def test_ensemble_matches_torch_and_averages_passes(tmp_path, ckpt_rgb):
    out = tmp_path / "e.onnx"
    result = export_onnx(ckpt_rgb, out, mode="ensemble", passes=3, parity_input=parity_image(3, SMALL))
    assert result.meta.passes == 3 and result.meta.mode == "ensemble"
    ck = load_checkpoint(ckpt_rgb)
    module = build_module(ck.net, "ensemble", 3, ck.config.mask.rate, 0, half=False)
    x = np.random.default_rng(2).random((2, 3, 41, 50), dtype=np.float32)
    with torch.no_grad():
        ref = module(torch.from_numpy(x)).numpy()
    assert np.abs(ort_run(out, x) - ref).max() <= 1e-4
    # The masks really differ per pass: the ensemble is not the single pass.
    assert np.abs(ref - single_pass(ck.net, torch.from_numpy(x)).numpy()).max() > 1e-3


def test_flips_export_runs_the_fits_self_ensemble_on_non_square_frames(tmp_path, ckpt_rgb):
    from b2g_deploy.errors import InputError
    from b2g_deploy.fit import self_ensemble

    ck = load_checkpoint(ckpt_rgb)
    for passes in (4, 8):
        out = tmp_path / f"f{passes}.onnx"
        result = export_onnx(ckpt_rgb, out, mode="flips", passes=passes, parity_input=parity_image(3, SMALL))
        assert (result.meta.mode, result.meta.passes) == ("flips", passes)
        x = np.random.default_rng(3).random((2, 3, 41, 50), dtype=np.float32)  # H != W: turned frames are W x H
        ref = self_ensemble(ck.net, torch.from_numpy(x), passes).numpy()
        assert np.abs(ort_run(out, x) - ref).max() <= 1e-4
        assert np.abs(ref - single_pass(ck.net, torch.from_numpy(x)).numpy()).max() > 1e-3
    with pytest.raises(InputError, match="2, 4 or 8"):
        export_onnx(ckpt_rgb, tmp_path / "bad.onnx", mode="flips", passes=3)
    assert not (tmp_path / "bad.onnx").exists()


@pytest.mark.parametrize("mode", ["single", "ensemble", "flips"])
def test_no_random_ops_in_graph(tmp_path, ckpt_rgb, mode):
    import onnx

    out = tmp_path / "m.onnx"
    export_onnx(ckpt_rgb, out, mode=mode, passes=2, parity_input=parity_image(3, SMALL))
    model = onnx.load(str(out))
    ops = {n.op_type for n in model.graph.node}
    assert random_ops(model) == [] and not any("Random" in op or op == "Dropout" for op in ops)
    dims = model.graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_param for d in dims] == ["batch", "", "height", "width"]


def test_fp16_judged_by_psnr(tmp_path, ckpt_rgb):
    out = tmp_path / "h.onnx"
    result = export_onnx(ckpt_rgb, out, fp16=True, parity_input=parity_image(3, SMALL))
    assert result.meta.precision == "fp16"
    assert result.parity.psnr_db >= 50.0
    x = parity_image(3, SMALL)
    assert ort_run(out, x).dtype == np.float32  # I/O stays float32


def test_metadata_round_trip(tmp_path, ckpt_grey):
    out = tmp_path / "m.onnx"
    export_onnx(ckpt_grey, out, mode="ensemble", passes=2, seed=5, parity_input=parity_image(1, SMALL))
    meta = read_onnx_metadata(str(out))
    assert (meta.channels, meta.bit_depth, meta.mode, meta.passes, meta.mask_seed) == (1, 8, "ensemble", 2, 5)
    assert meta.checkpoint_sha256 == file_sha256(ckpt_grey)
    assert meta.value_scaling == "0..1 float32" and meta.opset == onnx_export.OPSET
    assert meta.multiple == 8 and meta.preset == "tiny" and meta.package_version


def test_failed_parity_raises_and_writes_nothing(tmp_path, ckpt_rgb, monkeypatch):
    real = onnx_export.torch_reference
    monkeypatch.setattr(onnx_export, "torch_reference", lambda *a: real(*a) + 0.01)
    out = tmp_path / "m.onnx"
    with pytest.raises(ParityError, match="max \\|diff\\| 0.01"):
        export_onnx(ckpt_rgb, out, parity_input=parity_image(3, SMALL))
    assert list(tmp_path.iterdir()) == []


def test_existing_output_needs_force(tmp_path, ckpt_rgb):
    out = tmp_path / "m.onnx"
    out.write_bytes(b"keep")
    with pytest.raises(OutputExistsError):
        export_onnx(ckpt_rgb, out, parity_input=parity_image(3, SMALL))
    assert out.read_bytes() == b"keep"


def test_checkpoint_not_ours_or_corrupt(tmp_path):
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"\x00not a checkpoint")
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(2)}, other)
    for bad in (junk, other):
        with pytest.raises(CheckpointError):
            export_onnx(bad, tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()


def test_onnx_not_ours_or_corrupt(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Identity", ["input"], ["output"])], "g",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 3, 8, 8])],
    )
    foreign = tmp_path / "foreign.onnx"
    onnx.save(helper.make_model(graph), str(foreign))
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(b"\x08\x07garbage" * 10)
    with pytest.raises(CheckpointError, match="not a b2g-deploy ONNX"):
        read_onnx_metadata(str(foreign))
    with pytest.raises(CheckpointError):
        read_onnx_metadata(str(corrupt))
