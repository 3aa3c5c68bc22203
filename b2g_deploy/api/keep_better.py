"""After a fit on video frames, keep the fitted network or the prior it started from, whichever
the frame-to-frame check (``temporal.neighbour_check``: each output against a noisy frame outside
its window, warped onto it) scores better on the clip (docs/METHOD_NOTES.md, "Keeping the fit
only when it helps"). Used by ``api.temporal_stage`` and, for the single-frame fit, ``api.fitting``."""

from __future__ import annotations

from typing import Any


def _keep(nets: list[Any], frames: Any, prior: Any, fitted: Any, record: dict[str, Any], key: str,
          notes: list[str], fit_name: str, prior_name: str) -> Any:
    """Score ``nets`` (the prior's and the fit's, as temporal nets) and return ``prior`` or
    ``fitted``; the scores go to ``record[key]``, and a line to ``notes`` when the prior is kept."""
    from ..temporal.neighbour_check import neighbour_scores

    scores = neighbour_scores(nets, frames)
    if scores is None:  # no frame outside a window: nothing to judge by
        return fitted
    kept = "prior" if scores[0] < scores[1] else "fitted"
    record[key] = {"prior": round(scores[0], 7), "fitted": round(scores[1], 7), "kept": kept}
    if kept == "fitted":
        return fitted
    notes.append(f"{fit_name} scored worse than {prior_name} on the frame-to-frame check "
                 f"({scores[1]:.6f} vs {scores[0]:.6f}): kept {prior_name}")
    return prior


def keep_the_better_temporal(prior: Any, fitted: Any, frames: Any, label: str, record: dict[str, Any],
                             notes: list[str]) -> Any:
    """The fitted temporal net, or the temporal prior it started from (``record["neighbour_check"]``)."""
    prior.align = fitted.align
    return _keep([prior, fitted], frames, prior, fitted, record, "neighbour_check", notes,
                 "the fit on the clip", label)


def keep_the_better_single(prior: Any, fitted: Any, frames: Any, label: str, meta: dict[str, Any],
                           notes: list[str]) -> Any:
    """The fitted single-frame net, or the prior it started from (``meta["single_check"]``): each
    is scored as a one-frame temporal net (the window is frame t alone), so its reference is the
    next frame."""
    from ..temporal.model import TemporalB2GNet

    nets = [TemporalB2GNet.from_single_frame(net.eval(), k=0, causal=False) for net in (prior, fitted)]
    return _keep(nets, frames, prior, fitted, meta, "single_check", notes,
                 "the single-frame fit", f"the {label} network")
