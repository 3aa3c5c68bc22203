"""``ModelInfo``: what a runtime knows about the model it runs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ModelInfo:
    """What a runtime knows about the model it runs (from checkpoint meta or ONNX metadata)."""

    channels: int
    bit_depth: int = 8
    mode: str = "single"  # "single", "ensemble" or "flips" (modelfile.graph.MODES)
    passes: int = 1
    extra: dict[str, Any] = field(default_factory=dict)
