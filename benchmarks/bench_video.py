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
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

from b2g_deploy.checkpoint import Checkpoint, save_checkpoint
from b2g_deploy.config import preset
from b2g_deploy.export.onnx_export import export_onnx
from b2g_deploy.fit import fit, single_pass
from b2g_deploy.io.pipeline import run_pipeline
from b2g_deploy.io.temporal import TemporalBlend, flicker
from b2g_deploy.io.video import VideoInfo, open_sink, open_source, read_frames
from b2g_deploy.metrics import psnr, ssim
from b2g_deploy.runtimes.base import ModelInfo, Runtime
from b2g_deploy.runtimes.ort_runtime import OrtRuntime

ORT_THREADS = 1
VIDEO = Path(__file__).resolve().parents[1] / "../shared/data/video/cockatoo.mp4"


def read_indices(path: Path, indices: list[int], scale: float = 1.0) -> dict[int, np.ndarray]:
    """Clean frames by index, optionally downscaled (INTER_AREA) to fit the CPU budget."""
    import cv2

    cap, out, want = cv2.VideoCapture(str(path)), {}, set(indices)
    for i in range(max(indices) + 1):
        ok, bgr = cap.read()
        if not ok:
            break
        if i in want:
            if scale != 1.0:
                bgr = cv2.resize(bgr, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
            out[i] = np.ascontiguousarray(bgr[..., ::-1].transpose(2, 0, 1), dtype=np.float32) / 255.0
    cap.release()
    return out


def add_noise(clean: np.ndarray, sigma: float, index: int) -> np.ndarray:
    """Gaussian noise with seed = frame index, clipped and quantised to 8 bits (a camera video)."""
    rng = np.random.default_rng(index)
    noisy = clean + rng.normal(0.0, sigma / 255.0, clean.shape).astype(np.float32)
    return np.round(np.clip(noisy, 0, 1) * 255) / 255


class NlmRuntime(Runtime):
    """OpenCV fastNlMeansDenoisingColored per frame, behind the Runtime interface so it is timed
    through the same decode -> infer -> encode pipeline as B2G."""

    name = "opencv-nlm"

    def __init__(self, h: float):
        self.h, self.info = h, ModelInfo(channels=3)

    def infer(self, frames: np.ndarray) -> np.ndarray:
        return np.stack([nlm(f, self.h) for f in frames])


def to_bgr8(f: np.ndarray) -> np.ndarray:
    return np.round(np.clip(f, 0, 1) * 255).astype(np.uint8)[::-1].transpose(1, 2, 0).copy()


def from_bgr8(b: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(b[..., ::-1].transpose(2, 0, 1), dtype=np.float32) / 255.0


def nlm(f: np.ndarray, h: float) -> np.ndarray:
    import cv2

    return from_bgr8(cv2.fastNlMeansDenoisingColored(to_bgr8(f), None, h, h, 7, 21))


def nlm_multi(frames: list[np.ndarray], i: int, h: float) -> np.ndarray:
    """Temporal window 5 centred on frame i; truncated (3, then 1) at the start of the clip."""
    import cv2

    tw = min(5, 2 * i + 1, 2 * (len(frames) - 1 - i) + 1)
    lo = i - tw // 2
    imgs = [to_bgr8(f) for f in frames[lo : lo + tw]]
    return from_bgr8(cv2.fastNlMeansDenoisingColoredMulti(imgs, tw // 2, tw, None, h, h, 7, 21))


def centre_crop(shape: tuple[int, ...], side: int = 256) -> tuple[slice, ...]:
    h, w = shape[-2:]
    top, left = max((h - side) // 2, 0), max((w - side) // 2, 0)
    return (slice(None), slice(top, top + side), slice(left, left + side))


def tune_nlm_h(noisy: np.ndarray, clean: np.ndarray, sigma: float) -> float:
    """h for NLM picked on a 256x256 crop of frame 0 against the clean frame (an oracle choice:
    it favours NLM)."""
    crop = centre_crop(noisy.shape)
    scores = {k * sigma: psnr(nlm(noisy[crop], k * sigma), clean[crop]) for k in (0.4, 0.6, 0.8, 1.0)}
    return max(scores, key=scores.get)


def fit_net(frames: np.ndarray, fit_seconds: float, seed: int = 0):
    cfg = preset("scratch")
    t = time.perf_counter()
    result = fit(torch.from_numpy(frames), cfg, device="cpu", seed=seed, time_budget=fit_seconds)
    return result.net, cfg, time.perf_counter() - t, result.steps


def export(net, cfg, folder: Path, name: str, mode: str = "single", passes: int = 8) -> Path:
    ckpt = folder / f"{name}.b2g.pt"
    save_checkpoint(ckpt, Checkpoint(net, cfg, {"preset": "scratch", "bit_depth": 8}), force=True)
    out = folder / f"{name}_{mode}.onnx"
    export_onnx(ckpt, out, mode=mode, passes=passes, force=True)
    return out


def stream(runtime: Runtime, noisy_video: Path, out: Path, limit: int | None):
    """The real pipeline, timed end to end; returns (frames read back, fps)."""
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
    frames = read_indices(args.video, sorted(set(range(k)) | set(spread)), args.scale)
    clean = [frames[i] for i in range(k)]
    noisy = [add_noise(frames[i], sigma, i) for i in range(k)]
    noisy_video = work / f"noisy_s{sigma:g}.mkv"
    sink = open_sink(noisy_video, VideoInfo(clean[0].shape[2], clean[0].shape[1], 3, 20.0, k), force=True)
    for f in noisy:
        sink.write(f)
    sink.close()
    noisy = read_frames(noisy_video)  # exactly what the pipeline will decode
    rows = [score("noisy input", noisy, clean, r, 0.0, 0.0)]
    def blend() -> TemporalBlend:
        return TemporalBlend(args.blend, args.blend_threshold, sigma / 255.0)

    log(f"sigma {sigma}: fit on frame 0")
    net0, cfg, fit0, steps0 = fit_net(noisy[0][None], args.fit_seconds)
    with OrtRuntime(threads=ORT_THREADS, path=export(net0, cfg, work, f"f0_s{sigma:g}")) as rt:
        outs, fps = stream(rt, noisy_video, work / "o.mkv", None)
        rows.append(score("B2G fit on frame 0, single pass (ORT CPU)", outs, clean, r, fps, fit0, f"{steps0} steps"))
        rows.append(blended_row(outs, noisy, clean, r, fps, fit0, blend()))
    with OrtRuntime(threads=ORT_THREADS, path=export(net0, cfg, work, f"f0_s{sigma:g}", "ensemble", args.passes)) as rt:
        outs, fps = stream(rt, noisy_video, work / "o.mkv", r)
        rows.append(score(f"B2G fit on frame 0, {args.passes}-mask ensemble (ORT CPU)", outs, clean, r, fps, fit0))

    log(f"sigma {sigma}: fit on {args.fit_frames} frames {spread}")
    stack = np.stack([add_noise(frames[i], sigma, i) for i in spread])
    net8, cfg, fit8, steps8 = fit_net(stack, args.fit_seconds)
    with OrtRuntime(threads=ORT_THREADS, path=export(net8, cfg, work, f"n8_s{sigma:g}")) as rt:
        outs, fps = stream(rt, noisy_video, work / "o.mkv", None)
        rows.append(score(f"B2G fit on {args.fit_frames} frames, single pass (ORT CPU)", outs, clean, r, fps, fit8, f"{steps8} steps"))
        rows.append(blended_row(outs, noisy, clean, r, fps, fit8, blend()))

    log(f"sigma {sigma}: per-frame fits on {r} frames")
    outs, t0, fit_total = [], time.perf_counter(), 0.0
    for i in range(r):
        net, cfg, secs, _ = fit_net(noisy[i][None], args.fit_seconds, seed=i)
        fit_total += secs
        outs.append(single_pass(net, torch.from_numpy(noisy[i])).numpy())
    rows.append(score("B2G fit per frame, single pass (torch)", outs, clean, r, r / (time.perf_counter() - t0), fit_total / r,
                      "fps includes fitting"))

    log(f"sigma {sigma}: OpenCV NLM")
    h = tune_nlm_h(noisy[0], clean[0], sigma)
    outs, fps = stream(NlmRuntime(h), noisy_video, work / "o.mkv", None)
    rows.append(score(f"OpenCV NLM colored per frame (h={h:g})", outs, clean, r, fps, 0.0))
    t = time.perf_counter()
    outs = [nlm_multi(noisy, i, h) for i in range(r)]
    rows.append(score(f"OpenCV NLM colored multi, window 5 (h={h:g})", outs, clean, r, r / (time.perf_counter() - t), 0.0,
                      "compute only; window 1/3 at frames 0/1"))
    if not args.skip_bm3d:
        log(f"sigma {sigma}: BM3D on the 256x256 crop of {r} frames")
        import bm3d

        crop = centre_crop(noisy[0].shape)
        t = time.perf_counter()
        outs = [bm3d.bm3d_rgb(n[crop].transpose(1, 2, 0), sigma / 255.0).transpose(2, 0, 1) for n in noisy[:r]]
        secs = time.perf_counter() - t
        cc = [c[crop] for c in clean[:r]]
        row = {"method": "BM3D (bm3d.bm3d_rgb) on the 256x256 crop", "frames": r, "psnr": float("nan"), "ssim": float("nan"),
               "flicker": flicker(outs, cc), "psnr_ref": float("nan"), "psnr_ref_unseen": float("nan"),
               "psnr_crop": float(np.mean([psnr(o, c) for o, c in zip(outs, cc)])),
               "fps": r / secs, "fit_s": 0.0, "note": "crop only (a 720p frame took 210 s); fps on the crop"}
        rows.append(row)
    return rows


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


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
    cpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    model = next((ln.split(":", 1)[1].strip() for ln in cpu.splitlines() if ln.startswith("Model name")), platform.processor())
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
