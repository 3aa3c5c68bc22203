"""Shared pieces of the quality benchmarks: data, noise with fixed seeds, the results store,
machine facts, and rewriting one section of docs/BENCHMARKS.md.

Noise follows docs/METHOD_NOTES.md "Evaluation": clean in [0, 1]; Gaussian ``clean + N(0, (s/255)^2)``, not
clipped; Poisson ``Poisson(lam * clean) / lam``. The seed of each noisy image is a CRC32 of
"set/image/noise", so every method, every script and every machine sees the same noisy pixels
(Python's own ``hash`` is salted per process and would not do).
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import re
import shlex
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"  # ../shared/data relative to the repo, as on CI
DOC = REPO / "docs" / "BENCHMARKS.md"
SETS = ("Kodak24", "BSD68", "Set9")
_IMAGE_SUFFIXES = {".png", ".tif", ".tiff", ".jpg", ".jpeg", ".bmp"}


# ---- data and noise --------------------------------------------------------------------------


def list_images(data: Path, name: str, limit: int | None = None) -> list[Path]:
    folder = data / name
    if not folder.is_dir():
        raise SystemExit(f"no data set '{name}' under {data} (expected a folder {folder})")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in _IMAGE_SUFFIXES)
    return files[:limit] if limit else files


def parse_noises(text: str) -> list[str]:
    """'25,50,p30' -> ['25', '50', 'p30']: a sigma on the 0..255 scale, or p<lambda> for Poisson."""
    noises = [n.strip() for n in text.split(",") if n.strip()]
    for n in noises:
        if not re.fullmatch(r"p?\d+(\.\d+)?", n) or float(n.lstrip("p")) <= 0:
            raise SystemExit(f"bad noise '{n}': use a sigma like 25 or a Poisson lambda like p30")
    return noises


def noise_label(noise: str) -> str:
    if noise == "real":
        return "real camera noise"
    return f"Poisson λ={noise[1:]}" if noise.startswith("p") else f"σ={noise}"


def noise_seed(set_name: str, image: str, noise: str) -> int:
    return zlib.crc32(f"{set_name}/{image}/{noise}".encode())


def add_noise(clean: np.ndarray, noise: str, seed: int) -> np.ndarray:
    """The noisy observation of ``clean`` (C, H, W) in [0, 1], float32, not clipped."""
    rng = np.random.default_rng(seed)
    if noise.startswith("p"):
        lam = float(noise[1:])
        return (rng.poisson(lam * clean.astype(np.float64)) / lam).astype(np.float32)
    sigma = float(noise) / 255.0
    return (clean + rng.normal(0.0, sigma, clean.shape)).astype(np.float32)


def noise_std(noisy: np.ndarray, noise: str) -> float:
    """The noise std a classical denoiser is told, in [0, 1] units.

    Gaussian: the true sigma. Poisson: the variance of Poisson(lam x)/lam is x/lam, so the
    image-average std is sqrt(mean(x)/lam); mean(x) is estimated by mean(noisy), which is
    unbiased and uses no clean pixel.
    """
    if noise.startswith("p"):
        return float(np.sqrt(max(float(noisy.mean()), 1e-6) / float(noise[1:])))
    return float(noise) / 255.0


# ---- results store: rows written as they complete, so a cut-short run keeps its data --------


class ResultStore:
    """A JSON file {"runs": [...], "rows": [...]}, rewritten atomically after every row."""

    def __init__(self, path: Path, resume: bool):
        self.path = path
        self.data: dict = {"runs": [], "rows": []}
        if path.exists():
            if not resume:
                raise SystemExit(f"{path} exists: pass --resume to continue it, or another --json")
            self.data = json.loads(path.read_text())
        self.run_index = len(self.data["runs"])
        self.data["runs"].append(run_facts())
        self._save()

    def done(self, key: tuple) -> bool:
        return any(_key(r) == key for r in self.data["rows"])

    def add(self, row: dict) -> None:
        self.data["rows"].append({**row, "run": self.run_index})
        self._save()

    @property
    def rows(self) -> list[dict]:
        return self.data["rows"]

    @property
    def runs(self) -> list[dict]:
        return self.data["runs"]

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(self.path.suffix + ".tmp")
        tmp.write_text(json.dumps(self.data, indent=1))
        os.replace(tmp, self.path)


def _key(row: dict) -> tuple:
    return (row["set"], row["image"], row["noise"], row["method"])


# ---- facts about the run ---------------------------------------------------------------------


def cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return platform.processor() or "unknown CPU"


def run_facts() -> dict:
    import torch

    facts = {
        "command": "python " + " ".join(shlex.quote(a) for a in [_rel(sys.argv[0]), *sys.argv[1:]]),
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "torch": torch.__version__,
        "python": platform.python_version(),
    }
    if torch.cuda.is_available():
        facts["gpu"] = torch.cuda.get_device_name(0)
    return facts


def _rel(path: str) -> str:
    try:
        return str(Path(path).resolve().relative_to(REPO))
    except ValueError:
        return path


def describe_runs(runs: list[dict]) -> str:
    lines = []
    for i, r in enumerate(runs):
        gpu = f", GPU {r['gpu']}" if r.get("gpu") else ""
        lines.append(
            f"- run {i}: `{r['command']}` on {r['cpu']} ({r['cores']} cores, {r['torch_threads']} torch "
            f"threads{gpu}), {r['date']}, torch {r['torch']}"
        )
    return "\n".join(lines)


# ---- docs/BENCHMARKS.md ----------------------------------------------------------------------


def replace_section(doc: Path, heading: str, body: str) -> None:
    """Replace the section that starts at ``heading`` (up to the next '## ') or append it.

    Other sections belong to other benchmarks and are left byte for byte as they are.
    """
    text = doc.read_text() if doc.exists() else "# Benchmarks\n"
    section = f"{heading}\n\n{body.strip()}\n"
    lines = text.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if line.rstrip() == heading), None)
    if start is None:
        text = text.rstrip("\n") + "\n\n" + section
    else:
        end = next((j for j in range(start + 1, len(lines)) if lines[j].startswith("## ")), len(lines))
        tail = "".join(lines[end:])
        text = "".join(lines[:start]) + section + ("\n" + tail if tail else "")
    doc.parent.mkdir(parents=True, exist_ok=True)
    tmp = doc.with_suffix(".md.tmp")
    tmp.write_text(text)
    os.replace(tmp, doc)


def fmt(value: float | None, digits: int = 2) -> str:
    return "–" if value is None or not np.isfinite(value) else f"{value:.{digits}f}"


def fit_with_snapshots(y, cfg, every: float, seed: int, device: str):
    """One B2G fit, with the weights copied every ``every`` seconds (clock started just before
    the fit) and the final ones: (result, [(seconds, step, state_dict), ...]). The loop hands
    its network to ``watch`` each step; copying a width-32 net takes milliseconds."""
    import time

    from b2g_deploy.fit import fit

    snaps: list[tuple[float, int, dict]] = []
    next_at = [every]

    def watch(step, net):
        elapsed = time.perf_counter() - t0
        if elapsed >= next_at[0]:
            snaps.append((elapsed, step, {n: v.detach().clone() for n, v in net.state_dict().items()}))
            next_at[0] += every

    t0 = time.perf_counter()
    result = fit(y, cfg, seed=seed, device=device, watch=watch)
    if not snaps or snaps[-1][1] != result.steps:  # the final net, unless just snapshotted
        snaps.append((result.seconds, result.steps, result.net.state_dict()))
    return result, snaps


def as_chw_tensor(array: np.ndarray):
    import torch

    return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))
