"""The markdown table of bench_quality.py: means per (set, noise, method), the paper beside them.

Only rows that were run appear; the paper's number is "–" where its tables have none. A paired
"Δ vs BM3D" is the mean PSNR difference over the images both methods ran on, so a method run on
fewer images is still compared like for like.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np
from benchmarks.helpers import describe_runs, fmt, noise_label

HEADING = "## Quality (issue 2)"

# docs/METHOD_NOTES.md "Evaluation" (the paper's tables 2 and 3): PSNR dB / SSIM, Gaussian noise.
PAPER_B2G = {
    ("Set9", "25"): (32.01, 0.965), ("Set9", "50"): (29.66, 0.946),
    ("Set9", "75"): (27.85, 0.918), ("Set9", "100"): (26.59, 0.890),
    ("Kodak24", "25"): (32.46, 0.885), ("Kodak24", "50"): (29.36, 0.813),
    ("BSD68", "25"): (28.89, 0.823), ("BSD68", "50"): (26.33, 0.719),
}
PAPER_BM3D = {  # PSNR only
    ("Set9", "25"): 31.67, ("Set9", "50"): 28.95, ("Kodak24", "25"): 31.87, ("Kodak24", "50"): 29.01,
}
_METHOD_NAMES = {"input": "noisy input", "bm3d": "BM3D", "nlm": "OpenCV NLM", "zsn2n": "ZS-N2N (ours)"}


def method_name(key: str) -> str:
    if key.endswith("@gpu"):
        return method_name(key[: -len("@gpu")]) + " on GPU"
    if key.startswith("b2g-ens:"):
        return f"B2G `{key.split(':', 1)[1]}` ensemble"
    if key.startswith("b2g-single:"):
        return f"B2G `{key.split(':', 1)[1]}` single pass f(y)"
    if key.startswith("b2g-x"):  # b2g-x8:fast+...: f(y) averaged over 8 flips/turns, what fit writes
        n, name = key[len("b2g-x"):].split(":", 1)
        return f"B2G `{name}` f(y) over {n} flips/turns"
    if key.startswith("b2g-filled:"):
        return f"B2G `{key.split(':', 1)[1]}` iterative filling"
    if key.startswith("prior-single:"):
        return f"prior f(y), no fit (`{key.split(':', 1)[1]}`)"
    return _METHOD_NAMES.get(key, key)


def _method_order(key: str) -> tuple:
    rank = {"input": 0, "prior-single": 1, "b2g-ens": 1, "b2g-filled": 1, "b2g-single": 2, "b2g-x8": 2, "bm3d": 3, "nlm": 4,
            "zsn2n": 5}
    return (rank.get(key.split(":")[0].split("@")[0], 9), key)


def _noise_order(noise: str) -> tuple:
    if noise == "real":  # camera noise (PolyU62) after every synthetic level
        return (2, 0.0)
    return (int(noise.startswith("p")), float(noise.lstrip("p")))


def paper_cell(set_name: str, noise: str, key: str) -> str:
    if key.startswith("b2g") and (set_name, noise) in PAPER_B2G:
        p, s = PAPER_B2G[(set_name, noise)]
        return f"{p:.2f} / {s:.3f}"
    if key == "bm3d" and (set_name, noise) in PAPER_BM3D:
        return f"{PAPER_BM3D[(set_name, noise)]:.2f} / –"
    return "–"


def _paired_delta(rows: list[dict], bm3d: dict[str, float]) -> float | None:
    diffs = [r["psnr"] - bm3d[r["image"]] for r in rows if r["image"] in bm3d]
    return float(np.mean(diffs)) if diffs else None


def render_quality(rows: list[dict], runs: list[dict], json_path: Path, notes: str | None = None) -> str:
    if not rows:
        return "No rows yet: nothing has been run.\n\n" + describe_runs(runs)
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in rows:
        groups[(r["set"], r["noise"], r["method"])].append(r)
    set_order = list(dict.fromkeys(r["set"] for r in rows))
    keys = sorted(groups, key=lambda k: (set_order.index(k[0]), _noise_order(k[1]), _method_order(k[2])))
    lines = [
        "| set | noise | method | n | PSNR dB | SSIM | fit s / image | steps | Δ PSNR vs BM3D "
        "(same images) | paper PSNR / SSIM |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for set_name, noise, key in keys:
        g = groups[(set_name, noise, key)]
        bm3d = {r["image"]: r["psnr"] for r in groups.get((set_name, noise, "bm3d"), [])}
        delta = _paired_delta(g, bm3d) if key != "bm3d" else None
        steps = [r["steps"] for r in g if "steps" in r]
        seconds = "–" if key == "input" else fmt(np.mean([r["seconds"] for r in g]), 1)
        lines.append(
            f"| {set_name} | {noise_label(noise)} | {method_name(key)} | {len(g)} "
            f"| {fmt(np.mean([r['psnr'] for r in g]))} | {fmt(np.mean([r['ssim'] for r in g]), 3)} "
            f"| {seconds} | {fmt(np.mean(steps), 0) if steps else '–'} "
            f"| {'–' if delta is None else f'{delta:+.2f}'} | {paper_cell(set_name, noise, key)} |"
        )
    images = {s: sorted({r["image"] for r in rows if r["set"] == s}) for s in set_order}
    image_lines = "\n".join(f"- {s}: {', '.join(v)}" for s, v in images.items())
    return "\n".join([*lines, "", notes or _NOTES, "", "Images run:", image_lines, "",
                      f"Raw per-image rows: `{json_path}`. Runs that wrote these rows:",
                      describe_runs(runs)])


_NOTES = """Notes
- Noise: Gaussian `clean + N(0, (σ/255)²)`, not clipped; Poisson `Poisson(λ·clean)/λ`; one
  fixed seed per (set, image, noise), identical for every method. PSNR / SSIM (scikit-image)
  on the output clipped to [0, 1], all channels (RGB, not Y), against the clean image.
- B2G: one fit per image with the named preset; "ensemble" and "single pass f(y)" are the two
  outputs of that same network, so they share the fit seconds (inference time is in the JSON).
  "steps" is how many iterations the fit ran (fewer than the preset's if it has a time budget).
- BM3D: the `bm3d` package, `bm3d_rgb` (colour) / `bm3d` (grey), sigma_psd = σ/255. For Poisson
  it is told the image-average noise std sqrt(mean(noisy)/λ), without a variance-stabilising
  transform, so it under-smooths bright areas and over-smooths dark ones.
- OpenCV NLM: `fastNlMeansDenoisingColored` (grey: `fastNlMeansDenoising`) on the noisy image
  clipped and rounded to uint8, template 7, search 21, h = hColor = k·σ with k per noise level
  the best of {0.2 … 1.5} on kodim01 (colour) / BSD68 test001 (grey) (`--nlm-sweep`): colour
  k = 0.5 (0.4 at σ ≥ 75), grey k = 0.8 (0.6 at σ ≥ 75, 1.0 for Poisson). Tuned on one image
  of the test set, so it is if anything flattered. For Poisson σ is the same estimate as BM3D's.
- Rows marked "on GPU" ran with `--device cuda` on the GPU named in the run list below; their
  fit seconds are that GPU's, not this CPU's. A preset name with "-Nit" ran N iterations.
- ZS-N2N: our implementation (benchmarks/zsn2n.py) of Mansour & Heckel 2023: two diagonal
  downsamplers, a 2-hidden-layer 48-channel conv net, residual + consistency loss, Adam 1e-3,
  step decay; "steps" is its iteration count (the paper's is 2000).
- The paper's numbers (docs/METHOD_NOTES.md "Evaluation") are for the paper's B2G and BM3D, not this run.
  Its Set9 has 9 images; ours has the 5 that could be traced (F16 and kodim01/02/03/12), so the
  Set9 comparison is indicative only. Its Kodak24 may be a different variant (FFDNet ships
  500x500 crops); ours is the full 768x512 set. Its Poisson numbers are on Planaria
  (fluorescence microscopy), so no paper number stands beside our Poisson rows."""
