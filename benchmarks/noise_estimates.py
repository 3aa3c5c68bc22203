"""Noise-level estimates against the true sigma, on photographs no prior trained on (the CPU
pretraining run's held-out ones, 256x256 top-left crops; never a reported set).

Two estimators of fit/noise_level.py: the finest Haar band (``estimate_sigma``) and the robust
std of the shipped prior's residual y - prior(y) (``residual_sigma``, before and after its
``RESIDUAL_GAIN``). The recorrupted loss of the `fast` fit uses one of them as its sigma.

    python benchmarks/noise_estimates.py --json benchmarks/results/tune/noise_estimates.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.helpers import add_noise, held_out_crops, noise_seed, shipped_rgb_prior  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sigmas", default="5,15,25,50")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()

    import torch

    from b2g_deploy.fit.ensemble import single_pass
    from b2g_deploy.fit.noise_level import RESIDUAL_GAIN, estimate_sigma, residual_sigma

    torch.set_num_threads(1)
    net = shipped_rgb_prior()
    rows = []
    for name, clean in held_out_crops():
        for sigma in args.sigmas.split(","):
            y = torch.from_numpy(add_noise(clean, sigma, noise_seed("sigma", name, sigma)))
            rows.append({"image": name, "sigma": float(sigma), "wavelet": estimate_sigma(y) * 255,
                         "residual": residual_sigma(y, single_pass(net, y)) * 255})
    print(f"sigma | wavelet mean (min-max) | residual x {RESIDUAL_GAIN} mean (min-max) | unscaled mean")
    for sigma in sorted({r["sigma"] for r in rows}):
        w = np.array([r["wavelet"] for r in rows if r["sigma"] == sigma])
        p = np.array([r["residual"] for r in rows if r["sigma"] == sigma])
        print(f"{sigma:5.0f} | {w.mean():.2f} ({w.min():.2f}-{w.max():.2f}) | {p.mean():.2f} ({p.min():.2f}-{p.max():.2f})"
              f" | {p.mean() / RESIDUAL_GAIN:.2f}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
