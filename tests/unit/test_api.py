"""The library API called from Python, as a user would (no CLI): export, denoise_images and
denoise_video return reports, write what they say, and raise the package's typed errors."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch

from b2g_deploy import api
from b2g_deploy.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from b2g_deploy.config import preset
from b2g_deploy.errors import InputError, OutputExistsError
from b2g_deploy.model import B2GNet


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    """An untrained tiny RGB network: the API's plumbing is under test, not the denoising."""
    torch.manual_seed(0)
    cfg = preset("tiny")
    path = tmp_path_factory.mktemp("api") / "m.b2g.pt"
    save_checkpoint(path, Checkpoint(B2GNet(3, cfg.model).eval(), cfg, {"bit_depth": 8}))
    return path


@pytest.fixture(scope="module")
def onnx_model(ckpt):
    path = ckpt.with_name("m.onnx")
    api.export(ckpt, path)
    return path


def test_export_writes_an_onnx_file_that_runs_like_the_checkpoint(ckpt, onnx_model, smooth_image):
    from b2g_deploy.model import denoise
    from b2g_deploy.runtimes.ort_runtime import OrtRuntime

    x = smooth_image(40, 56, 3)[None]
    with OrtRuntime(onnx_model, provider="cpu") as rt:
        got = rt.infer(x)
    with torch.no_grad():
        want = denoise(load_checkpoint(ckpt).net, torch.from_numpy(x)).numpy()
    assert got.shape == x.shape and np.abs(got - want).max() < 1e-4


def test_export_report_says_what_was_written(ckpt, tmp_path):
    report = api.export(ckpt, tmp_path / "e.onnx", mode="ensemble", passes=3)
    assert report.onnx == tmp_path / "e.onnx" and report.onnx.is_file()
    assert "ensemble, 3 pass(es), fp32" in report.description and "max |diff|" in report.parity
    assert report.engine is None and report.triton is None and not report.temporal


def test_export_to_triton_only_keeps_no_onnx_file(ckpt, tmp_path):
    report = api.export(ckpt, triton=tmp_path / "repo", name="den", max_batch=2)
    assert report.onnx is None and report.triton.max_batch == 2
    assert (tmp_path / "repo" / "den" / "1" / "model.onnx").is_file()
    assert list(tmp_path.glob("*.onnx")) == []


def test_export_errors_write_nothing(ckpt, tmp_path):
    with pytest.raises(InputError, match="--onnx"):
        api.export(ckpt)
    with pytest.raises(InputError, match=r"\.onnx"):
        api.export(ckpt, tmp_path / "m.bin")
    with pytest.raises(InputError, match=r"\.engine"):
        api.export(ckpt, tmp_path / "m.onnx", trt=tmp_path / "m.trt")
    (tmp_path / "taken.onnx").write_bytes(b"keep")
    with pytest.raises(OutputExistsError):
        api.export(ckpt, tmp_path / "taken.onnx")
    assert (tmp_path / "taken.onnx").read_bytes() == b"keep"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken.onnx"]


# ---- denoise_images ----------------------------------------------------------------------------


def test_denoise_images_writes_a_folder_and_names_the_bad_file(onnx_model, tmp_path, smooth_image):
    from b2g_deploy.io.images import read_image, write_image

    folder = tmp_path / "in"
    folder.mkdir()
    write_image(folder / "a.png", smooth_image(40, 48, 3), 8)
    write_image(folder / "b.tif", smooth_image(36, 52, 3, seed=1), 16)
    (folder / "c.png").write_bytes(b"not a png")
    skipped, progress = [], []
    report = api.denoise_images(folder, tmp_path / "out", onnx_model, device="cpu",
                                on_skip=lambda f, why: skipped.append(f.name),
                                on_written=lambda done, total, f: progress.append((done, total)))
    assert sorted(p.name for p in report.written) == ["a.png", "b.tif"]
    assert [f.name for f, _ in report.skipped] == skipped == ["c.png"] and report.total == 3
    # an .onnx on the CPU: OpenVINO where it is installed (api.runtime_choice.choose_runtime)
    want = "openvino (f32)" if importlib.util.find_spec("openvino") else "onnxruntime"
    assert progress == [(1, 3), (2, 3)] and report.runtime == want
    image, info = read_image(tmp_path / "out" / "b.tif")
    assert image.shape == (3, 36, 52) and info.bit_depth == 16  # the input's depth is kept


def test_denoise_images_with_nothing_readable_is_an_error(onnx_model, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "x.png").write_bytes(b"junk")
    with pytest.raises(InputError, match="no image"):
        api.denoise_images(folder, tmp_path / "out", onnx_model, device="cpu")
    assert list((tmp_path / "out").iterdir()) == []
    with pytest.raises(InputError, match="--mode"):  # an export has its mode built in
        api.denoise_images(folder, tmp_path / "o2", onnx_model, mode="ensemble")


def test_runtime_options_are_parsed_once_for_every_backend():
    from b2g_deploy.api import runtime_options

    assert runtime_options("torch", "cpu", "ensemble", 3) == {"device": "cpu", "mode": "ensemble", "passes": 3}
    assert runtime_options("torch", "cpu", "flips", 8) == {"device": "cpu", "mode": "flips", "passes": 8}
    assert runtime_options("torch", "cpu", temporal=True) == {"device": "cpu", "mode": "single", "passes": 8}
    assert runtime_options("torch", "cpu", "flips", 4, temporal=True) == {"device": "cpu", "mode": "flips", "passes": 4}
    assert runtime_options("onnxruntime", "cuda", threads=1) == {"provider": "cuda", "threads": 1}
    assert runtime_options("tensorrt", "auto") == {}
    for bad in [dict(name="onnxruntime", mode="ensemble"), dict(name="torch", mode="ensemble", temporal=True),
                dict(name="torch", mode="bagging"), dict(name="torch", device="cudafoo"),
                dict(name="torch", mode="flips", passes=3), dict(name="onnxruntime", mode="flips", temporal=True)]:
        with pytest.raises(InputError):
            runtime_options(**bad)


# ---- denoise_video -----------------------------------------------------------------------------

H, W, N = 32, 48, 7


def _clip(path, channels=3, depth=8):
    """A clip whose frames differ by level, so order and count can be checked; a video file,
    or with depth 16 a folder of 16-bit PNGs."""
    from b2g_deploy.io.images import write_image
    from b2g_deploy.io.video import VideoInfo, open_sink

    _, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    ramp = [0.15 + 0.1 * i + 0.05 * xx / W for i in range(N)]
    frames = [np.stack([r * (1.0 - 0.1 * c) for c in range(channels)]).astype(np.float32) for r in ramp]
    if depth == 16:
        path.mkdir()
        for i, f in enumerate(frames):
            write_image(path / f"f{i:02d}.png", f, 16)
        return path
    sink = open_sink(path, VideoInfo(W, H, channels, 10.0, N))
    for f in frames:
        sink.write(f)
    sink.close()
    return path


def test_denoise_video_with_a_model_keeps_frame_count_and_order(onnx_model, tmp_path):
    from b2g_deploy.io.video import read_frames
    from b2g_deploy.runtimes.ort_runtime import OrtRuntime

    video = _clip(tmp_path / "clip.mkv")
    seen = []
    report = api.denoise_video(video, tmp_path / "out.mkv", onnx_model, device="cpu", batch=3, threads=1, fuse=False,
                               progress=lambda written, total, skipped: seen.append((written, total)))
    assert report.streamed and not report.interrupted and report.checkpoint is None
    assert (report.written, report.skipped, report.missing, report.announced) == (N, 0, 0, N)
    assert seen[-1] == (N, N) and report.model == onnx_model
    noisy, out = np.stack(read_frames(video)), np.stack(read_frames(tmp_path / "out.mkv"))
    with OrtRuntime(onnx_model, provider="cpu") as rt:
        want = rt.infer(noisy)
    assert out.shape == noisy.shape and np.abs(out - want).max() <= 1.5 / 255  # 8-bit video, in order


def test_denoise_video_refuses_before_any_work(onnx_model, tmp_path):
    video = _clip(tmp_path / "clip.mkv")
    with pytest.raises(InputError, match="also the input"):
        api.denoise_video(video, video, onnx_model, force=True)
    with pytest.raises(InputError, match="-m"):
        api.denoise_video(video, tmp_path / "o.mkv", onnx_model, temporal=True)
    with pytest.raises(InputError, match="--mode flips applies to a .pt checkpoint"):
        api.denoise_video(video, tmp_path / "o.mkv", mode="flips")  # before the fit, not after
    (tmp_path / "taken.mkv").write_bytes(b"keep")
    with pytest.raises(OutputExistsError):
        api.denoise_video(video, tmp_path / "taken.mkv")  # refused before minutes of fitting
    with pytest.raises(InputError, match="unknown codec"):
        api.denoise_video(video, tmp_path / "o.mkv", codec="x264")  # before the fit, not after it
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mkv", "taken.mkv"]


def test_one_command_flow_keeps_the_input_bit_depth(tmp_path):
    """Without a model: fit on the first frames, export, stream. The checkpoint records the
    frames' real bit depth (a 16-bit sequence), which the output folder is then written at."""
    from b2g_deploy.io.images import read_image

    frames = _clip(tmp_path / "seq", channels=1, depth=16)
    lines = []
    report = api.denoise_video(frames, tmp_path / "out", fit_frames=2, fit_seconds=0.3, device="cpu", batch=2,
                               notify=lines.append)
    assert report.streamed and report.written == N and report.checkpoint == tmp_path / "out.b2g.pt"
    meta = load_checkpoint(report.checkpoint).meta
    assert meta["bit_depth"] == 16 and meta["frames"] == [0, 1] and meta["size"] == [H, W]
    assert report.model == tmp_path / "out.onnx" and report.model.is_file()
    assert [line.split()[1] for line in lines] == [str(report.checkpoint), str(report.model)]
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert len(names) == N and read_image(tmp_path / "out" / names[-1])[1].bit_depth == 16


@pytest.mark.parametrize("fuse", [True, False])
def test_the_single_frame_fit_is_checked_against_its_prior_only_without_fusion(tmp_path, monkeypatch, fuse):
    """Unfused, the prior beat the fit on a 720p clip; fused, the fit won (docs/BENCHMARKS.md):
    the one-command flow asks for the check exactly when its output will not be fused."""
    from b2g_deploy.api import video_flow

    asked = {}

    def fake_fit(*args, **kwargs):
        asked.update(kwargs)
        raise KeyboardInterrupt  # stop before any work

    monkeypatch.setattr(video_flow, "fit_first_frames", fake_fit)
    with pytest.raises(KeyboardInterrupt):
        api.denoise_video(_clip(tmp_path / "clip.mkv"), tmp_path / "o.mkv", fuse=fuse)
    assert asked["check_prior"] is (not fuse)


def test_the_video_flow_fits_enough_frames_for_its_network():
    from b2g_deploy.api.video_flow import default_fit_frames

    assert default_fit_frames(False) == 4
    assert default_fit_frames(True) == 8  # fit VIDEO --temporal's default: one 5-frame window and more
    assert default_fit_frames(True, k=5) == 11  # never fewer than one window
