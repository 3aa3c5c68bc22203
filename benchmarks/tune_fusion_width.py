"""How many frames each side the output fusion should average (temporal/fuse.py), and whether
the further ones can do with chained flows (temporal/fuse_flows.py), on held-out material
(issue 9), never on the clip the docs report.

Clips of 20 frames (tune_temporal_fit.py's pan over one held-out photograph, 256x256; with
``--disc`` a disc of the next photograph crossing it and a 6 px non-rigid wobble, as
tune_refine.py's ``--disc --wobble 6``), 8-bit-quantised Gaussian noise per frame. The network
is the temporal prior alone (deterministic, no fit), or with ``--fit`` the temporal stage fitted
on frames 0-7 and kept, as the fused default streams it. Its outputs go through ``fuse_clip``
(with the Wiener step) for each variant ``k=K[/reach=R]``: K frames each side, flows direct up
to R frames away and chained beyond (default: the fusion's ``DIRECT_REACH``; ``reach=K``: all
direct). PSNR on frames 8-13, whose windows up to 5 frames each side lie inside the clip
(at 7, frames 13 and 12 reach past it and are reflected). ``--speed S`` pans S times faster.

    python benchmarks/tune_fusion_width.py --photos 6 --sigmas 25,50 --variants "k=3,k=5,k=5/reach=5,k=7"
    python benchmarks/tune_fusion_width.py --photos 4 --disc --fit --cache DIR --variants "k=3,k=5,k=7"
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import benchmarks.tune_temporal_fit as clips  # noqa: E402
from benchmarks.fuse_saved_outputs import parse_variant  # noqa: E402
from benchmarks.helpers import REPO, add_video_noise  # noqa: E402

RESULTS = REPO / "benchmarks" / "results" / "tune" / "fusion_width.json"
FRAMES, SCORED = 20, range(8, 14)


def network_outputs(name: str, noisy: np.ndarray, fitted: bool, cache: Path | None, align: str | None = None) -> np.ndarray:
    """The temporal prior's outputs on every frame (``fitted``: the stage fitted on frames 0-7,
    as tune_refine.py fits it), kept in ``cache``."""
    import torch

    tag = ("fit" if fitted else "prior") + (f"_{align}" if align else "")
    path = cache / f"{name}_{tag}.npy" if cache is not None else None
    if path is not None and path.exists():
        return np.load(path)
    from b2g_deploy.config import preset
    from b2g_deploy.priors import starting_network, temporal_starting_network
    from b2g_deploy.temporal.align import DEFAULT_ALIGN
    from b2g_deploy.temporal.model import denoise_clip

    cfg = preset("fast")
    single, cfg, _ = starting_network(None, 3, cfg)
    prior, _ = temporal_starting_network(None, 3, 2, False, cfg)
    prior.align = align or DEFAULT_ALIGN
    stack = torch.from_numpy(noisy)
    if fitted:
        from benchmarks.tune_output_fusion import fitted_temporal_outputs

        outs = fitted_temporal_outputs(stack, cfg, single, prior)
    else:
        with torch.no_grad():
            outs = np.stack([o.numpy() for o in denoise_clip(prior.eval(), stack)])
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, outs)
    return outs


def table(rows: list[dict]) -> str:
    sigmas = sorted({r["sigma"] for r in rows})
    variants = list(dict.fromkeys(r["variant"] for r in rows))
    base = variants[0]
    lines = ["| variant | " + " | ".join(f"σ={s:g} (vs {base}; worst clip)" for s in sigmas) + " | s/frame |",
             "|---|" + "---|" * (len(sigmas) + 1)]
    for v in variants:
        cells = []
        for s in sigmas:
            got = {r["clip"]: r["psnr"] for r in rows if r["variant"] == v and r["sigma"] == s}
            ref = {r["clip"]: r["psnr"] for r in rows if r["variant"] == base and r["sigma"] == s}
            gains = [got[c] - ref[c] for c in got if c in ref]
            cells.append(f"{np.mean(list(got.values())):.2f} ({np.mean(gains):+.2f}; {min(gains):+.2f})" if got else "–")
        secs = [r["seconds_per_frame"] for r in rows if r["variant"] == v]
        lines.append(f"| {v} | " + " | ".join(cells) + f" | {np.median(secs):.3f} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--photos", type=int, default=6)
    ap.add_argument("--sigmas", default="25,50")
    ap.add_argument("--variants", default="k=3,k=5,k=7")
    ap.add_argument("--disc", action="store_true", help="a disc crossing the pan and a 6 px wobble")
    ap.add_argument("--fit", action="store_true", help="the temporal stage fitted on frames 0-7, not the prior alone")
    ap.add_argument("--speed", type=float, default=1.0,
                    help="the pan's velocity times this (1: tune_temporal_fit.py's (1.3, 3.4) px a frame)")
    ap.add_argument("--align", default=None, choices=("dis", "dis-fine", "lk"),
                    help="the network's windows' flow (default: temporal/align.py's DEFAULT_ALIGN)")
    ap.add_argument("--cache", type=Path, default=None, help="keep the network's outputs here")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", type=Path, default=RESULTS)
    args = ap.parse_args()
    import cv2
    import torch

    from b2g_deploy.metrics import psnr
    from b2g_deploy.temporal.fuse import fuse_clip

    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    clips.FRAMES = FRAMES  # clip_from reads it: 20-frame clips
    clips.VELOCITY = tuple(v * args.speed for v in clips.VELOCITY)
    variants = [(v.strip(), parse_variant(v)) for v in args.variants.split(",") if v.strip()]
    photos = clips.held_out_photos(args.photos + 1)
    rows: list[dict] = []
    for i, (name, photo) in enumerate(photos[: args.photos]):
        clean = clips.clip_from(photo)
        if args.disc:
            from benchmarks.temporal_priors_on_clips import wobbled
            from benchmarks.tune_output_fusion import with_disc

            clean, name = wobbled(with_disc(clean, photos[i + 1][1]), 6.0, seed=i), f"{name}+dw"
        if args.speed != 1.0:
            name = f"{name}+x{args.speed:g}"
        for sigma in (float(s) for s in args.sigmas.split(",")):
            noisy = np.stack([add_video_noise(c, sigma, t) for t, c in enumerate(clean)])
            outs = network_outputs(f"{name}_{sigma:g}", noisy, args.fit, args.cache, args.align)
            for label, kwargs in variants:
                t0 = time.perf_counter()
                fused = fuse_clip(outs, noisy, **kwargs)
                rows.append({"clip": name, "sigma": sigma, "variant": label, "fit": args.fit, "align": args.align,
                             "psnr": round(float(np.mean([psnr(fused[t], clean[t]) for t in SCORED])), 3),
                             "seconds_per_frame": round((time.perf_counter() - t0) / len(fused), 3)})
                print(json.dumps(rows[-1]), flush=True)
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps({"command": " ".join(["python", *sys.argv]), "rows": rows}, indent=1) + "\n")
    print(table(rows))


if __name__ == "__main__":
    main()
