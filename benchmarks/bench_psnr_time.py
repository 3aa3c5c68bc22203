"""PSNR against fitting time on one Kodak image at sigma 25: B2G `fast`, ZS-N2N, BM3D's point.

    python benchmarks/bench_psnr_time.py --image kodim03.png --every 10

B2G: ONE `fast` fit (the preset's own iterations or time budget and schedule, unchanged).
A progress callback copies the weights every ``--every`` seconds of fitting; copying a
width-32 net takes milliseconds, so the fit itself is not slowed. After the fit every snapshot is scored as the single pass f(y)
and as an 8-pass ensemble. The callback needs the network the loop builds, so the loop's B2GNet
constructor is wrapped to record the instance (nothing else about the fit changes; passing
our own net would switch the loop to its fine-tune path, which rebuilds the dual mask at once).
ZS-N2N: one fit of ``--zsn2n-iters``, scored at several iteration counts; scoring time is
excluded from its clock. BM3D: one run, its wall time. Writes docs/psnr_vs_time.png, the raw
points to ``--json`` and the section "PSNR against fitting time (issue 2)" of docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a file: make `benchmarks` importable
from benchmarks.helpers import DATA, DOC, REPO, add_noise, as_chw_tensor, describe_runs, fit_with_snapshots, noise_seed, run_facts  # noqa: E402

HEADING = "## PSNR against fitting time (issue 2)"
SET, NOISE = "Kodak24", "25"
ZSN2N_POINTS = (25, 50, 100, 200, 400, 800, 1200, 1600, 2000)


def b2g_curve(y, clean, args) -> tuple[list[dict], dict]:
    from b2g_deploy.config import preset
    from b2g_deploy.fit import ensemble, single_pass
    from b2g_deploy.metrics import psnr
    from b2g_deploy.model import B2GNet

    cfg = preset(args.preset).with_overrides(iters=args.iters)
    _, snaps = fit_with_snapshots(y, cfg, args.every, args.seed, args.device)
    points = []
    for seconds, step, state in snaps:
        net = B2GNet(y.shape[0], cfg.model).to(args.device)
        net.load_state_dict(state)
        yd = y.to(args.device)
        points.append({"seconds": seconds, "steps": step,
                       "psnr_single": psnr(single_pass(net, yd).cpu().numpy(), clean),
                       "psnr_ensemble": psnr(ensemble(net, yd, 8, rate=cfg.mask.rate, seed=args.seed)
                                             .cpu().numpy(), clean)})
        print(f"B2G {seconds:6.1f} s  step {step:5d}  f(y) {points[-1]['psnr_single']:.2f}  "
              f"ens8 {points[-1]['psnr_ensemble']:.2f}", flush=True)
    meta = {"preset": args.preset, "iters": cfg.iters, "time_budget": cfg.time_budget, "how": "progress-callback snapshots"}
    return points, meta


def zsn2n_curve(noisy, clean, args) -> list[dict]:
    import torch
    from benchmarks.zsn2n import apply, denoise_zsn2n

    from b2g_deploy.metrics import psnr

    points: list[dict] = []
    y = torch.from_numpy(noisy)[None].to(args.device)

    def score(step, seconds, net):
        points.append({"steps": step, "seconds": seconds,
                       "psnr": psnr(apply(net, y)[0].cpu().numpy(), clean)})
        print(f"ZS-N2N {seconds:6.1f} s  step {step:5d}  {points[-1]['psnr']:.2f}", flush=True)

    marks = [s for s in ZSN2N_POINTS if s < args.zsn2n_iters] + [args.zsn2n_iters]
    denoise_zsn2n(noisy, iters=args.zsn2n_iters, seed=args.seed, device=args.device,
                  checkpoints={s: score for s in marks})
    return points


def run(args) -> dict:
    from b2g_deploy.io.images import read_image
    from b2g_deploy.metrics import psnr

    path = args.data / SET / args.image
    clean = read_image(path)[0]
    noisy = add_noise(clean, NOISE, noise_seed(SET, args.image, NOISE))
    out: dict = {"image": args.image, "noise": NOISE, "facts": run_facts(),
                 "input_psnr": psnr(noisy, clean)}
    # Saved after each method, so a run cut short keeps the curves it finished.
    if "b2g" in args.methods:
        out["b2g"], out["b2g_meta"] = b2g_curve(as_chw_tensor(noisy), clean, args)
        _save(out, args.json)
    if "zsn2n" in args.methods:
        out["zsn2n"] = zsn2n_curve(noisy, clean, args)
        _save(out, args.json)
    if "bm3d" in args.methods:
        from bench_quality import run_bm3d

        t0 = time.perf_counter()
        den, _ = run_bm3d(noisy, NOISE)
        out["bm3d"] = {"seconds": time.perf_counter() - t0, "psnr": psnr(den, clean)}
        _save(out, args.json)
    return out


def _save(result: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1))


def plot(result: dict, png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")  # no display on the benchmark machines
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    if result.get("b2g"):
        b = result["b2g"]
        name = result["b2g_meta"]["preset"]
        ax.plot([p["seconds"] for p in b], [p["psnr_single"] for p in b], "o-", label=f"B2G {name}: f(y)")
        ax.plot([p["seconds"] for p in b], [p["psnr_ensemble"] for p in b], "s--",
                label=f"B2G {name}: 8-pass ensemble")
    if result.get("zsn2n"):
        z = result["zsn2n"]
        ax.plot([p["seconds"] for p in z], [p["psnr"] for p in z], "^-", label="ZS-N2N (ours)")
    if result.get("bm3d"):
        ax.plot([result["bm3d"]["seconds"]], [result["bm3d"]["psnr"]], "k*", markersize=14, label="BM3D")
    ax.axhline(result["input_psnr"], color="grey", linestyle=":", label="noisy input")
    ax.set_xscale("log")
    ax.set_xlabel("fitting time, seconds (log scale)")
    ax.set_ylabel("PSNR dB")
    ax.set_title(f"{SET}/{result['image']}, σ={NOISE}: PSNR against fitting time")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=120)
    plt.close(fig)


def render(result: dict, png: Path, doc: Path, json_path: Path) -> str:
    import os

    rel = os.path.relpath(png, doc.parent)
    lines = [f"![PSNR against fitting time]({rel})", "",
             "| method | fit s | steps | PSNR dB |", "|---|---|---|---|"]
    for p in result.get("b2g", []):
        name = result["b2g_meta"]["preset"]
        lines.append(f"| B2G `{name}` f(y) / 8-pass ensemble | {p['seconds']:.1f} | {p['steps']} "
                     f"| {p['psnr_single']:.2f} / {p['psnr_ensemble']:.2f} |")
    for p in result.get("zsn2n", []):
        lines.append(f"| ZS-N2N (ours) | {p['seconds']:.1f} | {p['steps']} | {p['psnr']:.2f} |")
    if result.get("bm3d"):
        lines.append(f"| BM3D | {result['bm3d']['seconds']:.1f} | – | {result['bm3d']['psnr']:.2f} |")
    lines.append(f"| noisy input | – | – | {result['input_psnr']:.2f} |")
    notes = (
        f"One image, {SET}/{result['image']}, Gaussian σ={NOISE} (same seed as the quality table). "
        "B2G: one fit of the preset as it ships (its iterations or time budget, its schedule), with weight "
        "snapshots taken by a progress callback at fixed intervals of fitting time and scored after "
        "the fit, so early points come from a run whose learning rate was still high: they show what "
        "the ongoing fit holds at that moment, not what a fit with that shorter budget would reach. "
        "ZS-N2N: one fit, scored at the iteration counts shown (scoring time excluded). BM3D: one "
        "run, wall time. All on the CPU below unless a GPU is named.\n\n"
        f"Raw points: `{json_path}`.\n{describe_runs([result['facts']])}"
    )
    return "\n".join(lines) + "\n\n" + notes


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--image", default="kodim03.png", help=f"an image of {SET}")
    p.add_argument("--preset", default="scratch")
    p.add_argument("--iters", type=int, default=None, help="B2G iterations instead of the preset's")
    p.add_argument("--every", type=float, default=10.0, help="seconds between B2G snapshots")
    p.add_argument("--zsn2n-iters", type=int, default=2000)
    p.add_argument("--methods", default="b2g,zsn2n,bm3d", type=lambda s: s.split(","))
    p.add_argument("--seed", type=int, default=0, help="seed of the fits (the noise seed is fixed)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--data", type=Path, default=DATA)
    p.add_argument("--png", type=Path, default=REPO / "docs" / "psnr_vs_time.png")
    p.add_argument("--output", type=Path, default=DOC)
    p.add_argument("--no-doc", dest="output", action="store_const", const=None)
    p.add_argument("--json", type=Path, default=Path("runs/psnr_time.json"))
    return p.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    result = run(args)
    plot(result, args.png)
    print("plot written to", args.png)
    if args.output is not None:
        from benchmarks.helpers import replace_section

        replace_section(args.output, HEADING, render(result, args.png, args.output, args.json))
        print("section written to", args.output)


if __name__ == "__main__":
    main()
