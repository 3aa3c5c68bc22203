"""Serving a fitted denoiser through NVIDIA Triton Inference Server.

``launch`` (imported by the CLI, in the project's environment) checks the arguments, finds a
Python that can run PyTriton, and starts ``server`` in it. ``server`` runs in that serve
environment: it loads the exported ONNX model with ONNX Runtime and serves it with PyTriton,
which starts the tritonserver it bundles, with dynamic batching, on HTTP PORT, gRPC PORT+1 and
metrics PORT+2. The client side is ``runtimes.triton_client``.

Why a separate environment: PyTriton's Python-backend stub (a compiled program that runs our
callable's proxy inside Triton) is built against the NumPy 1.x ABI and runs with an isolated
Python configuration that takes its packages from the serving interpreter's environment. With
NumPy 2 installed there, every response comes back empty. The project's own environment keeps
NumPy 2; ``scripts/setup_serve.sh`` makes ``.venv-serve`` with NumPy 1.26, ONNX Runtime and
nvidia-pytriton, and ``b2g-deploy serve`` runs the server there (docs/SERVING.md).
"""
