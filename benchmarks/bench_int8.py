"""int8 on the CPU (issue 9): the temporal default's network in float32 and in int8 on the
cockatoo clip at 720p, quality and speed side by side.

As bench_temporal.py's default row (b2g-temporal-from-prior): the issue's noise on frames 0-39 of
the clip, the `fast` single-frame fit on frames 0-7, the temporal stage from the shipped temporal
prior (`dis-fine` windows). That network is then run three ways on every frame: PyTorch (the
rows of bench_temporal.py), its float32 ONNX export and its int8 export (`export --int8`,
calibrated on windows of frames 0-7 as `denoise VIDEO --temporal --int8` calibrates on the frames
it fitted on), both on ONNX Runtime's CPU provider with one thread, one window a call. PSNR on
frames 8-39, which nothing was fitted or calibrated on, unfused and through the default output
fusion with its Wiener step (what `denoise VIDEO` streams); seconds a frame of the network alone.

    python benchmarks/bench_int8.py --sigmas 25,50 --threads 1
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.bench_temporal import load_clip  # noqa: E402
from benchmarks.helpers import DOC, REPO, VIDEO, add_video_noise, log, replace_section, run_facts  # noqa: E402
from benchmarks.temporal_methods import fit_and_apply_temporal, fit_single, load_temporal_prior  # noqa: E402

HEADING = "## int8 on the CPU (issue 9)"
RESULTS = REPO / "benchmarks" / "results" / "int8_cockatoo.json"


def run_onnx(path: Path, noisy: np.ndarray, threads: int) -> tuple[np.ndarray, float]:
    """Every frame through the exported model (its own alignment), one window a call: (outputs,
    median seconds a frame)."""
    from b2g_deploy.runtimes.temporal import load_temporal_runtime
    from b2g_deploy.temporal.windows import stack_window, window_indices

    n, outs, seconds = len(noisy), [], []
    with load_temporal_runtime(path, threads=threads) as rt:
        for t in range(n):
            window = stack_window(noisy, window_indices(t, n, rt.k, rt.causal))[None]
            t0 = time.perf_counter()
            outs.append(rt.infer_windows(window)[0])
            seconds.append(time.perf_counter() - t0)
    return np.stack(outs), float(np.median(seconds))


def run_sigma(sigma: float, clean: np.ndarray, args) -> list[dict]:
    from b2g_deploy.metrics import psnr
    from b2g_deploy.temporal.export import calibration_windows, export_temporal_onnx
    from b2g_deploy.temporal.fuse import fuse_clip

    noisy = np.stack([add_video_noise(c, sigma, i) for i, c in enumerate(clean)]).astype(np.float32)
    unseen = range(args.fit_frames, len(noisy))
    log(f"sigma {sigma:g}: single-frame fit, then the temporal stage, on frames 0-{args.fit_frames - 1}")
    single, cfg, _, _ = fit_single(list(noisy), args, seed=args.seed)
    prior, _ = load_temporal_prior(args)
    torch_outs, _, _, _, net = fit_and_apply_temporal(single, cfg, list(noisy), args, False, seed=args.seed,
                                                      start=prior, start_label="temporal prior", align="dis-fine")
    rows = []

    def add(label: str, outs: np.ndarray, seconds: float | None, **extra) -> None:
        fused = fuse_clip(np.asarray(outs, np.float32), noisy)
        row = {"sigma": sigma, "seed": args.seed, "network": label, "seconds_per_frame": seconds,
               "psnr_unseen": float(np.mean([psnr(outs[i], clean[i]) for i in unseen])),
               "psnr_fused_refined": float(np.mean([psnr(fused[i], clean[i]) for i in unseen])), **extra}
        rows.append(row)
        log(f"sigma {sigma:g} {label}: {row['psnr_unseen']:.2f} / {row['psnr_fused_refined']:.2f} dB"
            + (f", {seconds:.3f} s a frame" if seconds else ""))

    add("PyTorch float32", np.stack(torch_outs), None)
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = export_temporal_onnx(net, Path(tmp) / "fp32.onnx").path
        t0 = time.perf_counter()
        int8 = export_temporal_onnx(net, Path(tmp) / "int8.onnx",
                                    int8=calibration_windows(net, noisy[: args.fit_frames]))
        export_s = time.perf_counter() - t0
        for _ in range(args.rounds):  # alternating, so both see the machine in the same state
            outs32, s32 = run_onnx(fp32, noisy, args.threads)
            outs8, s8 = run_onnx(int8.path, noisy, args.threads)
        add("ONNX Runtime float32", outs32, s32)
        add("ONNX Runtime int8", outs8, s8, int8_fidelity_db=int8.int8_fidelity_db,
            int8_export_s=export_s)
    return rows


def render(rows: list[dict], facts: dict) -> str:
    sigmas = sorted({r["sigma"] for r in rows})
    head = " | ".join(f"σ={s:g} | fused and refined" for s in sigmas)
    fidelity = ", ".join(f"{r['int8_fidelity_db']:.1f} dB at σ={r['sigma']:g}" for r in rows if r.get("int8_fidelity_db"))
    out = ["The cockatoo clip at 1280x720, frames 0-39 with the issue's noise; the temporal default "
           "(`fit --temporal`: the fit on frames 0-7, from the shipped temporal prior, `dis-fine` windows, seed "
           f"{rows[0].get('seed', 0)}) "
           "run three ways; the int8 export calibrated on windows of frames 0-7 (its output against the float32 "
           f"graph's there: {fidelity or '–'}). PSNR on frames 8-39, alone and through the default output fusion "
           "with its Wiener step; seconds a frame: the network alone on ONNX Runtime's CPU provider, one thread, "
           "one window a call, the median over the clip.", "",
           f"| network (frames 8-39) | {head} | s a 720p frame (σ={sigmas[0]:g}) |",
           "|---|" + "---|---|" * len(sigmas) + "---|"]
    for label in dict.fromkeys(r["network"] for r in rows):
        got = {r["sigma"]: r for r in rows if r["network"] == label}
        cells = " | ".join(f"{got[s]['psnr_unseen']:.2f} | {got[s]['psnr_fused_refined']:.2f}" for s in sigmas)
        seconds = got[sigmas[0]]["seconds_per_frame"]
        out.append(f"| {label} | {cells} | {'–' if seconds is None else f'{seconds:.2f}'} |")
    out += ["", f"Run: `{facts['command']}` on {facts['cpu']} ({facts['cores']} cores), {facts['date']}, "
            f"torch {facts['torch']}."]
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sigmas", default="25,50")
    ap.add_argument("--frames-limit", type=int, default=40)
    ap.add_argument("--fit-frames", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=1, help="timed passes of each export, alternating (the last is kept)")
    ap.add_argument("--json", type=Path, default=RESULTS)
    ap.add_argument("--no-doc", action="store_true")
    ap.add_argument("--table-only", action="store_true", help="rebuild the section from --json, run nothing")
    args = ap.parse_args()
    if args.table_only:
        data = json.loads(args.json.read_text())
        replace_section(DOC, HEADING, render(data["rows"], data["run"]))
        return
    args.iters, args.prior, args.temporal_prior = None, None, None  # fit_single / load_temporal_prior's defaults
    import cv2
    import torch

    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    clean = np.stack(load_clip(VIDEO, args.frames_limit, 1.0))
    facts, rows = run_facts(), []
    for sigma in (float(s) for s in args.sigmas.split(",")):
        rows += run_sigma(sigma, clean, args)
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"run": facts, "rows": rows}, indent=1) + "\n")
    table = render(rows, facts)
    print(table)
    if not args.no_doc:
        replace_section(DOC, HEADING, table)


if __name__ == "__main__":
    main()
