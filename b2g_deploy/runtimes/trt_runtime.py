"""A native TensorRT engine; buffers are torch CUDA tensors, so pycuda is not needed.

Before TensorRT sees the engine, its sidecar is checked against the installed TensorRT and the
current GPU; each batch is checked against the engine's profile (frames below the profile's
minimum are edge-padded up to it, larger ones must be tiled by the caller: see ``max_hw``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import EngineMismatchError
from ..modelfile.engine_sidecar import EngineSidecar, current_gpu
from ..modelfile.info import ModelInfo
from ..modelfile.optional import import_tensorrt
from ._frames import check_frames
from .base import Runtime


def load_checked(path: Path):
    """(sidecar, tensorrt module): raises EngineMismatchError before any deserialization."""
    sidecar = EngineSidecar.load(path)
    trt = import_tensorrt()
    sidecar.check_environment(trt.__version__, current_gpu())
    return sidecar, trt


class TrtRuntime(Runtime):
    name = "tensorrt"

    def __init__(self, path: str | Path):
        import torch

        path = Path(path)
        self.sidecar, trt = load_checked(path)
        self._logger = trt.Logger(trt.Logger.WARNING)
        self._runtime = trt.Runtime(self._logger)
        self.engine = self._runtime.deserialize_cuda_engine(path.read_bytes())
        if self.engine is None:
            raise EngineMismatchError(f"TensorRT could not deserialize {path}; rebuild it with export --trt")
        self.context = self.engine.create_execution_context()
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        inputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        self._input, self._output = inputs[0], next(n for n in names if n not in inputs)
        self._stream = torch.cuda.Stream()
        model = self.sidecar.model
        self.info = ModelInfo(
            self.sidecar.channels, int(model.get("bit_depth", 8)), model.get("mode", "single"),
            int(model.get("passes", 1)), {"fp16": self.sidecar.fp16, "profile": self.sidecar.profile.describe()},
        )
        self.max_hw = tuple(self.sidecar.profile.max[2:])

    def infer(self, frames: np.ndarray) -> np.ndarray:
        frames = check_frames(frames, self.info.channels)
        prof = self.sidecar.profile
        # Padding up to the profile minimum is exact (the graph crops back); batches larger
        # than the profile's run in chunks.
        h, w = frames.shape[-2:]
        ph, pw = max(prof.min[2] - h, 0), max(prof.min[3] - w, 0)
        if ph or pw:
            frames = np.pad(frames, ((0, 0), (0, 0), (0, ph), (0, pw)), mode="edge")
        step = prof.max[0]
        outs = [self._run(frames[i : i + step]) for i in range(0, frames.shape[0], step)]
        return np.concatenate(outs)[..., :h, :w]

    def _run(self, frames: np.ndarray) -> np.ndarray:
        import torch

        with torch.cuda.stream(self._stream):
            y = self.infer_tensor(torch.from_numpy(frames).cuda(non_blocking=True))
        self._stream.synchronize()
        return y.cpu().numpy()

    def infer_tensor(self, x):
        """A contiguous float32 CUDA tensor in the profile -> output tensor, on the current stream."""
        import torch

        self.sidecar.profile.check(tuple(x.shape))
        y = torch.empty_like(x)
        self.context.set_input_shape(self._input, tuple(x.shape))
        self.context.set_tensor_address(self._input, x.data_ptr())
        self.context.set_tensor_address(self._output, y.data_ptr())
        if not self.context.execute_async_v3(torch.cuda.current_stream().cuda_stream):
            raise EngineMismatchError("TensorRT failed to run the engine on this batch")
        return y

    def close(self) -> None:
        self.context = self.engine = self._runtime = None
