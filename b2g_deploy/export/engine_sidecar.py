"""The TensorRT engine sidecar; it lives in ``modelfile.engine_sidecar`` (runtimes read it too)."""

from ..modelfile.engine_sidecar import EngineSidecar, Profile, Shape, current_gpu, parse_shape, sidecar_path

__all__ = ["EngineSidecar", "Profile", "Shape", "current_gpu", "parse_shape", "sidecar_path"]
