"""`denoise FOLDER`: bad files are skipped and named, the rest are written; the exit code says
whether anything could be done. The loop is a library function (io/image_batch.py)."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from b2g_deploy.checkpoint import Checkpoint, save_checkpoint
from b2g_deploy.cli import app
from b2g_deploy.config import preset
from b2g_deploy.io.image_batch import denoise_image_files, image_jobs
from b2g_deploy.io.images import read_image, write_image
from b2g_deploy.model import B2GNet
from b2g_deploy.modelfile.info import ModelInfo


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """An untrained tiny RGB network: the tests are about which files get through, not quality."""
    cfg = preset("tiny")
    path = tmp_path_factory.mktemp("model") / "m.pt"
    save_checkpoint(path, Checkpoint(B2GNet(3, cfg.model), cfg, {"bit_depth": 8}))
    return path


def image(h=40, w=48, c=3, seed=0):
    return np.random.default_rng(seed).random((c, h, w)).astype(np.float32)


@pytest.fixture
def mixed(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    write_image(folder / "a.png", image(), 8)
    write_image(folder / "c.png", image(seed=1), 16)
    write_image(folder / "grey.png", image(c=1), 8)
    (folder / "notes.png").write_text("not an image")
    good = (folder / "a.png").read_bytes()
    (folder / "truncated.png").write_bytes(good[: len(good) // 3])
    return folder


def lines(text: str) -> list[str]:
    return [ln for ln in text.splitlines() if ln.strip()]


def test_bad_files_are_skipped_named_and_counted(tmp_path, model, mixed):
    out = tmp_path / "out"
    args = ["denoise", str(mixed), "-m", str(model), "-o", str(out), "--device", "cpu"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "c.png"]
    assert read_image(out / "c.png")[1].bit_depth == 16
    skipped = [ln for ln in lines(result.output) if ln.startswith("skipped: ")]
    assert len(skipped) == 3
    for name in ("grey.png", "notes.png", "truncated.png"):
        assert sum(name in ln for ln in skipped) == 1, result.output
    assert any("1 channel" in ln for ln in skipped)
    assert "wrote 2 image(s)" in result.output
    warning = [ln for ln in lines(result.output) if ln.startswith("warning: ")]
    assert warning == ["warning: skipped 3 of 5 images (named above)"]


def test_nothing_denoisable_is_exit_2(tmp_path, model):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "x.png").write_text("junk")
    write_image(folder / "g.png", image(c=1), 8)
    result = CliRunner().invoke(app, ["denoise", str(folder), "-m", str(model), "-o", str(tmp_path / "out"),
                                      "--device", "cpu"])
    assert result.exit_code == 2, result.output
    out = lines(result.output)
    assert out[-1].startswith("error: no image in") and "(2 skipped" in out[-1]
    assert "Traceback" not in result.output
    assert sum(ln.startswith("skipped: ") for ln in out) == 2
    assert list((tmp_path / "out").iterdir()) == []


def test_a_single_bad_image_is_still_one_error_line(tmp_path, model, mixed):
    result = CliRunner().invoke(app, ["denoise", str(mixed / "notes.png"), "-m", str(model),
                                      "-o", str(tmp_path / "o.png"), "--device", "cpu"])
    assert result.exit_code == 2
    assert len(lines(result.output)) == 1 and lines(result.output)[0].startswith("error: ")


class Doubler:
    """A runtime stand-in: records batch sizes, returns the frames halved."""

    max_hw = None

    def __init__(self, channels=3):
        self.info = ModelInfo(channels, extra={"multiple": 8})
        self.batches = []

    def infer(self, frames):
        self.batches.append(frames.shape[0])
        return frames * 0.5


def test_library_function_batches_same_sizes_and_reports(tmp_path, mixed):
    write_image(mixed / "b.png", image(seed=2), 8)  # same size as a.png: one batch with it
    write_image(mixed / "d.png", image(h=32, w=32, seed=3), 8)
    jobs = image_jobs(mixed, tmp_path / "out", force=False)
    rt, seen = Doubler(), []
    report = denoise_image_files(rt, jobs, batch=4, on_skip=lambda path, why: seen.append(path.name))
    assert [p.name for p in report.written] == ["a.png", "b.png", "c.png", "d.png"]
    assert sorted(seen) == sorted(p.name for p, _ in report.skipped)
    assert sorted(seen) == ["grey.png", "notes.png", "truncated.png"]
    assert report.total == len(jobs) == 7
    assert rt.batches == [3, 1]  # a, b, c (40x48) together; d (32x32) alone
    got, _ = read_image(tmp_path / "out" / "a.png")
    np.testing.assert_allclose(got, read_image(mixed / "a.png")[0] * 0.5, atol=1 / 255)
