"""`denoise` on video never overwrites its input, and says when a file ends early."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from b2g_deploy.checkpoint import Checkpoint, save_checkpoint
from b2g_deploy.cli import app
from b2g_deploy.config import preset
from b2g_deploy.errors import InputError
from b2g_deploy.io.images import write_image
from b2g_deploy.io.pipeline import run_pipeline
from b2g_deploy.io.video import VideoInfo, check_output_not_input, open_sink, open_source
from b2g_deploy.model import B2GNet
from b2g_deploy.modelfile.info import ModelInfo

W, H, N = 64, 48, 40


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    cfg = preset("tiny")
    path = tmp_path_factory.mktemp("model") / "m.pt"
    save_checkpoint(path, Checkpoint(B2GNet(3, cfg.model), cfg, {"bit_depth": 8}))
    return path


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """A 40-frame FFV1 clip and a copy cut short (its header still says 40 frames)."""
    root = tmp_path_factory.mktemp("clips")
    rng = np.random.default_rng(0)
    sink = open_sink(root / "clip.mkv", VideoInfo(W, H, 3, 10.0, N))
    for _ in range(N):
        sink.write(rng.random((3, H, W)).astype(np.float32))
    sink.close()
    data = (root / "clip.mkv").read_bytes()
    (root / "cut.mkv").write_bytes(data[: int(len(data) * 0.6)])
    return root


def run(*args):
    return CliRunner().invoke(app, ["denoise", *map(str, args)])


def one_error_line(result) -> str:
    assert result.exit_code == 2, result.output
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    return lines[0]


@pytest.mark.parametrize("force", [[], ["--force"]])
def test_output_that_is_the_input_video_is_refused(tmp_path, model, clips, force):
    clip = tmp_path / "v.mkv"
    clip.write_bytes((clips / "clip.mkv").read_bytes())
    before = clip.read_bytes()
    line = one_error_line(run(clip, "-o", clip, "-m", model, *force))
    assert "is also the input" in line and clip.read_bytes() == before
    (tmp_path / "sub").mkdir()
    same = tmp_path / "sub" / ".." / "v.mkv"  # another spelling of the same file
    line = one_error_line(run(same, "-o", clip, "-m", model, *force))
    assert "is also the input" in line and clip.read_bytes() == before


def test_frames_are_not_written_into_the_folder_they_are_read_from(tmp_path, model):
    frames = tmp_path / "frames"
    frames.mkdir()
    for i in range(3):
        write_image(frames / f"frame_{i:06d}.png", np.full((3, H, W), 0.1 * i, np.float32), 8)
    before = {p.name: p.read_bytes() for p in frames.iterdir()}
    for out in (frames, frames / "*.png"):
        line = one_error_line(run(str(frames / "*.png"), "-o", out, "-m", model, "--force"))
        assert "read from" in line
    assert {p.name: p.read_bytes() for p in frames.iterdir()} == before
    check_output_not_input(str(frames / "*.png"), tmp_path / "elsewhere")  # another folder is fine
    check_output_not_input(str(frames), tmp_path / "out.mkv")
    with pytest.raises(InputError):
        check_output_not_input(str(frames), frames)


class Identity:
    def __init__(self):
        self.info = ModelInfo(3)

    def infer(self, frames):
        return frames


def test_truncated_file_reports_its_missing_frames(tmp_path, clips):
    source = open_source(clips / "cut.mkv")
    assert source.info.frame_count == N
    stats = run_pipeline(source, Identity(), open_sink(tmp_path / "o.mkv", source.info))
    source.close()
    assert 0 < stats.written < N and stats.skipped == 0
    assert stats.missing == N - stats.written
    whole = open_source(clips / "clip.mkv")
    stats = run_pipeline(whole, Identity(), open_sink(tmp_path / "w.mkv", whole.info))
    whole.close()
    assert stats.written == N and stats.missing == 0
    early = open_source(clips / "cut.mkv")  # stopped early on purpose: nothing is "missing"
    stats = run_pipeline(early, Identity(), open_sink(tmp_path / "e.mkv", early.info), limit=5)
    early.close()
    assert stats.written == 5 and stats.missing == 0


def test_cli_warns_about_a_truncated_video(tmp_path, model, clips):
    result = run(clips / "cut.mkv", "-o", tmp_path / "o.mkv", "-m", model, "--device", "cpu")
    assert result.exit_code == 0, result.output
    written = len(list(open_source(tmp_path / "o.mkv")))
    warning = [ln for ln in result.output.splitlines() if ln.startswith("warning: ")]
    expected = (f"warning: {clips / 'cut.mkv'} announces {N} frames but ended after {written}:"
                f" {N - written} missing (a truncated file?)")
    assert warning == [expected], result.output
    intact = run(clips / "clip.mkv", "-o", tmp_path / "w.mkv", "-m", model, "--device", "cpu")
    assert intact.exit_code == 0 and "warning" not in intact.output
