"""One small interface for every way of running a fitted B2G network.

A runtime is loaded from a model file (.pt checkpoint, .onnx, .engine), takes a batch of frames
as float32 (B, C, H, W) in [0, 1] and returns the denoised batch of the same shape. It is a
context manager; ``close`` frees sessions, engines and device memory.
"""

from __future__ import annotations

import abc

import numpy as np

from ..modelfile.info import ModelInfo

__all__ = ["ModelInfo", "Runtime"]


class Runtime(abc.ABC):
    """load in __init__, ``infer`` on batches, ``close`` (or use ``with``)."""

    name: str = "runtime"
    info: ModelInfo
    # Largest (H, W) one call accepts (a TensorRT profile's max); None = any. Callers tile
    # larger frames (io/tiling.py).
    max_hw: tuple[int, int] | None = None

    @abc.abstractmethod
    def infer(self, frames: np.ndarray) -> np.ndarray:
        """(B, C, H, W) float32 in [0, 1] -> denoised (B, C, H, W) float32 in [0, 1]."""

    def close(self) -> None:  # noqa: B027 - optional for runtimes that hold nothing
        pass

    def __enter__(self) -> "Runtime":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
