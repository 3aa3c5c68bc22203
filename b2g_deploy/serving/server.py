"""The Triton server process: an exported model served by PyTriton's tritonserver.

Runs in the serve environment (NumPy < 2, onnxruntime, nvidia-pytriton; see ``serving``), as
``python -m b2g_deploy.serving.server MODEL --port P ...``; ``b2g-deploy serve`` starts it.
Only the standard library, NumPy, ONNX Runtime, PyTriton and the package's runtime layer are
imported here: the serve environment holds nothing else.

The model is bound with the ONNX file's own input and output names, FP32 with dims
``[C, -1, -1]`` and ``max_batch_size`` = ``--max-batch``, as ``b2g-deploy export --triton`` writes
them, and our ``b2g.*`` metadata is put into the model configuration's ``parameters``, so a client
cannot tell this server from a production one loaded from that repository. Triton's dynamic
batcher joins requests of one frame size into batches; Triton itself refuses a request of the
wrong data type or shape, with a message naming the input, before it reaches the model.

Once the model is ready one line ``b2g-serve-ready {json}`` goes to stdout. SIGTERM or SIGINT
stops Triton (in-flight requests are given ``EXIT_TIMEOUT_S`` to finish) and exits 0. Errors
before serving are one line ``error: ...`` on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import sys
import sysconfig
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from ..errors import B2GError, InputError
from ..export.triton_repo import DEFAULT_MAX_BATCH, DEFAULT_NAME, DEFAULT_QUEUE_DELAY_US, NAME_PATTERN, \
    preferred_batch_sizes

READY = "b2g-serve-ready"
EXIT_TIMEOUT_S = 5
DEFAULT_PORT = 8000
DEFAULT_HOST = "127.0.0.1"


@dataclass(frozen=True)
class ServeOptions:
    model: str
    port: int = DEFAULT_PORT
    host: str = DEFAULT_HOST
    max_batch: int = DEFAULT_MAX_BATCH
    name: str = DEFAULT_NAME
    queue_delay_us: int = DEFAULT_QUEUE_DELAY_US
    threads: int = 0  # ONNX Runtime intra-op threads, 0 = its default
    provider: str = "auto"

    def ports(self) -> dict[str, int]:
        return {"http": self.port, "grpc": self.port + 1, "metrics": self.port + 2}


def check_options(opts: ServeOptions) -> None:
    """Refuse bad arguments before any work: a missing or non-ONNX model, a bad name, bad numbers,
    and a port (of the three Triton binds) that is in use."""
    model = Path(opts.model)
    if not model.is_file():
        raise InputError(f"{model} does not exist or is not a file")
    if model.suffix.lower() != ".onnx":
        raise InputError(f"{model}: serve takes an exported .onnx model "
                         "(b2g-deploy export CK --onnx MODEL.onnx)")
    if not NAME_PATTERN.fullmatch(opts.name) or opts.name.startswith("."):
        raise InputError(f"bad Triton model name '{opts.name}': use letters, digits, '_', '.' and '-', "
                         "not starting with '.'")
    if opts.max_batch < 1:
        raise InputError(f"--max-batch must be an integer >= 1, got {opts.max_batch}")
    if opts.queue_delay_us < 0:
        raise InputError(f"--queue-delay-us must be >= 0, got {opts.queue_delay_us}")
    if opts.threads < 0:
        raise InputError(f"--threads must be >= 0, got {opts.threads}")
    if not 1 <= opts.port <= 65533:
        raise InputError(f"--port must be between 1 and 65533 (Triton also binds PORT+1 and PORT+2), "
                         f"got {opts.port}")
    for what, port in opts.ports().items():
        if port_in_use(opts.host, port):
            raise InputError(f"port {port} on {opts.host} is in use (Triton needs PORT for HTTP, PORT+1 "
                             f"for gRPC and PORT+2 for metrics; {what} is {port}): pick another --port")


def port_in_use(host: str, port: int) -> bool:
    """Can nobody bind ``host:port`` now? (A bind test, as Triton's own bind would see it.)"""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT is no obstacle: Triton sets it too
        try:
            s.bind((host, port))
        except OSError:
            return True
    return False


def libpython_dir() -> str:
    """The folder with this interpreter's shared libpython, which the Python-backend stub loads.

    Without it on LD_LIBRARY_PATH the stub can pick up another libpython of the same version
    (e.g. the system's) and the model never loads."""
    libdir = sysconfig.get_config_var("LIBDIR") or ""
    name = sysconfig.get_config_var("LDLIBRARY") or ""
    if not sysconfig.get_config_var("Py_ENABLE_SHARED") or not (Path(libdir) / name).exists():
        raise InputError(f"the Python at {sys.executable} has no shared libpython, which Triton's Python "
                         "backend needs: make the serve environment with a Python built with "
                         "--enable-shared (most distribution and pyenv builds are)")
    return libdir


def check_numpy() -> None:
    import numpy as np

    if int(np.__version__.split(".")[0]) >= 2:
        raise InputError(f"PyTriton's Triton Python backend needs NumPy < 2; {sys.executable} has NumPy "
                         f"{np.__version__} (its responses come back empty): use the serve environment "
                         "made by scripts/setup_serve.sh")


def _import_pytriton():
    try:
        from pytriton.decorators import batch
        from pytriton.model_config import DynamicBatcher, ModelConfig, Tensor
        from pytriton.triton import Triton, TritonConfig, TritonSecurityConfig
    except ImportError as exc:
        raise InputError(f"nvidia-pytriton is not importable in {sys.executable} ({exc}): "
                         "run scripts/setup_serve.sh, or pip install 'b2g-deploy[serve]' in an "
                         "environment with NumPy < 2") from None
    return batch, DynamicBatcher, ModelConfig, Tensor, Triton, TritonConfig, TritonSecurityConfig


def _add_parameters(triton, name: str, params: dict[str, str]) -> None:
    """Put ``params`` into model ``name``'s Triton configuration before it is loaded.

    PyTriton's ModelConfig has no custom parameters; its generated configuration carries its
    own backend parameters (the workspace path), and ours go beside them. This reaches into
    PyTriton (pinned to 0.7.x in setup_serve.sh; tested end to end), so a change there fails
    here with a clear message rather than serving a model whose metadata clients cannot read."""
    try:
        models = [m for m in triton._model_manager.models if m.model_name == name]
        config = models[0]._get_triton_model_config()
        config.backend_parameters.update(params)
    except (AttributeError, IndexError, TypeError) as exc:
        raise InputError(f"this nvidia-pytriton version cannot carry model parameters ({exc!r}); "
                         "install nvidia-pytriton 0.7.x (scripts/setup_serve.sh)") from None


@dataclass
class BatchCounter:
    """The batch sizes the model was called with (what Triton's batcher formed), thread-safe."""

    counts: dict[int, int]

    def __init__(self) -> None:
        self.counts = {}
        self._lock = threading.Lock()

    def add(self, size: int) -> None:
        with self._lock:
            self.counts[size] = self.counts.get(size, 0) + 1


def serve(opts: ServeOptions, stop: threading.Event | None = None, on_ready=None) -> BatchCounter:
    """Serve ``opts.model`` until ``stop`` is set (SIGTERM/SIGINT set it when run as a program)
    or Triton dies; returns the batch sizes the model ran."""
    check_options(opts)
    check_numpy()
    batch, DynamicBatcher, ModelConfig, Tensor, Triton, TritonConfig, TritonSecurityConfig = _import_pytriton()
    from ..runtimes.ort_runtime import OrtRuntime

    import numpy as np

    runtime = OrtRuntime(opts.model, provider=opts.provider, threads=opts.threads)
    props = {k: v for k, v in runtime.session.get_modelmeta().custom_metadata_map.items()}
    in_name, out_name = runtime.session.get_inputs()[0].name, runtime.session.get_outputs()[0].name
    channels = runtime.info.channels
    counter = BatchCounter()

    @batch
    def infer(**inputs):
        frames = inputs[in_name]
        counter.add(int(frames.shape[0]))
        return {out_name: runtime.infer(frames)}

    os.environ["LD_LIBRARY_PATH"] = ":".join(
        p for p in (libpython_dir(), os.environ.get("LD_LIBRARY_PATH", "")) if p)
    stop = stop or threading.Event()
    logdir = Path(tempfile.mkdtemp(prefix="b2g-serve-"))
    log = logdir / "tritonserver.log"
    ports = opts.ports()
    config = TritonConfig(
        http_address=opts.host, http_port=ports["http"], grpc_address=opts.host, grpc_port=ports["grpc"],
        metrics_address=opts.host, metrics_port=ports["metrics"], exit_timeout_secs=EXIT_TIMEOUT_S,
        log_verbose=0, log_file=log,
    )
    clean = False
    # Statistics (the batch sizes Triton formed) stay open to clients; loading and unloading
    # models, shared memory, tracing and logging settings keep PyTriton's access token.
    security = TritonSecurityConfig(restricted_endpoints=["shared-memory", "model-repository", "trace", "logging"])
    triton = Triton(config=config, workspace=logdir / "workspace", security_config=security)
    try:
        # Bound before the server starts, so the configuration is complete when run() loads it.
        triton.bind(
            model_name=opts.name, infer_func=infer,
            inputs=[Tensor(name=in_name, dtype=np.float32, shape=(channels, -1, -1))],
            outputs=[Tensor(name=out_name, dtype=np.float32, shape=(channels, -1, -1))],
            config=ModelConfig(max_batch_size=opts.max_batch, batcher=DynamicBatcher(
                max_queue_delay_microseconds=opts.queue_delay_us,
                preferred_batch_size=preferred_batch_sizes(opts.max_batch))),
            strict=True,
        )
        _add_parameters(triton, opts.name, props)
        try:
            triton.run()
        except Exception as exc:  # PyTriton's timeouts and server errors
            raise InputError(f"Triton did not start: {_first_error(log) or exc}") from None
        ready = {"name": opts.name, "model": str(opts.model), "host": opts.host, **ports,
                 "max_batch": opts.max_batch, "input": in_name, "output": out_name, "channels": channels}
        if on_ready is not None:
            on_ready(ready)
        while not stop.wait(0.5):
            if not triton.is_alive():
                raise InputError(f"Triton stopped: {_first_error(log) or 'see its log'}")
        triton.stop()
        clean = True
    finally:
        if not clean:
            _quiet_stop(triton)
        runtime.close()
        if clean:
            shutil.rmtree(logdir, ignore_errors=True)
        elif log.exists():
            print(f"note: Triton's log is kept at {log}", file=sys.stderr)
    return counter


def _quiet_stop(triton) -> None:
    """Stop a Triton that may never have started (PyTriton's stop() assumes it did)."""
    try:
        triton.stop()
    except Exception:  # noqa: BLE001 - nothing to stop, or already stopping
        pass


def _first_error(log: Path) -> str:
    """The first error line of Triton's log (``E1128 06:49:54 ... file.cc:535] "message"``)."""
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    for line in lines:
        if line.startswith("E") and "] " in line:
            return line.split("] ", 1)[1].strip().strip('"')[:300]
    return ""


def parse_args(argv: list[str]) -> ServeOptions:
    p = argparse.ArgumentParser(prog="python -m b2g_deploy.serving.server")
    p.add_argument("model")
    p.add_argument("--port", type=int, default=DEFAULT_PORT)
    p.add_argument("--host", default=DEFAULT_HOST)
    p.add_argument("--max-batch", type=int, default=DEFAULT_MAX_BATCH)
    p.add_argument("--name", default=DEFAULT_NAME)
    p.add_argument("--queue-delay-us", type=int, default=DEFAULT_QUEUE_DELAY_US)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--provider", default="auto")
    a = p.parse_args(argv)
    return ServeOptions(a.model, a.port, a.host, a.max_batch, a.name, a.queue_delay_us, a.threads, a.provider)


def main(argv: list[str] | None = None) -> int:
    opts = parse_args(sys.argv[1:] if argv is None else argv)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())

    def ready(info: dict) -> None:
        print(f"{READY} {json.dumps(info)}", flush=True)
        host = info["host"]
        print(f"serving model '{info['name']}' ({Path(info['model']).name}) with Triton: "
              f"http://{host}:{info['http']}, grpc://{host}:{info['grpc']}, metrics "
              f"http://{host}:{info['metrics']}/metrics; max batch {info['max_batch']}; "
              "SIGTERM or Ctrl-C stops it", file=sys.stderr, flush=True)

    try:
        counter = serve(opts, stop, ready)
    except B2GError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    sizes = ", ".join(f"{b}: {n}" for b, n in sorted(counter.counts.items())) or "none"
    print(f"stopped; batches run (size: count): {sizes}", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
