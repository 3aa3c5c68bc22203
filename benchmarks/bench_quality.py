"""Denoising quality on Kodak24, BSD68 (grey) and Set9 (5 of 9), against the paper and peers.

    python benchmarks/bench_quality.py --sets Kodak24,BSD68,Set9 --noises 25,50,75,100,p30,p50 \
        --methods b2g,bm3d,nlm,zsn2n --preset fast --limit 6 --json runs/quality_fast.json --resume

Every method sees the same noisy image: the seed is fixed per (set, image, noise) (helpers.py;
Gaussian not clipped, Poisson Poisson(lam x)/lam). Metrics follow docs/METHOD_NOTES.md "Evaluation": PSNR and
scikit-image SSIM of the output clipped to [0, 1], on all channels.

Methods
- b2g: one fit with ``--preset``, then both outputs of that one network: the stochastic
  ensemble (the preset's ensemble_passes) and the deterministic single pass f(y) that export
  ships. The fit seconds are shared; inference seconds are in the JSON.
- bm3d: the ``bm3d`` package (bm3d_rgb for colour, bm3d for grey) told sigma_psd = s/255; for
  Poisson the image-average std sqrt(mean(noisy)/lam) (no variance-stabilising transform).
- nlm: OpenCV fastNlMeansDenoisingColored (grey: fastNlMeansDenoising) on the noisy image
  clipped and rounded to uint8, template 7, search 21, h = hColor = k * sigma with k from
  helpers.NLM_K (best of a sweep on one image; ``--nlm-sweep`` reruns it).
- zsn2n: benchmarks/zsn2n.py, our implementation of Zero-Shot Noise2Noise.
A row "noisy input" (the PSNR of the noisy image) is always added: it is free and shows
whether a method helped at all.

Rows go to ``--json`` as each completes (atomic rewrite), so a run cut short keeps its data and
``--resume`` skips what is done. The table in ``--output`` is rebuilt from every row in the
JSON, and lists every command that contributed; ``--table-only`` rebuilds it without running.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a file: make `benchmarks` importable
from benchmarks.helpers import (  # noqa: E402
    DATA,
    DOC,
    ResultStore,
    add_noise,
    as_chw_tensor,
    list_images,
    noise_seed,
    parse_noises,
    run_bm3d,
    run_nlm,
)
from benchmarks.quality_table import HEADING, render_quality  # noqa: E402

SWEEP_K = (0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0, 1.2, 1.5)


def run_zsn2n(noisy: np.ndarray, args, seed: int) -> tuple[np.ndarray, float, dict]:
    from benchmarks.zsn2n import denoise_zsn2n

    out, seconds = denoise_zsn2n(noisy, iters=args.zsn2n_iters, seed=seed, device=args.device)
    return out, seconds, {"steps": args.zsn2n_iters}


def run_b2g(noisy: np.ndarray, args, seed: int) -> list[tuple[str, np.ndarray, float, dict]]:
    from b2g_deploy.fit import ensemble, fit, single_pass

    cfg = b2g_config(args)
    y = as_chw_tensor(noisy)
    result = fit(y, cfg, seed=seed, device=args.device)
    if result.interrupted:
        raise KeyboardInterrupt  # a half fit is not a result: stop and keep the rows so far
    y = y.to(args.device)
    t0 = time.perf_counter()
    ens = ensemble(result.net, y, cfg.ensemble_passes, rate=cfg.mask.rate, seed=seed)
    t_ens = time.perf_counter() - t0
    t0 = time.perf_counter()
    one = single_pass(result.net, y)
    t_one = time.perf_counter() - t0
    common = {"steps": result.steps, "stopped_by_budget": result.stopped_by_budget}
    ens_key, single_key = method_keys("b2g", args)
    return [
        (ens_key, ens.cpu().numpy(), result.seconds,
         {**common, "passes": cfg.ensemble_passes, "infer_seconds": t_ens}),
        (single_key, one.cpu().numpy(), result.seconds, {**common, "infer_seconds": t_one}),
    ]


def b2g_config(args):
    """The preset, with ``--iters`` / ``--time-budget`` when given."""
    from b2g_deploy.config import preset

    return preset(args.preset).with_overrides(iters=args.iters, time_budget=args.time_budget)


def b2g_label(args) -> str:
    """The preset's name, plus what was changed: rows of a changed preset never merge with its own."""
    label = args.preset
    if args.iters is not None:
        label += f"-{args.iters}it"
    if args.time_budget is not None:
        label += f"-{args.time_budget:g}s"
    return label


def _method_outputs(method, noisy, noise, args, seed):
    """[(method key, output, fit seconds, extra)] for one method on one noisy image."""
    if method == "b2g":
        return run_b2g(noisy, args, seed)
    if method == "zsn2n":
        out, seconds, extra = run_zsn2n(noisy, args, seed)
        return [(method_keys("zsn2n", args)[0], out, seconds, extra)]
    fn = {"bm3d": run_bm3d, "nlm": run_nlm}[method]
    t0 = time.perf_counter()
    out, extra = fn(noisy, noise)
    return [(method, out, time.perf_counter() - t0, extra)]


def method_keys(method: str, args) -> list[str]:
    """Row keys of a method. Methods that run on ``--device`` carry "@gpu" when it is CUDA, so
    GPU seconds never average with CPU ones."""
    on_gpu = "@gpu" if str(args.device).startswith("cuda") else ""
    if method == "b2g":
        return [f"b2g-ens:{b2g_label(args)}{on_gpu}", f"b2g-single:{b2g_label(args)}{on_gpu}"]
    if method == "zsn2n":
        return [f"zsn2n{on_gpu}"]
    return [method]


def run(args) -> None:
    from b2g_deploy.io.images import read_image
    from b2g_deploy.metrics import psnr, ssim

    store = ResultStore(args.json, args.resume)
    try:
        for set_name in args.sets:
            for path in list_images(args.data, set_name, args.limit):
                clean = None
                for noise in args.noises:
                    todo = [m for m in ["input", *args.methods]
                            if not all(store.done((set_name, path.name, noise, k)) for k in method_keys(m, args))]
                    if not todo:
                        continue
                    clean = clean if clean is not None else read_image(path)[0]
                    seed = noise_seed(set_name, path.name, noise)
                    noisy = add_noise(clean, noise, seed)
                    for method in todo:
                        outputs = ([("input", noisy, 0.0, {})] if method == "input"
                                   else _method_outputs(method, noisy, noise, args, seed))
                        for key, out, seconds, extra in outputs:
                            row = {"set": set_name, "image": path.name, "noise": noise, "method": key,
                                   "psnr": psnr(out, clean), "ssim": ssim(out, clean),
                                   "seconds": seconds, "seed": seed, **extra}
                            store.add(row)
                            print(f"{set_name}/{path.name} {noise:>4} {key:<18} {row['psnr']:6.2f} dB "
                                  f"{row['ssim']:.3f} {seconds:7.1f} s", flush=True)
    except KeyboardInterrupt:
        print("interrupted: rows so far are in", args.json, "- rerun with --resume to continue")
    finally:
        write_table(store.rows, store.runs, args)


def write_table(rows, runs, args) -> None:
    if args.output is None:
        return
    from benchmarks.helpers import replace_section

    replace_section(args.output, HEADING, render_quality(rows, runs, args.json))
    print("table written to", args.output)


def nlm_sweep(args) -> None:
    """Print PSNR for each k in SWEEP_K on the first image of each set: where NLM_K comes from."""
    from b2g_deploy.io.images import read_image
    from b2g_deploy.metrics import psnr

    for set_name in args.sets:
        path = list_images(args.data, set_name, 1)[0]
        clean = read_image(path)[0]
        for noise in args.noises:
            noisy = add_noise(clean, noise, noise_seed(set_name, path.name, noise))
            scores = {k: psnr(run_nlm(noisy, noise, k)[0], clean) for k in SWEEP_K}
            best = max(scores, key=scores.get)
            cells = " ".join(f"{k}:{v:.2f}" for k, v in scores.items())
            print(f"{set_name}/{path.name} {noise:>4}  {cells}  best k={best}", flush=True)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sets", default="Kodak24,BSD68,Set9", type=lambda s: s.split(","))
    p.add_argument("--noises", default="25,50,75,100,p30,p50", type=parse_noises)
    p.add_argument("--limit", type=int, default=None, help="first N images of each set")
    p.add_argument("--methods", default="b2g,bm3d,nlm,zsn2n", type=lambda s: s.split(","))
    p.add_argument("--preset", default="scratch", help="B2G preset (scratch, paper, tiny; fast is bench_prior.py)")
    p.add_argument("--iters", type=int, default=None, help="B2G iterations instead of the preset's")
    p.add_argument("--time-budget", type=float, default=None, help="B2G seconds per fit (caps --iters)")
    p.add_argument("--zsn2n-iters", type=int, default=2000, help="ZS-N2N iterations (paper: 2000)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    p.add_argument("--data", type=Path, default=DATA, help="folder holding Kodak24/, BSD68/, Set9/")
    p.add_argument("--output", type=Path, default=DOC, help="markdown file whose section is rewritten")
    p.add_argument("--no-doc", dest="output", action="store_const", const=None)
    p.add_argument("--json", type=Path, default=Path("runs/quality.json"), help="raw per-image rows")
    p.add_argument("--resume", action="store_true", help="continue --json, skipping finished rows")
    p.add_argument("--table-only", action="store_true", help="rebuild the table from --json only")
    p.add_argument("--nlm-sweep", action="store_true", help="print NLM PSNR against h/sigma and exit")
    args = p.parse_args(argv)
    unknown = set(args.methods) - {"b2g", "bm3d", "nlm", "zsn2n"}
    if unknown:
        p.error(f"unknown method(s) {', '.join(sorted(unknown))}; choose from b2g,bm3d,nlm,zsn2n")
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.nlm_sweep:
        return nlm_sweep(args)
    if args.table_only:
        import json

        data = json.loads(args.json.read_text())
        return write_table(data["rows"], data["runs"], args)
    if "b2g" in args.methods:
        b2g_config(args)  # an unknown preset or bad override fails now, not after an hour of BM3D
    run(args)


if __name__ == "__main__":
    main()
