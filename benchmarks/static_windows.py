"""How much of the neighbours a temporal prior uses (issue 9): still windows, where alignment is
perfect, on held-out photographs (never a reported set).

Each of the first ``--photos`` held-out photographs gives a 256x256 centre crop seen five times
with independent Gaussian noise (seed = photograph index). Rows: the single-frame prior on the
target frame, each temporal prior on the window (no alignment: nothing moves), and the
single-frame prior on the plain mean of the five frames, which is what a fusion that used the
neighbours fully would start from (the prior is trained over a range of noise levels, so it
adapts to the mean's lower one).

    python benchmarks/static_windows.py b2g_deploy/data/prior_rgb_t2.pt
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.helpers import held_out_photographs  # noqa: E402

SIDE, FRAMES = 256, 5


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("priors", nargs="+", type=Path, help="k=2 temporal priors, centred or causal")
    ap.add_argument("--single", type=Path, default=Path("b2g_deploy/data/prior_rgb.pt"))
    ap.add_argument("--photos", type=int, default=8)
    ap.add_argument("--sigmas", default="25,50")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    import torch

    from b2g_deploy.checkpoint import load_checkpoint
    from b2g_deploy.metrics import psnr
    from b2g_deploy.model import denoise

    torch.set_num_threads(args.threads)
    single = load_checkpoint(args.single).net.eval()
    temporal = {p.name: load_checkpoint(p).net.eval() for p in args.priors}
    crops = []
    for _, im in held_out_photographs()[: args.photos]:
        h, w = im.shape[:2]
        crop = im[(h - SIDE) // 2 : (h + SIDE) // 2, (w - SIDE) // 2 : (w + SIDE) // 2]
        crops.append(torch.from_numpy(crop.transpose(2, 0, 1).astype(np.float32) / 255.0))
    sigmas = [float(s) for s in args.sigmas.split(",")]
    results: dict[str, list[float]] = {}
    for sigma in sigmas:
        rows: dict[str, list[float]] = {}
        for i, x in enumerate(crops):
            g = torch.Generator().manual_seed(i)
            ys = [x + torch.randn(x.shape, generator=g) * sigma / 255.0 for _ in range(FRAMES)]
            with torch.no_grad():
                def score(net, inp):
                    return psnr(denoise(net, inp[None])[0].numpy(), x.numpy())

                rows.setdefault(f"single-frame prior ({args.single.name}) on the target", []).append(
                    score(single, ys[FRAMES // 2]))
                for name, net in temporal.items():
                    rows.setdefault(f"temporal prior {name} on the window", []).append(score(net, torch.cat(ys)))
                rows.setdefault("single-frame prior on the mean of the 5 frames", []).append(
                    score(single, torch.stack(ys).mean(0)))
        for name, values in rows.items():
            results.setdefault(name, []).append(float(np.mean(values)))
    print(f"{len(crops)} held-out photographs, {SIDE}x{SIDE} centre crops, {FRAMES} still frames, f(y)")
    print("| network | " + " | ".join(f"σ={s:g}" for s in sigmas) + " |")
    print("|---|" + "---|" * len(sigmas))
    for name, values in results.items():
        print(f"| {name} | " + " | ".join(f"{v:.2f}" for v in values) + " |")


if __name__ == "__main__":
    main()
