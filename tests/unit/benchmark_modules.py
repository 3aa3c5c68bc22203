"""Importing a module of the ``benchmarks`` package in tests (a folder of the repository, not
installed): the test modules import this one, as they import trt_stand_in."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def load_benchmark(name: str):
    """``benchmarks.<name>``, imported from the repository root."""
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    return importlib.import_module(f"benchmarks.{name}")
