"""Choosing the int8 recipe of `export --int8` on held-out clips (issue 9), never on a reported set.

The clips: tune_temporal_fit.py's 720p mosaics of held-out training photographs, panned at
(1.3, 3.4) px a frame, 12 frames with 8-bit-quantised Gaussian noise per frame. The network: the
shipped centred temporal prior (k=2) with `dis-fine` windows, exported to ONNX in float32 and
then quantized by each recipe, calibrated on windows of frames 0-7 (as the one-command flow
calibrates on the frames it fitted on). Each recipe's outputs on every frame, ONNX Runtime on
one thread, scored on frames 8-11 unfused and through the default output fusion and its Wiener
step (temporal.fuse.fuse_clip), as `denoise VIDEO` streams them; seconds a frame beside.

Recipes (NODES/CALIBRATION/METHOD):
- NODES: ``trunk`` = the encoder's and decoder's 3x3 convolutions (export.int8.TRUNK_SCOPES);
  ``trunk-no-last`` = the same without the last decoder stage's second convolution (full
  resolution, next to the tail); ``trunk-no-full`` = without the last stage's two.
- CALIBRATION: ``windows`` = temporal.export.calibration_windows (three whole aligned windows of
  frames 0-7, targets 0, 4, 7); ``squares`` = the same windows cut into three 384x384 squares
  each (centre and two off-centre: a ninth of the calibrator's memory).
- METHOD: ``pct`` = the 99.999th percentile of each activation, ``minmax``, ``entropy``.
``default`` is what export.int8.quantize_int8 does (trunk/windows/pct).

``--single``: the shipped single-frame prior instead (`export --int8` of a single-frame
checkpoint, what `denoise VIDEO --int8` without `--temporal` streams), calibrated on frames 0-7
themselves (export.int8.calibration_frames); its recipes are ``default`` only.

    python benchmarks/tune_int8.py --sigmas 25,50 --recipes default,trunk/windows/pct,trunk-no-last/windows/pct
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
from benchmarks.helpers import REPO, add_video_noise  # noqa: E402
from benchmarks.tune_temporal_fit import MOSAIC_SIZE, clip_from, mosaics  # noqa: E402

RESULTS = REPO / "benchmarks" / "results" / "tune" / "int8.json"
FIT_FRAMES = 8


def _nodes(model, which: str) -> list[str]:
    from b2g_deploy.export.int8 import trunk_convolutions

    nodes = trunk_convolutions(model)
    last = [n for n in nodes if f"/up.{_last_stage(nodes)}/" in n]
    if which == "trunk-no-last":
        return [n for n in nodes if not (n in last and "/convs.1/" in n)]
    if which == "trunk-no-full":
        return [n for n in nodes if n not in last]
    if which != "trunk":
        raise SystemExit(f"unknown node set {which!r}")
    return nodes


def _last_stage(nodes: list[str]) -> int:
    return max(int(n.split("/up.")[1].split("/")[0]) for n in nodes if "/up." in n)


def squares_of(windows: list[np.ndarray], side: int = 384) -> list[np.ndarray]:
    """Each window cut into three side x side squares: its centre and two off-centre ones."""
    out = []
    for window in windows:
        h, w = window.shape[-2:]
        a, b = min(side, h), min(side, w)
        for top, left in sorted({((h - a) // 2, (w - b) // 2), ((h - a) // 4, (w - b) // 4),
                                 (3 * (h - a) // 4, 3 * (w - b) // 4)}):
            out.append(np.ascontiguousarray(window[..., top : top + a, left : left + b]))
    return out


def quantize(fp32: bytes, recipe: str, windows: list[np.ndarray], names: tuple[str, str] = ("window", "output")
             ) -> bytes:
    """The int8 graph of one recipe (``default``: the library's own), ``windows`` calibration_windows'
    (or calibration_frames'); ``names``: the graph's input and output."""
    from b2g_deploy.export.int8 import CALIBRATION_PERCENTILE, calibration_reader, quantize_int8

    if recipe == "default":
        return quantize_int8(fp32, *names, windows, min_fidelity_db=0.0).model
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    which, calibration, method = recipe.split("/")
    feeds = {"windows": windows, "squares": squares_of(windows)}[calibration]
    methods = {"pct": (CalibrationMethod.Percentile, {"CalibPercentile": CALIBRATION_PERCENTILE}),
               "minmax": (CalibrationMethod.MinMax, {}), "entropy": (CalibrationMethod.Entropy, {})}
    calibrate, extra = methods[method]
    with tempfile.TemporaryDirectory() as tmp:
        raw, pre, out = (Path(tmp) / n for n in ("raw.onnx", "pre.onnx", "int8.onnx"))
        raw.write_bytes(fp32)
        quant_pre_process(str(raw), str(pre), skip_symbolic_shape=True)
        quantize_static(str(pre), str(out), calibration_reader(names[0], feeds), quant_format=QuantFormat.QDQ,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, per_channel=True,
                        nodes_to_quantize=_nodes(onnx.load(str(pre)), which), calibrate_method=calibrate,
                        extra_options=extra)
        return out.read_bytes()


def temporal_inputs(noisy: np.ndarray) -> tuple[bytes, list[np.ndarray], list[np.ndarray], tuple[str, str]]:
    """The shipped temporal prior's float32 graph, every frame's aligned window, the calibration
    windows, and the graph's input and output names."""
    from b2g_deploy.config import preset
    from b2g_deploy.priors import temporal_starting_network
    from b2g_deploy.temporal.align import align_window
    from b2g_deploy.temporal.export import INPUT, OUTPUT, calibration_windows, export_temporal_onnx
    from b2g_deploy.temporal.windows import window_indices

    net, _ = temporal_starting_network(None, 3, 2, False, preset("fast"))
    net.align = "dis-fine"
    n = len(noisy)
    windows = [align_window(noisy[window_indices(t, n, 2, False)].reshape(-1, *noisy.shape[-2:]), 3, 2,
                            net.align)[None] for t in range(n)]
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = export_temporal_onnx(net, Path(tmp) / "fp32.onnx").path.read_bytes()
    return fp32, windows, calibration_windows(net, noisy[:FIT_FRAMES]), (INPUT, OUTPUT)


def single_inputs(noisy: np.ndarray) -> tuple[bytes, list[np.ndarray], list[np.ndarray], tuple[str, str]]:
    """The same for the shipped single-frame prior: its graph, every frame, the calibration frames."""
    from b2g_deploy.checkpoint import Checkpoint, save_checkpoint
    from b2g_deploy.config import preset
    from b2g_deploy.export.int8 import calibration_frames
    from b2g_deploy.export.onnx_export import INPUT, OUTPUT, export_onnx
    from b2g_deploy.priors import starting_network

    net, cfg, _ = starting_network(None, 3, preset("fast"))
    with tempfile.TemporaryDirectory() as tmp:
        save_checkpoint(Path(tmp) / "prior.pt", Checkpoint(net.eval(), cfg, {"bit_depth": 8}))
        fp32 = export_onnx(Path(tmp) / "prior.pt", Path(tmp) / "fp32.onnx").path.read_bytes()
    return fp32, [y[None] for y in noisy], calibration_frames(noisy[:FIT_FRAMES]), (INPUT, OUTPUT)


def timed_scores(run, windows: list[np.ndarray], noisy: np.ndarray, clean: list[np.ndarray]
                 ) -> tuple[np.ndarray, dict]:
    """Every frame's output by ``run`` (a window -> its (C, H, W) frame), and the seconds a frame
    it took with the PSNR of frames FIT_FRAMES onwards, alone and through the default output fusion
    and its Wiener step (temporal.fuse.fuse_clip), as `denoise VIDEO` streams them."""
    from b2g_deploy.metrics import psnr
    from b2g_deploy.temporal.fuse import fuse_clip

    n = len(windows)
    t0 = time.perf_counter()
    outs = np.stack([run(w) for w in windows])
    seconds = (time.perf_counter() - t0) / n
    fused = fuse_clip(outs, noisy)
    return outs, {"s_per_frame": round(seconds, 3),
                  "unseen": round(float(np.mean([psnr(outs[i], clean[i]) for i in range(FIT_FRAMES, n)])), 3),
                  "fused": round(float(np.mean([psnr(fused[i], clean[i]) for i in range(FIT_FRAMES, n)])), 3)}


def run_clip(name: str, clean: list[np.ndarray], sigma: float, recipes: list[str], single: bool = False) -> list[dict]:
    import onnxruntime as ort

    noisy = np.stack([add_video_noise(c, sigma, i) for i, c in enumerate(clean)]).astype(np.float32)
    fp32, windows, calibration, names = (single_inputs if single else temporal_inputs)(noisy)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.log_severity_level = 1, 3
    rows = []
    for recipe in ["fp32", *recipes]:
        model = fp32 if recipe == "fp32" else quantize(fp32, recipe, calibration, names)
        session = ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])
        _, scores = timed_scores(lambda w: session.run(None, {names[0]: w})[0][0], windows, noisy, clean)
        row = {"clip": name, "sigma": sigma, "recipe": recipe, **scores}
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def table(rows: list[dict]) -> str:
    sigmas = sorted({r["sigma"] for r in rows})
    recipes = list(dict.fromkeys(r["recipe"] for r in rows))
    head = " | ".join(f"σ={s:g} unseen | fused and refined" for s in sigmas)
    lines = [f"| recipe | {head} | s a frame |", "|---|" + "---|---|" * len(sigmas) + "---|"]
    for recipe in recipes:
        cells = []
        for s in sigmas:
            got = [r for r in rows if r["recipe"] == recipe and r["sigma"] == s]
            cells += [f"{np.mean([r['unseen'] for r in got]):.2f}", f"{np.mean([r['fused'] for r in got]):.2f}"]
        speed = np.median([r["s_per_frame"] for r in rows if r["recipe"] == recipe])
        lines.append(f"| {recipe} | " + " | ".join(cells) + f" | {speed:.2f} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sigmas", default="25,50")
    ap.add_argument("--recipes", default="default")
    ap.add_argument("--json", type=Path, default=RESULTS)
    ap.add_argument("--single", action="store_true", help="the single-frame prior instead of the temporal one")
    args = ap.parse_args()
    if args.single and any(r != "default" for r in args.recipes.split(",")):
        ap.error("--single measures the default recipe only")
    import cv2
    import torch

    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    recipes = [r.strip() for r in args.recipes.split(",") if r.strip()]
    rows = []
    for sigma in (float(s) for s in args.sigmas.split(",")):
        for name, photo in mosaics():
            rows += run_clip(name, clip_from(photo, MOSAIC_SIZE), sigma, recipes, args.single)
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps({"command": " ".join(sys.argv), "rows": rows}, indent=1) + "\n")
    print(table(rows))


if __name__ == "__main__":
    main()
