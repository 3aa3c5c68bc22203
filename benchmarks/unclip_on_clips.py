"""Undoing clipping's bias (b2g_deploy/clipping.py) on held-out clips (issue 9): chosen here,
never on a reported set.

The clips are tune_output_fusion.py's (a pan over a held-out photograph crossed by a disc of the
next one, 12 frames of 256x256, ``--wobble`` px of smooth non-rigid motion on top), with the
issue's noise: Gaussian, clipped to [0, 1] and quantised to 8 bits. The shipped single-frame
prior and the shipped centred temporal prior (no fit, ``dis-fine`` windows) denoise every frame;
the temporal outputs are also fused (the default fusion with its Wiener step). Each output is
scored as it is, mapped back through ``clipping.unclip`` with the true sigma, and with sigma
estimated from the frames (``clipping.unclipped_sigma``, as a stream would). PSNR over all
frames; beside it the share of clean pixels within 0.1 of black or white, where the bias lives.

    python benchmarks/unclip_on_clips.py --photos 6 --sigmas 25,50 --wobble 6 --threads 1
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.helpers import DOC, REPO, add_video_noise, log, replace_section, run_facts  # noqa: E402

HEADING = "## Undoing clipping's bias, held-out clips (issue 9)"
RESULTS = REPO / "benchmarks" / "results" / "unclip_on_clips.json"


def denoised_clips(clips: list[list[np.ndarray]], sigma: float, single: bool = True):
    """For each clip (``temporal_priors_on_clips.held_out_clips``): (clean frames, noisy frames,
    {output name: frames}); the outputs of the shipped temporal prior, that one fused and refined,
    and with ``single`` the shipped single-frame prior's."""
    import torch

    from b2g_deploy.checkpoint import load_checkpoint
    from b2g_deploy.fit import single_pass
    from b2g_deploy.temporal.fuse import fuse_clip
    from b2g_deploy.temporal.model import denoise_clip

    data = REPO / "b2g_deploy" / "data"
    single_net = load_checkpoint(data / "prior_rgb.pt").net.eval() if single else None
    temporal = load_checkpoint(data / "prior_rgb_t2.pt").net.eval()
    temporal.align = "dis-fine"
    for clean in clips:
        noisy = np.stack([add_video_noise(f, sigma, i) for i, f in enumerate(clean)]).astype(np.float32)
        stack = torch.from_numpy(noisy)
        outs = {}
        with torch.no_grad():
            if single_net is not None:
                outs["single-frame prior"] = np.stack([single_pass(single_net, y).numpy() for y in stack])
            outs["temporal prior"] = denoise_clip(temporal, stack).numpy()
        outs["temporal prior, fused and refined"] = fuse_clip(outs["temporal prior"], noisy)
        yield clean, noisy, outs


def estimated_sigma(noisy: np.ndarray, outputs: np.ndarray) -> float:
    """What a stream would use: the mean over frames of ``unclipped_sigma``, seeded by the
    spread over all pixels."""
    from b2g_deploy.clipping import unclipped_sigma

    return float(np.mean([unclipped_sigma(y, o) for y, o in zip(noisy, outputs)]))


def scores(outputs: dict[str, np.ndarray], noisy: np.ndarray, clean: list[np.ndarray], sigma: float) -> dict:
    from b2g_deploy.clipping import unclip
    from b2g_deploy.metrics import psnr

    def mean_psnr(frames) -> float:
        return float(np.mean([psnr(o, c) for o, c in zip(frames, clean)]))

    got = {}
    for name, outs in outputs.items():
        est = estimated_sigma(noisy, outs)
        got[name] = {"as is": mean_psnr(outs), "true sigma": mean_psnr(unclip(outs, sigma / 255)),
                     "estimated sigma": mean_psnr(unclip(outs, est)), "sigma_estimate": est * 255}
    return got


def render(rows: list[dict], facts: dict, photos: int, wobble: float) -> str:
    sigmas = sorted({r["sigma"] for r in rows})
    share = np.mean([r["near_clip_share"] for r in rows])
    out = [f"{photos} held-out clips (pan + crossing disc, wobble {wobble:g} px), 12 frames of 256x256, the issue's "
           f"noise (clipped, 8 bits); {100 * share:.1f}% of their clean pixels lie within 0.1 of black or white. "
           "PSNR over all frames: each output as it is, through `clipping.unclip` with the true sigma, and with sigma "
           "estimated from the frames (`unclipped_sigma`; the estimate in brackets, mean over clips).", "",
           "| output | " + " | ".join(f"σ={s:g}: as is / true σ / estimated σ" for s in sigmas) + " |",
           "|---|" + "---|" * len(sigmas)]
    for name in dict.fromkeys(r["output"] for r in rows):
        cells = []
        for s in sigmas:
            group = [r for r in rows if r["output"] == name and r["sigma"] == s]
            mean = {k: np.mean([r[k] for r in group]) for k in ("as is", "true sigma", "estimated sigma", "sigma_estimate")}
            cells.append(f"{mean['as is']:.2f} / {mean['true sigma']:.2f} / {mean['estimated sigma']:.2f} "
                         f"({mean['sigma_estimate']:.1f})")
        out.append(f"| {name} | " + " | ".join(cells) + " |")
    out += ["", f"Run: `{facts['command']}` on {facts['cpu']} ({facts['cores']} cores), {facts['date']}, "
            f"torch {facts['torch']}."]
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--photos", type=int, default=6)
    ap.add_argument("--sigmas", default="25,50")
    ap.add_argument("--wobble", type=float, default=6.0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", type=Path, default=RESULTS)
    ap.add_argument("--no-doc", action="store_true")
    args = ap.parse_args()
    import cv2
    import torch

    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    from benchmarks.temporal_priors_on_clips import held_out_clips

    clips = held_out_clips(args.photos, args.wobble)
    facts, rows = run_facts(), []
    for sigma in (float(s) for s in args.sigmas.split(",")):
        for c, (clean, noisy, outs) in enumerate(denoised_clips(clips, sigma)):
            near = float(np.mean([np.mean((f < 0.1) | (f > 0.9)) for f in clean]))
            for name, got in scores(outs, noisy, clean, sigma).items():
                rows.append({"sigma": sigma, "clip": c, "output": name, "near_clip_share": near, **got})
            log(f"sigma {sigma:g} clip {c}: " + ", ".join(f"{r['output']} {r['as is']:.2f}->{r['estimated sigma']:.2f}"
                                                           for r in rows[-3:]))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"run": facts, "rows": rows}, indent=1) + "\n")
    table = render(rows, facts, args.photos, args.wobble)
    print(table)
    if not args.no_doc:
        replace_section(DOC, HEADING, table)


if __name__ == "__main__":
    main()
