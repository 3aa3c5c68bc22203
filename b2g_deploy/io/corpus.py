"""A corpus of clean photographs for pretraining, decoded once and held in memory as uint8.

1,109 photographs of about 500x375 take ~600 MB as uint8, so decoding everything up front is
cheaper than decoding a JPEG per crop for hours. Unreadable files and images smaller than the
crop are skipped and named; a corpus with nothing usable is an error.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import InputError
from .images import IMAGE_SUFFIXES


@dataclass
class Corpus:
    images: list[np.ndarray]  # (H, W, C) uint8, RGB or grey (C = 1)
    files: list[str]  # names relative to their folder, in the order of ``images``
    skipped: list[str] = field(default_factory=list)  # "name (why)"
    digest: str = ""  # sha256 of the sorted file list: names which corpus a prior came from
    holdout: list[str] = field(default_factory=list)  # usable files kept out of training
    held: list[np.ndarray] = field(default_factory=list)  # their pixels, for validation

    @property
    def summary(self) -> dict[str, object]:
        return {"files": len(self.files), "sha256": self.digest, "skipped": len(self.skipped),
                "holdout": self.holdout}


def list_images(roots: list[Path]) -> list[Path]:
    """Image files under the given folders (recursively) or the files themselves, sorted."""
    found: list[Path] = []
    for root in roots:
        if root.is_file():
            found.append(root)
        elif root.is_dir():
            found.extend(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        else:
            raise InputError(f"{root} does not exist")
    return sorted(set(found))


def list_digest(paths: list[Path], roots: list[Path]) -> str:
    """sha256 of the file names relative to their root: the same corpus on another machine
    (another absolute path) gives the same digest."""
    names = []
    for p in paths:
        base = next((r for r in roots if r.is_dir() and p.is_relative_to(r)), p.parent)
        names.append(f"{base.name}/{p.relative_to(base)}")
    return hashlib.sha256("\n".join(sorted(names)).encode()).hexdigest()


# The held-out photographs are a property of the corpus, not of a run's seed: every run and
# every later stage on the same folder (whatever its --seed) keeps the same ones out, so no stage
# trains on what another validates on (docs/PRIORS.md).
HOLDOUT_SEED = 0


def load_corpus(roots: list[Path], grey: bool, min_side: int, holdout: int = 0) -> Corpus:
    """Decode every image under ``roots``; ``holdout`` usable files (the same choice for any
    run on the same files) are set aside for validation and never trained on."""
    import cv2

    paths = list_images(roots)
    if not paths:
        raise InputError(f"no image files ({', '.join(sorted(IMAGE_SUFFIXES))}) under {', '.join(map(str, roots))}")
    images, files, skipped = [], [], []
    for p in paths:
        raw = cv2.imdecode(np.fromfile(p, dtype=np.uint8), cv2.IMREAD_COLOR) if p.stat().st_size else None
        if raw is None:
            skipped.append(f"{p.name} (not a readable image)")
            continue
        if min(raw.shape[:2]) < min_side:
            skipped.append(f"{p.name} ({raw.shape[1]}x{raw.shape[0]} is smaller than the {min_side}-pixel crop)")
            continue
        if grey:
            raw = cv2.cvtColor(raw, cv2.COLOR_BGR2GRAY)[..., None]
        else:
            raw = np.ascontiguousarray(raw[..., ::-1])  # BGR -> RGB
        images.append(raw)
        files.append(p.name)
    if not images:
        raise InputError(f"no usable image under {', '.join(map(str, roots))} ({len(skipped)} skipped: "
                         f"{'; '.join(skipped[:3])})")
    kept_out: list[str] = []
    held: list[np.ndarray] = []
    if holdout:
        if holdout >= len(images):
            raise InputError(f"--holdout {holdout} leaves nothing to train on ({len(images)} usable images)")
        order = np.random.default_rng(HOLDOUT_SEED).permutation(len(images))
        out = set(order[:holdout].tolist())
        kept_out = [files[i] for i in sorted(out)]
        held = [images[i] for i in sorted(out)]
        images = [im for i, im in enumerate(images) if i not in out]
        files = [f for i, f in enumerate(files) if i not in out]
    return Corpus(images, files, skipped, list_digest(paths, roots), kept_out, held)


def random_crops(corpus: Corpus, n: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` random crops (n, C, size, size) float32 in [0, 1], randomly flipped and rotated."""
    out = np.empty((n, corpus.images[0].shape[2], size, size), np.float32)
    for k in range(n):
        im = corpus.images[int(rng.integers(len(corpus.images)))]
        top = int(rng.integers(im.shape[0] - size + 1))
        left = int(rng.integers(im.shape[1] - size + 1))
        c = im[top : top + size, left : left + size]
        c = np.rot90(c, int(rng.integers(4)))
        if rng.random() < 0.5:
            c = c[:, ::-1]
        out[k] = c.transpose(2, 0, 1)
    return out / 255.0
