"""Temporal B2G on video (issue 9): a temporal network fitted on the clip itself, against the
single-frame fit it starts from and OpenCV NLM.

    .venv/bin/python benchmarks/bench_temporal.py --scale 0.5 --frames-limit 40 --fit-frames 8 \
        --sigmas 25,50 --causal --threads 1 --json benchmarks/results/temporal.json --resume

The first F frames of the clip (``--frames-limit``), downscaled with INTER_AREA (``--scale``),
get Gaussian noise sigma/255 with seed = frame index, clipped and quantised to 8 bits like a
camera video: bench_video.py's noise, so the same pixels as the issue 4 table. Per sigma:

- single-frame B2G: the ``fast`` preset from the shipped prior (priors.starting_network), fitted
  on the first N frames (``--fit-frames``), its f(y) on every frame;
- temporal B2G: b2g_deploy.api.fit_temporal_stage from that single-frame net (what ``b2g fit
  --temporal`` does: noise-independence check, then the temporal fit, k=2 centred) on the same N
  consecutive frames, denoise_clip on all F frames; with ``--causal`` also the causal window;
- OpenCV NLM per frame: bench_quality.run_nlm with h = hColor = k sigma, k the best of
  temporal_methods.NLM_KS on
  a 256x256 centre crop of frame 0 against the clean frame (an oracle that favours NLM; template 7,
  search 21) on the uint8 frames.

PSNR is averaged over the frames no network was fitted on (N..F-1, "unseen") and over the
fitted ones (0..N-1); flicker is b2g_deploy.io.temporal.flicker against the clean frames (all F).
Fit seconds are wall time of that fit (the temporal rows also give the total with the
single-frame fit and the noise check), inference ms per frame are torch on CPU with --threads.
Rows go to ``--json`` as each completes (``--resume`` continues a file); the section
"## Temporal video (issue 9)" of docs/BENCHMARKS.md is rebuilt from every row in the JSON.
"""

from __future__ import annotations

import argparse
import copy
import shlex
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a file: make `benchmarks` importable

from benchmarks.helpers import (  # noqa: E402
    DOC, REPO, VIDEO, ResultStore, add_video_noise, centre_crop, fmt, log, run_bm3d,
)
from benchmarks.temporal_table import (  # noqa: E402
    BM3D, CAUSAL, CFIT, CPRIOR, CROP_FRAMES, FUSABLE, INPUT, NLM, SCHECKED, SINGLE, SINGLE_X8, SPRIOR, TALIGNED,
    TEMPORAL, TFIT, TPRIOR, TPRIOR_X8,
    fused_method, render,
)

from benchmarks.temporal_methods import (  # noqa: E402
    apply_nlm, apply_single, apply_temporal, check_single_fit, fit_and_apply_temporal, fit_single,
    load_temporal_prior, single_prior,
)

HEADING = "## Temporal video (issue 9)"
CAUSAL_ROWS = (CPRIOR, CFIT, CAUSAL)  # fused with causal windows


# ---- data ------------------------------------------------------------------------------------


def load_clip(video: Path, frames: int, scale: float) -> list[np.ndarray]:
    """The first ``frames`` clean frames (C, H, W) float32 in [0, 1], downscaled with INTER_AREA."""
    import cv2

    from b2g_deploy.io.video import read_frames

    out = []
    for f in read_frames(video, limit=frames, channels=3):
        f = np.asarray(f, dtype=np.float32)
        if scale != 1.0:
            hwc = cv2.resize(f.transpose(1, 2, 0), None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
            f = np.ascontiguousarray(hwc.transpose(2, 0, 1))
        out.append(f)
    if len(out) < frames:
        raise SystemExit(f"{video} has {len(out)} frames, fewer than --frames-limit {frames}")
    return out


# ---- rows ------------------------------------------------------------------------------------


def setup_key(args) -> str:
    """The row's "image": everything that changes the numbers besides sigma and method."""
    iters = args.iters if args.iters is not None else "preset"
    seed = f", seed {args.seed}" if args.seed else ""  # seed 0: the keys of the rows before --seed existed
    return (f"{args.video.name}[0:{args.frames_limit}] x{args.scale:g}, fit on 0-{args.fit_frames - 1}, "
            f"iters {iters}{seed}")


def score(outs: list[np.ndarray], clean: list[np.ndarray], n_fit: int, crop_frames: int = 8) -> dict:
    """PSNR on the unseen and the fitted frames, and on the 256x256 centre crop of the first
    ``crop_frames`` unseen frames (where BM3D, too slow for whole 720p frames, is compared)."""
    from b2g_deploy.io.temporal import flicker
    from b2g_deploy.metrics import psnr

    per_frame = [psnr(o, c) for o, c in zip(outs, clean)]
    unseen, fitted = per_frame[n_fit:], per_frame[:n_fit]
    crop = centre_crop(clean[0].shape)
    crops = [psnr(o[crop], c[crop]) for o, c in zip(outs[n_fit : n_fit + crop_frames], clean[n_fit:])]
    return {
        "psnr_unseen": float(np.mean(unseen)) if unseen else float("nan"),
        "psnr_fitted": float(np.mean(fitted)) if fitted else float("nan"),
        "psnr_all": float(np.mean(per_frame)),
        "psnr_per_frame": [round(p, 3) for p in per_frame],
        "psnr_crop": float(np.mean(crops)) if crops else float("nan"),
        "crop_frames": len(crops),
        "flicker": float(flicker(outs, clean)),
    }


# ---- the run ---------------------------------------------------------------------------------


def run_sigma(sigma: float, clean: list[np.ndarray], args, store: ResultStore) -> None:
    image, noise = setup_key(args), f"{sigma:g}"
    base = {"set": "video", "image": image, "noise": noise, "frames": len(clean), "fit_frames": args.fit_frames,
            "scale": args.scale, "size": list(clean[0].shape[1:]), "sigma": sigma}
    tprior, tprior_facts = load_temporal_prior(args)
    cprior, cprior_facts = load_temporal_prior(args, causal=True)
    wanted = [INPUT, SINGLE, SPRIOR, SCHECKED, TEMPORAL, *([CAUSAL] if args.causal else []), NLM, BM3D, TALIGNED,
              *([TPRIOR, TFIT] if tprior is not None else []), *([CPRIOR, CFIT] if cprior is not None else []),
              *([SINGLE_X8] if args.flips else []), *([TPRIOR_X8] if args.flips and tprior is not None else [])]
    if args.methods:
        wanted = [m for m in wanted if m in args.methods]

    def fusions(method: str) -> list[tuple[str, int | None, bool]]:
        """(flow, k, refine) of each fused row of ``method``: k None is the fusion's default
        window; causal rows keep theirs (on held-out clips a wider causal window gained nothing)."""
        ks = [None] if method in CAUSAL_ROWS else args.fuse_ks
        refines = {"on": [True], "off": [False], "both": [False, True]}[args.refine]
        return [(flow, k, r) for flow in args.fuse_flows for k in ks for r in refines]

    todo = [m for m in wanted if not store.done(("video", image, noise, m))
            or (args.fuse and m in FUSABLE
                and not all(store.done(("video", image, noise, fused_method(m, f, k, r))) for f, k, r in fusions(m)))]
    if not todo:
        return
    noisy = [add_video_noise(c, sigma, i) for i, c in enumerate(clean)]

    def add(method: str, outs: list[np.ndarray], **extra) -> None:
        row = {**base, "method": method, **score(outs, clean, args.fit_frames, CROP_FRAMES), **extra}
        if args.save_outputs is not None and method in FUSABLE:  # a network's raw outputs, for later fusions
            args.save_outputs.mkdir(parents=True, exist_ok=True)
            np.save(args.save_outputs / f"{method}_s{noise}_seed{args.seed}.npy", np.stack(outs).astype(np.float16))
        store.add(row)
        log(f"sigma {noise} {method:<20} unseen {fmt(row['psnr_unseen'])} dB, fitted {fmt(row['psnr_fitted'])} dB, "
            f"flicker {fmt(row['flicker'], 4)}")
        if args.fuse and method in FUSABLE:  # the same outputs through the output fusion
            from b2g_deploy.temporal.fuse import default_k, fuse_clip

            causal = method in CAUSAL_ROWS
            for flow, k, refine in fusions(method):
                t0 = time.perf_counter()
                fused = list(fuse_clip(np.stack(outs), np.stack(noisy), k=k, causal=causal, flow=flow, refine=refine))
                fuse_ms = (time.perf_counter() - t0) / len(outs) * 1000
                add(fused_method(method, flow, k, refine), fused,
                    **{**extra, "fuse_ms": fuse_ms, "fuse_k": k or default_k(causal), "fuse_flow": flow,
                       "fuse_refine": refine, "infer_ms": (extra.get("infer_ms") or 0.0) + fuse_ms})

    if INPUT in todo:
        add(INPUT, noisy, fit_s=0.0, infer_ms=None)
    if BM3D in todo:  # the centre crops of the first unseen frames only: a 720p frame takes minutes
        first, last = args.fit_frames, min(args.fit_frames + CROP_FRAMES, len(noisy))
        log(f"sigma {noise}: BM3D on the 256x256 centre crops of frames {first}-{last - 1}")
        crop = centre_crop(noisy[0].shape)
        t0 = time.perf_counter()
        outs = [run_bm3d(n[crop], noise)[0] for n in noisy[first:last]]
        per_crop = (time.perf_counter() - t0) / len(outs)
        from b2g_deploy.metrics import psnr

        crops = [psnr(o, c[crop]) for o, c in zip(outs, clean[first:last])]
        row = {**base, "method": BM3D, "psnr_unseen": float("nan"), "psnr_fitted": float("nan"),
               "psnr_all": float("nan"), "psnr_crop": float(np.mean(crops)), "crop_frames": len(crops),
               "flicker": float("nan"), "fit_s": 0.0, "infer_ms": per_crop * 1000}
        store.add(row)
        log(f"sigma {noise} {BM3D:<20} 256 crop {fmt(row['psnr_crop'])} dB")
    if NLM in todo:
        log(f"sigma {noise}: NLM on {len(noisy)} frames")
        outs, per_frame, extra = apply_nlm(noisy, sigma, clean[0])
        add(NLM, outs, fit_s=0.0, infer_ms=per_frame * 1000, **extra)
    for method, prior, prior_facts, flips in ((TPRIOR, tprior, tprior_facts, 1), (CPRIOR, cprior, cprior_facts, 1),
                                              (TPRIOR_X8, tprior, tprior_facts, 8)):
        if method in todo:
            aligned_prior = copy.deepcopy(prior)
            aligned_prior.align = args.align
            outs, per_frame = apply_temporal(aligned_prior, noisy, flips)
            add(method, outs, fit_s=0.0, infer_ms=per_frame * 1000, align=args.align, flips=flips, **prior_facts)
    prior_net, prior_facts = single_prior(args) if SPRIOR in todo or SCHECKED in todo else (None, {})
    outputs = {}  # the single-frame rows' outputs, so the checked row reuses the network it kept
    if SPRIOR in todo or SCHECKED in todo:
        outputs["prior"], prior_ms = apply_single(prior_net, noisy)
        if SPRIOR in todo:
            add(SPRIOR, outputs["prior"], fit_s=0.0, infer_ms=prior_ms * 1000, **prior_facts)
    if not any(m in todo for m in (SINGLE, SCHECKED, SINGLE_X8, TEMPORAL, CAUSAL, TFIT, TALIGNED, CFIT)):
        return
    log(f"sigma {noise}: single-frame fit on frames 0-{args.fit_frames - 1}")
    net, cfg, fit_s, facts = fit_single(noisy, args, seed=args.seed)
    if SINGLE in todo or SCHECKED in todo:
        outputs["fitted"], fitted_ms = apply_single(net, noisy)
        if SINGLE in todo:
            add(SINGLE, outputs["fitted"], fit_s=fit_s, fit_total_s=fit_s, infer_ms=fitted_ms * 1000, **facts)
    if SCHECKED in todo:  # the same fit, then the check `denoise VIDEO --no-fuse` runs (api.keep_better)
        t0 = time.perf_counter()
        check = check_single_fit(prior_net, net, noisy, args, prior_facts["init"])
        checked_s = fit_s + time.perf_counter() - t0
        kept = check["kept"] if check else "fitted"
        add(SCHECKED, outputs[kept], fit_s=checked_s, fit_total_s=checked_s,
            infer_ms=(prior_ms if kept == "prior" else fitted_ms) * 1000, steps=facts["steps"], init=facts["init"],
            single_check=check)
    if SINGLE_X8 in todo:
        outs, per_frame = apply_single(net, noisy, 8)
        add(SINGLE_X8, outs, fit_s=fit_s, fit_total_s=fit_s, infer_ms=per_frame * 1000, flips=8, **facts)
    for method, causal, start, align in ((TEMPORAL, False, None, "none"), (CAUSAL, True, None, "none"),
                                         (TALIGNED, False, None, args.align), (TFIT, False, tprior, args.align),
                                         (CFIT, True, cprior, args.align)):
        if method not in todo:
            continue
        log(f"sigma {noise}: {method} ({'causal' if causal else 'centred'}) on frames 0-{args.fit_frames - 1}")
        start_facts = cprior_facts if method == CFIT else tprior_facts
        label = start_facts.get("temporal_prior", "") if start is not None else "single-frame fit"
        outs, t_fit, per_frame, tfacts, _ = fit_and_apply_temporal(net, cfg, noisy, args, causal,
                                                                start=start, start_label=label, align=align,
                                                                seed=args.seed)
        add(method, outs, fit_s=t_fit, fit_total_s=fit_s + t_fit, infer_ms=per_frame * 1000,
            single_steps=facts["steps"], init=facts["init"], iters=cfg.iters, **tfacts,
            **(start_facts if start is not None else {}))


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--video", type=Path, default=VIDEO)
    p.add_argument("--sigmas", default="25,50", type=lambda s: [float(x) for x in s.split(",") if x.strip()])
    p.add_argument("--frames-limit", type=int, default=40, help="F: the first F frames of the clip")
    p.add_argument("--scale", type=float, default=1.0, help="downscale (INTER_AREA), e.g. 0.5 -> 640x360")
    p.add_argument("--fit-frames", type=int, default=8, help="N: both fits use frames 0..N-1")
    p.add_argument("--iters", type=int, default=None, help="steps of each fit (default: the preset's)")
    p.add_argument("--seed", type=int, default=0, help="the fits' seed (crops, masks, recorruption): how far "
                   "one fit's number moves by chance")
    p.add_argument("--causal", action="store_true", help="also the causal temporal window")
    p.add_argument("--methods", default="", type=lambda s: [m.strip() for m in s.split(",") if m.strip()],
                   help="only these rows (comma list of method keys, e.g. b2g-single,b2g-temporal-from-prior)")
    p.add_argument("--prior", type=Path, default=None,
                   help="the RGB prior the single-frame fit starts from (default: the shipped one)")
    p.add_argument("--temporal-prior", type=Path, default=None,
                   help="k=2 centred temporal prior for the prior rows (default: the packaged one, if any)")
    p.add_argument("--causal-prior", type=Path, default=None,
                   help="k=2 causal temporal prior for the causal rows (default: the packaged one, if any)")
    p.add_argument("--align", default="dis-fine", choices=("dis", "dis-fine", "lk"),
                   help="the flow of the aligned rows (temporal/align.py; dis: the coarser flow of the runs before "
                        "2026-11-29)")
    p.add_argument("--flips", action="store_true",
                   help="also the single-frame fit and the temporal prior averaged over 8 flips/turns (--mode flips)")
    p.add_argument("--fuse", action="store_true",
                   help="also each B2G row's outputs through the output fusion (temporal/fuse.py)")
    p.add_argument("--save-outputs", type=Path, default=None,
                   help="keep each network's raw outputs here (METHOD_sSIGMA_seedN.npy, float16), to fuse them again later")
    p.add_argument("--fuse-flows", default="fine", type=lambda s: [f.strip() for f in s.split(",") if f.strip()],
                   help="--fuse: the fusion flows to run, comma-separated (fine, medium; temporal/fuse.py)")
    p.add_argument("--fuse-ks", default=[None], type=lambda s: [None] + [int(k) for k in s.split(",") if k.strip()],
                   help="--fuse: centred fusion windows to run besides the default, frames each side (e.g. 4)")
    p.add_argument("--refine", default="on", choices=("on", "off", "both"),
                   help="--fuse: with the fusion's Wiener step on the noisy frames (temporal/refine.py; "
                        "on, as denoise streams it), without (the fusion before it), or both rows")
    p.add_argument("--threads", type=int, default=1, help="torch and OpenCV threads")
    p.add_argument("--json", type=Path, default=REPO / "benchmarks" / "results" / "temporal.json")
    p.add_argument("--resume", action="store_true", help="continue an existing --json")
    p.add_argument("--output", type=Path, default=DOC)
    p.add_argument("--no-doc", action="store_true", help="do not rewrite --output")
    p.add_argument("--table-only", action="store_true", help="rebuild the section from --json, run nothing")
    args = p.parse_args(argv)
    from b2g_deploy.temporal.fuse import FUSION_FLOWS

    if set(args.fuse_flows) - set(FUSION_FLOWS) or not args.fuse_flows:
        p.error(f"--fuse-flows: one or more of {', '.join(FUSION_FLOWS)}")

    import json

    import cv2
    import torch

    if args.table_only:
        data = json.loads(args.json.read_text())
        return write_doc(data["rows"], data["runs"], args)
    if not args.video.exists():
        raise SystemExit(f"no video {args.video}")
    if not 2 <= args.fit_frames <= args.frames_limit:
        raise SystemExit("--fit-frames must be at least 2 and at most --frames-limit")
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    store = ResultStore(args.json, args.resume)
    cli = sys.argv[1:] if argv is None else argv
    store.runs[-1]["command"] = "python benchmarks/bench_temporal.py " + " ".join(shlex.quote(a) for a in cli)
    store._save()
    started = time.perf_counter()
    try:
        clean = load_clip(args.video, args.frames_limit, args.scale)
        log(f"{len(clean)} frames {clean[0].shape[2]}x{clean[0].shape[1]}")
        for sigma in args.sigmas:
            run_sigma(sigma, clean, args, store)
    except KeyboardInterrupt:
        print("interrupted: rows so far are in", args.json)
    finally:
        store.runs[-1]["wall_s"] = round(time.perf_counter() - started, 1)
        store._save()
        write_doc(store.rows, store.runs, args)


def write_doc(rows: list[dict], runs: list[dict], args) -> None:
    body = render(rows, runs)
    print(body)
    if not args.no_doc:
        from benchmarks.helpers import replace_section

        replace_section(args.output, HEADING, body)
        print(f"wrote the section '{HEADING}' of {args.output}")


if __name__ == "__main__":
    main()
