"""The library's entry points, callable from Python; the CLI only parses, prints and maps errors.

Each function takes paths or arrays, returns a small result object and raises the package's
typed errors (``b2g_deploy.errors``) for anything the caller got wrong.
"""

from .fitting import FitReport, TemporalStage, default_fit_outputs, fit, fit_temporal_stage
from .pretrain import PretrainReport, pretrain

__all__ = ["FitReport", "PretrainReport", "TemporalStage", "default_fit_outputs", "fit", "fit_temporal_stage",
           "pretrain"]
