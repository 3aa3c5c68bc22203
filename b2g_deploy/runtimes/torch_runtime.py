"""PyTorch eager (optionally torch.compile, fp16 on CUDA) from a .pt checkpoint."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..checkpoint import load_checkpoint
from ..errors import InputError
from ..modelfile.graph import build_module, check_mode
from ._frames import check_frames, pad_small
from .base import ModelInfo, Runtime


class TorchRuntime(Runtime):
    """Runs the same wrapper that export traces, so torch and ONNX outputs are comparable."""

    name = "torch"

    def __init__(
        self,
        path: str | Path,
        device: str = "cpu",
        fp16: bool = False,
        compile: bool = False,
        mode: str = "single",
        passes: int = 8,
        seed: int = 0,
    ):
        if fp16 and not str(device).startswith("cuda"):
            raise InputError("fp16 with the torch runtime needs a CUDA device (CPU half is slower)")
        ckpt = load_checkpoint(path)
        if ckpt.is_temporal:
            raise InputError(f"{path} is a temporal (multi-frame) checkpoint: it denoises videos, "
                             "frame windows at a time (b2g-deploy denoise VIDEO -m ...)")
        self.device = torch.device(device)
        passes = check_mode(mode, passes)
        module = build_module(ckpt.net, mode, passes, ckpt.config.mask.rate, seed, half=fp16)
        self.module = module.to(self.device).eval()
        self._multiple = ckpt.net.multiple
        if compile:
            # dynamic=True: every new frame size would otherwise recompile (tens of seconds).
            self.module = torch.compile(self.module, dynamic=True)
        self.info = ModelInfo(
            ckpt.channels, int(ckpt.meta.get("bit_depth", 8)), mode, passes,
            {"precision": "fp16" if fp16 else "fp32", "multiple": self._multiple, "device": str(device)},
        )

    @torch.inference_mode()
    def infer(self, frames: np.ndarray) -> np.ndarray:
        frames = check_frames(frames, self.info.channels)
        padded, h, w = pad_small(frames, self._multiple)
        x = torch.from_numpy(padded).to(self.device, non_blocking=True)
        return self.module(x)[..., :h, :w].float().cpu().numpy()

    def infer_tensor(self, x: torch.Tensor) -> torch.Tensor:
        """Device tensors in and out, for callers that keep frames on the GPU (benchmarks)."""
        with torch.inference_mode():
            return self.module(x)

    def close(self) -> None:
        self.module = None  # type: ignore[assignment]
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
