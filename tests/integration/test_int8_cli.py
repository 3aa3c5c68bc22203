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


def test_export_int8_of_a_single_frame_checkpoint_calibrates_on_an_image_or_a_video(tmp_path):
    import cv2

    from b2g_deploy.modelfile.onnx_metadata import ExportMetadata
    from b2g_deploy.runtimes import load_runtime

    _, single = _checkpoints(tmp_path)
    image = tmp_path / "img.png"
    cv2.imwrite(str(image), (np.random.default_rng(1).random((H, W, 3)) * 255).astype(np.uint8))
    for source, name in ((image, "s8_image.onnx"), (_clip(tmp_path / "clip.mkv"), "s8_video.onnx")):
        result = run("export", single, "--onnx", tmp_path / name, "--int8", "--calibrate", source)
        assert result.exit_code == 0, result.output
        assert "int8 against fp32: PSNR" in result.output
        import onnx

        props = {p.key: p.value for p in onnx.load(str(tmp_path / name)).metadata_props}
        assert ExportMetadata.from_props(props, name).precision == "int8"
    with load_runtime(tmp_path / "s8_image.onnx") as rt:
        out = rt.infer(np.random.default_rng(2).random((1, 3, H, W), dtype=np.float32))
    assert out.shape == (1, 3, H, W) and np.isfinite(out).all()
    grey = tmp_path / "grey.png"
    cv2.imwrite(str(grey), np.full((H, W), 128, np.uint8))
    nok = run("export", single, "--onnx", tmp_path / "s8_grey.onnx", "--int8", "--calibrate", grey)
    assert nok.exit_code == 2 and "channel" in nok.output and not (tmp_path / "s8_grey.onnx").exists()
    both = run("export", single, "--onnx", tmp_path / "s8_half.onnx", "--int8", "--calibrate", image, "--fp16")
    assert both.exit_code == 2 and "--fp16" in both.output and not (tmp_path / "s8_half.onnx").exists()


def test_denoise_int8_is_for_the_network_fitted_here_and_for_video(tmp_path):
    temporal, _ = _checkpoints(tmp_path)
    video = _clip(tmp_path / "clip.mkv")
    given = run("denoise", video, "-m", temporal, "-o", tmp_path / "b.mkv", "--int8")
    assert given.exit_code == 2 and "export" in given.output
    image = tmp_path / "img.png"
    import cv2

    cv2.imwrite(str(image), np.full((H, W, 3), 128, np.uint8))
    still = run("denoise", image, "-o", tmp_path / "c.png", "--int8")
    assert still.exit_code == 2 and "video" in still.output
    assert not any((tmp_path / name).exists() for name in ("b.mkv", "c.png"))


@pytest.mark.parametrize("temporal", [False, True], ids=["single-frame", "temporal"])
def test_one_command_flow_exports_the_fit_in_int8(tmp_path, temporal):
    import onnx

    from b2g_deploy.api import denoise_video

    video = _clip(tmp_path / "clip.mkv")
    out = tmp_path / "out.mkv"
    lines = []
    report = denoise_video(video, out, fit_frames=4, preset="fast", fit_seconds=0.5, device="cpu", temporal=temporal,
                           k=1 if temporal else 2, int8=True, fuse=False, notify=lines.append)
    assert report.written == N and len(read_frames(out)) == N
    props = {p.key: p.value for p in onnx.load(str(tmp_path / "out.onnx")).metadata_props}
    assert props["b2g.precision"] == "int8"
    assert any("int8 against fp32" in line for line in lines)
