"""The CPU runtimes' quality and speed on held-out clips (issue 9), never on a reported set.

The same clips, network and scoring as tune_int8.py (the two 720p mosaics of held-out training
photographs, panned, 12 frames of 8-bit-quantised Gaussian noise; the shipped centred temporal
prior with `dis-fine` windows; frames 8-11 scored alone and through the default output fusion
and its Wiener step), with one graph run by each runtime, one thread each:

- ``ort-fp32``: ONNX Runtime, float32 (what `denoise VIDEO -m X.onnx` ran before OpenVINO);
- ``ort-int8``: ONNX Runtime on the `export --int8` graph (the default recipe);
- ``ov-f32``, ``ov-bf16``: OpenVINO on the float32 graph, in float32 and in bfloat16
  (``runtimes.openvino_runtime``);
- ``ov-int8``: OpenVINO on the int8 graph.

    python benchmarks/cpu_runtimes_on_clips.py --sigmas 25,50

Seconds a frame are the network's alone (windows aligned beforehand), timed beside whatever
else runs: compare them within one run. The table goes to "## OpenVINO on the CPU (issue 9)"
of docs/BENCHMARKS.md with ``--doc`` (bench_temporal_throughput.py's stream rows beside it are
written by hand from its json).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.helpers import REPO, add_video_noise, run_facts  # noqa: E402
from benchmarks.tune_int8 import quantize, temporal_inputs, timed_scores  # noqa: E402
from benchmarks.tune_temporal_fit import MOSAIC_SIZE, clip_from, mosaics  # noqa: E402

RESULTS = REPO / "benchmarks" / "results" / "cpu_runtimes_on_clips.json"
RUNTIMES = ("ort-fp32", "ort-int8", "ov-f32", "ov-bf16", "ov-int8")
LABELS = {
    "ort-fp32": "ONNX Runtime, float32",
    "ort-int8": "ONNX Runtime, int8 (`export --int8`)",
    "ov-f32": "OpenVINO, float32",
    "ov-bf16": "OpenVINO, bfloat16",
    "ov-int8": "OpenVINO on the int8 graph",
}


def runner(name: str, graph: Path):
    """A function (1, T*C, H, W) window -> (C, H, W) frame: ``name``'s runtime on ``graph``."""
    if name.startswith("ort"):
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads, opts.log_severity_level = 1, 3
        session = ort.InferenceSession(str(graph), opts, providers=["CPUExecutionProvider"])
        return lambda window: session.run(None, {session.get_inputs()[0].name: window})[0][0]
    from b2g_deploy.runtimes.openvino_runtime import CompiledShapes

    compiled = CompiledShapes(graph, "f32" if name == "ov-int8" else name.split("-")[1], threads=1)
    return lambda window: compiled.run(window)[0]


def run_clip(name: str, clean: list[np.ndarray], sigma: float, runtimes: list[str]) -> list[dict]:
    from b2g_deploy.metrics import psnr

    noisy = np.stack([add_video_noise(c, sigma, i) for i, c in enumerate(clean)]).astype(np.float32)
    fp32, windows, calibration, names = temporal_inputs(noisy)
    rows, reference = [], None
    with tempfile.TemporaryDirectory() as tmp:
        graphs = {"fp32": Path(tmp) / "fp32.onnx", "int8": Path(tmp) / "int8.onnx"}
        graphs["fp32"].write_bytes(fp32)
        if any(r.endswith("int8") for r in runtimes):
            graphs["int8"].write_bytes(quantize(fp32, "default", calibration, names))
        for rt in runtimes:
            run = runner(rt, graphs["int8" if rt.endswith("int8") else "fp32"])
            run(windows[0])  # compiled for this shape, caches warm
            outs, scores = timed_scores(run, windows, noisy, clean)
            reference = outs if reference is None else reference
            row = {"clip": name, "sigma": sigma, "runtime": rt, **scores,
                   "vs_first_db": round(float(psnr(outs, reference)), 2) if rt != runtimes[0] else None}
            rows.append(row)
            print(json.dumps(row), flush=True)
    return rows


def table(rows: list[dict]) -> str:
    sigmas = sorted({r["sigma"] for r in rows})
    runtimes = list(dict.fromkeys(r["runtime"] for r in rows))
    head = " | ".join(f"σ={s:g} alone | fused and refined" for s in sigmas)
    lines = [f"| runtime | {head} | outputs against the first row's (dB) | s a 720p window |",
             "|---|" + "---|---|" * len(sigmas) + "---|---|"]
    for rt in runtimes:
        cells = []
        for s in sigmas:
            got = [r for r in rows if r["runtime"] == rt and r["sigma"] == s]
            cells += [f"{np.mean([r['unseen'] for r in got]):.2f}", f"{np.mean([r['fused'] for r in got]):.2f}"]
        against = [r["vs_first_db"] for r in rows if r["runtime"] == rt and r["vs_first_db"] is not None]
        speed = np.median([r["s_per_frame"] for r in rows if r["runtime"] == rt])
        fidelity = f"{np.mean(against):.1f}" if against else "(the reference)"
        lines.append(f"| {LABELS[rt]} | " + " | ".join(cells) + f" | {fidelity} | {speed:.2f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sigmas", default="25,50")
    ap.add_argument("--runtimes", default=",".join(RUNTIMES))
    ap.add_argument("--json", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    runtimes = [r.strip() for r in args.runtimes.split(",") if r.strip()]
    unknown = sorted(set(runtimes) - set(RUNTIMES))
    if unknown:
        ap.error(f"unknown runtimes {', '.join(unknown)}; choose from {', '.join(RUNTIMES)}")
    import cv2
    import torch

    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    rows = []
    for sigma in (float(s) for s in args.sigmas.split(",")):
        for name, photo in mosaics():
            rows += run_clip(name, clip_from(photo, MOSAIC_SIZE), sigma, runtimes)
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps({"run": run_facts(), "rows": rows}, indent=1))
    print(table(rows))


if __name__ == "__main__":
    main()
