"""A native TensorRT engine; buffers are torch CUDA tensors, so pycuda is not needed.

Before TensorRT sees the engine, its sidecar is checked against the installed TensorRT and the
current GPU; each batch is checked against the engine's profile (inputs below the profile's
minimum are edge-padded up to it, larger ones must be tiled by the caller: see ``max_hw``).

Two runtimes share the loaded engine (:class:`TrtEngine`): :class:`TrtRuntime`, frames in and
frames out like every ``Runtime``, and :class:`TrtTemporalRuntime`, a temporal engine's stacked
windows (B, T*C, H, W) in and the target frames (B, C, H, W) out, like the other
``runtimes.temporal`` runtimes. The sidecar says which an engine is (``EngineSidecar.temporal``),
and each runtime refuses the other kind with one line before TensorRT deserializes anything.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import EngineMismatchError, InputError
from ..modelfile.engine_sidecar import EngineSidecar, current_gpu
from ..modelfile.info import ModelInfo
from ..modelfile.optional import import_tensorrt
from ._frames import check_frames
from .base import Runtime
from .temporal import TemporalRuntime, _info


def load_checked(path: Path, sidecar: EngineSidecar | None = None):
    """(sidecar, tensorrt module): raises EngineMismatchError before any deserialization."""
    sidecar = EngineSidecar.load(path) if sidecar is None else sidecar
    trt = import_tensorrt()
    sidecar.check_environment(trt.__version__, current_gpu())
    return sidecar, trt


class TrtEngine:
    """A deserialized engine, its execution context and a CUDA stream; runs checked batches.

    The input's channel count is the sidecar's ``input_channels`` (a frame's, or a temporal
    engine's stacked window's) and the output's is ``channels`` (one frame).
    """

    sidecar: EngineSidecar

    def _load(self, path: Path, sidecar: EngineSidecar) -> None:
        self.sidecar, trt = load_checked(path, sidecar)
        self._logger = trt.Logger(trt.Logger.WARNING)
        self._runtime = trt.Runtime(self._logger)
        self.engine = self._runtime.deserialize_cuda_engine(path.read_bytes())
        if self.engine is None:
            raise EngineMismatchError(f"TensorRT could not deserialize {path}; rebuild it with export --trt")
        self.context = self.engine.create_execution_context()
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        inputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        self._input, self._output = inputs[0], next(n for n in names if n not in inputs)
        self._stream = None  # made at the first run, on the current device
        self.max_hw = tuple(self.sidecar.profile.max[2:])

    _what = "frames"

    def _infer_batch(self, x: np.ndarray) -> np.ndarray:
        """A checked float32 (B, C_in, H, W) batch -> (B, C_out, H, W), any B, H and W up to the
        profile's maximum side: padded up to the profile minimum, run in chunks of its max batch."""
        prof = self.sidecar.profile
        # Padding up to the profile minimum: the graph pads to its multiple itself, and the
        # output is cropped back to the input's size.
        h, w = x.shape[-2:]
        ph, pw = max(prof.min[2] - h, 0), max(prof.min[3] - w, 0)
        if ph or pw:
            x = np.pad(x, ((0, 0), (0, 0), (0, ph), (0, pw)), mode="edge")
        step = prof.max[0]
        outs = [self._engine_run(x[i : i + step]) for i in range(0, x.shape[0], step)]
        return np.concatenate(outs)[..., :h, :w]

    def _engine_run(self, x: np.ndarray) -> np.ndarray:
        import torch

        if self._stream is None:
            self._stream = torch.cuda.Stream()
        with torch.cuda.stream(self._stream):
            y = self.infer_tensor(torch.from_numpy(np.ascontiguousarray(x)).cuda(non_blocking=True))
        self._stream.synchronize()
        return y.cpu().numpy()

    def infer_tensor(self, x):
        """A contiguous float32 CUDA tensor in the profile -> output tensor, on the current stream."""
        import torch

        self.sidecar.profile.check(tuple(x.shape), self._what)
        b, _, h, w = x.shape
        y = torch.empty((b, self.sidecar.channels, h, w), dtype=x.dtype, device=x.device)
        self.context.set_input_shape(self._input, tuple(x.shape))
        self.context.set_tensor_address(self._input, x.data_ptr())
        self.context.set_tensor_address(self._output, y.data_ptr())
        if not self.context.execute_async_v3(torch.cuda.current_stream().cuda_stream):
            raise EngineMismatchError(f"TensorRT failed to run the engine on these {self._what}")
        return y

    def close(self) -> None:
        self.context = self.engine = self._runtime = None


class TrtRuntime(TrtEngine, Runtime):
    """A single-frame engine: (B, C, H, W) frames in, the same shape out."""

    name = "tensorrt"

    def __init__(self, path: str | Path):
        path = Path(path)
        sidecar = EngineSidecar.load(path)
        if sidecar.is_temporal:
            raise InputError(f"{path} is a temporal (multi-frame) engine: it denoises videos, "
                             "frame windows at a time (b2g-deploy denoise VIDEO -m ...)")
        self._load(path, sidecar)
        model = self.sidecar.model
        self.info = ModelInfo(
            self.sidecar.channels, int(model.get("bit_depth", 8)), model.get("mode", "single"),
            int(model.get("passes", 1)), {"fp16": self.sidecar.fp16, "profile": self.sidecar.profile.describe()},
        )

    def infer(self, frames: np.ndarray) -> np.ndarray:
        return self._infer_batch(check_frames(frames, self.info.channels))


class TrtTemporalRuntime(TrtEngine, TemporalRuntime):
    """A temporal engine (built from a temporal ONNX export): stacked windows in, target frames
    out; ``k``, ``causal`` and ``window`` come from its sidecar, as ``io.pipeline`` needs."""

    name = "tensorrt"
    _what = "windows"

    def __init__(self, path: str | Path):
        path = Path(path)
        sidecar = EngineSidecar.load(path)
        if not sidecar.is_temporal:
            raise InputError(f"{path} is a single-frame engine, not a temporal one")
        t = sidecar.temporal
        self.k, self.causal, self.window = t["k"], t["causal"], t["window"]
        self.align = t.get("align", "none")  # windows prepared as the fit prepared them (TemporalRuntime)
        self.multiple = int(sidecar.model.get("multiple", 1))
        self._load(path, sidecar)
        self.path = path
        self.info = _info(sidecar.channels, self.k, self.causal, self.window, fp16=sidecar.fp16,
                          profile=sidecar.profile.describe(), multiple=self.multiple, align=self.align)

    def _run(self, windows: np.ndarray) -> np.ndarray:
        return self._infer_batch(windows)

    def close(self) -> None:
        TrtEngine.close(self)
        TemporalRuntime.close(self)  # the kept batch array
