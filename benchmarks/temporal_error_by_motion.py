"""Where the video path's error lies on the cockatoo clip, by how fast the scene moves there
(issue 9): an analysis of kept outputs, not a choice of anything.

The networks' outputs kept by ``bench_temporal.py --save-outputs DIR`` (unfused, and fused and
refined again here with the default fusion), each frame t of the unseen frames 8..38 split by the
motion of its clean frame to the next (DIS medium between the clean frames' grey, pixels in bins
of px a frame). Per bin: its share of the pixels, PSNR of each method unfused and fused, and its
share of the fused temporal output's squared error.

    python benchmarks/temporal_error_by_motion.py --outputs DIR --sigma 25 --seed 0

``--flow-guides clean,pass1`` adds the temporal network's outputs fused with the fusion's flows
computed between other frames than its outputs: the clean frames (an oracle: how much of the
fused error is the flow's) or the first fused pass's frames (a second pass), as more columns.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.bench_temporal import load_clip  # noqa: E402
from benchmarks.helpers import VIDEO, add_video_noise  # noqa: E402

BINS = (0.0, 0.5, 1.0, 2.0, 4.0, 8.0, np.inf)
METHODS = ("b2g-temporal-from-prior", "b2g-single")


def grey_u8(frame: np.ndarray) -> np.ndarray:
    grey = np.einsum("c,chw->hw", np.array([0.299, 0.587, 0.114], np.float32), frame)
    return np.clip(grey * 255.0 + 0.5, 0, 255).astype(np.uint8)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--outputs", type=Path, required=True)
    ap.add_argument("--sigma", type=float, default=25.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--frames-limit", type=int, default=40)
    ap.add_argument("--fit-frames", type=int, default=8)
    ap.add_argument("--flow-guides", default="", help="comma-separated: clean, pass1 (see above)")
    args = ap.parse_args()
    import cv2

    from b2g_deploy.temporal.fuse import fuse_clip

    cv2.setNumThreads(1)
    clean = np.stack(load_clip(VIDEO, args.frames_limit, 1.0))
    noisy = np.stack([add_video_noise(c, args.sigma, i) for i, c in enumerate(clean)])
    runs = {}
    for method in METHODS:
        outs = np.load(args.outputs / f"{method}_s{args.sigma:g}_seed{args.seed}.npy").astype(np.float32)
        runs[f"{method} unfused"], runs[f"{method} fused"] = outs, fuse_clip(outs, noisy)
        if method == METHODS[0]:
            for guide in (g.strip() for g in args.flow_guides.split(",") if g.strip()):
                frames = {"clean": clean, "pass1": runs[f"{method} fused"]}.get(guide)
                if frames is None:
                    raise SystemExit(f"--flow-guides: unknown {guide!r} (clean, pass1)")
                runs[f"{method} fused, flows between {guide} frames"] = fuse_clip(outs, noisy, flow_frames=frames)
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    pixels = np.zeros(len(BINS) - 1)
    errors = {name: np.zeros(len(BINS) - 1) for name in runs}
    for t in range(args.fit_frames, args.frames_limit - 1):
        field = dis.calc(grey_u8(clean[t]), grey_u8(clean[t + 1]), None)
        which = np.digitize(np.hypot(field[..., 0], field[..., 1]), BINS) - 1
        pixels += np.bincount(which.ravel(), minlength=len(BINS) - 1)
        for name, frames in runs.items():
            se = ((frames[t] - clean[t]) ** 2).mean(0)
            errors[name] += np.bincount(which.ravel(), weights=se.ravel(), minlength=len(BINS) - 1)
    names = list(runs)
    print("| motion, px a frame | pixels | " + " | ".join(names) + " | share of the fused temporal error |")
    print("|---" * (len(names) + 3) + "|")
    fused_t = errors[f"{METHODS[0]} fused"]
    for b in range(len(BINS) - 1):
        cells = [f"{10 * np.log10(pixels[b] / errors[n][b]):.2f}" for n in names]
        print(f"| {BINS[b]:g}-{BINS[b + 1]:g} | {pixels[b] / pixels.sum():.3f} | " + " | ".join(cells)
              + f" | {fused_t[b] / fused_t.sum():.3f} |")
    overall = [f"{10 * np.log10(pixels.sum() / errors[n].sum()):.2f}" for n in names]
    print("| all | 1 | " + " | ".join(overall) + " | 1 |")


if __name__ == "__main__":
    main()
