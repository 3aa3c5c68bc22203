"""Ablation of B2G's parts on Kodak images at sigma 50, every variant at the same iterations.

    python benchmarks/bench_ablation.py --images 4 --json runs/ablation.json --resume

Base = the `fast` preset with a fixed iteration count (its own unless --iters) and no time budget (so a slower variant
is not cut short: the comparison is per step, not per second; seconds are reported too). Each
variant flips one setting of the base (whatever the preset holds now):
- mask: dual vs bernoulli;
- loss: gradient-regularized vs blind-spot only;
- dropout: T-Standout vs standard vs none (the paper's figure 13 direction);
- stop_gradient_full_pass True/False, and distill_weight 0/1. These two decide whether the
  deterministic single pass f(y) learns to denoise (docs/METHOD_NOTES.md, "Loss").
For every variant both outputs are scored: the stochastic ensemble and the single pass f(y).
Same noisy images and seeds as bench_quality.py.
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a file: make `benchmarks` importable
from benchmarks.helpers import DATA, DOC, ResultStore, add_noise, as_chw_tensor, describe_runs, fmt, list_images, noise_seed  # noqa: E402

HEADING = "## Ablation (issue 2)"
SET = "Kodak24"


def variants(base) -> dict[str, dict]:
    """name -> sub-config changes, each the opposite of the base's setting (whole sub-dicts,
    since nested overrides replace them). Derived from the preset so that retuning it keeps
    the ablation meaningful."""
    m, k, loss = base.model.model_dump(), base.mask.model_dump(), base.loss.model_dump()
    other_mask = "bernoulli" if k["kind"] == "dual" else "dual"
    other_loss = "blindspot" if loss["kind"] == "gradient" else "gradient"
    distill = 0.0 if loss["distill_weight"] else 1.0
    out = {
        "base": {},
        f"mask: {other_mask}": {"mask": {**k, "kind": other_mask}},
        f"loss: {other_loss}": {"loss": {**loss, "kind": other_loss}},
    }
    for dropout in ("none", "standard", "tstandout"):
        if dropout != m["dropout"]:
            out[f"dropout: {dropout}"] = {"model": {**m, "dropout": dropout}}
    sg = not loss["stop_gradient_full_pass"]
    out[f"stop_gradient_full_pass: {sg}"] = {"loss": {**loss, "stop_gradient_full_pass": sg}}
    out[f"distill_weight: {distill:g}"] = {"loss": {**loss, "distill_weight": distill}}
    return out


def describe_base(cfg) -> str:
    return (f"mask {cfg.mask.kind}, loss {cfg.loss.kind} (omega {cfg.loss.omega}, gamma {cfg.loss.gamma}), "
            f"dropout {cfg.model.dropout}, stop_gradient_full_pass {cfg.loss.stop_gradient_full_pass}, "
            f"distill_weight {cfg.loss.distill_weight:g}; width {cfg.model.width}, norm {cfg.model.norm}, crop {cfg.crop}, "
            f"batch {cfg.batch}, lr {cfg.lr:g} {cfg.lr_schedule}, {cfg.ensemble_passes}-pass ensemble")


def base_config(iters: int | None):
    from b2g_deploy.config import FitConfig, preset

    fast = preset("scratch")
    # with_overrides drops None values, so time_budget=None has to go through model_validate.
    return FitConfig.model_validate({**fast.model_dump(), "time_budget": None, "iters": iters or fast.iters})


def run(args) -> None:
    from b2g_deploy.config import FitConfig
    from b2g_deploy.fit import ensemble, fit, single_pass
    from b2g_deploy.io.images import read_image
    from b2g_deploy.metrics import psnr

    base = base_config(args.iters)
    args.iters = base.iters
    chosen = {n: c for n, c in variants(base).items() if not args.variants or n.split(":")[0] in args.variants
              or n.startswith("base")}
    store = ResultStore(args.json, args.resume)
    try:
        for path in list_images(args.data, SET)[args.start : args.start + args.images]:
            clean = read_image(path)[0]
            seed = noise_seed(SET, path.name, args.noise)
            noisy = add_noise(clean, args.noise, seed)
            y = as_chw_tensor(noisy)
            for name, change in chosen.items():
                # The base's description is in the key: rows of a since-retuned preset are not reused.
                key = (SET, path.name, args.noise, f"{name}|{args.iters}|{describe_base(base)}")
                if store.done(key):
                    continue
                cfg = FitConfig.model_validate({**base.model_dump(), **change})
                result = fit(y, cfg, seed=seed, device=args.device)
                if result.interrupted:
                    raise KeyboardInterrupt
                yd = y.to(args.device)
                ens = ensemble(result.net, yd, cfg.ensemble_passes, rate=cfg.mask.rate, seed=seed)
                one = single_pass(result.net, yd)
                row = {"base": describe_base(base), "set": SET, "image": path.name, "noise": args.noise, "method": key[3],
                       "variant": name, "iters": args.iters, "steps": result.steps,
                       "seconds": result.seconds, "seed": seed,
                       "psnr_ensemble": psnr(ens.cpu().numpy(), clean),
                       "psnr_single": psnr(one.cpu().numpy(), clean)}
                store.add(row)
                print(f"{path.name} {name:<42} ens {row['psnr_ensemble']:6.2f}  f(y) "
                      f"{row['psnr_single']:6.2f}  {result.seconds:6.1f} s", flush=True)
    except KeyboardInterrupt:
        print("interrupted: rows so far are in", args.json, "- rerun with --resume to continue")
    finally:
        write_table(store.rows, store.runs, args)


def write_table(rows: list[dict], runs: list[dict], args) -> None:
    if args.output is None:
        return
    from benchmarks.helpers import replace_section

    # What the rows mean is written by a person, after a run, in a file beside the rows: a
    # re-render keeps it, and a new run shows it is to be re-read.
    reading = args.json.with_name(args.json.stem + "_reading.md")
    lead = reading.read_text().strip() + "\n\n" if reading.is_file() else ""
    replace_section(args.output, HEADING, lead + render(rows, runs, args.json))
    print("table written to", args.output)


def render(rows: list[dict], runs: list[dict], json_path: Path) -> str:
    if not rows:
        return "No rows yet: nothing has been run.\n\n" + describe_runs(runs)
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in rows:
        groups[(r.get("base", ""), r["iters"], r["noise"], r["variant"])].append(r)
    lines = ["| iters | noise | variant | n | ensemble PSNR dB | Δ vs base | f(y) PSNR dB | Δ vs base "
             "| fit s / image |", "|---|---|---|---|---|---|---|---|---|"]
    for desc, iters, noise, variant in sorted(groups, key=lambda g: g[:3]):
        g = groups[(desc, iters, noise, variant)]
        base = {r["image"]: r for r in groups.get((desc, iters, noise, "base"), [])}
        cells = []
        for field in ("psnr_ensemble", "psnr_single"):
            paired = [r[field] - base[r["image"]][field] for r in g if r["image"] in base]
            delta = "–" if not paired or variant.startswith("base") else f"{np.mean(paired):+.2f}"
            cells += [fmt(np.mean([r[field] for r in g])), delta]
        lines.append(f"| {iters} | σ={noise} | {variant} | {len(g)} | {' | '.join(cells)} "
                     f"| {fmt(np.mean([r['seconds'] for r in g]), 1)} |")
    images = sorted({r["image"] for r in rows})
    bases = "; ".join(sorted({r.get("base", "?") for r in rows}))
    notes = (
        "Each variant flips one setting of the base, the `fast` preset run for a fixed number of "
        f"iterations with no time budget ({bases}). Δ is the mean "
        "paired difference to the base over the same images. Ensemble = the preset's stochastic "
        "passes; f(y) = the deterministic single pass that export ships. Noise as in the quality "
        f"table (fixed seed per image). Images: {', '.join(images)}.\n\n"
        f"Raw rows: `{json_path}`. Runs that wrote these rows:\n{describe_runs(runs)}"
    )
    return "\n".join(lines) + "\n\n" + notes


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--images", type=int, default=4, help="N Kodak24 images (the first, unless --start)")
    p.add_argument("--start", type=int, default=0, help="skip this many images (to split a run over processes)")
    p.add_argument("--iters", type=int, default=None, help="iterations for every variant (default: fast's)")
    p.add_argument("--noise", default="50", help="sigma on the 0..255 scale (or p<lambda>)")
    p.add_argument("--variants", type=lambda s: s.split(","), default=None,
                   help="subset by prefix: mask,loss,dropout,stop_gradient_full_pass,distill_weight")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--data", type=Path, default=DATA)
    p.add_argument("--output", type=Path, default=DOC)
    p.add_argument("--no-doc", dest="output", action="store_const", const=None)
    p.add_argument("--json", type=Path, default=Path("runs/ablation.json"))
    p.add_argument("--resume", action="store_true")
    p.add_argument("--table-only", action="store_true", help="rebuild the table from --json only")
    return p.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    if args.table_only:
        import json

        data = json.loads(args.json.read_text())
        return write_table(data["rows"], data["runs"], args)
    run(args)


if __name__ == "__main__":
    main()
