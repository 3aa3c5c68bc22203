"""int8 temporal models from the command line: `export --int8 --calibrate VIDEO`, the one-command
video flow's `--temporal --int8`, and the refusals (one `error:` line, exit 2, nothing written)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from b2g_deploy.checkpoint import Checkpoint, save_checkpoint
from b2g_deploy.cli import app
from b2g_deploy.config import ModelConfig, preset
from b2g_deploy.io.video import VideoInfo, open_sink, read_frames
from b2g_deploy.model import B2GNet
from b2g_deploy.temporal.export import read_temporal_metadata
from b2g_deploy.temporal.model import TemporalB2GNet

W, H, N = 48, 40, 6
TINY = ModelConfig(width=8, depth=3)


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def run(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def _clip(path: Path, channels: int = 3) -> Path:
    rng = np.random.default_rng(0)
    sink = open_sink(path, VideoInfo(W, H, channels, 10.0, N))
    for i in range(N):
        clean = np.full((channels, H, W), 0.3 + 0.05 * i, np.float32)
        clean[:, 8:24, 10 + i : 30 + i] = 0.8
        sink.write(np.clip(clean + rng.normal(0, 0.08, clean.shape), 0, 1))
    sink.close()
    return path


def _checkpoints(tmp_path: Path) -> tuple[Path, Path]:
    torch.manual_seed(0)
    temporal = TemporalB2GNet.for_k(3, 1, False, TINY).eval()
    with torch.no_grad():
        temporal.core.tail.bias.fill_(0.5)
    single = B2GNet(3, TINY).eval()
    cfg = preset("tiny").with_overrides(model=TINY.model_dump())
    paths = tmp_path / "t.pt", tmp_path / "s.pt"
    save_checkpoint(paths[0], Checkpoint(temporal, cfg, {"bit_depth": 8}))
    save_checkpoint(paths[1], Checkpoint(single, cfg, {"bit_depth": 8}))
    return paths


def test_export_int8_writes_a_calibrated_int8_graph_that_streams(tmp_path):
    temporal, _ = _checkpoints(tmp_path)
    video = _clip(tmp_path / "clip.mkv")
    onnx = tmp_path / "t8.onnx"
    result = run("export", temporal, "--onnx", onnx, "--int8", "--calibrate", video)
    assert result.exit_code == 0, result.output
    assert "int8" in result.output and "int8 against fp32: PSNR" in result.output
    assert read_temporal_metadata(onnx).precision == "int8"
    out = tmp_path / "out.mkv"
    streamed = run("denoise", video, "-m", onnx, "-o", out, "--no-fuse")
    assert streamed.exit_code == 0, streamed.output
    assert len(read_frames(out)) == N


@pytest.mark.parametrize("args, says", [
    (["--int8"], "--calibrate"),                       # nothing to calibrate on
    (["--calibrate", "{video}"], "--int8"),            # calibration without int8
    (["--int8", "--calibrate", "{video}", "--trt", "{tmp}/t.engine"], "TensorRT"),
    (["--int8", "--calibrate", "{tmp}/missing.mkv"], "missing.mkv"),
])
def test_export_int8_refusals_are_one_line_errors_and_write_nothing(tmp_path, args, says):
    temporal, _ = _checkpoints(tmp_path)
    video = _clip(tmp_path / "clip.mkv")
    onnx = tmp_path / "t8.onnx"
    args = [a.format(video=video, tmp=tmp_path) for a in args]
    result = run("export", temporal, "--onnx", onnx, *args)
    assert result.exit_code == 2 and result.output.startswith("error:") and says in result.output, result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not onnx.exists()


def test_export_int8_of_a_single_frame_checkpoint_is_refused(tmp_path):
    _, single = _checkpoints(tmp_path)
    video = _clip(tmp_path / "clip.mkv")
    result = run("export", single, "--onnx", tmp_path / "s8.onnx", "--int8", "--calibrate", video)
    assert result.exit_code == 2 and "temporal" in result.output
    assert not (tmp_path / "s8.onnx").exists()


def test_denoise_int8_needs_the_temporal_fit_here(tmp_path):
    temporal, _ = _checkpoints(tmp_path)
    video = _clip(tmp_path / "clip.mkv")
    plain = run("denoise", video, "-o", tmp_path / "a.mkv", "--int8")
    assert plain.exit_code == 2 and "--temporal" in plain.output
    given = run("denoise", video, "-m", temporal, "-o", tmp_path / "b.mkv", "--int8")
    assert given.exit_code == 2 and "export" in given.output
    image = tmp_path / "img.png"
    import cv2

    cv2.imwrite(str(image), np.full((H, W, 3), 128, np.uint8))
    still = run("denoise", image, "-o", tmp_path / "c.png", "--int8")
    assert still.exit_code == 2 and "video" in still.output
    assert not any((tmp_path / name).exists() for name in ("a.mkv", "b.mkv", "c.png", "a.onnx", "a.b2g.pt"))


def test_one_command_flow_exports_the_temporal_fit_in_int8(tmp_path):
    from b2g_deploy.api import denoise_video

    video = _clip(tmp_path / "clip.mkv")
    out = tmp_path / "out.mkv"
    lines = []
    report = denoise_video(video, out, fit_frames=4, preset="fast", fit_seconds=0.5, device="cpu", temporal=True,
                           k=1, int8=True, fuse=False, notify=lines.append)
    assert report.written == N
    meta = read_temporal_metadata(tmp_path / "out.onnx")
    assert meta.precision == "int8" and (meta.k, meta.causal) == (1, False)
    assert any("int8 against fp32" in line for line in lines)
