"""Choose the per-image fit that starts from a prior, on photographs the prior never saw.

The tuning images are the prior's own held-out training photographs (``meta.corpus.holdout``,
under ../shared/data/train), never a set whose quality we report. Each variant is a set of
config changes on top of a base preset; every variant fine-tunes the same prior on the same
noisy crops, and the table gives f(y), the K-pass ensemble and the time.

    python benchmarks/tune_prior_fit.py --prior work/pretrain/prior_rgb.pt --images 4 \
        --noises 25,50 --variants variants.json --out benchmarks/results/tune_prior_fit.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.helpers import DATA, HELD_OUT_BY, add_noise, noise_seed  # noqa: E402


def holdout_images(prior_meta: dict, limit: int, size: int, names: list[str] | None = None, start: int = 0
                   ) -> list[tuple[str, np.ndarray]]:
    from b2g_deploy.io.images import read_image

    names = (names or prior_meta["corpus"]["holdout"])[start : start + limit]
    out = []
    for name in names:
        path = next((DATA / "train").rglob(name))
        img = read_image(path)[0]
        if prior_meta["pretrain_config"].get("grey"):
            img = (0.299 * img[0] + 0.587 * img[1] + 0.114 * img[2])[None]
        h, w = img.shape[1:]
        top, left = (h - min(h, size)) // 2, (w - min(w, size)) // 2
        out.append((name, np.ascontiguousarray(img[:, top : top + size, left : left + size])))
    return out


def run_variant(prior_path: Path, base: str, changes: dict, noisy: np.ndarray, clean: np.ndarray,
                seed: int) -> dict:
    import torch

    from b2g_deploy.checkpoint import load_checkpoint
    from b2g_deploy.config import apply_changes, preset
    from b2g_deploy.fit import ensemble, fit, self_ensemble
    from b2g_deploy.fit.ensemble import single_pass
    from b2g_deploy.metrics import psnr
    from b2g_deploy.model import B2GNet

    cfg = apply_changes(preset(base), changes)
    prior = load_checkpoint(prior_path)
    net = B2GNet(prior.channels, cfg.model)
    net.load_state_dict(prior.net.state_dict())
    y = torch.from_numpy(noisy)
    t0 = time.perf_counter()
    filled = None
    if cfg.iters > 1:
        res = fit(y, cfg, net=net, seed=seed)
        net, filled = res.net, res.filled
    fit_s = time.perf_counter() - t0
    single = single_pass(net, y).numpy()
    row = {"single": psnr(single, clean), "fit_s": round(fit_s, 2)}
    if filled is not None:
        row["filled"] = psnr(filled.numpy(), clean)
    if cfg.self_ensemble > 1:
        row["self_ensemble"] = psnr(self_ensemble(net, y, cfg.self_ensemble).numpy(), clean)
    if cfg.ensemble_passes > 1:
        ens = ensemble(net, y, cfg.ensemble_passes, cfg.mask.rate, seed).numpy()
        row["ensemble"] = psnr(ens, clean)
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prior", type=Path)
    ap.add_argument("--images", type=int, default=4)
    ap.add_argument("--start", type=int, default=0, help="skip this many held-out photographs (a second, "
                    "fresh set to check a choice made on the first)")
    ap.add_argument("--size", type=int, default=256, help="centre crop side")
    ap.add_argument("--noises", default="25,50")
    ap.add_argument("--base", default="scratch", help="preset the variants change")
    ap.add_argument("--variants", type=Path, help="JSON {name: config changes}")
    ap.add_argument("--out", type=Path)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--reference", type=Path, default=HELD_OUT_BY,
                    help="the pretraining run whose held-out photographs are used: a prior continued "
                    "from another (the GPU stage) held out its own, which the earlier stage trained on")
    ap.add_argument("--doc", type=Path, nargs="*", help="only rewrite the docs/BENCHMARKS.md section from these results files")
    args = ap.parse_args()
    if args.doc:
        from benchmarks.helpers import DOC, replace_section

        replace_section(DOC, TUNE_HEADING, render(args.doc))
        return

    import torch

    from b2g_deploy.checkpoint import load_checkpoint

    torch.set_num_threads(args.threads)
    meta = load_checkpoint(args.prior).meta
    held_out = torch.load(args.reference, weights_only=True)["meta"]["corpus"]["holdout"]
    variants = json.loads(args.variants.read_text())
    rows = json.loads(args.out.read_text()) if args.out.exists() else []
    done = {(r["variant"], r["image"], r["noise"], r["prior_steps"]) for r in rows}
    for name, clean in holdout_images(meta, args.images, args.size, held_out, args.start):
        for noise in args.noises.split(","):
            noisy = add_noise(clean, noise, noise_seed("train-holdout", name, noise))
            for vname, changes in variants.items():
                key = (vname, name, noise, meta["steps"])
                if key in done:
                    continue
                row = run_variant(args.prior, args.base, changes, noisy, clean, seed=0)
                row.update(variant=vname, image=name, noise=noise, prior_steps=meta["steps"])
                rows.append(row)
                args.out.write_text(json.dumps(rows, indent=1))
                print(json.dumps(row), flush=True)
    summarize(rows)


CAPTIONS = {  # what a results file's rows were run with, where the variant names do not say it
    "shot_noise.json": " (base: `fast`; run while `fast` recorrupted shot noise with the fitted a*x+b sigma map, "
    "now `loss.shot_noise = \"model\"`; the default is now `keep_prior`, i.e. the prior_only row)",
    "self_ensemble.json": " (base: `fast`, the shipped prior, 8 photographs)",
    "noise_estimate.json": " (base: `fast` before `noise_estimate = lower`; `fast_resid`: sigma from the prior's residual)",
    "noise_lower_check.json": " (`--start 8`: 8 other photographs; `fast` before the change against `fast_lower`)",
    "sigma_scale.json": " (base: `fast`; sigma told 0.9 / 0.8 of the true 25; stopped after 3 photographs)",
    "fit_bf16.json": " (base: `fast` before bf16 became its default, the stage-3 prior; `fast_bf16`: "
    "bf16 autocast + channels-last; `fast_bf16_900`: the same, 900 steps)",
    "sigma_over.json": " (base: `fast`, the stage-3 prior; sigma told the truth (`fast_true`), 1.1 or 1.2 times it; "
    "`fast` estimates it; sigma 25 ran in float32, sigma 50 under bf16)",
    "fit_length.json": " (base: `fast`; 900 steps, and the true sigma; stopped after 3 photographs)",
    "crop96.json": " (base: `fast` before 96x96 crops became its default, bf16, the stage-4 prior; `_c96`: 96x96 "
    "crops, `_c96_400`: the same for 400 steps, `_c128_b2`: 128x128 crops in batches of 2, `_a07` / `_a035`: "
    "recorrupt_alpha 0.7 / 0.35, `_lr5e-4`: lr 5e-4; sigma 50 first, some variants at sigma 50 only)",
    "crop96_check.json": " (`--start 4`: 4 other photographs; `fast` before the change against `fast_c96`)",
}
TUNE_HEADING = "## Choosing the fit from the prior (held-out training photographs, issue 8)"


def render(files: list[Path]) -> str:
    """One table per results file: mean PSNR per (prior steps, sigma, variant), n images."""
    from collections import defaultdict

    out = ["The prior's own held-out photographs (never a reported set), 256x256 centre crops, "
           "Gaussian noise; f(y) after the fit (ensemble / MPI filling where the variant has one). "
           "Variants are config changes on the `scratch` preset's recipe, written as "
           "loss_steps_lr (g: B2G gradient loss, bs: blind-spot loss, r2r: recorrupted); "
           "`_nodrop` / `_ts`: dropout off / T-Standout on; `_bern`: Bernoulli masks; "
           "`_nodist`: distillation off; `_fill`: MPI filling 0.9; `_c128` / `_b8`: 128 crops / batch 8; "
           "`fast_x8`: the `fast` preset itself (`--base fast --images 8`), whose image is f(y) averaged over "
           "the frame's 8 flips/turns (column x8 flips; photographs of the CPU run's holdout).\n",
           "Command: `python benchmarks/tune_prior_fit.py --prior PRIOR --images 4 --noises 25,50 "
           "--variants VARIANTS.json --out benchmarks/results/tune/NAME.json` (one thread, busy 2-core CPU).\n"]
    for f in files:
        rows = json.loads(f.read_text())
        groups: dict[tuple, list[dict]] = defaultdict(list)
        for r in rows:
            groups[(r["prior_steps"], r["noise"], r["variant"])].append(r)
        out += [f"`{f.name}`{CAPTIONS.get(f.name, '')}:\n", "| prior steps | sigma | variant | n | f(y) dB | ensemble | filling | x8 flips | fit s |",
                "|---|---|---|---|---|---|---|---|---|"]
        for (steps, noise, variant), rs in sorted(groups.items()):
            def m(key):
                vals = [r[key] for r in rs if key in r]
                return f"{np.mean(vals):.2f}" if vals else "–"
            out.append(f"| {steps:,} | {noise} | {variant} | {len(rs)} | {m('single')} | {m('ensemble')} "
                       f"| {m('filled')} | {m('self_ensemble')} | {np.mean([r['fit_s'] for r in rs]):.1f} |")
        out.append("")
    return "\n".join(out)


def summarize(rows: list[dict]) -> None:
    from collections import defaultdict

    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in rows:
        groups[(r["prior_steps"], r["noise"], r["variant"])].append(r)
    for (steps, noise, variant), rs in sorted(groups.items()):
        ens = [r["ensemble"] for r in rs if "ensemble" in r]
        fil = [r["filled"] for r in rs if "filled" in r]
        x8 = [r["self_ensemble"] for r in rs if "self_ensemble" in r]
        print(f"prior {steps:6d} sigma {noise:>3} {variant:24s} n={len(rs)} f(y) {np.mean([r['single'] for r in rs]):.2f}"
              f" ens {np.mean(ens) if ens else float('nan'):.2f} filled {np.mean(fil) if fil else float('nan'):.2f}"
              f" flips {np.mean(x8) if x8 else float('nan'):.2f} fit {np.mean([r['fit_s'] for r in rs]):.1f} s")


if __name__ == "__main__":
    main()
