"""Serving without a server: the Triton client's URL and configuration checks, a server that
does not answer, the server's argument checks (a port in use), and how the serve command finds
(or refuses) its environment. The real server is tests/integration/test_serve_triton.py."""

from __future__ import annotations

import inspect
import socket
import sys
import time

import pytest
from typer.testing import CliRunner

from b2g_deploy.cli import app
from b2g_deploy.cli import serve_cmd
from b2g_deploy.errors import CheckpointError, InputError
from b2g_deploy.export import triton_repo
from b2g_deploy.runtimes.triton_client import TritonRuntime, parse_url
from b2g_deploy.serving import launch
from b2g_deploy.serving.server import ServeOptions, check_options, port_in_use

runner = CliRunner()

PROPS = {"b2g.format": "b2g-deploy/onnx", "b2g.channels": "3", "b2g.bit_depth": "8", "b2g.mode": "single",
         "b2g.passes": "1", "b2g.precision": "fp32", "b2g.multiple": "8", "b2g.opset": "17",
         "b2g.checkpoint_sha256": "ab" * 32, "b2g.package_version": "0.1.0"}


def config(props=PROPS, dims=(3, -1, -1), dtype="TYPE_FP32", max_batch=8, n_in=1):
    tensor = {"data_type": dtype, "dims": [str(d) for d in dims]}  # gRPC's JSON writes int64 as strings
    return {"max_batch_size": max_batch, "input": [{"name": "input", **tensor}] * n_in,
            "output": [{"name": "output", **tensor}],
            "parameters": {k: {"string_value": v} for k, v in props.items()}}


def bare_client(url="grpc://h:1", name="m") -> TritonRuntime:
    rt = TritonRuntime.__new__(TritonRuntime)
    rt.url, rt.model_name = url, name
    return rt


@pytest.mark.parametrize("url, expected", [
    ("localhost:8000", ("http", "localhost:8000")),
    ("http://10.0.0.2:8000/", ("http", "10.0.0.2:8000")),
    ("grpc://cams.local:8001", ("grpc", "cams.local:8001")),
    ("GRPC://h:1", ("grpc", "h:1")),
])
def test_server_urls(url, expected):
    assert parse_url(url) == expected


@pytest.mark.parametrize("url", ["localhost", "ftp://h:1", "https://h:443", "http://h:port", "http://h:1/v2"])
def test_bad_server_urls_are_one_line(url):
    with pytest.raises(InputError) as err:
        parse_url(url)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("scheme", ["grpc", "http"])
def test_a_server_that_does_not_answer_is_refused_after_a_short_timeout(scheme):
    with socket.socket() as s:  # accepts connections (the backlog) and never answers
        s.bind(("127.0.0.1", 0))
        s.listen(0)
        port = s.getsockname()[1]
        t0 = time.perf_counter()
        with pytest.raises(InputError, match="no Triton server answers at .* within 1 s"):
            TritonRuntime(f"{scheme}://127.0.0.1:{port}", "m", connect_timeout=1.0)
        assert time.perf_counter() - t0 < 10


def test_a_closed_port_is_refused_at_once():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, not listening: connections are refused
        with pytest.raises(InputError, match="no Triton server answers"):
            TritonRuntime(f"grpc://127.0.0.1:{port}", "m", connect_timeout=1.0)


def test_a_b2g_model_configuration_is_read():
    meta, inp, out, max_batch = bare_client()._check_config(config())
    assert (meta.channels, meta.multiple, inp, out, max_batch) == (3, 8, "input", "output", 8)


@pytest.mark.parametrize("cfg, message", [
    (config(props={}), "no b2g metadata"),
    (config(props={**PROPS, "b2g.format": "b2g-deploy/onnx-temporal"}), "temporal"),
    (config(dims=(1, -1, -1)), r"input 'input' TYPE_FP32 \[1, -1, -1\]"),
    (config(dtype="TYPE_FP16"), "TYPE_FP16"),
    (config(max_batch=0), "max_batch_size 0"),
    (config(n_in=2), "2 inputs"),
])
def test_a_model_that_is_not_a_b2g_denoiser_is_refused(cfg, message):
    with pytest.raises(CheckpointError, match=message):
        bare_client()._check_config(cfg)


def test_other_metadata_is_refused_naming_the_difference():
    rt = bare_client()
    rt.props = dict(PROPS)
    rt._compare({**PROPS, "b2g.package_version": "9.9"}, "m.onnx")  # the writer's version: not compared
    with pytest.raises(CheckpointError, match=r"not m.onnx: b2g.checkpoint_sha256 is 'ababababab.*' on the "
                                              r"server and 'cdcdcdcdcd.*' here"):
        rt._compare({**PROPS, "b2g.checkpoint_sha256": "cd" * 32}, "m.onnx")
    with pytest.raises(CheckpointError, match="b2g.preset is missing on the server and 'tiny' here"):
        rt._compare({**PROPS, "b2g.preset": "tiny"}, "m.onnx")


@pytest.fixture
def onnx_file(tmp_path):
    path = tmp_path / "m.onnx"
    path.write_bytes(b"not checked before the port")
    return path


def test_serve_options_are_checked(tmp_path, onnx_file):
    for opts, message in [
        (ServeOptions(str(tmp_path / "none.onnx")), "does not exist"),
        (ServeOptions(str(tmp_path)), "does not exist or is not a file"),
        (ServeOptions(__file__), "exported .onnx"),
        (ServeOptions(str(onnx_file), name="a/b"), "bad Triton model name"),
        (ServeOptions(str(onnx_file), max_batch=0), "--max-batch"),
        (ServeOptions(str(onnx_file), port=65535), "--port"),
    ]:
        with pytest.raises(InputError, match=message):
            check_options(opts)


def test_a_port_in_use_is_refused_naming_it(onnx_file):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        assert port_in_use("127.0.0.1", port)
        with pytest.raises(InputError, match=f"port {port} on 127.0.0.1 is in use"):
            check_options(ServeOptions(str(onnx_file), port=port))
        if port > 1:  # the gRPC port (PORT+1) in use
            with pytest.raises(InputError, match=f"port {port} .* grpc is {port}"):
                check_options(ServeOptions(str(onnx_file), port=port - 1))


def test_serve_command_port_in_use_is_one_error_line(onnx_file):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        result = runner.invoke(app, ["serve", str(onnx_file), "--port", str(port)])
    assert result.exit_code == 2
    assert result.output.startswith("error: port ") and result.output.count("\n") == 1


def test_serve_python_is_refused_when_it_cannot_serve(onnx_file, tmp_path, monkeypatch):
    with pytest.raises(InputError, match="does not exist"):
        launch.find_serve_python(str(tmp_path / "python"))
    monkeypatch.setenv(launch.ENV_VAR, str(tmp_path / "python"))
    with pytest.raises(InputError, match="does not exist"):
        launch.find_serve_python()
    monkeypatch.delenv(launch.ENV_VAR)
    # This interpreter: NumPy 2 and no PyTriton (the project's .venv), or a serve environment.
    import numpy

    env = launch.server_env(sys.executable)
    if int(numpy.__version__.split(".")[0]) >= 2:
        with pytest.raises(InputError, match=r"lacks pytriton|NumPy 2"):
            launch.check_serve_python(sys.executable, env)


def test_the_server_runs_this_checkout():
    env = launch.server_env(sys.executable)
    if (launch.PACKAGE_ROOT / "pyproject.toml").is_file():
        assert env["PYTHONPATH"].split(":")[0] == str(launch.PACKAGE_ROOT)


def test_cli_defaults_are_the_repository_exports():
    params = inspect.signature(serve_cmd.serve_command).parameters
    assert params["max_batch"].default == triton_repo.DEFAULT_MAX_BATCH
    assert params["name"].default == triton_repo.DEFAULT_NAME
    assert params["queue_delay_us"].default == triton_repo.DEFAULT_QUEUE_DELAY_US
    from b2g_deploy import api
    from b2g_deploy.cli.denoise_cmd import denoise_command

    assert inspect.signature(denoise_command).parameters["server_model"].default == triton_repo.DEFAULT_NAME
    for fn in (api.denoise_images, api.denoise_video):
        assert inspect.signature(fn).parameters["server_model"].default == triton_repo.DEFAULT_NAME


def test_denoise_with_a_server_that_is_not_there_is_one_error_line(tmp_path, smooth_image):
    import cv2

    img = tmp_path / "in.png"
    cv2.imwrite(str(img), (smooth_image(32, 32, 3).transpose(1, 2, 0) * 255).astype("uint8"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        result = runner.invoke(app, ["denoise", str(img), "-o", str(tmp_path / "out.png"),
                                     "--server", f"127.0.0.1:{port}"])
    assert result.exit_code == 2
    assert result.output.startswith("error: no Triton server answers at") and result.output.count("\n") == 1
    result = runner.invoke(app, ["denoise", str(img), "-o", str(tmp_path / "out.png"), "--server", "h:1",
                                 "--device", "cpu"])
    assert result.exit_code == 2 and "--server denoises on the server" in result.output


def test_the_load_benchmark_measures_and_renders(monkeypatch):
    """bench_serve's cell loop and table, with a stand-in client (the server run is the benchmark's)."""
    import importlib

    import numpy as np

    module = importlib.import_module("benchmarks.bench_serve")

    class Echo:
        def infer(self, frames):
            time.sleep(0.002)
            return frames

    frames = np.zeros((2, 3, 8, 8), np.float32)
    row = module.run_cell(Echo, frames, clients=3, seconds=0.2)
    assert row["frames"] >= 3 and row["fps"] > 0 and 0 < row["p50_ms"] <= row["p99_ms"]
    assert module.batch_delta({1: 2}, {1: 5, 4: 1}) == {1: 3, 4: 1}
    facts = {"command": "python benchmarks/bench_serve.py", "cpu": "cpu", "cores": 2, "python": "3",
             "date": "2026-11-28T00:00", "device": "cpu", "model": "m", "threads": 1, "max_batch": 8,
             "queue_delay_us": 100, "seconds_per_cell": 0.2, "server_startup_s": 1.0}
    table = module.render({"facts": facts, "rows": [{"size": "360p", "clients": 3, "where": "triton",
                                                      **row, "batches": {"2": 4, "1": 1}}]})
    assert "| 360p | 3 | triton |" in table and "1x1 2x4" in table
