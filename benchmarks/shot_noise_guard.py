"""How well the fit's shot-noise guard tells shot noise from Gaussian noise, on photographs no
prior trained on (the CPU pretraining run's held-out ones; never a reported set).

The guard (fit/loop.py, ``_shot_noise_sigma``) judges the noise from the residual of the prior's
estimate: the bright/dark variance ratio (``signal_dependence``, over ``signal_dependence_limit``)
or the share of the fitted var = a * brightness + b that grows with brightness (``shot_share``,
over ``shot_share_limit``). This prints, per noise, the range of both statistics over the
photographs (256x256 top-left crops) and how many each rule flags.

    python benchmarks/shot_noise_guard.py --json benchmarks/results/tune/shot_guard.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.helpers import add_noise, held_out_crops, noise_seed, shipped_rgb_prior  # noqa: E402

NOISES = ("5", "10", "15", "25", "50", "p30", "p100", "mix")  # mix: Poisson lambda 100 + Gaussian sigma 10


def noisy_version(clean: np.ndarray, noise: str, name: str) -> np.ndarray:
    if noise == "mix":
        rng = np.random.default_rng(noise_seed("guard", name, noise))
        return (rng.poisson(100 * clean) / 100 + rng.normal(0, 10 / 255, clean.shape)).astype(np.float32)
    return add_noise(clean, noise, noise_seed("guard", name, noise))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()

    import torch

    from b2g_deploy.config import LossConfig
    from b2g_deploy.fit.ensemble import single_pass
    from b2g_deploy.fit.noise_level import shot_noise_model, shot_share, signal_dependence

    torch.set_num_threads(1)
    limits = LossConfig()
    net = shipped_rgb_prior()
    rows = []
    for name, clean in held_out_crops():
        for noise in NOISES:
            y = torch.from_numpy(noisy_version(clean, noise, name))
            est = single_pass(net, y)
            a, b = shot_noise_model(y, est)
            rows.append({"image": name, "noise": noise, "ratio": signal_dependence(y, est),
                         "share": shot_share(est, a, b)})
    print(f"limits: ratio > {limits.signal_dependence_limit}, share > {limits.shot_share_limit}")
    for noise in NOISES:
        r = np.array([(x["ratio"], x["share"]) for x in rows if x["noise"] == noise])
        by_ratio, by_share = r[:, 0] > limits.signal_dependence_limit, r[:, 1] > limits.shot_share_limit
        print(f"{noise:>5}: ratio {r[:, 0].min():.2f}-{r[:, 0].max():.2f}, share {r[:, 1].min():.2f}-{r[:, 1].max():.2f}; "
              f"flagged {int((by_ratio | by_share).sum())}/{len(r)} (ratio alone {int(by_ratio.sum())})")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
