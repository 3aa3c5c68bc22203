"""Fitting B2G to one image or a few frames: masks, the loss, the loop and the ensemble."""

from .ensemble import ensemble, self_ensemble, single_pass
from .loop import FitResult, fit

__all__ = ["FitResult", "ensemble", "fit", "self_ensemble", "single_pass"]
