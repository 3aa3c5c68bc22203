"""Does an exported model reproduce PyTorch? Numbers, on a deterministic real image.

fp32 graphs are judged by the largest absolute difference (<= 1e-4 on a 0..1 scale: 1/40 of
an 8-bit level, so no written pixel can change by more than one rounding). fp16 graphs cannot
meet that (half has 11 bits of mantissa, ~5e-4 relative), so they are judged as images, by the
PSNR between the two outputs (>= 50 dB: an RMS difference of 0.0032, under one 8-bit level),
as Polygraphy's comparator does for image outputs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources

import numpy as np

from ..errors import ParityError

FP32_MAX_ABS = 1e-4
FP16_MIN_PSNR = 50.0
PARITY_IMAGE = "parity_kodim03_256.png"  # package data: b2g_deploy/data/, a 256x256 kodim03
PARITY_SIZE = (250, 371)  # not a multiple of 32: the in-graph padding is part of what is checked
NOISE_SIGMA = 25.0 / 255.0


@dataclass(frozen=True)
class ParityReport:
    what: str
    max_abs: float
    psnr_db: float
    precision: str
    shape: tuple[int, ...]

    @property
    def passed(self) -> bool:
        if self.precision == "fp16":
            return self.psnr_db >= FP16_MIN_PSNR
        return self.max_abs <= FP32_MAX_ABS

    def line(self) -> str:
        limit = f"PSNR >= {FP16_MIN_PSNR:g} dB" if self.precision == "fp16" else f"max |diff| <= {FP32_MAX_ABS:g}"
        return (
            f"{self.what} vs PyTorch ({self.precision}, {'x'.join(map(str, self.shape))}): "
            f"max |diff| {self.max_abs:.3g}, PSNR {self.psnr_db:.1f} dB (needs {limit})"
        )


def psnr_between(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10.0 * np.log10(1.0 / mse)


def clean_parity_image() -> np.ndarray:
    """The shipped photograph, (3, 256, 256) float32 in [0, 1], the same on every machine."""
    from ..io.images import read_image

    with resources.as_file(resources.files("b2g_deploy").joinpath("data", PARITY_IMAGE)) as path:
        return read_image(path)[0]


def _fit(img: np.ndarray, h: int, w: int) -> np.ndarray:
    """The centre (h, w) of ``img``; a side shorter than asked is mirrored out to it."""
    for axis, want in ((1, h), (2, w)):
        have = img.shape[axis]
        if have >= want:
            start = (have - want) // 2
            img = img.take(range(start, start + want), axis=axis)
        else:
            pad = [(0, 0)] * 3
            pad[axis] = ((want - have) // 2, want - have - (want - have) // 2)
            img = np.pad(img, pad, mode="symmetric")
    return img


def parity_image(channels: int, size: tuple[int, int] = PARITY_SIZE) -> np.ndarray:
    """(1, C, H, W) float32: kodim03 (shipped with the package) with sigma-25 noise.

    A denoiser must be checked on what it will see, a noisy natural image; a fixed seed makes
    the check repeatable.
    """
    h, w = size
    rng = np.random.default_rng(0)
    clean = _fit(clean_parity_image(), h, w)
    if channels == 1:
        clean = clean.mean(axis=0, keepdims=True)
    noisy = clean + rng.normal(0.0, NOISE_SIGMA, clean.shape)
    return np.clip(noisy, 0.0, 1.0).astype(np.float32)[None]


WINDOW_SHIFT = (2, 3)  # pixels (down, right) the scene moves from one frame of a parity window to the next


def parity_image_window(channels: int, window: int, size: tuple[int, int] = PARITY_SIZE) -> np.ndarray:
    """(1, window*C, H, W) float32: a temporal model's parity input, frames in time order.

    Frame i is the shipped photograph moved by ``i * WINDOW_SHIFT`` pixels (a steady pan, so the
    neighbour frames differ from the target as real video does) with its own sigma-25 noise
    (fixed seeds: frame i's noise is seeded i, and frame 0 is exactly :func:`parity_image`).
    """
    h, w = size
    dy, dx = WINDOW_SHIFT
    span_h, span_w = h + dy * (window - 1), w + dx * (window - 1)
    scene = _fit(clean_parity_image(), span_h, span_w)
    if channels == 1:
        scene = scene.mean(axis=0, keepdims=True)
    frames = []
    for i in range(window):
        top, left = dy * (window - 1 - i), dx * (window - 1 - i)  # the content moves down-right
        clean = scene[:, top : top + h, left : left + w]
        noise = np.random.default_rng(i).normal(0.0, NOISE_SIGMA, clean.shape)
        frames.append(np.clip(clean + noise, 0.0, 1.0).astype(np.float32))
    return np.concatenate(frames)[None]


def compare(what: str, got: np.ndarray, ref: np.ndarray, precision: str) -> ParityReport:
    if got.shape != ref.shape:
        raise ParityError(f"{what} returned shape {got.shape}, PyTorch {ref.shape}")
    if not np.isfinite(got).all():
        raise ParityError(f"{what} returned NaN or infinite values")
    diff = float(np.abs(got.astype(np.float64) - ref).max())
    return ParityReport(what, diff, psnr_between(got, ref), precision, tuple(got.shape))


def check_parity(
    what: str, run: Callable[[np.ndarray], np.ndarray], reference: np.ndarray, x: np.ndarray, precision: str
) -> ParityReport:
    """Run ``run`` on ``x``, compare with ``reference``; raise ParityError with the numbers."""
    report = compare(what, run(x), reference, precision)
    if not report.passed:
        raise ParityError(f"parity check failed: {report.line()}")
    return report
