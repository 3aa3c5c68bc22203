"""The benchmark scripts and what they share, written once (``benchmarks.helpers``). Run a
script as a file (``python benchmarks/bench_video.py``) or as ``python -m benchmarks.bench_video``."""
