"""Import an optional package, or raise MissingPackageError naming the pip extra that has it."""

from __future__ import annotations

import importlib
from types import ModuleType

from ..errors import MissingPackageError


def import_optional(module: str, extra: str) -> ModuleType:
    """``module`` imported now (not at package import: the package works without it)."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingPackageError(module, extra) from None


def import_tensorrt() -> ModuleType:
    return import_optional("tensorrt", "trt")


def import_ort() -> ModuleType:
    return import_optional("onnxruntime", "gpu")
