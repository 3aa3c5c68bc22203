"""The threaded decode -> infer -> encode pipeline, and fitting on several frames of a video."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from b2g_deploy.errors import InputError
from b2g_deploy.io.pipeline import run_pipeline
from b2g_deploy.io.temporal import TemporalBlend
from b2g_deploy.io.video import VideoInfo, open_sink, open_source, read_frames
from b2g_deploy.runtimes.base import ModelInfo, Runtime

W, H, N = 64, 48, 6


def clip_frames(n: int = N) -> list[np.ndarray]:
    ramp = np.linspace(0, 1, W, dtype=np.float32)[None, None, :].repeat(H, axis=1)
    frames = []
    for i in range(n):
        f = np.repeat(0.5 * ramp, 3, axis=0)
        f[:, : H // 2] = (10 + 30 * i) / 255.0  # the frame index, read back by frame_index
        f[1, H // 2 :, : W // 2] = 200 / 255.0
        frames.append(np.round(f * 255) / 255)
    return frames


def frame_index(frame: np.ndarray) -> int:
    return int(round((frame[0, 2, 2] * 255 - 10) / 30))


def write_clip(path: Path, frames: list[np.ndarray]) -> Path:
    sink = open_sink(path, VideoInfo(W, H, 3, 12.0, len(frames)))
    for f in frames:
        sink.write(f)
    sink.close()
    return path


class Identity(Runtime):
    name = "identity"

    def __init__(self, channels: int = 3, interrupt_after: int | None = None):
        self.info = ModelInfo(channels=channels)
        self.calls, self.batches, self.interrupt_after = 0, [], interrupt_after

    def infer(self, frames: np.ndarray) -> np.ndarray:
        assert frames.dtype == np.float32 and frames.ndim == 4
        self.calls += 1
        if self.interrupt_after is not None and self.calls > self.interrupt_after:
            raise KeyboardInterrupt
        self.batches.append(len(frames))
        return frames.copy()


@pytest.mark.parametrize("out_name", ["out.mkv", "seq"])
def test_clip_round_trips_through_the_pipeline(tmp_path, out_name):
    clip = write_clip(tmp_path / "clip.mkv", clip_frames())
    source = open_source(clip)
    out = tmp_path / out_name
    stats = run_pipeline(source, Identity(), open_sink(out, source.info), batch=4)
    source.close()
    assert stats.written == N and stats.skipped == 0 and not stats.interrupted
    back_source = open_source(out)
    assert (back_source.info.width, back_source.info.height) == (W, H)
    if out_name.endswith(".mkv"):
        assert back_source.info.fps == pytest.approx(12.0)
    back_source.close()
    back = read_frames(out)
    assert [frame_index(f) for f in back] == list(range(N))
    for got, ref in zip(back, clip_frames()):
        np.testing.assert_array_equal(np.round(got * 255), np.round(ref * 255))


def test_interrupted_run_leaves_a_readable_file(tmp_path):
    clip = write_clip(tmp_path / "clip.mkv", clip_frames())
    source = open_source(clip)
    out = tmp_path / "out.mkv"
    stats = run_pipeline(source, Identity(interrupt_after=2), open_sink(out, source.info), batch=1)
    source.close()
    assert stats.interrupted and stats.written == 2
    assert out.is_file() and not list(tmp_path.glob(".*part*"))  # renamed into place
    back = read_frames(out)
    assert [frame_index(f) for f in back] == [0, 1]


def test_early_stop_by_limit_keeps_the_frames_written(tmp_path):
    clip = write_clip(tmp_path / "clip.mkv", clip_frames())
    source = open_source(clip)
    stats = run_pipeline(source, Identity(), open_sink(tmp_path / "o.mkv", source.info), limit=3)
    assert stats.written == 3 and len(read_frames(tmp_path / "o.mkv")) == 3


def test_channel_mismatch_is_refused_before_writing(tmp_path):
    clip = write_clip(tmp_path / "clip.mkv", clip_frames())
    source = open_source(clip)
    with pytest.raises(InputError, match="1-channel"):
        run_pipeline(source, Identity(channels=1), open_sink(tmp_path / "o.mkv", source.info))
    assert not (tmp_path / "o.mkv").exists()


def test_blend_runs_inside_the_pipeline_in_order(tmp_path):
    clip = write_clip(tmp_path / "clip.mkv", clip_frames())
    source = open_source(clip)
    blend = TemporalBlend(strength=0.5, threshold=0.3, sigma=0.1)
    stats = run_pipeline(source, Identity(), open_sink(tmp_path / "o.mkv", source.info), blend=blend)
    back = read_frames(tmp_path / "o.mkv")
    # The top half changes by 30 levels per frame: far above the threshold, so never blended.
    assert stats.written == N and [frame_index(f) for f in back] == list(range(N))


def test_fit_cli_on_several_frames_records_them(tmp_path):
    from typer.testing import CliRunner

    from b2g_deploy.checkpoint import load_checkpoint
    from b2g_deploy.cli import app

    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    noisy = [np.clip(f + rng.normal(0, 0.1, f.shape), 0, 1).astype(np.float32) for f in clip_frames()]
    clip = write_clip(tmp_path / "clip.mkv", noisy)
    ckpt = tmp_path / "fit.b2g.pt"
    args = ["fit", str(clip), "--frames", "3", "--preset", "tiny", "--iters", "6", "--device", "cpu",
            "--single-pass", "-o", str(tmp_path / "first.png"), "--checkpoint", str(ckpt)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    meta = load_checkpoint(ckpt).meta
    assert meta["frames"] in ([0, 2, 5], [0, 3, 5]) and meta["frame_count"] == N
    # --init fine-tunes on new frames; the same command again without --force is refused.
    again = CliRunner().invoke(app, args[:-4] + ["-o", str(tmp_path / "b.png"), "--checkpoint",
                                                  str(tmp_path / "b.pt"), "--init", str(ckpt)])
    assert again.exit_code == 0, again.output
    refused = CliRunner().invoke(app, args)
    assert refused.exit_code == 2 and "exists" in refused.output
