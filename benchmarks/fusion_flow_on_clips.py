"""The output fusion's optical-flow settings on held-out clips (issue 9), never on a reported set:
what the flow's cheaper settings cost in PSNR, now that the fusion is the CPU stream's largest
cost (docs/BENCHMARKS.md, "OpenVINO on the CPU").

Two sets of held-out clips, 12 frames each, 8-bit-quantised Gaussian noise per frame:
- ``mosaic``: tune_int8.py's two 720p mosaics of held-out photographs, panned;
- ``disc``: tune_output_fusion.py's 256x256 pans with a disc of the next photograph crossing
  them and a 6 px non-rigid wobble (tune_refine.py's ``--disc --wobble 6``), four photographs.
The shipped centred temporal prior's outputs (no fit, `dis-fine` windows) go through
``fuse_clip`` (the default k=3 and Wiener step) with each variant: the ``fine`` flow as shipped
(DIS fast preset down to scale 0, 5 variational refinement iterations), the same with fewer
refinement iterations (``fine/vrN``), and ``medium`` (`--fuse-flow medium`). PSNR over all
frames, means over the clips; seconds of the fusion beside (one thread, indicative).

    python benchmarks/fusion_flow_on_clips.py --set mosaic --json runs/flow_mosaic.json &
    python benchmarks/fusion_flow_on_clips.py --set disc --json runs/flow_disc.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import benchmarks.tune_temporal_fit as clips  # noqa: E402
from benchmarks.helpers import REPO, add_video_noise, run_facts  # noqa: E402

RESULTS = REPO / "benchmarks" / "results" / "fusion_flow_on_clips.json"
VARIANTS = ("fine", "fine/vr2", "fine/vr1", "fine/vr0", "medium")


def parse_variant(text: str) -> tuple[str, int | None]:
    """``fine``, ``medium`` or ``fine/vrN`` -> (fusion flow, refinement iterations or None)."""
    flow, _, rest = text.partition("/")
    if flow not in ("fine", "medium") or (rest and (flow != "fine" or not rest.startswith("vr")
                                                   or not rest[2:].isdigit())):
        raise SystemExit(f"unknown variant {text!r}; use fine, medium or fine/vrN")
    return flow, int(rest[2:]) if rest else None


@contextmanager
def refinement_iterations(iterations: int | None):
    """The fusion's DIS objects with ``iterations`` variational refinement iterations (None: as shipped)."""
    from b2g_deploy.temporal import fuse

    shipped = fuse._dis

    def dis(flow: str = fuse.DEFAULT_FLOW):
        made = shipped(flow)
        if iterations is not None:
            made.setVariationalRefinementIterations(iterations)
        return made

    fuse._dis = dis
    try:
        yield
    finally:
        fuse._dis = shipped


def held_out_clips(which: str) -> list[tuple[str, list[np.ndarray]]]:
    if which == "mosaic":
        return [(name, clips.clip_from(photo, clips.MOSAIC_SIZE)) for name, photo in clips.mosaics()]
    from benchmarks.temporal_priors_on_clips import wobbled
    from benchmarks.tune_output_fusion import with_disc

    photos = clips.held_out_photos(5)
    return [(f"{photos[i][0]}+disc", wobbled(with_disc(clips.clip_from(photos[i][1]), photos[i + 1][1]), 6.0, seed=i))
            for i in range(4)]


def run_clip(name: str, clean: list[np.ndarray], sigma: float, variants: list[str]) -> list[dict]:
    from b2g_deploy.metrics import psnr
    from b2g_deploy.temporal.fuse import fuse_clip
    from benchmarks.tune_fusion_width import network_outputs

    noisy = np.stack([add_video_noise(c, sigma, i) for i, c in enumerate(clean)]).astype(np.float32)
    outs = network_outputs(name, noisy, False, None)
    rows = []
    for variant in variants:
        flow, iterations = parse_variant(variant)
        with refinement_iterations(iterations):
            start = time.perf_counter()
            fused = fuse_clip(outs, noisy, flow=flow)
            seconds = time.perf_counter() - start
        rows.append({"clip": name, "sigma": sigma, "variant": variant, "seconds": round(seconds, 2),
                     "psnr": round(float(np.mean([psnr(f, c) for f, c in zip(fused, clean)])), 3)})
        print(json.dumps(rows[-1]), flush=True)
    return rows


def table(rows: list[dict]) -> str:
    sigmas = sorted({r["sigma"] for r in rows})
    variants = list(dict.fromkeys(r["variant"] for r in rows))
    base = {s: np.mean([r["psnr"] for r in rows if r["variant"] == variants[0] and r["sigma"] == s]) for s in sigmas}
    head = " | ".join(f"σ={s:g} | against {variants[0]}" for s in sigmas)
    lines = [f"| fusion flow | {head} | s a clip |", "|---|" + "---|---|" * len(sigmas) + "---|"]
    for v in variants:
        cells = []
        for s in sigmas:
            mean = np.mean([r["psnr"] for r in rows if r["variant"] == v and r["sigma"] == s])
            cells += [f"{mean:.2f}", f"{mean - base[s]:+.2f}"]
        seconds = np.mean([r["seconds"] for r in rows if r["variant"] == v])
        lines.append(f"| {v} | " + " | ".join(cells) + f" | {seconds:.1f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--set", choices=("mosaic", "disc"), default="mosaic")
    ap.add_argument("--sigmas", default="25,50")
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--json", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    for v in variants:
        parse_variant(v)
    import cv2
    import torch

    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    rows = []
    for sigma in (float(s) for s in args.sigmas.split(",")):
        for name, clean in held_out_clips(args.set):
            rows += run_clip(name, clean, sigma, variants)
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps({"run": run_facts(), "set": args.set, "rows": rows}, indent=1))
    print(table(rows))


if __name__ == "__main__":
    main()
