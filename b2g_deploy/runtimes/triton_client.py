"""A denoiser on a Triton Inference Server, as a runtime: ``infer`` sends frames, returns them denoised.

Any Triton server that holds a b2g-deploy model will do: ``b2g-deploy serve`` (PyTriton) or a
production server loaded from the repository ``b2g-deploy export --triton`` writes. Both carry
our ``b2g.*`` metadata in the model configuration's ``parameters``; the client reads it (channels,
the size multiple small frames are padded to) and refuses a model without it, a temporal one, a
configuration whose tensors are not FP32 ``[C, -1, -1]``, and, given the local model the server
should hold (``expect``), one whose metadata differs, naming the first key that does.

URLs: ``grpc://HOST:PORT`` (Triton's gRPC port, 8001 by default) or ``http://HOST:PORT`` /
``HOST:PORT`` (HTTP, 8000). The gRPC client is thread-safe; the HTTP one is not (one per thread).
A server that does not answer within ``connect_timeout`` seconds is one InputError line.
Batches larger than the model's ``max_batch_size`` go as several requests, in order.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import CheckpointError, InputError, MissingPackageError
from ..modelfile.onnx_metadata import FORMAT, PREFIX, ExportMetadata
from ._frames import check_frames, pad_small
from .base import Runtime

TEMPORAL_FORMAT = "b2g-deploy/onnx-temporal"
# Keys that describe the tool that wrote a model, not the model: not compared with ``expect``.
NOT_COMPARED = {PREFIX + "package_version"}


def parse_url(url: str) -> tuple[str, str]:
    """(``grpc`` or ``http``, ``HOST:PORT``) of a server URL; no scheme means HTTP."""
    text = url.strip()
    scheme, sep, rest = text.partition("://")
    if not sep:
        scheme, rest = "http", text
    scheme = scheme.lower()
    if scheme == "https":
        raise InputError(f"{url}: TLS is not supported here; use http://HOST:PORT or grpc://HOST:PORT")
    if scheme not in ("http", "grpc"):
        raise InputError(f"{url}: use http://HOST:PORT or grpc://HOST:PORT")
    rest = rest.rstrip("/")
    host, _, port = rest.rpartition(":")
    if not host or not port.isdigit() or "/" in rest:
        raise InputError(f"{url}: a Triton server URL is [http://|grpc://]HOST:PORT")
    return scheme, rest


def _import_client(scheme: str):
    module = "tritonclient.grpc" if scheme == "grpc" else "tritonclient.http"
    try:
        import importlib

        return importlib.import_module(module)
    except ImportError:
        raise MissingPackageError(f"tritonclient[{scheme}]", "serve") from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:300]


class TritonRuntime(Runtime):
    name = "triton"

    def __init__(self, url: str, model_name: str, expect: dict[str, str] | None = None, expect_from: str = "",
                 connect_timeout: float = 3.0, infer_timeout: float = 300.0):
        self.url, self.model_name = url, model_name
        self.scheme, address = parse_url(url)
        self._tc = _import_client(self.scheme)
        self._infer_timeout = infer_timeout
        # The HTTP client has one network timeout for every call: a short one while checking the
        # server (one that accepts connections and never answers must not hang us), then a
        # client with the inference timeout. gRPC takes a timeout per call.
        self.client = self._make_client(address, connect_timeout)
        try:
            self._check_live(connect_timeout)
            config = self._config(connect_timeout)
            self.meta, self._input, self._output, self.max_batch = self._check_config(config)
            self.props = {k: v for k, v in _parameters(config).items() if k.startswith(PREFIX)}
            if expect is not None:
                self._compare(expect, expect_from)
            if self.scheme == "http":
                self.client.close()
                self.client = self._make_client(address, infer_timeout, connect_timeout)
        except BaseException:
            self.close()
            raise
        self.info = self.meta.model_info(provider=f"triton {self.scheme}://{address}")

    def _make_client(self, address: str, timeout: float, connect_timeout: float | None = None):
        if self.scheme == "grpc":
            return self._tc.InferenceServerClient(address)
        return self._tc.InferenceServerClient(address, connection_timeout=connect_timeout or timeout,
                                              network_timeout=timeout)

    # -- checks -------------------------------------------------------------------------------
    def _call(self, method: str, *args: Any, timeout: float | None = None, **kwargs: Any) -> Any:
        if self.scheme == "grpc" and timeout is not None:
            kwargs["client_timeout"] = timeout
        return getattr(self.client, method)(*args, **kwargs)

    def _check_live(self, timeout: float) -> None:
        try:
            live = self._call("is_server_live", timeout=timeout)
        except Exception as exc:  # refused, unreachable, timed out, not Triton
            raise InputError(f"no Triton server answers at {self.url} within {timeout:g} s "
                             f"({_first_line(exc)})") from None
        if not live:
            raise InputError(f"the Triton server at {self.url} is not live")
        try:
            ready = self._call("is_model_ready", self.model_name, timeout=timeout)
        except Exception as exc:
            raise InputError(f"the Triton server at {self.url} did not say whether model "
                             f"'{self.model_name}' is ready ({_first_line(exc)})") from None
        if not ready:
            raise InputError(f"the Triton server at {self.url} has no model '{self.model_name}' ready "
                             "(--server-model NAME picks another)")

    def _config(self, timeout: float) -> dict:
        try:
            if self.scheme == "grpc":
                return self._call("get_model_config", self.model_name, as_json=True, timeout=timeout)["config"]
            return self._call("get_model_config", self.model_name)
        except Exception as exc:
            raise InputError(f"the Triton server at {self.url} did not give model '{self.model_name}''s "
                             f"configuration ({_first_line(exc)})") from None

    def _check_config(self, config: dict) -> tuple[ExportMetadata, str, str, int]:
        where = f"model '{self.model_name}' on {self.url}"
        props = _parameters(config)
        fmt = props.get(PREFIX + "format")
        if fmt == TEMPORAL_FORMAT:
            raise CheckpointError(f"{where} is a temporal (multi-frame) model; the Triton client sends "
                                  "single frames: serve a single-frame model")
        if fmt != FORMAT:
            raise CheckpointError(f"{where} has no b2g metadata in its configuration's parameters: it is "
                                  "not a b2g-deploy model (b2g-deploy serve, or a repository written by "
                                  "b2g-deploy export --triton)")
        meta = ExportMetadata.from_props(props, where)
        inputs, outputs = config.get("input", []), config.get("output", [])
        if len(inputs) != 1 or len(outputs) != 1:
            raise CheckpointError(f"{where} has {len(inputs)} inputs and {len(outputs)} outputs; "
                                  "a b2g-deploy model has one of each")
        want = [meta.channels, -1, -1]
        for what, t in (("input", inputs[0]), ("output", outputs[0])):
            dims = [int(d) for d in t.get("dims", [])]
            dtype = t.get("data_type", "TYPE_INVALID")  # proto3 JSON leaves out the zero value only
            if dtype != "TYPE_FP32" or dims != want:
                raise CheckpointError(f"{where} has the {what} '{t.get('name')}' {dtype} {dims}; its metadata "
                                      f"says a TYPE_FP32 {want} denoiser")
        max_batch = int(config.get("max_batch_size", 0) or 0)
        if max_batch < 1:
            raise CheckpointError(f"{where} has max_batch_size {max_batch}; the client sends batches "
                                  "(export it with --max-batch N >= 1)")
        return meta, inputs[0]["name"], outputs[0]["name"], max_batch

    def _compare(self, expect: dict[str, str], expect_from: str) -> None:
        mine = {k: v for k, v in expect.items() if k.startswith(PREFIX)}
        for key in sorted((set(mine) | set(self.props)) - NOT_COMPARED):
            there, here = self.props.get(key), mine.get(key)
            if there != here:
                raise CheckpointError(
                    f"the server's model '{self.model_name}' is not {expect_from or 'the expected model'}: "
                    f"{key} is {_show(there)} on the server and {_show(here)} here")

    # -- inference ----------------------------------------------------------------------------
    def infer(self, frames: np.ndarray) -> np.ndarray:
        frames = check_frames(frames, self.info.channels)
        padded, h, w = pad_small(frames, self.meta.multiple)
        parts = [self._send(padded[i:i + self.max_batch]) for i in range(0, len(padded), self.max_batch)]
        out = parts[0] if len(parts) == 1 else np.concatenate(parts)
        return out[..., :h, :w]

    def _send(self, batch: np.ndarray) -> np.ndarray:
        batch = np.ascontiguousarray(batch)
        inp = self._tc.InferInput(self._input, list(batch.shape), "FP32")
        inp.set_data_from_numpy(batch)
        outputs = [self._tc.InferRequestedOutput(self._output)]
        try:
            result = self._call("infer", self.model_name, [inp], outputs=outputs,
                                timeout=self._infer_timeout if self.scheme == "grpc" else None)
        except Exception as exc:
            raise InputError(f"the Triton server at {self.url} refused a batch of shape "
                             f"{'x'.join(map(str, batch.shape))}: {_first_line(exc)}") from None
        out = result.as_numpy(self._output)
        if out is None or out.shape != batch.shape:
            shape = None if out is None else "x".join(map(str, out.shape))
            raise CheckpointError(f"model '{self.model_name}' on {self.url} returned shape {shape} "
                                  f"for input {'x'.join(map(str, batch.shape))}")
        return out.astype(np.float32, copy=False)

    def batch_stats(self) -> dict[int, int]:
        """How many times the model ran each batch size (Triton's statistics: the batches its
        dynamic batcher formed), summed over versions."""
        if self.scheme == "grpc":
            stats = self._call("get_inference_statistics", self.model_name, as_json=True, timeout=10.0)
        else:
            stats = self._call("get_inference_statistics", self.model_name)
        counts: dict[int, int] = {}
        for model in stats.get("model_stats", []):
            for entry in model.get("batch_stats", []):
                size = int(entry["batch_size"])
                counts[size] = counts.get(size, 0) + int(entry.get("compute_infer", {}).get("count", 0))
        return counts

    def close(self) -> None:
        client = getattr(self, "client", None)
        if client is not None:
            try:
                client.close()
            except Exception:  # noqa: BLE001 - closing a half-open connection
                pass
            self.client = None


def _parameters(config: dict) -> dict[str, str]:
    return {k: (v or {}).get("string_value", "") for k, v in (config.get("parameters") or {}).items()}


def _show(value: str | None) -> str:
    if value is None:
        return "missing"
    return repr(value if len(value) <= 24 else value[:12] + "..." + value[-8:])


def onnx_props(path: str) -> dict[str, str]:
    """The ``b2g.*`` metadata of a local ONNX file, as the server's configuration carries it."""
    import onnx

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # protobuf DecodeError and friends
        raise CheckpointError(f"{path} is not a readable ONNX file ({type(exc).__name__})") from None
    return {p.key: p.value for p in model.metadata_props if p.key.startswith(PREFIX)}


def connect(url: str, model_name: str, model: str | None = None, channels: int | None = None,
            **options: Any) -> TritonRuntime:
    """A TritonRuntime for ``model_name`` at ``url``. With ``model`` (the exported .onnx the server
    should hold) the server's metadata must match its; ``channels`` is the input's channel count."""
    from pathlib import Path

    expect = None
    if model is not None:
        path = Path(model)
        if path.suffix.lower() != ".onnx":
            raise InputError(f"{path}: with --server, -m is the exported .onnx model the server should hold")
        if not path.is_file():
            raise InputError(f"{path} does not exist")
        expect = onnx_props(str(path))
    rt = TritonRuntime(url, model_name, expect=expect, expect_from=str(model) if model else "", **options)
    if channels is not None and channels != rt.info.channels:
        rt.close()
        raise CheckpointError(f"model '{model_name}' on {url} denoises {rt.info.channels}-channel images; "
                              f"this input has {channels}")
    return rt
