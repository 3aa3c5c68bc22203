"""int8 exports of temporal networks (export.int8): calibration windows, the quantized graph's
agreement with the float32 one, and the refusal that writes nothing."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from b2g_deploy.config import ModelConfig
from b2g_deploy.errors import ParityError
from b2g_deploy.temporal.export import (
    TemporalExportModule,
    calibration_windows,
    export_temporal_onnx,
    read_temporal_metadata,
)
from b2g_deploy.temporal.model import TemporalB2GNet
from b2g_deploy.temporal.windows import window_indices

TINY = ModelConfig(width=8, depth=3)


def _net(causal: bool = False) -> TemporalB2GNet:
    torch.manual_seed(0)
    net = TemporalB2GNet.for_k(3, 1, causal, TINY).eval()
    with torch.no_grad():
        net.core.tail.bias.fill_(0.5)  # outputs inside (0, 1): the clamp does not hide differences
    return net


def _frames(n: int = 5, h: int = 40, w: int = 56, seed: int = 0) -> np.ndarray:
    """A smooth scene drifting one pixel a frame, with independent noise per frame."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w + n].astype(np.float32)
    scene = 0.5 + 0.3 * np.sin(xx / 5.0) * np.cos(yy / 7.0)
    frames = np.stack([np.stack([scene[:, t : t + w]] * 3) for t in range(n)])
    return np.clip(frames + rng.normal(0, 0.08, frames.shape), 0, 1).astype(np.float32)


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(1.0 / np.mean((a.astype(np.float64) - b) ** 2)))


def test_calibration_windows_are_whole_windows_spread_over_the_clip_within_a_pixel_budget():
    net, frames = _net(), _frames()
    net.align = "none"
    got = calibration_windows(net, frames, count=3)
    want = [frames[window_indices(t, 5, 1, False)].reshape(1, 9, 40, 56) for t in (0, 2, 4)]
    assert len(got) == 3 and all(g.dtype == np.float32 and np.array_equal(g, w) for g, w in zip(got, want))
    two = calibration_windows(net, frames, count=3, max_pixels=2 * 40 * 56)  # room for two windows
    assert [g.shape for g in two] == [(1, 9, 40, 56)] * 2 and np.array_equal(two[1], want[2])
    cut = calibration_windows(net, frames, count=3, max_pixels=40 * 56 // 4)  # a quarter of one frame
    assert len(cut) == 1 and cut[0].shape == (1, 9, 20, 28)
    assert np.array_equal(cut[0], want[0][..., 10:30, 14:42])  # around the centre, the aspect kept
    assert len(calibration_windows(net, frames[:1], count=3)) == 1  # one frame: its own window


def test_calibration_windows_are_aligned_as_the_runtime_aligns_them():
    from b2g_deploy.temporal.align import align_window

    net, frames = _net(), _frames(h=64, w=64)
    net.align = "dis"
    got = calibration_windows(net, frames, count=1)
    window = frames[window_indices(0, 5, 1, False)].reshape(-1, 64, 64)
    assert len(got) == 1 and np.array_equal(got[0][0], align_window(window, 3, net.target_index, "dis"))


@pytest.mark.parametrize("causal", [False, True], ids=["centred", "causal"])
def test_an_int8_export_runs_in_onnx_runtime_close_to_the_float32_network(tmp_path, causal):
    import onnx
    import onnxruntime as ort

    from b2g_deploy.export.int8 import MIN_FIDELITY_DB, trunk_convolutions

    net = _net(causal)
    net.align = "none"
    result = export_temporal_onnx(net, tmp_path / "t8.onnx", int8=calibration_windows(net, _frames()))
    assert read_temporal_metadata(result.path).precision == "int8" and result.meta.precision == "int8"
    assert result.int8_fidelity_db >= MIN_FIDELITY_DB and result.max_abs_diff <= 1e-4
    graph = onnx.load(str(result.path))
    ops = [n.op_type for n in graph.graph.node]
    # every trunk convolution reads quantized weights: 3 encoder + 2 per decoder stage
    assert ops.count("DequantizeLinear") >= 9 and "QuantizeLinear" in ops
    assert len(trunk_convolutions(graph)) == 3 + 2 * 3
    x = _frames(n=3, h=29, w=45, seed=1).reshape(1, 9, 29, 45)  # another size and content: dynamic axes
    got = ort.InferenceSession(str(result.path), providers=["CPUExecutionProvider"]).run(None, {"window": x})[0]
    with torch.no_grad():
        want = TemporalExportModule(net)(torch.from_numpy(x)).numpy()
    assert got.shape == want.shape == (1, 3, 29, 45)
    assert _psnr(got, want) >= 35.0


def test_an_int8_graph_that_strays_from_float32_writes_nothing(tmp_path, monkeypatch):
    import b2g_deploy.export.int8 as int8

    monkeypatch.setattr(int8, "_fidelity_db", lambda *args: 21.5)
    net = _net()
    net.align = "none"
    out = tmp_path / "t8.onnx"
    with pytest.raises(ParityError, match="21.5 dB"):
        export_temporal_onnx(net, out, int8=calibration_windows(net, _frames()))
    assert list(tmp_path.iterdir()) == []  # no model, no temporary file left behind


def test_the_onnx_runtime_opens_an_int8_export_and_says_so(tmp_path):
    from b2g_deploy.runtimes.temporal import load_temporal_runtime

    net = _net()
    net.align = "none"
    path = export_temporal_onnx(net, tmp_path / "t8.onnx", int8=calibration_windows(net, _frames())).path
    with load_temporal_runtime(path) as rt:
        assert rt.info.extra["precision"] == "int8"
        frames = _frames(n=4)
        out = rt.denoise_clip(frames)
    assert out.shape == frames.shape and np.isfinite(out).all()
