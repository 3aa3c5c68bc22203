"""One small interface for every way of running a fitted B2G network (see base.py)."""

from .base import ModelInfo, Runtime
from .factory import RUNTIMES, load_runtime

__all__ = ["RUNTIMES", "ModelInfo", "Runtime", "load_runtime"]
