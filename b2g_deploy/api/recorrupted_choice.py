"""Which fitted network a video streams, judged on its own frames: the temporal network or the
single-frame one the same fit made first, each through the whole stream (network, output
fusion, Wiener step, unclipping, blend) on the frames fitted on, scored by a recorrupted pair.

Why a recorrupted pair (Pang et al., "Recorrupted-to-Recorrupted", CVPR 2021): with y = x + n
and n ~ N(0, s^2), draw z ~ N(0, s^2) and form y+ = y + a z, y- = y - z / a. Then y+ and y- - x
are uncorrelated, and independent where the noise is Gaussian, so for any denoiser F

    E |F(y+) - y-|^2 = E |F(y+) - x|^2 + (1 + 1 / a^2) s^2,

the squared error of F on slightly noisier frames (s sqrt(1 + a^2)) plus a constant that is the
same for every F: the lower score is the better pipeline, without the clean frames. The stream
runs as a black box (its optical flows, fusion weights and noise estimates are all functions of
y+), which a Stein (SURE) estimate could not do: the flows are computed on 8-bit guides, so the
output is not differentiable in the input.

Two things make it hold on real 8-bit frames (measured on held-out clips, docs/METHOD_NOTES.md,
"Which network a video gets"): s is the noise level where clipping has not touched it
(``haar_inside``: the Haar estimate on the blocks well inside [0, 1]; a z weaker than the noise
leaves y+ and y- correlated, which favours the network that leans on its own frame most), and
only pixels ``MARGIN_SIGMAS`` x s inside [0, 1] are scored: near black and white the clipped
noise is not Gaussian, and there the scores ranked the networks wrongly by up to 2 dB at sigma 50.

The first level it read, ``noise_before_clipping`` (from the single-frame network's residual),
read low where the network keeps some noise as signal: in grey, and at sigma 50, where the check
then favoured the single-frame stream on clips the temporal one won. ``haar_inside`` ranked
those right, and every other held-out set as that one did.
"""

from __future__ import annotations

import contextlib
import math
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

ALPHA = 0.5  # y+ carries sqrt(1 + ALPHA^2) = 1.12 times the noise: close to the frames' own level
MARGIN_SIGMAS = 1.5  # pixels scored: their single-frame estimate this many sigmas inside [0, 1]
MIN_SHARE = 0.05  # fewer such pixels than this: score every pixel
# The check runs on the centre crop of the fitted frames up to this many pixels a frame (a
# quarter of 720p): ~4x less time at 720p, and still 230,000 pixels a frame.
CROP_PIXELS = 360 * 640
SEED = 20261207
MARGIN_ERRORS = 2.0  # the single-frame network replaces the temporal one beyond this many standard errors
# Above these noise levels (0..255 scale, by channels) the check is not run and the temporal
# network is kept. Each is 5 over the highest level at which the check ranked every held-out set
# right (docs/BENCHMARKS.md, "Which network a video streams: the check on held-out clips"), so
# that a video at that level whose estimate reads a little high is still checked: colour 50
# (files: 14 of 15 clips, the miss by 0.10 dB, and both 720p mosaics); grey 35. In grey at 45
# and 50 it favoured the single-frame stream on 3 and 6 clips of 6 where the temporal one was
# 0.9-2.2 dB better. The check ranks the two streams at y+'s noise, sqrt(1 + ALPHA^2) = 1.12
# times the frames' own, where the two streams' order need not be their order at the frames'
# own noise: with a = 0.25 (1.03 times) it ranked 5 of 6 right at both levels, for 1.8 times
# the standard error; not yet the default.
MAX_SIGMA = {3: 55.0, 1: 40.0}


@dataclass
class NetworkScores:
    """What the check measured: each way's mean |F(y+) - y-|^2 over the scored pixels, and the
    noise level its z had (0..1 units)."""

    single: float
    temporal: float
    sigma: float
    share: float  # of the pixels scored
    frames: int  # scored
    seconds: float
    standard_error: float = 0.0  # of ``difference``, from y-'s own noise
    max_sigma: float = math.inf  # the check's limit for these frames (0..255 scale)
    noise: str = "haar-inside"  # how sigma was read (``noise_level``)

    @property
    def run(self) -> bool:
        """False where the noise was above ``max_sigma`` and nothing was scored."""
        return self.frames > 0

    @property
    def temporal_better(self) -> bool:
        """The temporal network is kept unless the single-frame one scores ahead by more than
        ``MARGIN_ERRORS`` standard errors: on held-out clips the temporal one was the better on
        average wherever the flow fits it, so a tie (or no check) keeps it."""
        return not self.run or self.difference >= -MARGIN_ERRORS * self.standard_error

    @property
    def difference(self) -> float:
        """The single-frame score minus the temporal one: the difference of the two pipelines'
        squared errors on y+, unbiased (the constant cancels). Their absolute errors are not
        given: the constant, (1 + 1 / ALPHA^2) s^2, is 5x the noise's variance, so an error of
        1% in s moves it by more than a good denoiser's whole error."""
        return self.single - self.temporal

    def record(self) -> dict[str, Any]:
        if not self.run:
            return {"sigma_255": round(self.sigma * 255, 2), "max_sigma_255": self.max_sigma, "noise": self.noise,
                    "kept": "temporal", "skipped": "noise above the check's limit"}
        return {"single": self.single, "temporal": self.temporal, "difference": self.difference,
                "standard_error": self.standard_error, "sigma_255": round(self.sigma * 255, 2), "noise": self.noise,
                "alpha": ALPHA, "margin_sigmas": MARGIN_SIGMAS,
                "share": round(self.share, 4), "frames": self.frames, "seconds": round(self.seconds, 2),
                "kept": "temporal" if self.temporal_better else "single-frame"}


def centre_crop(frames: np.ndarray, pixels: int = CROP_PIXELS) -> np.ndarray:
    """(N, C, H, W) -> the centre crop of at most ``pixels`` a frame, the frame's aspect kept."""
    h, w = frames.shape[-2:]
    scale = min(1.0, math.sqrt(pixels / (h * w)))
    ch, cw = max(8, int(h * scale) // 8 * 8), max(8, int(w * scale) // 8 * 8)
    ch, cw = min(ch, h), min(cw, w)
    top, left = (h - ch) // 2, (w - cw) // 2
    return frames[..., top : top + ch, left : left + cw]


def recorrupted_pair(frames: np.ndarray, sigma: float, alpha: float = ALPHA,
                     seed: int = SEED) -> tuple[np.ndarray, np.ndarray]:
    """(y + a z, y - z / a) for z ~ N(0, sigma^2) drawn once per pixel (float32)."""
    z = np.random.default_rng(seed).normal(0.0, sigma, frames.shape).astype(np.float32)
    return frames + alpha * z, frames - z / alpha


def scored_pixels(estimate: np.ndarray, sigma: float, margin_sigmas: float = MARGIN_SIGMAS) -> np.ndarray:
    """Where ``estimate`` (a denoised version of the frames) lies ``margin_sigmas`` x ``sigma``
    inside [0, 1]; every pixel where fewer than ``MIN_SHARE`` of them do."""
    margin = margin_sigmas * sigma
    inside = (estimate > margin) & (estimate < 1 - margin)
    return inside if inside.mean() >= MIN_SHARE else np.ones_like(inside)


def stream_outputs(runtime: Any, frames: Sequence[np.ndarray], live: bool, **finishing: Any) -> np.ndarray:
    """``frames`` through ``runtime`` and the stream's steps after it (``denoising.finishing_steps``),
    in memory; (N, C, H, W) float32, one output per frame, in order."""
    from ..io.frame_list import FrameListSink, FrameListSource
    from ..io.pipeline import run_pipeline
    from .denoising import finishing_steps

    sink = FrameListSink()
    stats = run_pipeline(FrameListSource(frames), runtime, sink, batch=4, prepare_ahead=False,
                         **finishing_steps(runtime, live=live, **finishing))
    if stats.interrupted:
        raise KeyboardInterrupt
    return np.stack(sink.in_order())


def score_runtimes(single: Any, temporal: Any, frames: np.ndarray, estimate: np.ndarray, *, live: bool,
                   scored: int | None = None, alpha: float = ALPHA, margin_sigmas: float = MARGIN_SIGMAS,
                   noise: str = "haar-inside", level: float | None = None, **finishing: Any) -> NetworkScores:
    """Both runtimes' streams on the recorrupted ``frames`` ((N, C, H, W) in [0, 1], noisy),
    scored on the first ``scored`` (None: all): a file's later frames are there so that the
    scored ones get the windows and fusion they get in the stream (``lookahead``), not the
    reflected ones at a clip's end. ``estimate``: a denoised version of the frames (the
    single-frame network's), which the noise level and the scored pixels are read from.
    ``alpha``, ``margin_sigmas`` (the scored pixels'; 0: every pixel) and ``noise``
    (``noise_level``) are there for the benchmark that chose them
    (benchmarks/recorrupted_check_on_clips.py); ``level``: the noise level when the caller has it
    already. ``finishing``: the stream's options (``denoising.finishing_steps``; its ``sigma`` is
    the stream's own, not the pair's).

    The standard error of the difference comes from y-'s noise, independent of the outputs:
    2 |F_single - F_temporal| s sqrt(1 + 1 / a^2) / n over the n scored values."""
    start = time.perf_counter()
    frames = np.ascontiguousarray(frames, np.float32)
    sigma = noise_level(frames, estimate, noise) if level is None else level
    scored = len(frames) if scored is None else scored
    pixels = scored_pixels(estimate[:scored], sigma, margin_sigmas)
    plus, minus = recorrupted_pair(frames, sigma, alpha)
    outs = {}
    for name, runtime in (("single", single), ("temporal", temporal)):
        outs[name] = stream_outputs(runtime, list(plus), live, **finishing)[:scored][pixels]
    minus = minus[:scored][pixels]
    between = np.sqrt(np.sum((outs["single"].astype(np.float64) - outs["temporal"]) ** 2))
    return NetworkScores(float(np.mean((outs["single"] - minus) ** 2)), float(np.mean((outs["temporal"] - minus) ** 2)),
                         sigma, float(pixels.mean()), scored, time.perf_counter() - start,
                         float(2 * between * sigma * math.sqrt(1 + 1 / alpha**2) / pixels.sum()), noise=noise)


def noise_level(frames: np.ndarray, estimate: np.ndarray, noise: str = "haar-inside") -> float:
    """The noise level the pair is drawn at (0..1 units): "haar-inside" (the check's,
    ``haar_inside``), "unclipped" (``noise_before_clipping``, its first) or "haar" (what
    ``fit.noise_level.estimate_sigma`` reads on every pixel)."""
    if noise == "haar-inside":
        return haar_inside(frames, estimate)
    if noise == "unclipped":
        return noise_before_clipping(frames, estimate)
    if noise == "haar":
        return _haar_sigma(frames)
    raise ValueError(f"unknown noise level {noise!r}: haar-inside, unclipped or haar")


def noise_before_clipping(frames: np.ndarray, estimate: np.ndarray) -> float:
    """The noise level of ``frames`` before clipping (0..1 units; ``clipping.unclipped_sigma``
    from their ``estimate``, the Haar estimate as its first guess)."""
    from ..clipping import unclipped_sigma

    return unclipped_sigma(frames, estimate, _haar_sigma(frames))


def haar_inside(frames: np.ndarray, estimate: np.ndarray, margin_sigmas: float = MARGIN_SIGMAS) -> float:
    """The Haar estimate (``fit.noise_level``: median |HH| / 0.6745 over 2x2 blocks) on the blocks
    whose ``estimate`` lies ``margin_sigmas`` x the first estimate inside [0, 1], where clipping
    has not removed noise; unlike the residual of a denoiser, it does not read the noise the
    denoiser kept as signal. Every block where too few are inside."""
    from ..fit.noise_level import diagonal_detail

    guess = _haar_sigma(frames)
    h, w = estimate.shape[-2] // 2 * 2, estimate.shape[-1] // 2 * 2
    e = estimate[..., :h, :w]
    block = (e[..., 0::2, 0::2] + e[..., 0::2, 1::2] + e[..., 1::2, 0::2] + e[..., 1::2, 1::2]) / 4
    inside = scored_pixels(block, guess, margin_sigmas)
    return float(np.median(np.abs(diagonal_detail(frames)[inside])) / 0.6745)


def _haar_sigma(frames: np.ndarray) -> float:
    """``fit.noise_level.estimate_sigma`` on (N, C, H, W) numpy frames: the Haar estimate over
    every pixel."""
    import torch

    from ..fit.noise_level import estimate_sigma

    return estimate_sigma(torch.from_numpy(np.ascontiguousarray(frames)))


def lookahead(live: bool, k: int, causal: bool, fuse: bool = True, fuse_frames: int | None = None) -> int:
    """How many frames after a frame either way's stream output reads: none for a camera or
    stream (causal windows and fusion); on a file the centred network's k (a causal network's
    stream fuses causally too) plus the fusion's reach, which the single-frame stream has as well."""
    from ..temporal.fuse import default_k

    if live:
        return 0
    reach = (default_k(False) if fuse_frames is None else fuse_frames) if fuse else 0
    return reach + (0 if causal else k)


def cropped_with_estimate(single: Any, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The centre crop of ``frames`` (``centre_crop``, float32) and the single-frame checkpoint's
    output on it, clamped to [0, 1]: what the noise level and the scored pixels are read from."""
    import torch

    from ..model import denoise

    y = np.ascontiguousarray(centre_crop(frames), np.float32)
    with torch.no_grad():
        estimate = denoise(single.net.cpu().eval(), torch.from_numpy(y)).clamp(0, 1).numpy()
    return y, estimate


@contextlib.contextmanager
def torch_runtimes(*checkpoints: Any) -> Iterator[list[Any]]:
    """Each ``checkpoint.Checkpoint`` opened in PyTorch on the CPU (through a temporary file, as
    ``api.open_runtime`` opens a file), closed on leaving."""
    from ..checkpoint import save_checkpoint
    from .runtime_choice import open_runtime

    with tempfile.TemporaryDirectory(prefix="b2g-check-") as tmp, contextlib.ExitStack() as stack:
        runtimes = []
        for n, ckpt in enumerate(checkpoints):
            path = Path(tmp) / f"{n}.pt"
            save_checkpoint(path, ckpt)
            runtimes.append(stack.enter_context(open_runtime(path, "torch", "cpu")))
        yield runtimes


def score_checkpoints(single: Any, temporal: Any, frames: np.ndarray, *, live: bool, scored: int | None = None,
                      **finishing: Any) -> NetworkScores:
    """:func:`score_runtimes` for two ``checkpoint.Checkpoint`` objects (single-frame and
    temporal, ``torch_runtimes``) on ``cropped_with_estimate(single, frames)``. Above
    ``MAX_SIGMA`` for their channels nothing is streamed: the scores are NaN
    (``NetworkScores.run`` False)."""
    start = time.perf_counter()
    y, estimate = cropped_with_estimate(single, frames)
    sigma = haar_inside(y, estimate)
    limit = MAX_SIGMA[y.shape[1]]
    if sigma * 255 > limit:
        return NetworkScores(math.nan, math.nan, sigma, 0.0, 0, time.perf_counter() - start, max_sigma=limit)
    with torch_runtimes(single, temporal) as runtimes:
        scores = score_runtimes(*runtimes, y, estimate, live=live, scored=scored, level=sigma, **finishing)
    scores.seconds, scores.max_sigma = time.perf_counter() - start, limit
    return scores
