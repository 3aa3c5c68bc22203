"""The library's entry points, callable from Python; the CLI only parses, prints and maps errors.

Each function takes paths or arrays, returns a small result object and raises the package's
typed errors (``b2g_deploy.errors``) for anything the caller got wrong.
"""

from .exporting import EngineReport, ExportReport, TritonReport, build_checked_engine, export
from .fitting import FitReport, TemporalStage, default_fit_outputs, fit, fit_temporal_stage
from .pretrain import PretrainReport, pretrain

__all__ = ["EngineReport", "ExportReport", "FitReport", "PretrainReport", "TemporalStage", "TritonReport",
           "build_checked_engine", "default_fit_outputs", "export", "fit", "fit_temporal_stage", "pretrain"]
