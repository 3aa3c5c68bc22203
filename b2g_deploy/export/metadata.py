"""The ``b2g.*`` ONNX metadata; it lives in ``modelfile.onnx_metadata`` (runtimes read it too)."""

from ..modelfile.onnx_metadata import (
    FORMAT,
    PREFIX,
    VALUE_SCALING,
    ExportMetadata,
    read_onnx_metadata,
    write_props,
)

__all__ = ["FORMAT", "PREFIX", "VALUE_SCALING", "ExportMetadata", "read_onnx_metadata", "write_props"]
