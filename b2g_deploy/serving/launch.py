"""``b2g-deploy serve``: check the arguments here, then run the server in the serve environment.

The serve environment is the first of: ``python`` given (``--python`` or ``B2G_SERVE_PYTHON``);
this interpreter, when it has nvidia-pytriton and NumPy < 2; the ``.venv-serve`` that
``scripts/setup_serve.sh`` makes beside this environment or in the source checkout. The server
replaces this process (``exec``), so signals reach it directly: SIGTERM or Ctrl-C stop it.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from ..errors import InputError
from .server import ServeOptions, check_options

ENV_VAR = "B2G_SERVE_PYTHON"
SERVE_VENV = ".venv-serve"
PACKAGE_ROOT = Path(__file__).resolve().parents[2]  # the folder that holds b2g_deploy/

# Run by the candidate interpreter: can it serve? (fast: finds modules, imports none of them)
PROBE = """
import importlib.metadata as md, importlib.util as u, json
mods = {m: u.find_spec(m) is not None for m in ("pytriton", "onnxruntime", "numpy", "b2g_deploy")}
try:
    numpy = md.version("numpy")
except md.PackageNotFoundError:
    numpy = None
spec = u.find_spec("b2g_deploy")
print(json.dumps({"mods": mods, "numpy": numpy, "pkg": spec and spec.origin}))
"""


def _here_can_serve() -> bool:
    if importlib.util.find_spec("pytriton") is None:
        return False
    import numpy

    return int(numpy.__version__.split(".")[0]) < 2


def candidates() -> list[Path]:
    """Where a serve environment's python may be, most specific first."""
    found = []
    for root in (Path(sys.prefix).parent, PACKAGE_ROOT):
        found.append(root / SERVE_VENV / "bin" / "python")
    return list(dict.fromkeys(found))


def find_serve_python(explicit: str | None = None) -> str:
    """The interpreter to run the server with, or an InputError saying how to make one."""
    explicit = explicit or os.environ.get(ENV_VAR) or None
    if explicit:
        if not Path(explicit).is_file():
            raise InputError(f"the serve Python {explicit} does not exist")
        return explicit
    if _here_can_serve():
        return sys.executable
    for path in candidates():
        if path.is_file():
            return str(path)
    import numpy

    raise InputError(
        "b2g-deploy serve needs nvidia-pytriton, whose Triton Python backend needs NumPy < 2 "
        f"(this environment has NumPy {numpy.__version__}): run scripts/setup_serve.sh (it makes "
        f"{SERVE_VENV}), or pass --python PATH of an environment with pip install 'b2g-deploy[serve]'")


def server_env(python: str) -> dict[str, str]:
    """The environment for the server: a source checkout's package on PYTHONPATH, so the server
    runs this very code (an installed package is already in the serve environment)."""
    env = dict(os.environ)
    if PACKAGE_ROOT.name not in ("site-packages", "dist-packages") and (PACKAGE_ROOT / "pyproject.toml").is_file():
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(PACKAGE_ROOT), env.get("PYTHONPATH", "")) if p)
    return env


def check_serve_python(python: str, env: dict[str, str]) -> None:
    """Refuse an interpreter that lacks what the server imports, naming what is missing."""
    import json

    try:
        done = subprocess.run([python, "-c", PROBE], env=env, capture_output=True, text=True, timeout=60)
        probe = json.loads(done.stdout.strip().splitlines()[-1])
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        raise InputError(f"the serve Python {python} does not run") from None
    missing = [m for m, ok in probe["mods"].items() if not ok]
    if missing:
        raise InputError(f"the serve Python {python} lacks {', '.join(missing)}: run scripts/setup_serve.sh "
                         "(or pip install 'b2g-deploy[serve]' there)")
    if probe["numpy"] and int(probe["numpy"].split(".")[0]) >= 2:
        raise InputError(f"the serve Python {python} has NumPy {probe['numpy']}; PyTriton's Triton Python "
                         "backend needs NumPy < 2 (its responses come back empty)")


def server_command(opts: ServeOptions, python: str) -> list[str]:
    return [python, "-m", "b2g_deploy.serving.server", str(Path(opts.model).resolve()), "--port", str(opts.port),
            "--host", opts.host, "--max-batch", str(opts.max_batch), "--name", opts.name,
            "--queue-delay-us", str(opts.queue_delay_us), "--threads", str(opts.threads),
            "--provider", opts.provider]


def prepare(opts: ServeOptions, python: str | None = None) -> tuple[list[str], dict[str, str]]:
    """Check everything that can be checked here; the server command and its environment."""
    check_options(opts)
    python = find_serve_python(python)
    env = server_env(python)
    check_serve_python(python, env)
    return server_command(opts, python), env


def exec_server(opts: ServeOptions, python: str | None = None) -> None:
    """Replace this process with the server (never returns)."""
    command, env = prepare(opts, python)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(command[0], command, env)


class RunningServer:
    """A server started in the background (benchmarks, scripts): ``info`` is its ready line's
    JSON (ports, name, tensor names); ``stop()`` sends SIGTERM and waits. A context manager."""

    def __init__(self, opts: ServeOptions, python: str | None = None, timeout: float = 120.0):
        import json
        import threading

        from .server import READY

        command, env = prepare(opts, python)
        # stderr to a file: a pipe nobody reads would stall a long-running server once full.
        self._stderr = tempfile.TemporaryFile("w+")
        self.proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=self._stderr, text=True)
        self.info: dict = {}

        def read_ready() -> None:
            for line in self.proc.stdout:
                if line.startswith(READY + " "):
                    self.info.update(json.loads(line.split(" ", 1)[1]))
                    return

        reader = threading.Thread(target=read_ready, daemon=True)
        reader.start()
        reader.join(timeout)
        if not self.info:
            self.stop()
            lines = self.stderr().strip().splitlines()
            errors = [line for line in lines if line.startswith("error:")]
            last = (errors or lines or [f"the server did not start within {timeout:g} s"])[-1]
            raise InputError(last.removeprefix("error: ")[:300])

    def stderr(self) -> str:
        """What the server wrote on stderr so far."""
        self._stderr.flush()
        self._stderr.seek(0)
        return self._stderr.read()

    def url(self, scheme: str = "grpc") -> str:
        return f"{scheme}://{self.info['host']}:{self.info[scheme]}"

    def stop(self, timeout: float = 30.0) -> int:
        import signal

        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def __enter__(self) -> "RunningServer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
