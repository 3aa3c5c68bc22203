"""Temporal engines through the same builder, checked build and runtimes, against the stand-in
``tensorrt`` module of trt_stand_in.py."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from b2g_deploy.errors import EngineMismatchError, InputError
from b2g_deploy.export import tensorrt_build
from b2g_deploy.export.engine_sidecar import EngineSidecar, Profile, sidecar_path
import trt_stand_in as stand_in
from trt_stand_in import GPU, built_engine

rec, install, onnx_file = stand_in.rec, stand_in.install, stand_in.onnx_file  # the stand-in's fixtures, for pytest


# --- temporal engines ------------------------------------------------------------------------
# A temporal checkpoint's ONNX graph (input ``window``, (B, T*C, H, W)) through the same builder,
# checked build and runtimes. The stand-in engine "runs" by handing each batch to ONNX Runtime on
# the ONNX file the fake parser was given, after the profile check the real engine makes; only
# the CUDA copies of ``TrtEngine._engine_run`` are left out (tests/gpu runs the real thing).


@pytest.fixture
def temporal_model(tmp_path):
    """A tiny 3-frame (k=1, centred) RGB temporal checkpoint and its ONNX export."""
    import torch

    from b2g_deploy.checkpoint import Checkpoint, save_checkpoint
    from b2g_deploy.config import preset
    from b2g_deploy.temporal.export import export_temporal_checkpoint
    from b2g_deploy.temporal.model import TemporalB2GNet

    cfg = preset("tiny")
    torch.manual_seed(0)
    net = TemporalB2GNet.for_k(3, 1, False, cfg.model).eval()
    ckpt = tmp_path / "t.pt"
    save_checkpoint(ckpt, Checkpoint(net, cfg, {"bit_depth": 8}))
    export_temporal_checkpoint(ckpt, tmp_path / "t.onnx")
    return ckpt, tmp_path / "t.onnx"


@pytest.fixture
def engine_runs(monkeypatch, rec):
    """Make loaded stand-in engines compute: ONNX Runtime on the parsed graph (+ ``offset``)."""
    import numpy as np
    import onnxruntime as ort

    from b2g_deploy.runtimes.trt_runtime import TrtEngine

    state = {"offset": 0.0, "shapes": []}

    def run(self, x):
        self.sidecar.profile.check(tuple(x.shape), self._what)
        state["shapes"].append(tuple(x.shape))
        if "session" not in state:
            state["session"] = ort.InferenceSession(rec.calls["onnx_bytes"], providers=["CPUExecutionProvider"])
        session = state["session"]
        out = session.run(None, {session.get_inputs()[0].name: np.ascontiguousarray(x, np.float32)})[0]
        return out + state["offset"]

    monkeypatch.setattr(TrtEngine, "_engine_run", run)
    return state


@pytest.fixture
def gpu_here(monkeypatch, install):
    """The fake TensorRT plus a 'GPU' for every module that asks for one."""
    from b2g_deploy.export import engine_sidecar as export_sidecar

    install()
    monkeypatch.setattr(export_sidecar, "current_gpu", lambda: GPU)


def _cli(*args):
    from typer.testing import CliRunner

    from b2g_deploy.cli import app

    return CliRunner().invoke(app, [str(a) for a in args])


T_SHAPES = ("--min-shape", "1xCx32x32", "--opt-shape", "2xCx64x64", "--max-shape", "2xCx96x128")


def test_parse_profile_multiplies_a_frame_channels_by_the_window():
    from b2g_deploy.api.exporting import parse_profile

    p = parse_profile(3, "1xCx64x64", "2xCx720x1280", "4x3x1088x1920", window=5)
    assert p == Profile((1, 15, 64, 64), (2, 15, 720, 1280), (4, 15, 1088, 1920))
    assert parse_profile(3, "1x15x64x64", "1x15x64x64", "1xCx64x64", window=5).max == (1, 15, 64, 64)
    with pytest.raises(InputError, match="--min-shape '1x4x64x64' has 4 channels; the model has 3 a frame "
                                         r"\(15 for the 5-frame window\)"):
        parse_profile(3, "1x4x64x64", "1xCx64x64", "1xCx64x64", window=5)
    assert parse_profile(1, "1xCx64x64", "1xCx64x64", "1xCx64x64").min == (1, 1, 64, 64)  # single-frame
    with pytest.raises(InputError, match="has 3 channels; the model has 1$"):
        parse_profile(1, "1x3x64x64", "1xCx64x64", "1xCx64x64")


def test_temporal_build_asks_for_the_window_profile_and_records_the_window(tmp_path, temporal_model, install,
                                                                         rec):
    _, onnx_path = temporal_model
    install()
    out = tmp_path / "t.engine"
    frame_profile = Profile((1, 3, 32, 32), (1, 3, 64, 64), (2, 3, 96, 128))
    with pytest.raises(InputError, match=r"the profile has 3 channels; .* takes 9 \(3 frames x 3 channels\)"):
        tensorrt_build.build_engine(onnx_path, out, frame_profile)
    assert not out.exists() and not sidecar_path(out).exists()

    profile = Profile((1, 9, 32, 32), (1, 9, 64, 64), (2, 9, 96, 128))
    result = tensorrt_build.build_engine(onnx_path, out, profile, fp16=True)
    assert rec.calls["profile"] == ("window", (1, 9, 32, 32), (1, 9, 64, 64), (2, 9, 96, 128))
    assert rec.calls["flags"] == {"FP16"}
    side = json.loads(sidecar_path(out).read_text())
    assert side["temporal"] == {"window": 3, "k": 1, "causal": False, "target_index": 1, "align": "none"}
    assert side["channels"] == 3 and side["profile"]["min"] == [1, 9, 32, 32] and side["fp16"] is True
    assert side["model"]["format"] == "b2g-deploy/onnx-temporal" and side["model"]["window"] == "3"
    loaded = EngineSidecar.load(out)
    assert loaded == result.sidecar and loaded.is_temporal and loaded.input_channels == 9


def test_sidecar_temporal_field_is_checked_and_old_sidecars_are_single_frame(tmp_path, onnx_file, install):
    engine = built_engine(tmp_path, onnx_file, install)
    data = json.loads(sidecar_path(engine).read_text())
    assert data["temporal"] is None
    del data["temporal"]  # written before temporal engines existed
    sidecar_path(engine).write_text(json.dumps(data))
    assert not EngineSidecar.load(engine).is_temporal
    for bad in ({"window": 3, "k": 1}, {"window": 3, "k": 2, "causal": False, "target_index": 1},
                {"window": 3, "k": 1, "causal": "no", "target_index": 1},
                {"window": 3, "k": 1, "causal": False, "target_index": 1, "align": "optical"}):
        sidecar_path(engine).write_text(json.dumps({**data, "temporal": bad}))
        with pytest.raises(EngineMismatchError, match="not a b2g-deploy engine sidecar"):
            EngineSidecar.load(engine)
    # a window whose profile does not hold T*C channels
    good = {"window": 3, "k": 1, "causal": False, "target_index": 1}
    sidecar_path(engine).write_text(json.dumps({**data, "temporal": good}))
    with pytest.raises(EngineMismatchError, match="profile has 3 channels, its input 9"):
        EngineSidecar.load(engine)


def test_export_trt_of_a_temporal_checkpoint_builds_and_checks_one_engine(tmp_path, temporal_model, gpu_here,
                                                                        engine_runs, rec):
    ckpt, _ = temporal_model
    result = _cli("export", ckpt, "--onnx", tmp_path / "e.onnx", "--trt", tmp_path / "e.engine", *T_SHAPES)
    assert result.exit_code == 0, result.output
    assert rec.calls["profile"] == ("window", (1, 9, 32, 32), (2, 9, 64, 64), (2, 9, 96, 128))
    assert rec.calls["cleared"] == {"TF32"} and rec.calls["flags"] == set()
    assert "1x9x32x32 / 2x9x64x64 / 2x9x96x128 (3-frame windows of 3 channels)" in result.output
    # the parity image's window, sized into the profile: one window of 3 frames, 96x128
    assert engine_runs["shapes"] == [(1, 9, 96, 128)]
    assert "parity: TensorRT vs PyTorch (fp32, 1x3x96x128)" in result.output
    assert EngineSidecar.load(tmp_path / "e.engine").temporal["window"] == 3

    # fp16: the engine only (the ONNX graph stays fp32), judged by the fp16 bound
    rec.calls["flags"] = set()
    result = _cli("export", ckpt, "--onnx", tmp_path / "h.onnx", "--trt", tmp_path / "h.engine", "--fp16", *T_SHAPES)
    assert result.exit_code == 0, result.output
    assert rec.calls["flags"] == {"FP16"} and "fp32, opset" in result.output
    assert "TensorRT vs PyTorch (fp16" in result.output and EngineSidecar.load(tmp_path / "h.engine").fp16


def test_failed_temporal_parity_removes_the_engine_and_its_sidecar(tmp_path, temporal_model, gpu_here,
                                                                  engine_runs):
    ckpt, _ = temporal_model
    engine_runs["offset"] = 0.01
    result = _cli("export", ckpt, "--onnx", tmp_path / "e.onnx", "--trt", tmp_path / "e.engine", *T_SHAPES)
    assert result.exit_code == 2 and result.output.startswith("error: parity check failed: TensorRT vs PyTorch")
    assert len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "e.engine").exists() and not (tmp_path / "e.engine.json").exists()


def test_temporal_engine_parity_refuses_another_checkpoint(tmp_path, temporal_model, gpu_here, engine_runs):
    import torch

    from b2g_deploy.api.exporting import build_checked_engine
    from b2g_deploy.checkpoint import Checkpoint, save_checkpoint
    from b2g_deploy.config import preset
    from b2g_deploy.errors import CheckpointError
    from b2g_deploy.model import B2GNet
    from b2g_deploy.temporal.model import TemporalB2GNet

    _, onnx_path = temporal_model
    cfg = preset("tiny")
    profile = Profile((1, 9, 32, 32), (1, 9, 64, 64), (1, 9, 64, 64))
    torch.manual_seed(0)
    others = {"causal.pt": TemporalB2GNet.for_k(3, 1, True, cfg.model), "single.pt": B2GNet(3, cfg.model)}
    for name, net in others.items():
        save_checkpoint(tmp_path / name, Checkpoint(net, cfg, {}))
        with pytest.raises(CheckpointError, match="causal True|single-frame network"):
            build_checked_engine(tmp_path / name, onnx_path, tmp_path / "x.engine", profile, force=True)
        assert not (tmp_path / "x.engine").exists()


def test_temporal_export_refusals_are_one_line_and_write_nothing(tmp_path, temporal_model, gpu_here, engine_runs):
    ckpt, _ = temporal_model
    out = tmp_path / "o.onnx"
    cases = [
        (("--fp16",), "--fp16 of a temporal checkpoint applies to its TensorRT engine"),
        (("--mode", "ensemble"), "single pass"),
        (("--trt", tmp_path / "o.engine", "--min-shape", "1x4x32x32"), "the model has 3 a frame"),
        (("--trt", tmp_path / "o.trt"), r"\.engine"),
        (("--trt", tmp_path / "o.engine", "--min-shape", "1xCx4x4"), "at least 8"),
    ]
    import re

    for extra, message in cases:
        result = _cli("export", ckpt, "--onnx", out, *extra)
        assert result.exit_code == 2 and result.output.startswith("error:"), (extra, result.output)
        assert len(result.output.strip().splitlines()) == 1 and re.search(message, result.output), result.output
        assert not out.exists() and not (tmp_path / "o.engine").exists()


def test_a_temporal_engine_opens_on_the_temporal_path_only(tmp_path, temporal_model, gpu_here, engine_runs):
    import numpy as np

    from b2g_deploy.api import open_runtime
    from b2g_deploy.api.exporting import build_checked_engine
    from b2g_deploy.runtimes.factory import load_runtime
    from b2g_deploy.runtimes.temporal import OrtTemporalRuntime, is_temporal_model
    from b2g_deploy.runtimes.trt_runtime import TrtRuntime, TrtTemporalRuntime

    ckpt, onnx_path = temporal_model
    engine = tmp_path / "t.engine"
    build_checked_engine(ckpt, onnx_path, engine, Profile((1, 9, 32, 32), (2, 9, 64, 64), (2, 9, 96, 128)))
    assert is_temporal_model(engine)
    with open_runtime(engine, device="cpu") as rt:
        assert isinstance(rt, TrtTemporalRuntime) and rt.temporal
        assert (rt.k, rt.causal, rt.window, rt.info.channels) == (1, False, 3, 3)
        assert rt.info.extra["temporal"] and rt.info.extra["profile"].startswith("1x9x32x32")
        # windows below the profile minimum are padded up to it and cropped back; batches above
        # its maximum run in chunks; the result is the ONNX graph's
        windows = np.random.default_rng(0).random((5, 9, 20, 40), dtype=np.float32)
        engine_runs["shapes"].clear()
        got = rt.infer_windows(windows)
        assert engine_runs["shapes"] == [(2, 9, 32, 40), (2, 9, 32, 40), (1, 9, 32, 40)]
        assert got.shape == (5, 3, 20, 40)
        with OrtTemporalRuntime(onnx_path, provider="cpu") as ort_rt:
            big = windows.repeat(2, axis=2).repeat(2, axis=3)[:2]  # 40x80: inside the profile, no padding
            assert np.abs(rt.infer_windows(big) - ort_rt.infer_windows(big)).max() <= 1e-5
        with pytest.raises(InputError, match=r"expected \(B, 9, H, W\) windows"):
            rt.infer_windows(windows[:, :3])
        with pytest.raises(EngineMismatchError, match="windows of shape .* outside the engine's profile"):
            rt.infer_windows(np.zeros((1, 9, 64, 200), np.float32))
    with pytest.raises(InputError, match="temporal .*engine: it denoises videos"):
        load_runtime(engine)
    with pytest.raises(InputError, match="temporal"):
        TrtRuntime(engine)
    single = built_engine(tmp_path, stand_in.single_onnx(tmp_path / "single.onnx"), lambda: None)
    assert not is_temporal_model(single)
    with pytest.raises(InputError, match="single-frame engine, not a temporal one"):
        TrtTemporalRuntime(single)
    sidecar_path(engine).unlink()
    assert not is_temporal_model(engine)  # no sidecar: the engine runtime says why
    with pytest.raises(EngineMismatchError, match="no sidecar"):
        open_runtime(engine)


def _clip(path, n=6, w=40, h=32):
    """n RGB frames of a moving square with independent noise (io.video's writer)."""
    import numpy as np

    from b2g_deploy.io.video import VideoInfo, open_sink

    rng = np.random.default_rng(0)
    sink = open_sink(path, VideoInfo(w, h, 3, 10.0, n))
    for i in range(n):
        clean = np.full((3, h, w), 0.2 + 0.1 * i, np.float32)
        clean[:, 8:20, 4 + 3 * i : 16 + 3 * i] = 0.9
        sink.write(np.clip(clean + rng.normal(0, 0.1, clean.shape), 0, 1))
    sink.close()
    return path


def test_denoise_video_streams_a_temporal_engine_like_its_onnx(tmp_path, temporal_model, gpu_here, engine_runs):
    import cv2
    import numpy as np

    from b2g_deploy.api.exporting import build_checked_engine

    ckpt, onnx_path = temporal_model
    engine = tmp_path / "t.engine"
    build_checked_engine(ckpt, onnx_path, engine, Profile((1, 9, 32, 32), (2, 9, 32, 40), (2, 9, 96, 128)))
    video = _clip(tmp_path / "clip.mkv")
    outs = {}
    for model in (engine, onnx_path):
        out = tmp_path / f"frames_{model.suffix[1:]}"
        engine_runs["shapes"].clear()
        result = _cli("denoise", video, "-m", model, "-o", out, "--batch", 4, "--device", "cpu")
        assert result.exit_code == 0, result.output
        names = sorted(p.name for p in out.iterdir())
        assert names == [f"frame_{i:06d}.png" for i in range(6)]  # one output per input frame, in order
        outs[model.suffix] = np.stack([cv2.imread(str(out / name)) for name in names]).astype(int)
        if model == engine:  # windows of 3 frames, in chunks of the profile's max batch
            assert engine_runs["shapes"] and all(s[0] <= 2 and s[1:] == (9, 32, 40) for s in engine_runs["shapes"])
            assert sum(s[0] for s in engine_runs["shapes"]) == 6
    assert np.abs(outs[".engine"] - outs[".onnx"]).max() <= 1


def test_denoise_video_with_a_temporal_engine_and_no_tensorrt_is_one_error_line(tmp_path, temporal_model,
                                                                                 gpu_here, engine_runs,
                                                                                 monkeypatch):
    from b2g_deploy.api.exporting import build_checked_engine

    ckpt, onnx_path = temporal_model
    engine = tmp_path / "t.engine"
    build_checked_engine(ckpt, onnx_path, engine, Profile((1, 9, 32, 32), (1, 9, 32, 40), (1, 9, 96, 128)))
    video = _clip(tmp_path / "clip.mkv", n=3)
    monkeypatch.setitem(sys.modules, "tensorrt", None)  # not installed: importing it fails
    result = _cli("denoise", video, "-m", engine, "-o", tmp_path / "o.mkv")
    assert result.exit_code == 2 and result.output.startswith("error: the optional package 'tensorrt'")
    assert len(result.output.strip().splitlines()) == 1 and not (tmp_path / "o.mkv").exists()


def test_the_video_flow_builds_a_window_engine_for_the_frame_size(tmp_path, temporal_model, gpu_here, engine_runs,
                                                                  rec, monkeypatch):
    from types import SimpleNamespace

    from b2g_deploy.api import video_flow

    ckpt, _ = temporal_model
    monkeypatch.setattr(video_flow, "tensorrt_usable", lambda: True)
    info = SimpleNamespace(channels=3, height=32, width=40)
    lines = []
    got = video_flow.export_for_here(ckpt, tmp_path / "f.onnx", tmp_path / "f.engine", info, batch=4,
                                     notify=lines.append)
    assert got == tmp_path / "f.engine" and EngineSidecar.load(got).is_temporal
    assert rec.calls["profile"] == ("window", (1, 9, 32, 40), (4, 9, 32, 40), (4, 9, 32, 40))
    assert "parity: TensorRT vs PyTorch (fp32" in lines[-1]


def test_gpu_temporal_script_dry_run_with_the_stand_in(tmp_path, gpu_here, engine_runs, rec, monkeypatch):
    """scripts/gpu_temporal.py --cpu-smoke, in this process with the stand-in TensorRT: the
    engine is built through the checked build for (B, 15, H, W) windows and every row is filled."""
    import importlib.util

    import torch

    from b2g_deploy.runtimes.trt_runtime import TrtEngine

    root = Path(__file__).resolve().parents[2]
    spec = importlib.util.spec_from_file_location("gpu_temporal", root / "scripts" / "gpu_temporal.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    # the engine's CUDA path, on the CPU: the same profile check and graph as _engine_run
    monkeypatch.setattr(TrtEngine, "infer_tensor", lambda self, x: torch.from_numpy(self._engine_run(x.numpy())))
    monkeypatch.setattr(sys, "argv", ["gpu_temporal.py", "--cpu-smoke", "--frames", "5", "--out", str(tmp_path / "o"),
                                      "--work", str(tmp_path / "w")])
    script.main()
    result = json.loads((tmp_path / "o" / "gpu_temporal_smoke.json").read_text())
    assert rec.calls["profile"] == ("window", (1, 15, 64, 64), (2, 15, 64, 96), (2, 15, 64, 96))
    rows = {r["runtime"]: r for r in result["end_to_end"]}
    assert rows["TensorRT fp16"]["frames"] == 5 and rows["torch fp32"]["frames"] == 5
    assert rows["torch fp16 + lk alignment (GPU)"]["frames"] == 5  # the torch flow's row runs as well
    assert "fps" in {r["runtime"]: r for r in result["network"]}["TensorRT fp16"]
    assert "CUDA" in rows["torch fp16"]["error"] and result["settings"]["window"] == 5
    assert result["card"] and result["target"]["verdict"] == "not measured"
    assert "TensorRT vs PyTorch (fp16" in result["engines"]["fp16"]["parity"]
    assert result["fusion_lk"]["fps"] > 0  # the torch fusion timed on the device (here the CPU)
