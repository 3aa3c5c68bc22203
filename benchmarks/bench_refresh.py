"""Multi-frame fits: refresh every frame's x_m at each mask refresh, or a few frames in turn?

    python benchmarks/bench_refresh.py --refresh-frames 0 --json runs/refresh_all.json   # 0 = all
    python benchmarks/bench_refresh.py --refresh-frames 1 --json runs/refresh_1.json

One `fast` fit on the 8 frames of cockatoo.mp4 that bench_video.py's "fit on 8 frames" uses
(same noise, sigma 25, 720p), with ``mask.refresh_frames`` set, then the single pass f(y) scored
on frames 0-7 against the clean frames, whole frame and the four lower/upper corner quarters.
Run the two settings as two processes side by side and compare fit seconds and PSNR.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a file: make `benchmarks` importable
from benchmarks.helpers import VIDEO, add_video_noise, read_video_frames, run_facts  # noqa: E402

from b2g_deploy.config import apply_changes, preset
from b2g_deploy.fit import fit, single_pass
from b2g_deploy.metrics import psnr


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--refresh-frames", type=int, default=0, help="frames per refresh; 0 = all")
    p.add_argument("--sigma", type=float, default=25.0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", type=Path, required=True)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    spread = np.linspace(0, 279, 8).round().astype(int).tolist()
    frames = read_video_frames(VIDEO, sorted(set(range(8)) | set(spread)))
    stack = np.stack([add_video_noise(frames[i], args.sigma, i) for i in spread]).astype(np.float32)
    cfg = apply_changes(preset("scratch"), {"mask": {"refresh_frames": args.refresh_frames or None}})
    t0 = time.perf_counter()
    result = fit(torch.from_numpy(stack), cfg, seed=0)
    seconds = time.perf_counter() - t0
    whole, corners = [], []
    for i in range(8):
        noisy = add_video_noise(frames[i], args.sigma, i)  # 8-bit, as decoded
        out = single_pass(result.net, torch.from_numpy(noisy.astype(np.float32))).numpy()
        whole.append(psnr(out, frames[i]))
        h, w = out.shape[1:]
        corners.append([psnr(out[:, r : r + h // 2, c : c + w // 2], frames[i][:, r : r + h // 2, c : c + w // 2])
                        for r in (0, h // 2) for c in (0, w // 2)])
    row = {"refresh_frames": args.refresh_frames or "all", "steps": result.steps, "fit_seconds": round(seconds, 1),
           "psnr_frames_0_7": float(np.mean(whole)),
           "psnr_quarters_tl_tr_bl_br": np.mean(corners, axis=0).round(2).tolist(), "facts": run_facts()}
    print(json.dumps({k: v for k, v in row.items() if k != "facts"}), flush=True)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(row, indent=1))


if __name__ == "__main__":
    main()
