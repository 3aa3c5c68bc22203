"""Choosing the temporal stage's fit recipe on held-out material (issue 9), never on the clip the
docs report: synthetic clips panned over photographs none of the shipped priors trained on.

Each clip: 12 frames of 256x256 cut from one held-out photograph moving at a constant sub-pixel
velocity (bicubic), with 8-bit-quantised Gaussian noise per frame (the video benchmarks' noise,
seed = frame index). As `fit VIDEO --temporal` does: the `fast` single-frame fit from the shipped
prior on frames 0-7, then the temporal stage from the shipped k=2 centred temporal prior
(DIS-aligned) with each variant of learning rate and steps; scored on frames 8-11 (not fitted)
and 0-7. "prior alone" is the temporal prior with no fit on the clip. Each fitted row is the
network the stage kept: the fit or the prior it started from, whichever the frame-to-frame check
(``temporal.neighbour_check``) scores better (recorded in the row); with ``--keep-fit`` the fit,
as the fused default keeps it since 2026-11-29. ``--fuse`` adds each temporal row's outputs
through the output fusion (``temporal.fuse``, its defaults).

``--mosaic``: 1280x720 clips panned over two 3x3 mosaics of held-out photographs instead, the
regime of a 720p video (``mosaics``).

    python benchmarks/tune_temporal_fit.py --photos 4 --sigmas 25,50 --threads 1
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.helpers import REPO, add_video_noise, held_out_photographs  # noqa: E402

FRAMES, FIT_FRAMES, SIDE = 12, 8, 256
VELOCITY = (1.3, 3.4)  # px per frame (y, x): sub-pixel, and more than the prior's 3 px training motion
# (name, lr factor, steps factor[, fit_temporal_stage options]) of the temporal stage, against the
# `fast` preset's lr and iters
VARIANTS = [("default", 1.0, 1.0), ("lr x0.3", 0.3, 1.0), ("lr x0.1", 0.1, 1.0), ("steps x0.33", 1.0, 1 / 3),
            ("lr x2", 2.0, 1.0), ("steps x2", 1.0, 2.0), ("steps x3", 1.0, 3.0), ("bf16", 1.0, 1.0, {"bf16": True}),
            # the stage's recorrupted loss (the `fast` preset's) with a fixed recorruption strength a
            # (the default since 2026-11-29 sets a by the noise level: TemporalConfig.recorrupt_alpha)
            ("r2r a=0.5", 1.0, 1.0, {"recorrupt_alpha": 0.5}),
            ("r2r a=0.25", 1.0, 1.0, {"recorrupt_alpha": 0.25}),
            ("r2r a=0.75", 1.0, 1.0, {"recorrupt_alpha": 0.75}),
            ("r2r a=1", 1.0, 1.0, {"recorrupt_alpha": 1.0}),
            ("r2r a=2", 1.0, 1.0, {"recorrupt_alpha": 2.0}),
            # how far a fit moves by chance (its seed: crops, recorruption), and recipes that see
            # more of the clip per step or in all, then (5th element) FitConfig overrides
            ("default s1", 1.0, 1.0, {"seed": 1}), ("default s2", 1.0, 1.0, {"seed": 2}),
            ("batch x2", 1.0, 1.0, {}, {"batch": 8}), ("batch x2 s1", 1.0, 1.0, {"seed": 1}, {"batch": 8}),
            ("steps x2 s1", 1.0, 2.0, {"seed": 1}),
            ("r2r a=0.25 s1", 1.0, 1.0, {"recorrupt_alpha": 0.25, "seed": 1}),
            ("soup 2", 1.0, 1.0, {"soup": [0, 1]}), ("soup 3", 1.0, 1.0, {"soup": [0, 1, 2]})]
# Tail averaging of the weights ("avg 0.2" etc.) was measured with commit a17b038 and removed.
RESULTS = REPO / "benchmarks" / "results" / "tune" / "temporal_fit.json"


def clip_from(photo: np.ndarray, size: tuple[int, int] = (SIDE, SIDE)) -> list[np.ndarray]:
    """(C, H, W) float32 photograph -> FRAMES clean (C, *size) frames panning across it."""
    import cv2

    hwc = np.ascontiguousarray(photo.transpose(1, 2, 0))
    frames = []
    for t in range(FRAMES):
        m = np.float32([[1, 0, -VELOCITY[1] * t], [0, 1, -VELOCITY[0] * t]])
        moved = cv2.warpAffine(hwc, m, (hwc.shape[1], hwc.shape[0]), flags=cv2.INTER_CUBIC,
                               borderMode=cv2.BORDER_REFLECT)
        frames.append(np.clip(moved[: size[0], : size[1]], 0, 1).transpose(2, 0, 1).copy())
    return frames


MOSAIC_SIZE, TILE = (720, 1280), (280, 448)  # frame (H, W) and tile (H, W): 3 x 3 tiles cover a frame + the pan


def mosaics() -> list[tuple[str, np.ndarray]]:
    """Two (C, 840, 1344) float32 mosaics of 3 x 3 held-out photographs (centre tiles, portrait
    ones turned): 720p clips whose fit sees each pixel about as often as on a 720p video (600
    steps of 4 64x64 crops over 8 frames: ~1.3 times, against ~19 times on a 256x256 clip), so a
    recipe's effect is measured in the regime the shipped default runs in. The second mosaic
    reuses two photographs of the first, mirrored."""
    photos = [rgb if rgb.shape[1] >= rgb.shape[0] else np.rot90(rgb) for _, rgb in held_out_photographs()]
    th, tw = TILE

    def tile(rgb: np.ndarray, mirror: bool) -> np.ndarray:
        top, left = (rgb.shape[0] - th) // 2, (rgb.shape[1] - tw) // 2
        cut = rgb[top : top + th, left : left + tw]
        return cut[:, ::-1] if mirror else cut

    out = []
    for name, picks in (("mosaic A", list(range(9))), ("mosaic B", list(range(9, 16)) + [0, 1])):
        tiles = [tile(photos[i], name == "mosaic B" and i < 2) for i in picks]
        rows = [np.concatenate(tiles[r * 3 : r * 3 + 3], axis=1) for r in range(3)]
        out.append((name, np.concatenate(rows, axis=0).transpose(2, 0, 1).astype(np.float32) / 255.0))
    return out


def held_out_photos(count: int) -> list[tuple[str, np.ndarray]]:
    """The first ``count`` held-out photographs large enough for a clip, as (C, H, W) float32."""
    out = [(name, rgb.transpose(2, 0, 1).astype(np.float32) / 255.0) for name, rgb in held_out_photographs()
           if min(rgb.shape[:2]) >= SIDE + 20]
    return out[:count]


def psnr_mean(outs, clean, frames) -> float:
    from b2g_deploy.metrics import psnr

    return float(np.mean([psnr(outs[i], clean[i]) for i in frames]))


def temporal_stage(stack, single, cfg, prior, check: bool = False, **options):
    """The temporal stage as ``fit VIDEO --temporal`` runs it on frames 0..FIT_FRAMES-1, from the
    single-frame fit ``single`` and the temporal ``prior`` (copies: the stage trains in place),
    aligned as the prior is; ``check``: the frame-to-frame check against the prior."""
    from b2g_deploy.api import fit_temporal_stage

    return fit_temporal_stage(stack[:FIT_FRAMES], copy.deepcopy(single), cfg, k=2, start=copy.deepcopy(prior),
                              start_label="temporal prior", align=prior.align, check_prior=check, **options)


def averaged_into(net, others) -> None:
    """``net``'s floating-point weights replaced by their mean with ``others``' (a "model soup" of
    fits from the same start)."""
    states = [net.state_dict()] + [other.state_dict() for other in others]
    net.load_state_dict({name: sum(state[name] for state in states) / len(states) if value.is_floating_point()
                         else value for name, value in states[0].items()})


def run_clip(name: str, clean: list[np.ndarray], sigma: float, variants: list[tuple], fuse: bool = False,
             check: bool = True, refine: bool = False) -> list[dict]:
    import torch

    from b2g_deploy.config import preset
    from b2g_deploy.fit import fit, single_pass
    from b2g_deploy.priors import starting_network, temporal_starting_network
    from b2g_deploy.temporal.model import denoise_clip

    noisy = [add_video_noise(c, sigma, i) for i, c in enumerate(clean)]
    stack = torch.from_numpy(np.stack(noisy))
    unseen, fitted = range(FIT_FRAMES, FRAMES), range(FIT_FRAMES)
    cfg = preset("fast")
    net, cfg, _ = starting_network(None, 3, cfg)
    t0 = time.perf_counter()
    single = fit(stack[:FIT_FRAMES], cfg, net=net, seed=0).net.eval()
    rows = []

    def add(method: str, outs, seconds: float, fused_too: bool = fuse) -> None:
        row = {"photo": name, "sigma": sigma, "method": method, "unseen": round(psnr_mean(outs, clean, unseen), 3),
               "fitted": round(psnr_mean(outs, clean, fitted), 3), "seconds": round(seconds, 1)}
        rows.append(row)
        print(json.dumps(row), flush=True)
        if fused_too:  # the same outputs through the default output fusion
            from b2g_deploy.temporal.fuse import fuse_clip

            # Without ``refine``: the fusion as it streamed before its Wiener step (the rows in
            # docs/BENCHMARKS.md up to 2026-11-29); with it, as the default streams now.
            add(method + (" + fusion + Wiener" if refine else " + fusion"),
                list(fuse_clip(np.stack(outs), np.stack(noisy), refine=refine)), seconds, fused_too=False)

    with torch.no_grad():
        add("single-frame fit", [single_pass(single, y).numpy() for y in stack], time.perf_counter() - t0,
            fused_too=False)
    prior, _ = temporal_starting_network(None, 3, 2, False, cfg)
    prior.align = "dis"
    with torch.no_grad():
        add("temporal prior alone", [o.numpy() for o in denoise_clip(prior, stack)], 0.0)
    for label, lr_f, steps_f, *options in variants:
        overrides = options[1] if len(options) > 1 else {}  # FitConfig fields, e.g. the batch
        vcfg = cfg.with_overrides(lr=cfg.lr * lr_f, iters=max(1, round(cfg.iters * steps_f)), **overrides)
        t0 = time.perf_counter()
        stage_options = dict(options[0]) if options else {}
        seeds = stage_options.pop("soup", None)  # several fits, their weights averaged
        stage = temporal_stage(stack, single, vcfg, prior, check, **stage_options,
                               **({"seed": seeds[0]} if seeds else {}))
        if seeds:
            averaged_into(stage.net, [temporal_stage(stack, single, vcfg, prior, check, **stage_options, seed=s).net
                                      for s in seeds[1:]])
        seconds = time.perf_counter() - t0
        with torch.no_grad():
            add(f"fit: {label}", [o.numpy() for o in denoise_clip(stage.net, stack)], seconds)
        # Which the frame-to-frame check kept (api.fit_temporal_stage): the row is that network.
        for row in rows[-2 if fuse else -1:]:
            row["neighbour_check"] = stage.record.get("neighbour_check")
        print(json.dumps({"neighbour_check": stage.record.get("neighbour_check")}), flush=True)
    return rows


def table(rows: list[dict]) -> str:
    sigmas = sorted({r["sigma"] for r in rows})
    methods = list(dict.fromkeys(r["method"] for r in rows))
    lines = ["| temporal stage | " + " | ".join(f"σ={s:g} unseen (fitted)" for s in sigmas) + " |",
             "|---|" + "---|" * len(sigmas)]
    for m in methods:
        cells = []
        for s in sigmas:
            got = [r for r in rows if r["method"] == m and r["sigma"] == s]
            cells.append(f"{np.mean([r['unseen'] for r in got]):.2f} ({np.mean([r['fitted'] for r in got]):.2f})"
                         if got else "–")
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--photos", type=int, default=4)
    ap.add_argument("--sigmas", default="25,50")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", type=Path, default=RESULTS)
    ap.add_argument("--variants", default="", help="comma-separated names of VARIANTS (default: all)")
    ap.add_argument("--fuse", action="store_true", help="also each temporal row through the output fusion")
    ap.add_argument("--keep-fit", action="store_true",
                    help="keep every fit (no frame-to-frame check against the prior): the default since 2026-11-29")
    ap.add_argument("--mosaic", action="store_true", help="720p clips panned over two 3x3 mosaics of held-out "
                    "photographs (the 720p default's regime) instead of 256x256 clips of single photographs")
    ap.add_argument("--refine", action="store_true", help="the fused rows with the Wiener step, as the default "
                    "streams since 2026-11-29")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    wanted = [v.strip() for v in args.variants.split(",") if v.strip()]
    variants = [v for v in VARIANTS if not wanted or v[0] in wanted]
    rows = []
    clips = mosaics()[: args.photos] if args.mosaic else held_out_photos(args.photos)
    size = MOSAIC_SIZE if args.mosaic else (SIDE, SIDE)
    for name, photo in clips:
        for sigma in (float(s) for s in args.sigmas.split(",")):
            rows += run_clip(name, clip_from(photo, size), sigma, variants, fuse=args.fuse, check=not args.keep_fit,
                             refine=args.refine)
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps({"command": " ".join(sys.argv), "rows": rows}, indent=1) + "\n")
    print(table(rows))


if __name__ == "__main__":
    main()
