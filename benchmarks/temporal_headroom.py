"""Where the temporal default's σ=25 gap (issue 9) could close, measured on the cockatoo clip at
720p (frames 0-39, the issue's 8-bit Gaussian noise, PSNR on frames 8-39 like bench_temporal.py):

- ``ensemble``: the temporal prior's outputs averaged with the single-frame fit's (the `fast`
  preset from the shipped RGB prior on frames 0-7), with weights W on the temporal one, before
  and after the output fusion: what a second network buys at twice the network's time.
  Also per frame: the temporal prior's gain over the single-frame fit against the camera's
  motion (median DIS flow magnitude from the clean frame to the next), to see where the gain is lost.
- ``flow``: the temporal prior on windows aligned by flows computed from other guides than the
  noisy frames: the *clean* frames (an oracle: the best any flow on these guides could do) and
  the temporal prior's own outputs (a second pass), the noisy neighbours warped as
  ``temporal/align.py`` warps them ("dis-fine", half-size guides, bilinear).

    .venv/bin/python benchmarks/temporal_headroom.py --checks ensemble,flow --threads 1 \\
        --json benchmarks/results/temporal_fusion/headroom_s25.json

Rows go to --json; the numbers are quoted in docs/BENCHMARKS.md ("Temporal video with output fusion").
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a file: make `benchmarks` importable

from benchmarks.bench_temporal import load_clip  # noqa: E402
from benchmarks.helpers import REPO, VIDEO, add_video_noise, log, run_facts  # noqa: E402

FIT_FRAMES, FRAMES = 8, 40


def unseen_psnr(outs, clean) -> float:
    from b2g_deploy.metrics import psnr

    return float(np.mean([psnr(o, c) for o, c in zip(outs[FIT_FRAMES:], clean[FIT_FRAMES:])]))


def fused(outs, noisy) -> list[np.ndarray]:
    from b2g_deploy.temporal.fuse import fuse_clip

    return list(fuse_clip(np.stack(outs), np.stack(noisy), refine=False))  # as measured, before the Wiener step


def motion_per_frame(clean) -> list[float]:
    """Median flow magnitude (px, full size) from each clean frame to the next (DIS medium preset);
    the last frame gets its predecessor's."""
    import cv2

    grey = [cv2.cvtColor(np.ascontiguousarray((c.transpose(1, 2, 0) * 255).astype(np.uint8)), cv2.COLOR_RGB2GRAY)
            for c in clean]
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    out = [float(np.median(np.linalg.norm(dis.calc(a, b, None), axis=2))) for a, b in zip(grey, grey[1:])]
    return out + out[-1:]


def window_aligned_by(noisy, guides, t: int, k: int) -> np.ndarray:
    """The window of frame t, each noisy neighbour warped onto it by the flow between the
    *guides* of the two frames (unblurred: the guides here are clean or denoised)."""
    import cv2

    from b2g_deploy.temporal.align import _dis, _grid, _guide, _guide_scale
    from b2g_deploy.temporal.windows import window_indices

    h, w = noisy[0].shape[1:]
    scale = _guide_scale(h, w)
    gy, gx = _grid(h, w)
    target = _guide(guides[t], scale, blur=0.0)
    frames = []
    for j in window_indices(t, len(noisy), k, False):
        if j == t:
            frames.append(noisy[j])
            continue
        flow = _dis("dis-fine").calc(target, _guide(guides[j], scale, blur=0.0), None)
        flow = cv2.resize(flow, (w, h), interpolation=cv2.INTER_LINEAR) * float(scale)
        mx, my = gx + flow[..., 0], gy + flow[..., 1]
        frames.append(np.stack([cv2.remap(c, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
                                for c in noisy[j]]))
    return np.concatenate(frames)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checks", default="ensemble,flow", type=lambda s: [c.strip() for c in s.split(",") if c.strip()])
    p.add_argument("--sigma", type=float, default=25.0)
    p.add_argument("--weights", default="0.3,0.5,0.7", type=lambda s: [float(x) for x in s.split(",")],
                   help="ensemble: the temporal prior's share")
    p.add_argument("--temporal-prior", type=Path, default=REPO / "b2g_deploy" / "data" / "prior_rgb_t2.pt")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", type=Path, required=True)
    args = p.parse_args(argv)
    if set(args.checks) - {"ensemble", "flow"}:
        p.error("--checks: ensemble and/or flow")
    import cv2
    import torch

    from b2g_deploy.checkpoint import load_checkpoint
    from b2g_deploy.model import denoise
    from benchmarks.temporal_methods import apply_single, apply_temporal, fit_single

    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    started = time.perf_counter()
    clean = load_clip(VIDEO, FRAMES, 1.0)
    noisy = [add_video_noise(c, args.sigma, i) for i, c in enumerate(clean)]
    net = load_checkpoint(args.temporal_prior).net.eval()
    net.align = "dis-fine"
    rows: dict[str, float] = {}
    per_frame: list[dict] = []

    def add(name: str, outs) -> None:
        rows[name] = unseen_psnr(outs, clean)
        log(f"{name:<40} {rows[name]:.2f} dB")

    temporal, _ = apply_temporal(net, noisy)
    add("temporal prior", temporal)
    add("temporal prior, fused", temporal_fused := fused(temporal, noisy))
    if "ensemble" in args.checks:
        single_net, *_ = fit_single(noisy, argparse.Namespace(iters=None, prior=None, fit_frames=FIT_FRAMES))
        single, _ = apply_single(single_net, noisy)
        add("single-frame fit", single)
        add("single-frame fit, fused", single_fused := fused(single, noisy))
        from b2g_deploy.metrics import psnr

        for t, motion in enumerate(motion_per_frame(clean)):
            if t >= FIT_FRAMES:
                per_frame.append({"frame": t, "motion_px": round(motion, 1),
                                  "temporal": round(psnr(temporal[t], clean[t]), 2),
                                  "single": round(psnr(single[t], clean[t]), 2)})
        for w in args.weights:
            mix = [w * a + (1 - w) * b for a, b in zip(temporal, single)]
            add(f"ensemble {w:g} temporal", mix)
            add(f"ensemble {w:g} temporal, then fused", fused(mix, noisy))
            add(f"ensemble {w:g} of the fused outputs", [w * a + (1 - w) * b for a, b in zip(temporal_fused, single_fused)])
    if "flow" in args.checks:
        for name, guides in (("clean frames (oracle)", clean), ("the temporal prior's outputs", temporal)):
            outs = list(temporal[:FIT_FRAMES])  # only the unseen frames are scored
            with torch.no_grad():
                for t in range(FIT_FRAMES, FRAMES):
                    window = window_aligned_by(noisy, guides, t, 2)
                    outs.append(denoise(net, torch.from_numpy(window)[None])[0].numpy())
            add(f"windows aligned on {name}", outs)
            add(f"windows aligned on {name}, fused", fused(outs, noisy))
    record = {"sigma": args.sigma, "temporal_prior": args.temporal_prior.name, "unseen_psnr": rows,
              "per_frame": per_frame,
              "wall_s": round(time.perf_counter() - started, 1), **run_facts()}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(record, indent=1) + "\n")
    log(f"wrote {args.json}")


if __name__ == "__main__":
    main()
