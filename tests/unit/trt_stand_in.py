"""A stand-in ``tensorrt`` module and the fixtures that install it, for the TensorRT tests
(test_tensorrt_fake.py, test_tensorrt_fake_temporal.py).

No GPU or TensorRT is needed: the fake records what the builder asked for (profile shapes,
flags, timing cache) so each decision of tensorrt_build.py can be checked; the real thing runs
in tests/gpu/ and scripts/gpu_check.sh. Test modules import the fixtures by name.
"""

from __future__ import annotations

import sys
import types
from enum import Enum

import pytest

from b2g_deploy.export import tensorrt_build
from b2g_deploy.export.engine_sidecar import Profile
from b2g_deploy.export.metadata import ExportMetadata, write_props
from b2g_deploy.runtimes import trt_runtime

GPU = ("Fake H100", "9.0")


class _Recorder:
    """Everything the fake saw, for the assertions."""

    def __init__(self):
        self.calls: dict[str, object] = {"flags": set(), "cleared": set(), "deserialized": 0}


def make_fake_trt(rec: _Recorder, parse_ok: bool = True, version: str = "10.3.0", build_ok: bool = True):
    trt = types.ModuleType("tensorrt")
    trt.__version__ = version
    trt.BuilderFlag = Enum("BuilderFlag", "FP16 TF32")
    trt.MemoryPoolType = Enum("MemoryPoolType", "WORKSPACE")
    trt.NetworkDefinitionCreationFlag = Enum("NetworkDefinitionCreationFlag", "STRONGLY_TYPED")  # TRT 10: no EXPLICIT_BATCH
    trt.TensorIOMode = Enum("TensorIOMode", "INPUT OUTPUT")

    class Logger:
        WARNING = 2

        def __init__(self, level):
            self.level = level

    class Tensor:
        def __init__(self, name):
            self.name = name

    class Network:
        def get_input(self, i):
            return Tensor(rec.calls.get("input_name", "input"))

    class Parser:
        def __init__(self, network, logger):
            self.num_errors = 0 if parse_ok else 2

        def parse(self, data):
            import onnx

            rec.calls["parsed_bytes"], rec.calls["onnx_bytes"] = len(data), data
            rec.calls["input_name"] = onnx.load_model_from_string(data).graph.input[0].name
            return parse_ok

        def get_error(self, i):
            return ["In node 3 (Pad): unsupported mode", "In node 9 (Resize): bad scales"][i]

    class TimingCache:
        def __init__(self, data):
            self.data = data

        def serialize(self):
            return b"cache:" + self.data

    class Config:
        def set_memory_pool_limit(self, pool, size):
            rec.calls["workspace"] = size

        def add_optimization_profile(self, prof):
            rec.calls["profile"] = prof.shapes

        def set_flag(self, flag):
            rec.calls["flags"].add(flag.name)

        def clear_flag(self, flag):
            rec.calls["cleared"].add(flag.name)

        def create_timing_cache(self, data):
            rec.calls["cache_in"] = data
            return TimingCache(data)

        def set_timing_cache(self, cache, ignore_mismatch):
            self.cache = cache
            return True

        def get_timing_cache(self):
            return self.cache

    class OptProfile:
        def set_shape(self, name, lo, opt, hi):
            self.shapes = (name, tuple(lo), tuple(opt), tuple(hi))

    class Builder:
        def __init__(self, logger):
            pass

        def create_network(self, flags):
            rec.calls["network_flags"] = flags
            return Network()

        def create_builder_config(self):
            return Config()

        def create_optimization_profile(self):
            return OptProfile()

        def build_serialized_network(self, network, config):
            return b"ENGINE" if build_ok else None

    class Engine:
        """What the runtimes ask of a deserialized engine before running it."""

        num_io_tensors = 2

        def get_tensor_name(self, i):
            return [rec.calls.get("input_name", "input"), "output"][i]

        def get_tensor_mode(self, name):
            return trt.TensorIOMode.OUTPUT if name == "output" else trt.TensorIOMode.INPUT

        def create_execution_context(self):
            return object()

    class Runtime:
        def __init__(self, logger):
            pass

        def deserialize_cuda_engine(self, data):
            rec.calls["deserialized"] += 1
            return Engine() if data == b"ENGINE" else None

    trt.Logger, trt.OnnxParser, trt.Builder, trt.Runtime = Logger, Parser, Builder, Runtime
    return trt


@pytest.fixture
def rec():
    return _Recorder()


def single_onnx(path):
    """A small single-frame ONNX file at ``path`` carrying b2g metadata: all the builder reads
    besides TensorRT itself."""
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Identity", ["input"], ["output"])], "g",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["b", 3, "h", "w"])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["b", 3, "h", "w"])],
    )
    model = helper.make_model(graph)
    write_props(model, ExportMetadata(3, 8, "single", 1, "fp32", 32, 17, "ab" * 32))
    onnx.save(model, str(path))
    return path


@pytest.fixture
def onnx_file(tmp_path):
    return single_onnx(tmp_path / "m.onnx")


@pytest.fixture
def install(monkeypatch, rec):
    def _install(**kw):
        monkeypatch.setitem(sys.modules, "tensorrt", make_fake_trt(rec, **kw))
        monkeypatch.setattr(tensorrt_build, "current_gpu", lambda: GPU)
        monkeypatch.setattr(trt_runtime, "current_gpu", lambda: GPU)

    return _install


PROFILE = Profile((1, 3, 64, 64), (2, 3, 720, 1280), (4, 3, 1088, 1920))



def built_engine(tmp_path, onnx_file, install):
    install()
    out = tmp_path / "m.engine"
    tensorrt_build.build_engine(onnx_file, out, PROFILE)
    return out

