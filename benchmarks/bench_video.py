"""Video benchmark (issue 4): fit once and apply to every frame, against per-frame fitting and peers.

On a clip with synthetic Gaussian noise (sigma/255, seed = frame index), side by side in one run:
B2G fitted on frame 0 (exported single pass, exported K-mask ensemble), B2G fitted on N frames
spread over the whole clip, B2G fitted per frame (the reference for frames a network never saw),
each single-pass row also with the motion-aware temporal blend; OpenCV NLM per frame and its
multi-frame variant (temporal window 5); BM3D. Noisy frames are clipped and stored as 8-bit
lossless FFV1, like a camera video: every method sees the same 8-bit noisy frames, and the
exported rows are timed end to end through the real pipeline (decode -> ONNX Runtime -> encode).

    .venv/bin/python benchmarks/bench_video.py --scale 0.5 --frames-limit 12 --ref-frames 5 --fit-seconds 60 --passes 4
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a file: make `benchmarks` importable
from benchmarks.helpers import (  # noqa: E402
    VIDEO,
    add_video_noise,
    centre_crop,
    cpu_model,
    log,
    nlm_h,
    nlm_multi,
    read_video_frames,
    run_bm3d,
)

from b2g_deploy import api  # noqa: E402
from b2g_deploy.config import preset  # noqa: E402
from b2g_deploy.fit import fit, single_pass  # noqa: E402
from b2g_deploy.io.pipeline import run_pipeline  # noqa: E402
from b2g_deploy.io.temporal import TemporalBlend, flicker  # noqa: E402
from b2g_deploy.io.video import VideoInfo, open_sink, open_source, read_frames  # noqa: E402
from b2g_deploy.metrics import psnr, ssim  # noqa: E402
from b2g_deploy.runtimes.base import ModelInfo, Runtime  # noqa: E402

ORT_THREADS = 1


class NlmRuntime(Runtime):
    """OpenCV fastNlMeansDenoisingColored per frame, behind the Runtime interface so it is timed
    through the same decode -> infer -> encode pipeline as B2G."""

    name = "opencv-nlm"

    def __init__(self, h: float):
        self.h, self.info = h, ModelInfo(channels=3)

    def infer(self, frames: np.ndarray) -> np.ndarray:
        return np.stack([nlm_h(f, self.h) for f in frames])


def tune_nlm_h(noisy: np.ndarray, clean: np.ndarray, sigma: float) -> float:
    """h for NLM picked on a 256x256 crop of frame 0 against the clean frame (an oracle choice:
    it favours NLM)."""
    crop = centre_crop(noisy.shape)
    scores = {k * sigma: psnr(nlm_h(noisy[crop], k * sigma), clean[crop]) for k in (0.4, 0.6, 0.8, 1.0)}
    return max(scores, key=scores.get)


def write_video(path: Path, frames: list[np.ndarray]) -> Path:
    """8-bit lossless FFV1: the noisy frames exactly as a decoder gives them back."""
    sink = open_sink(path, VideoInfo(frames[0].shape[2], frames[0].shape[1], 3, 20.0, len(frames)), force=True)
    for f in frames:
        sink.write(f)
    sink.close()
    return path


def fit_video(video: Path, frames: int, fit_seconds: float, name: str, threads: int):
    """``b2g-deploy fit VIDEO --frames N`` through the library (the scratch preset, as the
    table's rows were measured): (checkpoint, fit seconds, steps)."""
    report = api.fit(video, video.with_name(f"{name}.png"), video.with_name(f"{name}.b2g.pt"), preset="scratch",
                     time_budget=fit_seconds, device="cpu", frames=frames, single_pass=True, threads=threads,
                     force=True)
    return report.checkpoint, report.seconds, report.steps


def export(checkpoint: Path, mode: str = "single", passes: int = 8) -> Path:
    out = checkpoint.with_name(checkpoint.name.replace(".b2g.pt", f"_{mode}.onnx"))
    api.export(checkpoint, out, mode=mode, passes=passes, force=True)
    return out


def stream(model: Path, noisy_video: Path, out: Path, limit: int | None):
    """The real pipeline (``b2g-deploy denoise VIDEO -m MODEL``) on ORT CPU, timed end to end;
    returns (frames read back, fps)."""
    report = api.denoise_video(noisy_video, out, model, runtime="onnxruntime", device="cpu", batch=1,
                               threads=ORT_THREADS, limit=limit, force=True, fuse=False)  # the network alone
    return read_frames(out), report.fps


def stream_peer(runtime: Runtime, noisy_video: Path, out: Path, limit: int | None):
    """A peer that is no model file (NLM) through the same pipeline: (frames read back, fps)."""
    source = open_source(noisy_video)
    try:
        stats = run_pipeline(source, runtime, open_sink(out, source.info, force=True), batch=1, limit=limit)
    finally:
        source.close()
    return read_frames(out), stats.fps


def score(name: str, outs: list[np.ndarray], clean: list[np.ndarray], ref: int, fps: float, fit_s: float, note: str = ""):
    n = len(outs)
    crop = centre_crop(clean[0].shape)  # 256x256 centre crop (BM3D's area)
    return {
        "method": name, "frames": n,
        "psnr": float(np.mean([psnr(o, c) for o, c in zip(outs, clean)])),
        "ssim": float(np.mean([ssim(o, c) for o, c in zip(outs, clean)])),
        "flicker": flicker(outs, clean[:n]),
        "psnr_ref": float(np.mean([psnr(o, c) for o, c in zip(outs[:ref], clean[:ref])])),
        "psnr_ref_unseen": float(np.mean([psnr(o, c) for o, c in zip(outs[1:ref], clean[1:ref])])),
        "psnr_crop": float(np.mean([psnr(o[crop], c[crop]) for o, c in zip(outs[:ref], clean[:ref])])),
        "fps": fps, "fit_s": fit_s, "note": note,
    }


def blended_row(outs, noisy, clean, r, fps, fit_s, blend: TemporalBlend) -> dict:
    """The temporal blend applied to the same single-pass outputs (8-bit, as written), in order;
    its cost per frame is timed and added to the pipeline's frame time."""
    t = time.perf_counter()
    blended = [blend(y, o) for y, o in zip(noisy, outs)]
    per_frame = (time.perf_counter() - t) / len(outs)
    return score("  + temporal blend", blended, clean, r, 1.0 / (1.0 / fps + per_frame), fit_s,
                 f"blend {per_frame * 1000:.0f} ms/frame")


def run_sigma(sigma: float, args, work: Path) -> list[dict]:
    k, r = args.frames_limit, args.ref_frames
    spread = np.linspace(0, args.clip_frames - 1, args.fit_frames).round().astype(int).tolist()
    frames = read_video_frames(args.video, sorted(set(range(k)) | set(spread)), args.scale)
    clean = [frames[i] for i in range(k)]
    noisy_video = write_video(work / f"noisy_s{sigma:g}.mkv", [add_video_noise(frames[i], sigma, i) for i in range(k)])
    noisy = read_frames(noisy_video)  # exactly what the pipeline will decode
    rows = [score("noisy input", noisy, clean, r, 0.0, 0.0)]

    def blend() -> TemporalBlend:
        return TemporalBlend(args.blend, args.blend_threshold, sigma / 255.0)

    log(f"sigma {sigma}: fit on frame 0")
    ckpt0, fit0, steps0 = fit_video(noisy_video, 1, args.fit_seconds, f"f0_s{sigma:g}", args.threads)
    outs, fps = stream(export(ckpt0), noisy_video, work / "o.mkv", None)
    rows.append(score("B2G fit on frame 0, single pass (ORT CPU)", outs, clean, r, fps, fit0, f"{steps0} steps"))
    rows.append(blended_row(outs, noisy, clean, r, fps, fit0, blend()))
    outs, fps = stream(export(ckpt0, "ensemble", args.passes), noisy_video, work / "o.mkv", r)
    rows.append(score(f"B2G fit on frame 0, {args.passes}-mask ensemble (ORT CPU)", outs, clean, r, fps, fit0))

    log(f"sigma {sigma}: fit on {args.fit_frames} frames {spread}")
    spread_video = write_video(work / f"spread_s{sigma:g}.mkv", [add_video_noise(frames[i], sigma, i) for i in spread])
    ckpt8, fit8, steps8 = fit_video(spread_video, args.fit_frames, args.fit_seconds, f"n8_s{sigma:g}", args.threads)
    outs, fps = stream(export(ckpt8), noisy_video, work / "o.mkv", None)
    rows.append(score(f"B2G fit on {args.fit_frames} frames, single pass (ORT CPU)", outs, clean, r, fps, fit8,
                      f"{steps8} steps"))
    rows.append(blended_row(outs, noisy, clean, r, fps, fit8, blend()))

    log(f"sigma {sigma}: per-frame fits on {r} frames")
    outs, t0, fit_total = [], time.perf_counter(), 0.0
    for i in range(r):
        t = time.perf_counter()
        net = fit(torch.from_numpy(noisy[i][None]), preset("scratch"), device="cpu", seed=i,
                  time_budget=args.fit_seconds).net
        fit_total += time.perf_counter() - t
        outs.append(single_pass(net, torch.from_numpy(noisy[i])).numpy())
    rows.append(score("B2G fit per frame, single pass (torch)", outs, clean, r, r / (time.perf_counter() - t0), fit_total / r,
                      "fps includes fitting"))

    log(f"sigma {sigma}: OpenCV NLM")
    h = tune_nlm_h(noisy[0], clean[0], sigma)
    outs, fps = stream_peer(NlmRuntime(h), noisy_video, work / "o.mkv", None)
    rows.append(score(f"OpenCV NLM colored per frame (h={h:g})", outs, clean, r, fps, 0.0))
    t = time.perf_counter()
    outs = [nlm_multi(noisy, i, h) for i in range(r)]
    rows.append(score(f"OpenCV NLM colored multi, window 5 (h={h:g})", outs, clean, r, r / (time.perf_counter() - t), 0.0,
                      "compute only; window 1/3 at frames 0/1"))
    if not args.skip_bm3d:
        log(f"sigma {sigma}: BM3D on the 256x256 crop of {r} frames")
        crop = centre_crop(noisy[0].shape)
        t = time.perf_counter()
        outs = [run_bm3d(n[crop], f"{sigma:g}")[0] for n in noisy[:r]]
        secs = time.perf_counter() - t
        cc = [c[crop] for c in clean[:r]]
        row = {"method": "BM3D (bm3d.bm3d_rgb) on the 256x256 crop", "frames": r, "psnr": float("nan"), "ssim": float("nan"),
               "flicker": flicker(outs, cc), "psnr_ref": float("nan"), "psnr_ref_unseen": float("nan"),
               "psnr_crop": float(np.mean([psnr(o, c) for o, c in zip(outs, cc)])),
               "fps": r / secs, "fit_s": 0.0, "note": "crop only (a 720p frame took 210 s); fps on the crop"}
        rows.append(row)
    return rows


def table(rows: list[dict], sigma: float, r: int) -> str:
    head = (f"| sigma {sigma:g} | frames | PSNR | SSIM | flicker | PSNR f0-{r - 1} | PSNR f1-{r - 1} (unseen by f0 fit) "
            f"| PSNR 256 crop f0-{r - 1} | fps | fit s | note |\n|" + "---|" * 11)
    fmt = lambda v, d=2: "-" if v != v else f"{v:.{d}f}"  # noqa: E731 - NaN shows as '-'
    lines = [head]
    for x in rows:
        lines.append(f"| {x['method']} | {x['frames']} | {fmt(x['psnr'])} | {fmt(x['ssim'], 4)} | {fmt(x['flicker'], 4)} "
                     f"| {fmt(x['psnr_ref'])} | {fmt(x['psnr_ref_unseen'])} | {fmt(x['psnr_crop'])} | {fmt(x['fps'], 3)} "
                     f"| {fmt(x['fit_s'], 1)} | {x['note']} |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--video", type=Path, default=VIDEO)
    p.add_argument("--sigmas", type=float, nargs="+", default=[25.0, 50.0])
    p.add_argument("--frames-limit", type=int, default=16, help="frames the applied-to-all rows run on")
    p.add_argument("--ref-frames", type=int, default=5, help="frames for per-frame fitting, ensemble, NLM multi, BM3D")
    p.add_argument("--fit-frames", type=int, default=8, help="N for the fit on N frames spread over the clip")
    p.add_argument("--clip-frames", type=int, default=280, help="length of the clip the N frames spread over")
    p.add_argument("--fit-seconds", type=float, default=25.0, help="time budget of every fit (fast preset)")
    p.add_argument("--passes", type=int, default=8, help="masks of the exported ensemble")
    p.add_argument("--blend", type=float, default=0.5)
    p.add_argument("--blend-threshold", type=float, default=0.3)
    p.add_argument("--skip-bm3d", action="store_true")
    p.add_argument("--threads", type=int, default=1,
                   help="torch, ORT and OpenCV threads; 1 is ~3x faster than 2 on a shared 2-core CPU")
    p.add_argument("--scale", type=float, default=1.0, help="downscale frames (INTER_AREA) before adding noise")
    p.add_argument("--out", type=Path, default=Path("runs/bench_video"))
    args = p.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    import cv2

    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    model = cpu_model()
    started = time.perf_counter()
    global ORT_THREADS
    ORT_THREADS = args.threads
    report = [f"command: `{' '.join(['.venv/bin/python', 'benchmarks/bench_video.py', *sys.argv[1:]])}`",
              f"machine: {model} ({os.cpu_count()} cores, shared), {args.threads} thread(s) for torch/ORT/OpenCV; date {datetime.date.today()}", ""]
    results = {}
    for sigma in args.sigmas:
        rows = run_sigma(sigma, args, args.out)
        results[str(sigma)] = rows
        report += [table(rows, sigma, args.ref_frames), ""]
        print("\n".join(report), flush=True)
    report.append(f"total wall time {(time.perf_counter() - started) / 60:.1f} min")
    (args.out / "results.md").write_text("\n".join(report) + "\n")
    (args.out / "results.json").write_text(json.dumps(results, indent=1))
    print(report[-1])


if __name__ == "__main__":
    main()
