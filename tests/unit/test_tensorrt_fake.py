"""The TensorRT builder and the engine checks, against the stand-in ``tensorrt`` module of
trt_stand_in.py (profile, flags, timing cache, sidecar, version and GPU checks, parity)."""

from __future__ import annotations

import json
import sys
from enum import IntEnum

import pytest

from b2g_deploy.errors import EngineBuildError, EngineMismatchError, InputError, OutputExistsError
from b2g_deploy.export import tensorrt_build
from b2g_deploy.export.engine_sidecar import EngineSidecar, Profile, parse_shape, sidecar_path
from b2g_deploy.runtimes import trt_runtime
import trt_stand_in as stand_in
from trt_stand_in import PROFILE, built_engine

rec, install, onnx_file = stand_in.rec, stand_in.install, stand_in.onnx_file  # the stand-in's fixtures, for pytest


def test_profile_flags_cache_and_sidecar(tmp_path, onnx_file, install, rec):
    install()
    cache = tmp_path / "timing.cache"
    cache.write_bytes(b"old")
    out = tmp_path / "m.engine"
    result = tensorrt_build.build_engine(onnx_file, out, PROFILE, fp16=True, timing_cache=cache)
    assert rec.calls["profile"] == ("input", (1, 3, 64, 64), (2, 3, 720, 1280), (4, 3, 1088, 1920))
    assert rec.calls["flags"] == {"FP16"} and rec.calls["network_flags"] == 0
    assert rec.calls["cache_in"] == b"old" and cache.read_bytes() == b"cache:old"
    assert out.read_bytes() == b"ENGINE" and result.timing_cache_saved
    side = json.loads(sidecar_path(out).read_text())
    assert side["tensorrt_version"] == "10.3.0" and side["gpu_name"] == "Fake H100"
    assert side["compute_capability"] == "9.0" and side["fp16"] is True and side["channels"] == 3
    assert side["profile"]["max"] == [4, 3, 1088, 1920] and side["package_version"]
    assert side["model"]["mode"] == "single"


def test_fp32_build_clears_tf32_and_old_api_gets_explicit_batch(tmp_path, onnx_file, install, rec, monkeypatch):
    install()
    sys.modules["tensorrt"].NetworkDefinitionCreationFlag = IntEnum("F", {"EXPLICIT_BATCH": 0})
    tensorrt_build.build_engine(onnx_file, tmp_path / "m.engine", PROFILE, fp16=False)
    assert rec.calls["flags"] == set() and rec.calls["cleared"] == {"TF32"}
    assert rec.calls["network_flags"] == 1  # 1 << EXPLICIT_BATCH(0)


def test_every_parser_error_in_one_exception(tmp_path, onnx_file, install):
    install(parse_ok=False)
    with pytest.raises(EngineBuildError) as err:
        tensorrt_build.build_engine(onnx_file, tmp_path / "m.engine", PROFILE)
    assert "node 3 (Pad)" in str(err.value) and "node 9 (Resize)" in str(err.value)
    assert not (tmp_path / "m.engine").exists() and not (tmp_path / "m.engine.json").exists()


def test_failed_build_writes_nothing(tmp_path, onnx_file, install):
    install(build_ok=False)
    with pytest.raises(EngineBuildError, match="no engine"):
        tensorrt_build.build_engine(onnx_file, tmp_path / "m.engine", PROFILE)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"]


def test_existing_engine_needs_force(tmp_path, onnx_file, install):
    install()
    out = tmp_path / "m.engine"
    out.write_bytes(b"old")
    with pytest.raises(OutputExistsError):
        tensorrt_build.build_engine(onnx_file, out, PROFILE)
    tensorrt_build.build_engine(onnx_file, out, PROFILE, force=True)
    assert out.read_bytes() == b"ENGINE"


def test_shape_parsing_and_profile_validation():
    assert parse_shape("1x3x720x1280") == (1, 3, 720, 1280)
    for bad in ("1x3x720", "1x3xAx4", "0x3x64x64", "1x3x64x64x1"):
        with pytest.raises(InputError):
            parse_shape(bad)
    with pytest.raises(InputError, match="channels"):
        parse_shape("1x1x64x64", channels=3)
    with pytest.raises(InputError, match="min <= opt <= max"):
        Profile((1, 3, 128, 128), (1, 3, 64, 64), (1, 3, 256, 256)).validate(32)
    with pytest.raises(InputError, match="at least 32"):
        Profile((1, 3, 16, 16), (1, 3, 64, 64), (1, 3, 256, 256)).validate(32)


def test_frame_outside_profile_is_a_clear_error():
    PROFILE.check((1, 3, 720, 1280))
    for shape in [(1, 3, 1200, 1920), (8, 3, 720, 1280), (1, 3, 32, 64)]:
        with pytest.raises(EngineMismatchError, match="outside the engine's profile"):
            PROFILE.check(shape)



def test_engine_from_another_tensorrt_is_refused_before_deserializing(tmp_path, onnx_file, install, rec):
    engine = built_engine(tmp_path, onnx_file, install)
    install(version="10.7.0")
    with pytest.raises(EngineMismatchError, match="TensorRT 10.3.0, this machine has 10.7.0"):
        trt_runtime.load_checked(engine)
    assert rec.calls["deserialized"] == 0


def test_engine_from_another_gpu_is_refused(tmp_path, onnx_file, install, monkeypatch):
    engine = built_engine(tmp_path, onnx_file, install)
    monkeypatch.setattr(trt_runtime, "current_gpu", lambda: ("Fake A100", "8.0"))
    with pytest.raises(EngineMismatchError, match="built for Fake H100 .* this GPU is Fake A100"):
        trt_runtime.load_checked(engine)


def test_matching_engine_passes_the_checks(tmp_path, onnx_file, install):
    engine = built_engine(tmp_path, onnx_file, install)
    sidecar, trt = trt_runtime.load_checked(engine)
    assert sidecar == EngineSidecar.load(engine) and sidecar.profile == PROFILE


def test_damaged_or_missing_sidecar(tmp_path, onnx_file, install):
    engine = built_engine(tmp_path, onnx_file, install)
    sidecar_path(engine).write_text("{not json")
    with pytest.raises(EngineMismatchError, match="not a b2g-deploy engine sidecar"):
        trt_runtime.load_checked(engine)
    sidecar_path(engine).unlink()
    with pytest.raises(EngineMismatchError, match="no sidecar"):
        trt_runtime.load_checked(engine)


def test_engine_parity_takes_a_loaded_runtime(tmp_path):
    """export does not load engines (that is the runtimes layer): engine_parity gets the loaded
    one, runs the parity image sized into its profile, and judges it like any export."""
    from types import SimpleNamespace

    from b2g_deploy.checkpoint import Checkpoint, save_checkpoint
    from b2g_deploy.config import preset
    from b2g_deploy.errors import ParityError
    from b2g_deploy.export.onnx_export import torch_reference
    from b2g_deploy.model import B2GNet
    from b2g_deploy.modelfile.info import ModelInfo

    cfg = preset("tiny")
    net = B2GNet(3, cfg.model)
    save_checkpoint(tmp_path / "m.pt", Checkpoint(net, cfg, {"bit_depth": 8}))
    seen = []

    def infer(x):
        seen.append(x.shape)
        return torch_reference(net, "single", 1, cfg.mask.rate, 0, x)

    profile = Profile((1, 3, 32, 32), (1, 3, 64, 64), (1, 3, 96, 128))
    sidecar = SimpleNamespace(profile=profile, fp16=False)
    engine = SimpleNamespace(info=ModelInfo(3), sidecar=sidecar, infer=infer)
    report = tensorrt_build.engine_parity(engine, tmp_path / "m.pt")
    assert report.passed and seen == [(1, 3, 96, 128)] and report.what == "TensorRT"
    engine.infer = lambda x: infer(x) + 0.01
    with pytest.raises(ParityError, match="TensorRT vs PyTorch"):
        tensorrt_build.engine_parity(engine, tmp_path / "m.pt")

    # The video flow's engine is built for one frame size (min = max), larger than the parity
    # image: the image is mirrored out to that size instead of run below the profile's minimum.
    seen.clear()
    engine.infer = infer
    sidecar.profile = Profile((1, 3, 288, 416), (1, 3, 288, 416), (1, 3, 288, 416))
    assert tensorrt_build.engine_parity(engine, tmp_path / "m.pt").passed and seen == [(1, 3, 288, 416)]
