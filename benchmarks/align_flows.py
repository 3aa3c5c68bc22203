"""Which optical flow aligns the temporal prior's windows (temporal/align.py), chosen on held-out
clips (issue 9), never on the clip the docs report.

The clips are temporal_priors_on_clips.py's (a pan over a held-out photograph crossed by a disc
of another one, 12 frames of 256x256, 8-bit-quantised Gaussian noise per frame; ``--wobble PX``
bends them non-rigidly). The shipped centred temporal prior (no fit) denoises every frame from
windows aligned by each DIS variant below, on the guides ``temporal.align`` builds, and by the
torch flow of align mode "lk" (its own guides, the same recipe); each variant's time is the
median of 5 flows between two 640x360 guides (the size of a 720p frame's guides) on one thread.
Mean PSNR over all frames of all clips.

    python benchmarks/align_flows.py --sigmas 25 --wobble 6
    python benchmarks/align_flows.py --sigmas 25,50 --wobble 6 --variants dis-fine,lk
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.helpers import add_video_noise  # noqa: E402
from benchmarks.temporal_priors_on_clips import wobbled  # noqa: E402
from benchmarks.tune_output_fusion import with_disc  # noqa: E402
from benchmarks.tune_temporal_fit import clip_from, held_out_photos  # noqa: E402

# name -> (preset, finest scale, patch stride, gradient-descent iterations); None keeps the preset's
VARIANTS = {
    "dis (fast, finest scale 2)": ("fast", None, None, None),
    "dis-fine (fast, finest scale 1)": ("fast", 1, None, None),
    "fast, finest scale 0": ("fast", 0, None, None),
    "medium preset": ("medium", None, None, None),
    "medium, finest scale 2": ("medium", 2, None, None),
    "fast, stride 3, 25 iterations": ("fast", None, 3, 25),
    "lk (torch Lucas-Kanade, temporal/flow_torch.py)": "lk",
}


def make_dis(preset: str, finest: int | None, stride: int | None, iters: int | None):
    import cv2

    dis = cv2.DISOpticalFlow_create({"fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
                                     "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM}[preset])
    for value, setter in ((finest, dis.setFinestScale), (stride, dis.setPatchStride),
                          (iters, dis.setGradientDescentIterations)):
        if value is not None:
            setter(value)
    return dis


def flow_ms(spec: tuple | str) -> float:
    import cv2
    import torch

    from b2g_deploy.temporal.flow_torch import flow_between

    rng = np.random.default_rng(0)
    a = cv2.GaussianBlur((rng.random((360, 640)) * 255).astype(np.uint8), (0, 0), 3)
    b = np.roll(a, 3, axis=1)
    ta, tb = (torch.from_numpy(g.astype(np.float32) / 255.0)[None, None] for g in (a, b))
    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        if spec == "lk":
            with torch.no_grad():
                flow_between(ta, tb)
        else:
            make_dis(*spec).calc(a, b, None)
        times.append(time.perf_counter() - t0)
    return float(np.median(times) * 1000)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--prior", type=Path, default=Path("b2g_deploy/data/prior_rgb_t2.pt"))
    ap.add_argument("--photos", type=int, default=6)
    ap.add_argument("--sigmas", default="25")
    ap.add_argument("--wobble", type=float, default=0.0)
    ap.add_argument("--variants", default="", help="comma-separated name prefixes of VARIANTS (default: all)")
    args = ap.parse_args()
    import cv2
    import torch

    from b2g_deploy.checkpoint import load_checkpoint
    from b2g_deploy.metrics import psnr
    from b2g_deploy.temporal import align
    from b2g_deploy.temporal.model import denoise_clip

    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    net = load_checkpoint(args.prior).net.eval()
    # every DIS variant replaces the flow behind mode "dis"; "lk" is a mode of its own
    photos = held_out_photos(args.photos + 1)
    clips = [wobbled(with_disc(clip_from(photo), other), args.wobble, seed)
             for seed, ((_, photo), (_, other)) in enumerate(zip(photos, photos[1:]))]
    sigmas = [float(s) for s in args.sigmas.split(",")]
    wanted = [w.strip() for w in args.variants.split(",") if w.strip()]
    variants = {name: spec for name, spec in VARIANTS.items()
                if not wanted or any(name.startswith(w + " ") for w in wanted)}
    table = {name: [flow_ms(spec)] for name, spec in variants.items()}
    original = align._dis
    try:
        for sigma in sigmas:
            noisy = [torch.from_numpy(np.stack([add_video_noise(c, sigma, i) for i, c in enumerate(clean)]))
                     for clean in clips]
            for name, spec in variants.items():
                net.align = "lk" if spec == "lk" else "dis"
                align._dis = lambda mode="dis", spec=spec: make_dis(*spec)
                scores = [np.mean([psnr(o, c) for o, c in zip(denoise_clip(net, y).numpy(), clean)])
                          for y, clean in zip(noisy, clips)]
                table[name].append(float(np.mean(scores)))
                print(f"sigma {sigma:g} {name}: {table[name][-1]:.2f}", flush=True)
    finally:
        align._dis = original
    wobble = f" + wobble {args.wobble:g} px" if args.wobble else ""
    print(f"{len(clips)} held-out clips (pan + crossing disc{wobble}), 12 frames of 256x256, {args.prior.name}, no fit")
    print("| flow | ms per flow (640x360) | " + " | ".join(f"σ={s:g}" for s in sigmas) + " |")
    print("|---|---|" + "---|" * len(sigmas))
    for name, (ms, *scores) in table.items():
        print(f"| {name} | {ms:.1f} | " + " | ".join(f"{v:.2f}" for v in scores) + " |")


if __name__ == "__main__":
    main()
