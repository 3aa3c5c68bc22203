"""Choosing the output fusion's strength (temporal/fuse.py) on held-out material (issue 9), never
on the clip the docs report: synthetic clips over photographs none of the shipped priors trained on.

Each clip (12 frames of 256x256, 8-bit-quantised Gaussian noise per frame, seed = frame index):
the camera pans over one held-out photograph at a sub-pixel velocity (as tune_temporal_fit.py's
clips) while a disc cut from the next held-out photograph crosses it at another velocity, so
the fusion meets what real video has and a pan has not: occlusion and motion that one flow
field does not describe. Each network denoises every frame (the shipped single-frame prior, and
the shipped k=2 centred temporal prior on DIS-aligned windows, no fit: the fusion does not
depend on how the network was fitted, was the assumption until 2026-11-29; ``--networks fit`` adds
the temporal stage fitted on frames 0-7 and kept, whose noisier outputs the fused default streams
since), then each strength fuses the outputs (k=2, centred and causal). PSNR over all frames.

    python benchmarks/tune_output_fusion.py --photos 6 --sigmas 25,50 --threads 1
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.helpers import REPO, add_video_noise  # noqa: E402
from benchmarks.tune_temporal_fit import FIT_FRAMES, FRAMES, SIDE, clip_from, held_out_photos, temporal_stage  # noqa: E402

STRENGTHS = (0.03, 0.06, 0.12, 0.25, 0.5, 1.0, 4.0)
DISC_RADIUS, DISC_VELOCITY = 56, (-2.1, -1.6)  # px, px per frame (y, x)
RESULTS = REPO / "benchmarks" / "results" / "tune" / "output_fusion.json"


def with_disc(frames: list[np.ndarray], other: np.ndarray) -> list[np.ndarray]:
    """Paste a disc of ``other`` (C, H, W) moving at DISC_VELOCITY over each frame (antialiased
    edge, sub-pixel position)."""
    import cv2

    r = DISC_RADIUS
    patch = other[:, :2 * r, :2 * r]
    yy, xx = np.mgrid[0:SIDE, 0:SIDE].astype(np.float32)
    out = []
    for t, frame in enumerate(frames):
        cy, cx = SIDE * 0.6 + DISC_VELOCITY[0] * t, SIDE * 0.6 + DISC_VELOCITY[1] * t
        alpha = np.clip(r - np.hypot(yy - cy, xx - cx) + 0.5, 0, 1)[None]
        # the patch moves with the disc: sample it at (y - cy + r, x - cx + r)
        mx, my = xx - cx + r, yy - cy + r
        moved = np.stack([cv2.remap(np.ascontiguousarray(c), mx, my, cv2.INTER_CUBIC,
                                    borderMode=cv2.BORDER_REFLECT) for c in patch])
        out.append(np.clip(alpha * moved + (1 - alpha) * frame, 0, 1).astype(np.float32))
    return out


def fitted_temporal_outputs(stack, cfg, single_prior, temporal_prior) -> np.ndarray:
    """What the fused default streams since 2026-11-29: the temporal stage fitted on frames
    0..FIT_FRAMES-1 and kept (no check against its prior), as tune_temporal_fit.py fits it, on
    every frame of the clip."""
    import copy

    import torch

    from b2g_deploy.fit import fit
    from b2g_deploy.temporal.model import denoise_clip

    single = fit(stack[:FIT_FRAMES], cfg, net=copy.deepcopy(single_prior), seed=0).net.eval()
    stage = temporal_stage(stack, single, cfg, temporal_prior)
    with torch.no_grad():
        return np.stack([o.numpy() for o in denoise_clip(stage.net, stack)])


def run_clip(name: str, clean: list[np.ndarray], sigma: float, ks=(2,), strengths=STRENGTHS,
             windows=("centred", "causal"), flow: str = "fine", networks=("single", "temporal")) -> list[dict]:
    import torch

    from b2g_deploy.config import preset
    from b2g_deploy.fit import single_pass
    from b2g_deploy.metrics import psnr
    from b2g_deploy.priors import starting_network, temporal_starting_network
    from b2g_deploy.temporal.align import DEFAULT_ALIGN
    from b2g_deploy.temporal.fuse import fuse_clip
    from b2g_deploy.temporal.model import denoise_clip

    noisy = np.stack([add_video_noise(c, sigma, i) for i, c in enumerate(clean)])
    stack = torch.from_numpy(noisy)
    cfg = preset("fast")
    single, cfg, _ = starting_network(None, 3, cfg)
    temporal, _ = temporal_starting_network(None, 3, 2, False, cfg)
    temporal.align = DEFAULT_ALIGN  # what runtimes use (tables before 2026-11-29: "dis")
    outputs = {}
    with torch.no_grad():
        if "single" in networks:
            outputs["single-frame prior"] = np.stack([single_pass(single.eval(), y).numpy() for y in stack])
        if "temporal" in networks:
            outputs["temporal prior"] = np.stack([o.numpy() for o in denoise_clip(temporal, stack)])
    if "fit" in networks:
        outputs["temporal fit"] = fitted_temporal_outputs(stack, cfg, single, temporal)
    rows = []
    for net, outs in outputs.items():
        def add(method: str, frames: np.ndarray) -> None:
            row = {"photo": name, "sigma": sigma, "network": net, "method": method,
                   "psnr": round(float(np.mean([psnr(o, c) for o, c in zip(frames, clean)])), 3)}
            rows.append(row)
            print(json.dumps(row), flush=True)

        add("no fusion", outs)
        for k in ks:
            for window in windows:
                for strength in strengths:
                    label = f"{window} {strength:g}" + (f", k={k}" if k != 2 else "")
                    # The fusion alone: tune_refine.py tunes the Wiener step after it.
                    add(label, fuse_clip(outs, noisy, k=k, causal=window == "causal", strength=strength, flow=flow,
                                         refine=False))
    return rows


def table(rows: list[dict]) -> str:
    sigmas = sorted({r["sigma"] for r in rows})
    keys = list(dict.fromkeys((r["network"], r["method"]) for r in rows))
    lines = ["| network | fusion | " + " | ".join(f"σ={s:g}" for s in sigmas) + " |", "|---|---|" + "---|" * len(sigmas)]
    for net, method in keys:
        cells = [f"{np.mean([r['psnr'] for r in rows if (r['network'], r['method'], r['sigma']) == (net, method, s)]):.2f}"
                 for s in sigmas]
        lines.append(f"| {net} | {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--photos", type=int, default=6)
    ap.add_argument("--sigmas", default="25,50")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--ks", default="2", help="fusion window half-widths to try")
    ap.add_argument("--strengths", default=",".join(f"{s:g}" for s in STRENGTHS))
    ap.add_argument("--windows", default="centred,causal")
    ap.add_argument("--flow", default="fine", choices=("fine", "medium"),
                    help="the fusion's flow (temporal/fuse.py FUSION_FLOWS; tables before 2026-11-29 used medium)")
    ap.add_argument("--networks", default="single,temporal",
                    help="whose outputs to fuse: single (single-frame prior), temporal (temporal prior), fit "
                    "(the temporal stage fitted on frames 0-7, as the fused default keeps it since 2026-11-29)")
    ap.add_argument("--json", type=Path, default=RESULTS)
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    photos = held_out_photos(args.photos + 1)  # the next photograph gives each clip its disc
    if len(photos) < 2:
        raise SystemExit("need at least two held-out photographs")
    rows = []
    for (name, photo), (_, other) in zip(photos, photos[1:]):
        for sigma in (float(s) for s in args.sigmas.split(",")):
            rows += run_clip(name, with_disc(clip_from(photo), other), sigma,
                             ks=[int(k) for k in args.ks.split(",")],
                             strengths=[float(x) for x in args.strengths.split(",")],
                             windows=args.windows.split(","), flow=args.flow,
                             networks=args.networks.split(","))
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps({"command": " ".join(sys.argv), "frames": FRAMES, "rows": rows},
                                            indent=1) + "\n")
    print(table(rows))


if __name__ == "__main__":
    main()
