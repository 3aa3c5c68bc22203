"""What a model file is, for the layers that write one (export) and read one (runtimes).

Export and the runtimes never import each other; what both need lives here: the ``b2g.*`` ONNX
metadata (``onnx_metadata``), the TensorRT engine sidecar (``engine_sidecar``), the wrapped
network a model file holds (``graph``), ``ModelInfo`` (``info``) and the import of optional
packages with a pip hint (``optional``). This layer imports only ``errors``, ``model`` and
third-party packages. Submodules are imported on use: ``graph`` pulls in torch, the rest do not.
"""
