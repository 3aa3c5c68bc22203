"""`b2g-deploy denoise VIDEO -o OUT`: the one-command flow and its errors (exit 2, one line)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from typer.testing import CliRunner

from b2g_deploy.cli import app
from b2g_deploy.io.video import VideoInfo, open_sink, read_frames

W, H, N = 64, 48, 6


def noisy_clip(path: Path, channels: int = 3) -> Path:
    rng = np.random.default_rng(0)
    sink = open_sink(path, VideoInfo(W, H, channels, 10.0, N))
    for i in range(N):
        clean = np.full((channels, H, W), 0.2 + 0.1 * i, np.float32)
        clean[:, 10:30, 10 + 4 * i : 30 + 4 * i] = 0.8
        sink.write(np.clip(clean + rng.normal(0, 0.1, clean.shape), 0, 1))
    sink.close()
    return path


def test_one_command_fits_exports_and_streams_every_frame(tmp_path):
    torch.set_num_threads(1)
    clip = noisy_clip(tmp_path / "clip.mkv")
    out = tmp_path / "out.mkv"
    args = ["denoise", str(clip), "-o", str(out), "--preset", "tiny", "--fit-frames", "2", "--device", "cpu"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out.b2g.pt").is_file() and (tmp_path / "out.onnx").is_file()
    frames = read_frames(out)
    assert len(frames) == N and frames[0].shape == (3, H, W)
    # Reuse: the exported model streams a second time without fitting; the blend is accepted.
    again = CliRunner().invoke(app, ["denoise", str(clip), "-o", str(tmp_path / "b.avi"), "--codec", "mjpg",
                                     "-m", str(tmp_path / "out.onnx"), "--blend", "0.5"])
    assert again.exit_code == 0, again.output
    assert len(read_frames(tmp_path / "b.avi")) == N
    # A .pt checkpoint streams in ensemble mode when asked; an exported model refuses --mode.
    ens = CliRunner().invoke(app, ["denoise", str(clip), "-o", str(tmp_path / "e.mkv"), "--device", "cpu",
                                   "-m", str(tmp_path / "out.b2g.pt"), "--mode", "ensemble", "--passes", "2"])
    assert ens.exit_code == 0, ens.output
    assert len(read_frames(tmp_path / "e.mkv")) == N
    wrong = CliRunner().invoke(app, ["denoise", str(clip), "-o", str(tmp_path / "w.mkv"),
                                     "-m", str(tmp_path / "out.onnx"), "--mode", "ensemble"])
    assert wrong.exit_code == 2 and "--mode" in wrong.output
    # An existing output without --force: refused before any fitting, exit 2.
    refused = CliRunner().invoke(app, args)
    assert refused.exit_code == 2 and "exists" in refused.output


def test_channel_mismatch_and_bad_video_are_one_line_errors(tmp_path):
    torch.set_num_threads(1)
    grey = noisy_clip(tmp_path / "grey.mkv", channels=1)
    first = CliRunner().invoke(app, ["denoise", str(grey), "-o", str(tmp_path / "g.mkv"), "--preset", "tiny",
                                     "--fit-frames", "1", "--device", "cpu"])
    assert first.exit_code == 0, first.output
    assert read_frames(tmp_path / "g.mkv")[0].shape == (1, H, W)
    colour = noisy_clip(tmp_path / "colour.mkv")
    result = CliRunner().invoke(app, ["denoise", str(colour), "-o", str(tmp_path / "c.mkv"),
                                      "-m", str(tmp_path / "g.onnx")])
    assert result.exit_code == 2
    assert result.output.strip().startswith("error:") and len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "c.mkv").exists()
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00" * 100)
    result = CliRunner().invoke(app, ["denoise", str(bad), "-o", str(tmp_path / "d.mkv"), "-m", str(tmp_path / "g.onnx")])
    assert result.exit_code == 2 and "error:" in result.output


def test_bad_frames_of_a_sequence_are_skipped_and_named(tmp_path):
    import cv2

    torch.set_num_threads(1)
    grey = noisy_clip(tmp_path / "grey.mkv", channels=1)
    fitted = CliRunner().invoke(app, ["denoise", str(grey), "-o", str(tmp_path / "g.mkv"), "--preset", "tiny",
                                      "--fit-frames", "1", "--device", "cpu"])
    assert fitted.exit_code == 0, fitted.output
    frames = tmp_path / "frames"
    frames.mkdir()
    for i, f in enumerate(read_frames(grey)):
        cv2.imwrite(str(frames / f"f{i}.png"), (f[0] * 255).astype(np.uint8))
    (frames / "f3.png").write_bytes(b"not a png")
    result = CliRunner().invoke(app, ["denoise", str(frames), "-o", str(tmp_path / "s.mkv"),
                                      "-m", str(tmp_path / "g.onnx")])
    assert result.exit_code == 0, result.output
    assert "skipped: f3.png (not a readable image)" in result.output
    assert len(read_frames(tmp_path / "s.mkv")) == N - 1
