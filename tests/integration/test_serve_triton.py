"""`b2g-deploy serve` end to end on localhost, CPU: a real Triton server (PyTriton's bundled
tritonserver, in .venv-serve) started by the CLI, health checks, frames identical to the local
runtime, `denoise --server` keeping frame order and count, requests of several concurrent
clients batched together, wrong requests refused while the server keeps serving, a port in use,
a model with other metadata, and a clean SIGTERM shutdown.

Skipped only where PyTriton cannot run (it ships wheels for Linux x86_64/aarch64 with glibc >=
2.35); where it can, a missing .venv-serve is a failure: run scripts/setup_serve.sh."""

from __future__ import annotations

import json
import os
import platform
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request

import numpy as np
import pytest
import torch

from b2g_deploy.checkpoint import Checkpoint, save_checkpoint
from b2g_deploy.config import preset
from b2g_deploy.errors import InputError
from b2g_deploy.export.onnx_export import export_onnx
from b2g_deploy.export.parity import parity_image
from b2g_deploy.fit import fit
from b2g_deploy.metrics import psnr
from b2g_deploy.runtimes.ort_runtime import OrtRuntime
from b2g_deploy.runtimes.triton_client import TritonRuntime
from b2g_deploy.serving import launch

pytestmark = pytest.mark.slow
NAME = "b2g_denoiser"
CLI = [sys.executable, "-m", "b2g_deploy.cli"]


def pytriton_platform() -> str | None:
    """Why PyTriton cannot run here, or None where it can."""
    if sys.platform != "linux" or platform.machine() not in ("x86_64", "aarch64"):
        return f"PyTriton ships tritonserver for Linux x86_64/aarch64 only (this is {sys.platform} {platform.machine()})"
    libc, version = platform.libc_ver()
    if libc == "glibc" and tuple(int(x) for x in version.split(".")[:2]) < (2, 35):
        return f"PyTriton's tritonserver needs glibc >= 2.35 (this has {version})"
    return None


def free_ports(n: int = 3) -> int:
    """A base port with ``n`` consecutive free ports after it (HTTP, gRPC, metrics)."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            base = s.getsockname()[1]
        if base + n < 65536 and all(not launch_port_in_use(base + i) for i in range(n)):
            return base
    raise RuntimeError("no free ports")


def launch_port_in_use(port: int) -> bool:
    from b2g_deploy.serving.server import port_in_use

    return port_in_use("127.0.0.1", port)


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("serve")
    cfg = preset("tiny").with_overrides(iters=10)
    net = fit(torch.from_numpy(parity_image(3, (48, 64))[0]), cfg, seed=0).net
    save_checkpoint(root / "m.pt", Checkpoint(net, cfg, {"bit_depth": 8, "preset": "tiny"}))
    export_onnx(root / "m.pt", root / "m.onnx")
    return root / "m.onnx"


@pytest.fixture(scope="module")
def server(model):
    try:
        launch.find_serve_python()
    except InputError as exc:
        why = pytriton_platform()
        if why:
            pytest.skip(why)
        pytest.fail(f"no serve environment here, where PyTriton can run: {exc}")
    port = free_ports()
    # A 20 ms queue delay: requests arriving together are batched, whatever the machine's speed.
    proc = subprocess.Popen(
        [*CLI, "serve", str(model), "--port", str(port), "--max-batch", "4", "--threads", "1",
         "--queue-delay-us", "20000"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    ready: dict = {}

    def read_ready() -> None:
        for line in proc.stdout:
            if line.startswith("b2g-serve-ready "):
                ready.update(json.loads(line.split(" ", 1)[1]))
                return

    reader = threading.Thread(target=read_ready, daemon=True)
    reader.start()
    reader.join(timeout=120)
    if not ready:
        proc.kill()
        pytest.fail(f"the server did not start: {proc.stderr.read()[-2000:] if proc.poll() is not None else 'timeout'}")
    yield {"proc": proc, "port": port, **ready}
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def test_health_and_model_configuration(server):
    http = f"http://127.0.0.1:{server['port']}"
    for path in ("/v2/health/live", "/v2/health/ready", f"/v2/models/{NAME}/ready"):
        with urllib.request.urlopen(http + path, timeout=5) as r:
            assert r.status == 200
    with urllib.request.urlopen(f"{http}/v2/models/{NAME}/config", timeout=5) as r:
        cfg = json.load(r)
    assert cfg["max_batch_size"] == 4 and cfg["dynamic_batching"]["preferred_batch_size"] == [2, 4]
    params = {k: v["string_value"] for k, v in cfg["parameters"].items()}
    assert params["b2g.format"] == "b2g-deploy/onnx" and params["b2g.channels"] == "3"


def test_served_frames_match_the_local_runtime(server, model):
    x = np.random.default_rng(0).random((6, 3, 37, 53), dtype=np.float32)  # odd size, > max batch
    with OrtRuntime(model, provider="cpu", threads=1) as local:
        want = local.infer(x)
    for url in (f"grpc://127.0.0.1:{server['grpc']}", f"http://127.0.0.1:{server['http']}"):
        with TritonRuntime(url, NAME) as rt:
            got = rt.infer(x)
        assert got.shape == want.shape
        assert min(psnr(g, w) for g, w in zip(got, want)) >= 50


def test_denoise_server_keeps_frame_order_and_count(server, model, tmp_path):
    import cv2

    from b2g_deploy.io.video import read_frames

    rng = np.random.default_rng(1)
    clean = (parity_image(3, (64, 80))[0].transpose(1, 2, 0) * 255).astype(np.float32)
    writer = cv2.VideoWriter(str(tmp_path / "in.mkv"), cv2.VideoWriter_fourcc(*"FFV1"), 10, (80, 64))
    for i in range(11):  # each frame different: an order swap would show
        frame = np.clip(np.roll(clean, 3 * i, axis=1) + rng.normal(0, 20, clean.shape), 0, 255)
        writer.write(frame.astype(np.uint8))
    writer.release()
    args = ["denoise", str(tmp_path / "in.mkv"), "--batch", "3", "--no-fuse"]  # the network path: parity
    done = subprocess.run([*CLI, *args, "-o", str(tmp_path / "served.mkv"), "--server",
                           f"grpc://127.0.0.1:{server['grpc']}", "-m", str(model)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-1500:]
    done = subprocess.run([*CLI, *args, "-o", str(tmp_path / "local.mkv"), "-m", str(model), "--device", "cpu"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-1500:]
    served, local = read_frames(str(tmp_path / "served.mkv")), read_frames(str(tmp_path / "local.mkv"))
    assert len(served) == len(local) == 11
    assert min(psnr(a, b) for a, b in zip(served, local)) >= 50


def test_concurrent_clients_are_batched(server):
    url = f"grpc://127.0.0.1:{server['grpc']}"
    clients = [TritonRuntime(url, NAME) for _ in range(8)]
    before = clients[0].batch_stats()
    frame = np.random.default_rng(2).random((1, 3, 32, 48), dtype=np.float32)
    start = threading.Barrier(len(clients))
    outs: list = [None] * len(clients)

    def send(i: int) -> None:
        start.wait()
        outs[i] = [clients[i].infer(frame) for _ in range(3)]

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(clients))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert all(o is not None and all(np.array_equal(y, o[0]) for y in o) for o in outs)
    # The server's batch statistics can trail its responses: on a busy machine (CI beside a
    # pretraining run) the last batch showed up a moment after the clients had their answers.
    deadline = time.monotonic() + 10
    while True:
        after = clients[0].batch_stats()
        formed = {b: n - before.get(b, 0) for b, n in after.items() if n - before.get(b, 0)}
        if sum(b * n for b, n in formed.items()) >= 24 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    for c in clients:
        c.close()
    assert sum(b * n for b, n in formed.items()) == 24  # every frame, once
    assert max(formed) > 1, formed  # and some of them together


def test_wrong_requests_get_a_clear_error_and_the_server_keeps_serving(server):
    import tritonclient.grpc as grpc
    from tritonclient.utils import InferenceServerException

    client = grpc.InferenceServerClient(f"127.0.0.1:{server['grpc']}")
    x = np.random.default_rng(3).random((1, 3, 16, 16))
    for data, dtype, needle in [(x, "FP64", "FP32"), (x[:, :1].astype(np.float32), "FP32", "[-1,3,-1,-1]"),
                                (x[0].astype(np.float32), "FP32", "unexpected shape")]:
        inp = grpc.InferInput("input", list(data.shape), dtype)
        inp.set_data_from_numpy(np.ascontiguousarray(data))
        with pytest.raises(InferenceServerException) as err:
            client.infer(NAME, [inp])
        assert needle in str(err.value)
    good = grpc.InferInput("input", [1, 3, 16, 16], "FP32")
    good.set_data_from_numpy(x.astype(np.float32))
    assert client.infer(NAME, [good]).as_numpy("output").shape == (1, 3, 16, 16)
    assert client.is_server_ready()
    client.close()


def test_other_metadata_and_a_port_in_use_are_refused(server, model, tmp_path):
    import onnx

    other = onnx.load(str(model))
    for p in other.metadata_props:
        if p.key == "b2g.preset":
            p.value = "fast"
    onnx.save(other, str(tmp_path / "other.onnx"))
    img = tmp_path / "in.png"
    import cv2

    cv2.imwrite(str(img), (parity_image(3, (32, 32))[0].transpose(1, 2, 0) * 255).astype(np.uint8))
    done = subprocess.run([*CLI, "denoise", str(img), "-o", str(tmp_path / "out.png"), "--server",
                           f"127.0.0.1:{server['http']}", "-m", str(tmp_path / "other.onnx")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert "b2g.preset is 'tiny' on the server and 'fast' here" in done.stderr
    done = subprocess.run([*CLI, "serve", str(model), "--port", str(server["port"])],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and done.stderr.startswith(f"error: port {server['port']} on 127.0.0.1 is in use")


def test_sigterm_stops_the_server_cleanly(server):
    proc = server["proc"]
    t0 = time.perf_counter()
    proc.send_signal(signal.SIGTERM)
    rc = proc.wait(timeout=30)
    stderr = proc.stderr.read()
    assert rc == 0, stderr[-1500:]
    assert "stopped; batches run" in stderr
    assert time.perf_counter() - t0 < 30
    with pytest.raises(OSError):  # nothing listens any more
        socket.create_connection(("127.0.0.1", server["port"]), timeout=1).close()
