"""Clipping's bias undone (b2g_deploy/clipping.py) on the cockatoo clip's saved network outputs
(issue 9), beside the outputs as they were: the default video path's numbers since 2026-12-06.

Reads the raw outputs ``bench_temporal.py --save-outputs DIR`` wrote (``METHOD_sS_seedN.npy``,
frames 0..F-1 of the clip at 720p, float16), rebuilds the issue's noisy frames (as bench_temporal
does), and scores frames N..F-1 (N: the frames fitted on) five ways: the network alone, alone
then unclipped, fused and refined (``temporal.fuse.fuse_clip``), fused then unclipped, and that
blended as a fused output is by default (``io.temporal.FUSED_BLEND``): the default. Unclipping
is what ``denoise VIDEO`` streams: ``clipping.Unclipper`` with sigma estimated frame by frame,
in order. Beside PSNR: the BM3D crop, the flicker and the temporal error (``io.temporal``) over
all frames.

    python benchmarks/bench_temporal.py --scale 1.0 --frames-limit 40 --fit-frames 8 --sigmas 25 --threads 1 \\
        --methods b2g-single,b2g-temporal-from-prior --fuse --refine on --seed N --save-outputs DIR --no-doc ...
    python benchmarks/unclip_saved_outputs.py DIR
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.bench_temporal import load_clip, score  # noqa: E402
from benchmarks.temporal_table import CROP_FRAMES  # noqa: E402
from benchmarks.helpers import DOC, REPO, VIDEO, add_video_noise, log, replace_section, run_facts  # noqa: E402

HEADING = "## Clipping's bias undone on the cockatoo clip (issue 9)"
RESULTS = REPO / "benchmarks" / "results" / "unclip_cockatoo.json"
NAME = re.compile(r"(?P<method>.+)_s(?P<sigma>[0-9.]+)_seed(?P<seed>\d+)\.npy$")
LABELS = {"b2g-single": "single-frame fit", "b2g-temporal-from-prior": "temporal default"}
WAYS = ("alone", "alone, unclipped", "fused and refined", "fused and refined, unclipped",
        "fused and refined, unclipped, blended")


def streamed_unclip(noisy: np.ndarray, frames: np.ndarray, box: int) -> np.ndarray:
    """Each frame through one ``Unclipper`` in order, as ``denoise VIDEO``'s pipeline does
    (``box``: the side of the box its correction is averaged over; the stream's is 3)."""
    from b2g_deploy.clipping import Unclipper

    unclipper = Unclipper(smooth=box)
    return np.stack([unclipper(y, f) for y, f in zip(noisy, frames)])


def streamed_blend(noisy: np.ndarray, frames: np.ndarray, blend: tuple[float, float] | None = None) -> np.ndarray:
    """Each frame through ``TemporalBlend(strength, threshold)`` in order, as the pipeline applies
    it after unclipping; None: the blend a fused output gets by default (``io.temporal.FUSED_BLEND``)."""
    from b2g_deploy.io.temporal import FUSED_BLEND, TemporalBlend

    blender = TemporalBlend(*(blend or FUSED_BLEND))
    return np.stack([blender(y, f) for y, f in zip(noisy, frames)])


def score_file(path: Path, clean: np.ndarray, fit_frames: int, box: int) -> dict:
    from b2g_deploy.io.temporal import temporal_error
    from b2g_deploy.temporal.fuse import fuse_clip

    found = NAME.match(path.name)
    sigma, seed = float(found["sigma"]), int(found["seed"])
    outs = np.load(path).astype(np.float32)
    noisy = np.stack([add_video_noise(c, sigma, i) for i, c in enumerate(clean[: len(outs)])]).astype(np.float32)
    fused = fuse_clip(outs, noisy)
    unclipped = streamed_unclip(noisy, fused, box)
    frames = {"alone": outs, "alone, unclipped": streamed_unclip(noisy, outs, box),
              "fused and refined": fused, "fused and refined, unclipped": unclipped,
              "fused and refined, unclipped, blended": streamed_blend(noisy, unclipped)}
    row = {"method": found["method"], "sigma": sigma, "seed": seed, "box": box}
    for way, got in frames.items():  # bench_temporal's scores: unseen frames, the BM3D crop, flicker
        scored = score(list(got), list(clean[: len(outs)]), fit_frames, CROP_FRAMES)
        row[way], row[f"{way}: crop"], row[f"{way}: flicker"] = (scored["psnr_unseen"], scored["psnr_crop"],
                                                                scored["flicker"])
        row[f"{way}: temporal error"] = float(temporal_error(list(got), list(clean[: len(outs)])))
    return row


def render(rows: list[dict], facts: dict, folder: str) -> str:
    out = [f"The temporal default and the single-frame fit on the cockatoo clip (1280x720, frames 0-39, the issue's "
           f"noise, fits on frames 0-7), their saved outputs (`{folder}`) scored on frames 8-39 as they are and "
           "unclipped as `denoise VIDEO` streams them (sigma estimated frame by frame, the correction averaged over a "
           f"{rows[0]['box']} x {rows[0]['box']} box), the fused ones also blended as `denoise VIDEO` blends a fused "
           "output by default (`io.temporal.FUSED_BLEND`); beside the means, the 256x256 centre crop of frames 8-15 "
           "(where BM3D is compared), the flicker against the clean clip's (`io.temporal.flicker`; 0 is the clean "
           "clip's, below it is steadier) and the temporal error (`io.temporal.temporal_error`: the error's mean "
           "change from frame to frame), both over frames 0-39.", ""]
    for sigma in sorted({r["sigma"] for r in rows}):
        seeds = sorted({r["seed"] for r in rows if r["sigma"] == sigma})
        out += [f"| σ={sigma:g}, frames 8-39 | " + " | ".join(f"seed {s}" for s in seeds)
                + " | mean | 256 crop, frames 8-15 (mean) | flicker (mean) | temporal error x1000 (mean) |",
                "|---|" + "---|" * (len(seeds) + 4)]
        for method in LABELS:
            for way in WAYS:
                got = {r["seed"]: r[way] for r in rows if r["sigma"] == sigma and r["method"] == method}
                if not got:
                    continue
                cells = " | ".join(f"{got[s]:.2f}" if s in got else "–" for s in seeds)
                extra = {k: np.mean([r.get(f"{way}: {k}", np.nan) for r in rows
                                     if r["sigma"] == sigma and r["method"] == method])
                         for k in ("crop", "flicker", "temporal error")}
                out.append(f"| {LABELS[method]}, {way} | {cells} | {np.mean(list(got.values())):.2f} | "
                           f"{extra['crop']:.2f} | {extra['flicker']:+.4f} | {1000 * extra['temporal error']:.2f} |")
        default = "fused and refined, unclipped, blended"
        for reference in ("alone", "alone, unclipped"):
            margin = {}
            for seed in seeds:
                got = {r["method"]: r for r in rows if r["sigma"] == sigma and r["seed"] == seed}
                if set(LABELS) <= set(got):
                    margin[seed] = got["b2g-temporal-from-prior"][default] - got["b2g-single"][reference]
            if margin:
                cells = " | ".join(f"{margin[s]:+.2f}" if s in margin else "–" for s in seeds)
                out.append(f"| margin: temporal default ({default}) over the single-frame fit ({reference}); "
                           f"target +1.5 | {cells} | {np.mean(list(margin.values())):+.2f} | | | |")
        out.append("")
    out.append(f"Run: `{facts['command']}` on {facts['cpu']} ({facts['cores']} cores), {facts['date']}.")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("outputs", type=Path, help="bench_temporal.py --save-outputs folder")
    ap.add_argument("--fit-frames", type=int, default=8)
    ap.add_argument("--box", type=int, default=3, help="the unclipping correction's box (clipping.SMOOTH; 1: none)")
    ap.add_argument("--json", type=Path, default=RESULTS)
    ap.add_argument("--no-doc", action="store_true")
    args = ap.parse_args()
    import cv2

    cv2.setNumThreads(1)
    files = sorted(p for p in args.outputs.glob("*.npy") if NAME.match(p.name) and NAME.match(p.name)["method"] in LABELS)
    if not files:
        sys.exit(f"error: no saved outputs of {', '.join(LABELS)} in {args.outputs}")
    n = max(len(np.load(p, mmap_mode="r")) for p in files)
    clean = np.stack(load_clip(VIDEO, n, 1.0))
    facts, rows = run_facts(), []
    for path in files:
        rows.append(score_file(path, clean, args.fit_frames, args.box))
        log(f"{path.name}: " + ", ".join(f"{w} {rows[-1][w]:.2f}" for w in WAYS))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"run": facts, "rows": rows}, indent=1) + "\n")
    table = render(rows, facts, args.outputs.name)
    print(table)
    if not args.no_doc:
        replace_section(DOC, HEADING, table)


if __name__ == "__main__":
    main()
