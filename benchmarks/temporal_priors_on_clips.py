"""Temporal priors side by side on held-out synthetic clips with occlusion, DIS-aligned as a fit
and the runtimes prepare them (issue 9): how a temporal prior is chosen, never on a reported set.

The clips are benchmarks/tune_output_fusion.py's: a pan over a held-out photograph crossed by a
disc of another one (two motions, occlusion), 12 frames of 256x256, 8-bit-quantised Gaussian
noise per frame. Each prior (no fit) denoises every frame from its DIS-aligned k=2 window
(centred, or the 4 frames before for a causal prior); beside them the single-frame prior on
each frame, and with ``--mean-init`` the single-frame prior turned into a temporal net whose
head reads the window's mean
(``TemporalB2GNet.init_neighbours_as_mean``): where ``pretrain --config '{"fusion_init":
"mean"}'`` starts. Mean PSNR over all frames of all clips.

``--fuse`` adds each temporal prior's outputs through the output fusion (``temporal.fuse``, its
defaults: what ``denoise VIDEO`` streams), since a prior that leans on its neighbours more also
shares more of its errors between neighbouring outputs, and the fusion then gains less.

``--wobble PX`` bends every frame by a smooth random field oscillating in time (amplitude PX,
period 8 frames: up to ~0.8 PX a frame), motion that is neither rigid nor two-layered, which
DIS follows only approximately, as on real video.

    python benchmarks/temporal_priors_on_clips.py b2g_deploy/data/prior_rgb_t2.pt --mean-init
    python benchmarks/temporal_priors_on_clips.py PRIORS --wobble 3 --fuse
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.helpers import add_video_noise  # noqa: E402
from benchmarks.tune_output_fusion import with_disc  # noqa: E402
from benchmarks.tune_temporal_fit import clip_from, held_out_photos  # noqa: E402


def wobbled(frames: list[np.ndarray], amplitude: float, seed: int) -> list[np.ndarray]:
    """Each (C, H, W) frame t resampled at its pixels plus amplitude * (sin(2 pi t / 8) F1 +
    cos(2 pi t / 8) F2), F1 and F2 smooth random fields (4x4 draws, cubic, max 1 px)."""
    import cv2

    if amplitude <= 0:
        return frames
    from b2g_deploy.fit.synthetic_motion import smooth_field

    h, w = frames[0].shape[-2:]
    rng = np.random.default_rng(seed)
    fields = [f / np.abs(f).max() for f in (smooth_field(rng, h, w) for _ in range(2))]
    gy, gx = np.mgrid[0:h, 0:w].astype(np.float32)
    out = []
    for t, frame in enumerate(frames):
        d = (amplitude * (np.sin(2 * np.pi * t / 8) * fields[0] + np.cos(2 * np.pi * t / 8) * fields[1])).astype(np.float32)
        out.append(np.stack([cv2.remap(np.ascontiguousarray(ch), gx + d[..., 0], gy + d[..., 1], cv2.INTER_LINEAR,
                                       borderMode=cv2.BORDER_REFLECT) for ch in frame]))
    return out


def held_out_clips(photos: int, wobble: float = 0.0) -> list[list[np.ndarray]]:
    """``photos`` clips: a pan over each held-out photograph crossed by a disc of the next one,
    bent by ``wobble`` px (``wobbled``, seeded by the clip's number)."""
    pairs = held_out_photos(photos + 1)
    return [wobbled(with_disc(clip_from(photo), other), wobble, seed)
            for seed, ((_, photo), (_, other)) in enumerate(zip(pairs, pairs[1:]))]


def held_out_or_mosaic_clips(mosaic: bool, photos: int, wobble: float) -> list[list[np.ndarray]]:
    """``held_out_clips(photos, wobble)``, or with ``mosaic`` the two 720p held-out mosaics
    (``tune_temporal_fit.mosaics``) panned and bent by ``wobble`` px: a 720p video's regime."""
    from benchmarks.tune_temporal_fit import MOSAIC_SIZE, mosaics

    if not mosaic:
        return held_out_clips(photos, wobble)
    return [wobbled(clip_from(photo, MOSAIC_SIZE), wobble, seed) for seed, (_, photo) in enumerate(mosaics())]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("priors", nargs="*", type=Path, help="k=2 temporal priors, centred or causal")
    ap.add_argument("--single", type=Path, default=Path("b2g_deploy/data/prior_rgb.pt"))
    ap.add_argument("--mean-init", action="store_true", help="also the single-frame prior reading the window's mean")
    ap.add_argument("--photos", type=int, default=6)
    ap.add_argument("--sigmas", default="25,50")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--wobble", type=float, default=0.0, help="non-rigid motion on top, px (see above)")
    ap.add_argument("--fuse", action="store_true", help="also each temporal prior with the output fusion")
    ap.add_argument("--align", default="dis-fine", choices=("dis", "dis-fine", "lk"),
                    help="the windows' flow (temporal/align.py); the tables before 2026-11-29 used dis")
    args = ap.parse_args()
    import torch

    from b2g_deploy.checkpoint import load_checkpoint
    from b2g_deploy.fit import single_pass
    from b2g_deploy.metrics import psnr
    from b2g_deploy.temporal.fuse import fuse_clip
    from b2g_deploy.temporal.model import TemporalB2GNet, denoise_clip, window_shape

    torch.set_num_threads(args.threads)
    single = load_checkpoint(args.single).net.eval()
    nets = {p.name: load_checkpoint(p).net.eval() for p in args.priors}
    if args.mean_init:
        nets[f"{args.single.name}, head reading the window's mean"] = (
            TemporalB2GNet.from_single_frame(single, 2, False).init_neighbours_as_mean().eval())
    for net in nets.values():
        net.align = args.align
    clips = held_out_clips(args.photos, args.wobble)
    sigmas = [float(s) for s in args.sigmas.split(",")]
    table: dict[str, list[float]] = {}
    for sigma in sigmas:
        scores: dict[str, list[float]] = {}
        for clean in clips:
            stack = torch.from_numpy(np.stack([add_video_noise(c, sigma, i) for i, c in enumerate(clean)]))
            with torch.no_grad():
                outs = {f"single-frame prior {args.single.name}": [single_pass(single, y).numpy() for y in stack]}
                for name, net in nets.items():
                    outs[name] = denoise_clip(net, stack).numpy()
                    if args.fuse:
                        outs[f"{name} + fusion"] = fuse_clip(outs[name], stack.numpy(), causal=window_shape(net)[1],
                                                              refine=False)
            for name, frames in outs.items():
                scores.setdefault(name, []).append(float(np.mean([psnr(o, c) for o, c in zip(frames, clean)])))
        for name, values in scores.items():
            table.setdefault(name, []).append(float(np.mean(values)))
        print(f"sigma {sigma:g}: " + ", ".join(f"{n} {v[-1]:.2f}" for n, v in table.items()), flush=True)
    wobble = f" + wobble {args.wobble:g} px" if args.wobble else ""
    print(f"{len(clips)} held-out clips (pan + crossing disc{wobble}), 12 frames of 256x256, k=2 windows as each prior reads them, aligned by {args.align}, no fit")
    print("| network | " + " | ".join(f"σ={s:g}" for s in sigmas) + " |")
    print("|---|" + "---|" * len(sigmas))
    for name, values in table.items():
        print(f"| {name} | " + " | ".join(f"{v:.2f}" for v in values) + " |")


if __name__ == "__main__":
    main()
