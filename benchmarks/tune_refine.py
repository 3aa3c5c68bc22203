"""Choosing the fusion's Wiener step on the noisy frames (temporal/refine.py) on held-out
material (issue 9), never on the clip the docs report.

The clips of tune_temporal_fit.py (12 frames of 256x256 panned over one held-out photograph,
8-bit-quantised Gaussian noise per frame), or with ``--disc`` those of tune_output_fusion.py
(a disc cut from the next photograph crossing at another velocity: occlusion, and motion one
flow field does not describe), and with ``--wobble PX`` each frame bent by a smooth random field
oscillating in time (temporal_priors_on_clips.py's non-rigid motion). The network is what the fused default streams: the temporal stage
fitted on frames 0-7 and kept (``tune_output_fusion.fitted_temporal_outputs``). Its outputs are
fused (``temporal.fuse.fuse_clip``, the default fusion) without the step and with each variant,
``SHARE@STRIDE/LOW``: SHARE the Wiener step's share of the output (``default``: ``refine.SHARE``),
STRIDE the patch grid's step (``refine.STRIDE``), LOW the size of the lowest-frequency block
taken from the pilot (``refine.LOW``; 0: none). PSNR on the unseen frames 8-11.

    python benchmarks/tune_refine.py --photos 8 --sigmas 25 --variants "0.7@4/0,0.7@4/1,0.7@2/1"
    python benchmarks/tune_refine.py --photos 8 --sigmas 25 --disc --wobble 6 --variants "default@4/1"
    python benchmarks/tune_refine.py --time-720p
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.helpers import REPO, add_video_noise  # noqa: E402
from benchmarks.tune_temporal_fit import FIT_FRAMES, FRAMES, clip_from, held_out_photos, psnr_mean  # noqa: E402

RESULTS = REPO / "benchmarks" / "results" / "tune" / "refine.json"


def parse_variants(text: str) -> list[tuple[str, bool | float, int, int]]:
    """"0.7@4/1,default@2/0" -> [(label, share (True: the default), stride, low)]; STRIDE and LOW
    default to 4 and 1."""
    out = []
    for item in (v.strip() for v in text.split(",") if v.strip()):
        share, _, rest = item.partition("@")
        stride, _, low = rest.partition("/")
        out.append((item, True if share == "default" else float(share), int(stride or 4), int(low or 1)))
    return out


def network_outputs(name: str, noisy: np.ndarray, cache: Path | None, sigma: float) -> np.ndarray:
    """The fitted temporal stage's outputs on every frame (windows aligned by ``dis``, as these
    tables were measured); kept in ``cache`` (a fit per clip is most of the time, and the
    variants do not change it)."""
    from benchmarks.tune_fusion_width import network_outputs as outputs

    return outputs(f"{name}_{sigma:g}", noisy, True, cache, align="dis")


def run_clip(name: str, clean: list[np.ndarray], sigma: float, variants, cache: Path | None,
             causal: bool = False, flow: str = "fine") -> list[dict]:
    import time

    from b2g_deploy.temporal import refine
    from b2g_deploy.temporal.fuse import fuse_clip, removed_sigma

    noisy = np.stack([add_video_noise(c, sigma, i) for i, c in enumerate(clean)])
    outs = network_outputs(name, noisy, cache, sigma)
    estimate = float(np.mean([removed_sigma(y, o) for y, o in zip(noisy, outs)])) * 255
    unseen = range(FIT_FRAMES, FRAMES)
    rows = []
    default_stride, default_low = refine.STRIDE, refine.LOW
    for label, share, stride, low in [("none", 0.0, default_stride, default_low)] + variants:
        refine.STRIDE, refine.LOW = stride, low
        t0 = time.perf_counter()
        fused = fuse_clip(outs, noisy, causal=causal, flow=flow, refine=share)
        rows.append({"photo": name, "sigma": sigma, "estimate": round(estimate, 2), "variant": label, "causal": causal, "flow": flow,
                     "unseen": round(psnr_mean(list(fused), clean, unseen), 3),
                     "seconds": round(time.perf_counter() - t0, 2)})
        print(json.dumps(rows[-1]), flush=True)
    refine.STRIDE, refine.LOW = default_stride, default_low
    return rows


def time_wiener_720p(strides=(2, 3, 4), runs: int = 3) -> dict[str, float]:
    """Seconds (best of ``runs``) of one ``refine.wiener_step`` on a 1280x720 colour frame per
    stride, colour and luminance only: what the step costs a 720p stream on top of the fusion."""
    import time

    from b2g_deploy.temporal.refine import wiener_step

    rng = np.random.default_rng(0)
    frame = rng.random((3, 720, 1280), dtype=np.float32)
    variance = np.full((720, 1280), 1e-2, np.float32)
    out = {}
    for stride in strides:
        for luma in (False, True):
            times = []
            for _ in range(runs):
                t0 = time.perf_counter()
                wiener_step(frame, frame, variance, stride=stride, luma_only=luma)
                times.append(time.perf_counter() - t0)
            out[f"stride {stride}" + (", luminance only" if luma else "")] = round(min(times), 3)
    return out


def table(rows: list[dict]) -> str:
    sigmas = sorted({r["sigma"] for r in rows})
    variants = list(dict.fromkeys(r["variant"] for r in rows))
    lines = ["| variant | " + " | ".join(f"σ={s:g}: PSNR (vs none; worst clip)" for s in sigmas) + " |",
             "|---|" + "---|" * len(sigmas)]
    for v in variants:
        cells = []
        for s in sigmas:
            got = {r["photo"]: r["unseen"] for r in rows if r["variant"] == v and r["sigma"] == s}
            base = {r["photo"]: r["unseen"] for r in rows if r["variant"] == "none" and r["sigma"] == s}
            gains = [got[p] - base[p] for p in got if p in base]
            cells.append(f"{np.mean(list(got.values())):.2f} ({np.mean(gains):+.2f}; {min(gains):+.2f})" if got else "–")
        lines.append(f"| {v} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--photos", type=int, default=8)
    ap.add_argument("--sigmas", default="25,50")
    ap.add_argument("--variants", default="default@4/1", help="comma-separated SHARE@STRIDE/LOW (SHARE: 0..1 or default)")
    ap.add_argument("--disc", action="store_true", help="tune_output_fusion.py's clips: a disc crossing the pan")
    ap.add_argument("--wobble", type=float, default=0.0, help="non-rigid motion on top, px (with --disc)")
    ap.add_argument("--causal", action="store_true", help="causal fusion windows (a live source's; the network's stay centred)")
    ap.add_argument("--flow", default="fine", choices=("fine", "medium"), help="the fusion's flow (temporal/fuse.py)")
    ap.add_argument("--cache", type=Path, default=None, help="keep the network's outputs here (per clip and sigma)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", type=Path, default=RESULTS)
    ap.add_argument("--time-720p", action="store_true", help="only time the Wiener step on a 720p frame")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    if args.time_720p:
        print(json.dumps(time_wiener_720p(), indent=1))
        return
    variants = parse_variants(args.variants)
    photos = held_out_photos(args.photos + 1 if args.disc else args.photos)
    rows: list[dict] = []
    for i, (name, photo) in enumerate(photos[: args.photos]):
        clean = clip_from(photo)
        if args.disc:
            from benchmarks.temporal_priors_on_clips import wobbled
            from benchmarks.tune_output_fusion import with_disc

            clean = wobbled(with_disc(clean, photos[i + 1][1]), args.wobble, seed=i)
            name = f"{name}+disc" + (f"+wobble{args.wobble:g}" if args.wobble else "")
        for sigma in (float(s) for s in args.sigmas.split(",")):
            rows += run_clip(name, clean, sigma, variants, args.cache, args.causal, args.flow)
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps({"command": " ".join(sys.argv), "rows": rows}, indent=1) + "\n")
    print(table(rows))


if __name__ == "__main__":
    main()
