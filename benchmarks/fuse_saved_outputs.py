"""The output fusion (temporal/fuse.py) run again on networks' outputs that bench_temporal.py
kept (``--save-outputs DIR``), with other fusion settings: what a fusion change does to fits of
the cockatoo clip without fitting them again (a 720p fit takes minutes; the fusion of 40 frames
about a minute). The noisy frames are made again exactly as bench_temporal.py makes them (seed =
frame index); the outputs were kept as float16 (their rounding, under 2.5e-4, moves a fused
PSNR by under 0.01 dB: the k=3 rows reproduce bench_temporal.py's).

    python benchmarks/fuse_saved_outputs.py --outputs DIR --sigmas 25 --seeds 0,1,2,3,4 \
        --methods b2g-temporal-from-prior --variants "k=3,k=5,k=7" --json benchmarks/results/temporal_fusion/wide_s25.json

A variant is ``k=K`` (frames each side) with optional ``/reach=R`` (how far the flows are
direct, fuse_flows.window_fields; default the fusion's) and ``/strength=S`` (the agreement
test's, fuse.DEFAULT_STRENGTH by default). Rows: PSNR on the unseen frames (the
fit's frames 0..N-1 excluded), the fitted ones, the 256x256 centre crop, flicker, and fusion
seconds per frame on this machine as it ran (one thread).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.bench_temporal import load_clip, score  # noqa: E402
from benchmarks.helpers import VIDEO, add_video_noise, run_facts  # noqa: E402


def parse_variant(text: str) -> dict:
    """"k=7/reach=2/strength=0.2" -> {"k": 7, "direct_reach": 2, "strength": 0.2}."""
    out: dict = {}
    for part in text.split("/"):
        key, _, value = (x.strip() for x in part.partition("="))
        if key in ("k", "reach") and value.isdigit():
            out["k" if key == "k" else "direct_reach"] = int(value)
        elif key == "strength" and value.replace(".", "", 1).isdigit() and float(value) > 0:
            out["strength"] = float(value)
        else:
            raise SystemExit(f"variant {text!r}: expected k=K[/reach=R][/strength=S]")
    if "k" not in out:
        raise SystemExit(f"variant {text!r} has no k")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--outputs", type=Path, required=True, help="bench_temporal.py --save-outputs DIR")
    ap.add_argument("--methods", default="b2g-temporal-from-prior")
    ap.add_argument("--sigmas", default="25")
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--variants", default="k=3")
    ap.add_argument("--frames-limit", type=int, default=40)
    ap.add_argument("--fit-frames", type=int, default=8)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", type=Path, required=True)
    args = ap.parse_args()
    import cv2
    import torch

    from b2g_deploy.temporal.fuse import fuse_clip

    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    variants = [(v.strip(), parse_variant(v)) for v in args.variants.split(",") if v.strip()]
    data = json.loads(args.json.read_text()) if args.json.exists() else {"runs": [], "rows": []}
    data["runs"].append({**run_facts(), "command": " ".join(["python", *sys.argv])})
    done = {(r["method"], r["sigma"], r["seed"], r["variant"]) for r in data["rows"]}
    clean = load_clip(VIDEO, args.frames_limit, 1.0)
    for sigma in (float(s) for s in args.sigmas.split(",")):
        noisy = np.stack([add_video_noise(c, sigma, i) for i, c in enumerate(clean)])
        for seed in (int(s) for s in args.seeds.split(",")):
            for method in args.methods.split(","):
                path = args.outputs / f"{method}_s{sigma:g}_seed{seed}.npy"
                if not path.exists():
                    print(f"skipped: {path} is missing", flush=True)
                    continue
                outs = np.load(path).astype(np.float32)
                for label, kwargs in variants:
                    if (method, sigma, seed, label) in done:
                        continue
                    t0 = time.perf_counter()
                    fused = list(fuse_clip(outs, noisy, **kwargs))
                    seconds = (time.perf_counter() - t0) / len(fused)
                    row = {"method": method, "sigma": sigma, "seed": seed, "variant": label,
                           **{k: v for k, v in score(fused, clean, args.fit_frames).items() if k != "psnr_per_frame"},
                           "fuse_s_per_frame": round(seconds, 3), "run": len(data["runs"]) - 1}
                    data["rows"].append(row)
                    args.json.parent.mkdir(parents=True, exist_ok=True)
                    args.json.write_text(json.dumps(data, indent=1) + "\n")
                    print(json.dumps({k: (round(v, 3) if isinstance(v, float) else v) for k, v in row.items()}), flush=True)


if __name__ == "__main__":
    main()
