"""What the benchmarks share, written once: data, noise with fixed seeds (images and video
frames), the classical peers (OpenCV NLM, BM3D), the results store, machine facts, logging, and
rewriting one section of docs/BENCHMARKS.md.

Noise follows docs/METHOD_NOTES.md "Evaluation": clean in [0, 1]; Gaussian ``clean + N(0, (s/255)^2)``, not
clipped; Poisson ``Poisson(lam * clean) / lam``. Video frames are noised like a camera video
instead (``add_video_noise``): clipped and quantised to 8 bits, seeded by the frame index. The seed of each noisy image is a CRC32 of
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
import time
import zlib
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"  # ../shared/data relative to the repo, as on CI
DOC = REPO / "docs" / "BENCHMARKS.md"
VIDEO = DATA / "video" / "cockatoo.mp4"  # the clip the video benchmarks run on
SETS = ("Kodak24", "BSD68", "Set9")
_IMAGE_SUFFIXES = {".png", ".tif", ".tiff", ".jpg", ".jpeg", ".bmp"}


# ---- data and noise --------------------------------------------------------------------------


# The CPU pretraining run every shipped prior descends from: the photographs it held out were
# left out of the GPU runs' pack too (scripts/gpu_pretrain.sh --pack), so no prior has seen them.
HELD_OUT_BY = REPO / "benchmarks" / "pretrain_runs" / "prior_rgb_long.pt"


def held_out_crops(size: int = 256) -> list[tuple[str, np.ndarray]]:
    """(name, clean (3, size, size) float32 in [0, 1]) top-left crops of ``held_out_photographs``."""
    return [(name, np.ascontiguousarray(image[:size, :size].transpose(2, 0, 1), dtype=np.float32) / 255)
            for name, image in held_out_photographs()]


def shipped_rgb_prior():
    """The shipped RGB prior's network, in eval mode."""
    from b2g_deploy.priors import load_prior_state

    return load_prior_state(REPO / "b2g_deploy" / "data" / "prior_rgb.pt")[0].net.eval()


def held_out_photographs(reference: Path = HELD_OUT_BY, data: Path = DATA) -> list[tuple[str, np.ndarray]]:
    """(name, RGB uint8 (H, W, 3)) of the training photographs ``reference``'s pretraining run
    held out (its meta names them), in that order: where priors and recipes are chosen, never
    on a set the docs report."""
    import cv2
    import torch

    names = torch.load(reference, weights_only=True)["meta"]["corpus"]["holdout"]
    paths = {p.name: p for p in (data / "train").rglob("*") if p.name in set(names)}
    missing = sorted(set(names) - set(paths))
    if missing:
        raise SystemExit(f"held-out photographs not under {data / 'train'}: {', '.join(missing[:3])}")
    return [(n, cv2.cvtColor(cv2.imread(str(paths[n]), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)) for n in names]


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


def add_video_noise(clean: np.ndarray, sigma: float, index: int) -> np.ndarray:
    """A camera video's noisy frame: Gaussian sigma/255 with seed = frame index, clipped to
    [0, 1] and quantised to 8 bits, so every method sees the pixels a decoder would give."""
    rng = np.random.default_rng(index)
    noisy = clean + rng.normal(0.0, sigma / 255.0, clean.shape).astype(np.float32)
    return (np.round(np.clip(noisy, 0, 1) * 255) / 255).astype(np.float32)


def read_video_frames(path: Path, indices: list[int], scale: float = 1.0) -> dict[int, np.ndarray]:
    """Clean frames by index, (C, H, W) float32 RGB, optionally downscaled (INTER_AREA) to fit
    the CPU budget."""
    import cv2

    cap, out, want = cv2.VideoCapture(str(path)), {}, set(indices)
    for i in range(max(indices) + 1):
        ok, bgr = cap.read()
        if not ok:
            break
        if i in want:
            if scale != 1.0:
                bgr = cv2.resize(bgr, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
            out[i] = np.ascontiguousarray(bgr[..., ::-1].transpose(2, 0, 1), dtype=np.float32) / 255.0
    cap.release()
    if not out:
        raise SystemExit(f"could not read {path}")
    return out


def centre_crop(shape: tuple[int, ...], side: int = 256) -> tuple[slice, ...]:
    """The (C, side, side) centre of a (C, H, W) frame: where slow peers (BM3D) and oracle
    choices are run."""
    h, w = shape[-2:]
    top, left = max((h - side) // 2, 0), max((w - side) // 2, 0)
    return (slice(None), slice(top, top + side), slice(left, left + side))


# ---- classical peers -------------------------------------------------------------------------

# h = k * sigma (0..255 scale) for OpenCV NLM, k the best of {0.2..1.5} on kodim01 (colour) and
# BSD68 test001 (grey) per noise level, from `bench_quality.py --nlm-sweep` on this repo's noise
# (2026-11-27). Colour prefers k ~ 0.5 because OpenCV compares patches in Lab, where RGB noise
# shrinks.
NLM_K = {
    3: {"25": 0.5, "50": 0.5, "75": 0.4, "100": 0.4, "p30": 0.5, "p50": 0.5},
    1: {"25": 0.8, "50": 0.8, "75": 0.6, "100": 0.6, "p30": 1.0, "p50": 1.0},
}
NLM_K_DEFAULT = {3: 0.5, 1: 0.8}


def _to_u8(image: np.ndarray) -> np.ndarray:
    """(C, H, W) in [0, 1] -> what OpenCV takes: (H, W, 3) BGR or (H, W) grey, uint8."""
    u8 = np.round(np.clip(image, 0.0, 1.0) * 255.0).astype(np.uint8)
    return np.ascontiguousarray(u8[::-1].transpose(1, 2, 0)) if u8.shape[0] == 3 else u8[0]


def _from_u8(out: np.ndarray) -> np.ndarray:
    chw = out.transpose(2, 0, 1)[::-1] if out.ndim == 3 else out[None]
    return np.ascontiguousarray(chw, dtype=np.float32) / 255.0


def nlm_h(noisy: np.ndarray, h: float) -> np.ndarray:
    """OpenCV NLM with filter strength ``h`` (0..255 scale; hColor = h for colour), 7x7
    patches in a 21x21 window."""
    import cv2

    u8 = _to_u8(noisy)
    if u8.ndim == 3:
        return _from_u8(cv2.fastNlMeansDenoisingColored(u8, None, h, h, 7, 21))
    return _from_u8(cv2.fastNlMeansDenoising(u8, None, h, 7, 21))


def run_nlm(noisy: np.ndarray, noise: str, k: float | None = None) -> tuple[np.ndarray, dict]:
    """OpenCV NLM with h = k * the noise std (k: ``NLM_K``'s tuned value unless given)."""
    channels = noisy.shape[0]
    k = k if k is not None else NLM_K[channels].get(noise, NLM_K_DEFAULT[channels])
    h = k * noise_std(noisy, noise) * 255.0
    return nlm_h(noisy, h), {"h": round(h, 2), "k": k}


def nlm_multi(frames: list[np.ndarray], i: int, h: float) -> np.ndarray:
    """OpenCV's multi-frame NLM (colour), temporal window 5 centred on frame i; truncated (3,
    then 1) at the ends of the clip."""
    import cv2

    tw = min(5, 2 * i + 1, 2 * (len(frames) - 1 - i) + 1)
    lo = i - tw // 2
    imgs = [_to_u8(f) for f in frames[lo : lo + tw]]
    return _from_u8(cv2.fastNlMeansDenoisingColoredMulti(imgs, tw // 2, tw, None, h, h, 7, 21))


def run_bm3d(noisy: np.ndarray, noise: str) -> tuple[np.ndarray, dict]:
    """BM3D (the ``bm3d`` package) told the noise std."""
    import bm3d

    sigma = noise_std(noisy, noise)
    hwc = noisy.transpose(1, 2, 0).astype(np.float64)
    out = bm3d.bm3d_rgb(hwc, sigma) if noisy.shape[0] == 3 else bm3d.bm3d(hwc[..., 0], sigma)[..., None]
    return np.asarray(out, dtype=np.float32).transpose(2, 0, 1), {"sigma_psd": round(sigma, 5)}


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


def log(msg: str) -> None:
    """A timestamped progress line on stderr (stdout carries the tables)."""
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


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
