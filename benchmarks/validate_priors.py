"""Priors side by side on photographs none of them trained on: those the CPU pretraining run held
out (its meta names them; scripts/gpu_pretrain.sh --pack leaves them out of the GPU runs'
corpus too). This is how a new prior is chosen: never on a set the docs report.

Each prior denoises centre crops of those photographs with fixed (seeded) Gaussian noise in one
pass, f(y). A temporal prior sees windows with fixed synthetic motion (its own window shape and
motion range); beside it, the single-frame ``--baseline`` prior on the same windows' target
frames, so the row says what the neighbours add.

    python benchmarks/validate_priors.py b2g_deploy/data/prior_rgb.pt benchmarks/pretrain_runs/prior_rgb_gpu.pt
    python benchmarks/validate_priors.py --sigmas 25,50 --crop 256 b2g_deploy/data/prior_rgb_t2.pt
    python benchmarks/validate_priors.py --align dis PRIOR_T2 PRIOR_T2_ALIGNED  # windows aligned for both
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.helpers import DATA, HELD_OUT_BY, held_out_photographs  # noqa: E402


def held_out_corpus(reference: Path, data: Path):
    """A corpus whose ``held`` images are the photographs ``reference`` held out."""
    from b2g_deploy.io.corpus import Corpus

    photos = held_out_photographs(reference, data)
    return Corpus(images=[], files=[], holdout=[n for n, _ in photos], held=[im for _, im in photos])


def psnr(net, clean: torch.Tensor, noisy: torch.Tensor) -> float:
    from b2g_deploy.fit.pretrain import validate

    torch.set_num_threads(max(1, torch.get_num_threads()))
    return validate(net, (clean, noisy), torch.device("cpu"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("priors", nargs="+", type=Path)
    ap.add_argument("--reference", type=Path, default=HELD_OUT_BY,
                    help="the prior whose held-out photographs are used")
    ap.add_argument("--baseline", type=Path, default=Path("b2g_deploy/data/prior_rgb.pt"),
                    help="single-frame prior run on temporal windows' target frames")
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--sigmas", default="25,50")
    ap.add_argument("--crop", type=int, default=256)
    ap.add_argument("--align", choices=("own", "none", "dis"), default="own",
                    help="a temporal prior's windows: as its own config made them in pretraining (own), "
                    "or the same plain windows (motion up to 3 px, no occluders, no deformation) for every prior, aligned "
                    "or not, to compare priors pretrained in different ways")
    args = ap.parse_args()

    from b2g_deploy.fit.pretrain import validation_set
    from b2g_deploy.fit.synthetic_motion import target_slot
    from b2g_deploy.priors import load_prior_state

    corpus = held_out_corpus(args.reference, args.data)
    sigmas = [float(s) for s in args.sigmas.split(",")]
    baseline = load_prior_state(args.baseline)[0].net.eval()
    print(f"{len(corpus.held)} held-out photographs ({args.reference.name}'s), centre crops {args.crop}, f(y)")
    print("| prior | steps | " + " | ".join(f"sigma {s:g}" for s in sigmas) + " |")
    print("|---|---|" + "---|" * len(sigmas))
    for path in args.priors:
        state, cfg, meta = load_prior_state(path)
        if cfg.temporal_k and args.align != "own":
            cfg = cfg.model_copy(update={"align": args.align, "occluders": 0.0, "deform": 0.0, "motion_max": 3.0})
        net = state.net.eval()
        cells = []
        for sigma in sigmas:
            data = validation_set(corpus, cfg, limit=len(corpus.held), sigma=sigma, crop=args.crop)
            value = psnr(net, *data)
            if cfg.temporal_k:  # what the neighbours add over the single-frame prior on the target
                c, slot = data[0].shape[1], target_slot(cfg)
                base = psnr(baseline, data[0], data[1][:, slot * c : (slot + 1) * c])
                cells.append(f"{value:.2f} ({value - base:+.2f} vs single {base:.2f})")
            else:
                cells.append(f"{value:.2f}")
        steps = f"{meta.get('steps')}" + (f" from {meta['init_from_steps']}" if "init_from_steps" in meta else "")
        kind = f", k={cfg.temporal_k}{' causal' if cfg.causal else ''}, motion {cfg.motion_max:g}" if cfg.temporal_k else ""
        print(f"| {path.name}{kind} | {steps} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
