"""One B2G fit of a config variant on one image, scored along the way: what limits the quality?

    python benchmarks/bench_sweep.py --name "dropout none" --change '{"model": {"dropout": "none"}}' \
        --iters 2000 --time-budget 120 --every 15 --json runs/sweep_dropout.json

The variant is the `fast` preset (or ``--preset``) with ``--change`` merged in key by key, as
`b2g-deploy fit --config` does (b2g_deploy.config.apply_changes). Weights are copied every ``--every`` seconds of fitting and
scored after the fit as f(y) and an 8-pass ensemble; the last one also as a 40-pass ensemble
(the paper's count). Several variants run side by side as separate processes (one JSON each) on
a GPU, whose time each launch-bound fit barely uses. Same noisy image as bench_quality.py.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a file: make `benchmarks` importable
from benchmarks.helpers import DATA, add_noise, as_chw_tensor, fit_with_snapshots, noise_seed, run_facts  # noqa: E402

SET = "Kodak24"


def variant_config(preset_name: str, change: dict, iters: int | None, budget: float | None):
    from b2g_deploy.config import apply_changes, preset

    extra = {"time_budget": budget, **({"iters": iters} if iters is not None else {})}
    return apply_changes(preset(preset_name), {**change, **extra}, source="--change")


def run(args) -> dict:
    from b2g_deploy.fit import ensemble, single_pass
    from b2g_deploy.io.images import read_image
    from b2g_deploy.metrics import psnr
    from b2g_deploy.model import B2GNet

    cfg = variant_config(args.preset, json.loads(args.change), args.iters, args.time_budget)
    clean = read_image(args.data / SET / args.image)[0]
    noisy = add_noise(clean, args.noise, noise_seed(SET, args.image, args.noise))
    y = as_chw_tensor(noisy)
    _, snaps = fit_with_snapshots(y, cfg, args.every, args.seed, args.device)
    yd = y.to(args.device)
    points = []
    for i, (seconds, step, state) in enumerate(snaps):
        net = B2GNet(y.shape[0], cfg.model).to(args.device)
        net.load_state_dict(state)
        point = {"seconds": round(seconds, 1), "steps": step,
                 "psnr_single": psnr(single_pass(net, yd).cpu().numpy(), clean),
                 "psnr_ens8": psnr(ensemble(net, yd, 8, rate=cfg.mask.rate, seed=args.seed).cpu().numpy(), clean)}
        if i == len(snaps) - 1:
            point["psnr_ens40"] = psnr(ensemble(net, yd, 40, rate=cfg.mask.rate, seed=args.seed).cpu().numpy(), clean)
        points.append(point)
        print(f"{args.name:<28} {seconds:6.1f} s step {step:5d}  f(y) {point['psnr_single']:.2f}  "
              f"ens8 {point['psnr_ens8']:.2f}" + (f"  ens40 {point['psnr_ens40']:.2f}" if "psnr_ens40" in point else ""),
              flush=True)
    return {"name": args.name, "change": json.loads(args.change), "preset": args.preset,
            "image": args.image, "noise": args.noise, "input_psnr": psnr(noisy, clean),
            "config": cfg.model_dump(), "points": points, "facts": run_facts()}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--name", required=True)
    p.add_argument("--change", default="{}", help="JSON merged into the preset's config")
    p.add_argument("--preset", default="scratch")
    p.add_argument("--image", default="kodim03.png")
    p.add_argument("--noise", default="25")
    p.add_argument("--iters", type=int, default=None)
    p.add_argument("--time-budget", type=float, default=None, help="seconds; the schedule follows time")
    p.add_argument("--every", type=float, default=15.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--data", type=Path, default=DATA)
    p.add_argument("--json", type=Path, required=True)
    return p.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    out = run(args)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
