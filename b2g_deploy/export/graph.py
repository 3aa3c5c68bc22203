"""The modules that get exported; they live in ``modelfile.graph`` (the torch runtime runs them too)."""

from ..modelfile.graph import MASK_TILE, EnsembleModule, SingleModule, build_module, fixed_masks

__all__ = ["MASK_TILE", "EnsembleModule", "SingleModule", "build_module", "fixed_masks"]
