"""Why int8 fused better than float32 on the cockatoo clip (issue 9): an analysis on the reported
clip, from which nothing is chosen.

bench_int8.py's seed-0 fit at sigma 25 (the temporal default, fitted on frames 0-7), exported in
float32 and in int8 (calibrated as ``denoise --int8`` calibrates), then these graphs run on every
frame, PSNR on frames 8-39 alone and through the default fusion with its Wiener step:

- ``float32`` and ``int8`` as exported;
- ``int8 weights only``: the int8 graph with its activations' quantize/dequantize pairs removed
  (float activations, the trunk's weights rounded to 8 bits);
- ``int8 weights + clipped activations``: those pairs replaced by a clip to the calibrated range
  (the ranges without the rounding);
- ``float32, weights + noise #i``: the float32 graph with the same convolutions' weights
  perturbed by uniform noise of the 8-bit rounding's size (each output channel's max |w| / 127
  wide), ``--draws`` draws: how far a perturbation that size moves the result by chance.

    python benchmarks/int8_why.py --draws 3
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.bench_int8 import run_onnx  # noqa: E402
from benchmarks.bench_temporal import load_clip  # noqa: E402
from benchmarks.helpers import DOC, REPO, VIDEO, add_video_noise, log, replace_section, run_facts  # noqa: E402
from benchmarks.temporal_methods import fit_and_apply_temporal, fit_single, load_temporal_prior  # noqa: E402

HEADING = "## Why int8 fused better on the clip (issue 9)"
RESULTS = REPO / "benchmarks" / "results" / "int8_why.json"


def without_activation_rounding(int8_model, clip: bool):
    """The int8 ONNX model with every activation QuantizeLinear -> DequantizeLinear pair replaced
    by a Clip to the range it represents (``clip``) or by nothing; weights stay quantized."""
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.ModelProto()
    model.CopyFrom(int8_model)
    graph = model.graph
    inits = {i.name: i for i in graph.initializer}
    readers: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            readers.setdefault(name, []).append(node)
    dropped, replacement, added = set(), {}, []
    for node in graph.node:
        if node.op_type != "QuantizeLinear" or node.input[0] in inits:  # weights are initializers
            continue
        scale = float(numpy_helper.to_array(inits[node.input[1]]))
        zero = numpy_helper.to_array(inits[node.input[2]])
        info = np.iinfo(zero.dtype)
        lo, hi = (info.min - float(zero)) * scale, (info.max - float(zero)) * scale
        dropped.add(id(node))
        replacement[id(node)] = []
        for dq in readers[node.output[0]]:
            assert dq.op_type == "DequantizeLinear", dq.op_type
            dropped.add(id(dq))
            out = dq.output[0]
            if clip:
                added += [numpy_helper.from_array(np.array(lo, np.float32), out + "_lo"),
                          numpy_helper.from_array(np.array(hi, np.float32), out + "_hi")]
                replacement[id(node)].append(helper.make_node("Clip", [node.input[0], out + "_lo", out + "_hi"], [out]))
            else:
                replacement[id(node)].append(helper.make_node("Identity", [node.input[0]], [out]))
    nodes = []
    for node in graph.node:
        nodes += replacement.get(id(node), [])
        if id(node) not in dropped:
            nodes.append(node)
    del graph.node[:]
    graph.node.extend(nodes)
    graph.initializer.extend(added)
    onnx.checker.check_model(model)
    return model


def with_weight_noise(fp32_model, seed: int):
    """The float32 model with the int8 recipe's convolutions' weights plus U(-s/2, s/2) noise, s
    each output channel's max |w| / 127 (the 8-bit rounding step)."""
    import onnx
    from onnx import numpy_helper

    from b2g_deploy.export.int8 import trunk_convolutions

    model = onnx.ModelProto()
    model.CopyFrom(fp32_model)
    inits = {i.name: i for i in model.graph.initializer}
    chosen = set(trunk_convolutions(model))
    rng = np.random.default_rng(seed)
    for node in model.graph.node:
        if node.name in chosen:
            w = numpy_helper.to_array(inits[node.input[1]])
            step = np.abs(w).reshape(len(w), -1).max(1) / 127.0
            noisy = w + (rng.random(w.shape) - 0.5) * step.reshape(-1, *([1] * (w.ndim - 1)))
            inits[node.input[1]].CopyFrom(numpy_helper.from_array(noisy.astype(np.float32), node.input[1]))
    return model


def render(rows: list[dict], facts: dict) -> str:
    base = next(r for r in rows if r["graph"] == "float32")
    out = ["The cockatoo clip at 1280x720, σ=25, the temporal default's seed-0 fit (as `bench_int8.py`), its float32 "
           "and int8 exports, and graphs between them; PSNR on frames 8-39 (an analysis on the reported clip: "
           "nothing is chosen with it).", "",
           "| graph | alone | fused and refined | against float32 |", "|---|---|---|---|"]
    for r in rows:
        out.append(f"| {r['graph']} | {r['alone']:.2f} | {r['fused']:.2f} | "
                   f"{r['alone'] - base['alone']:+.2f} / {r['fused'] - base['fused']:+.2f} |")
    out += ["", f"Run: `{facts['command']}` on {facts['cpu']} ({facts['cores']} cores), {facts['date']}, "
            f"torch {facts['torch']}."]
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--draws", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0, help="the fit's seed")
    ap.add_argument("--json", type=Path, default=RESULTS)
    ap.add_argument("--no-doc", action="store_true")
    args = ap.parse_args()
    args.frames_limit, args.fit_frames, args.threads = 40, 8, 1
    args.iters, args.prior, args.temporal_prior = None, None, None  # fit_single / load_temporal_prior's defaults
    import cv2
    import onnx
    import torch

    from b2g_deploy.metrics import psnr
    from b2g_deploy.temporal.export import calibration_windows, export_temporal_onnx
    from b2g_deploy.temporal.fuse import fuse_clip

    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    clean = np.stack(load_clip(VIDEO, args.frames_limit, 1.0))
    noisy = np.stack([add_video_noise(c, 25.0, i) for i, c in enumerate(clean)]).astype(np.float32)
    single, cfg, _, _ = fit_single(list(noisy), args, seed=args.seed)
    prior, _ = load_temporal_prior(args)
    net = fit_and_apply_temporal(single, cfg, list(noisy), args, False, seed=args.seed, start=prior,
                                 start_label="temporal prior", align="dis-fine")[4]
    facts, rows = run_facts(), []
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = export_temporal_onnx(net, Path(tmp) / "fp32.onnx").path
        int8 = export_temporal_onnx(net, Path(tmp) / "int8.onnx",
                                    int8=calibration_windows(net, noisy[: args.fit_frames])).path
        graphs = {"float32": fp32}
        for label, clip in (("int8 weights only", False), ("int8 weights + clipped activations", True)):
            graphs[label] = Path(tmp) / f"{len(graphs)}.onnx"
            onnx.save(without_activation_rounding(onnx.load(str(int8)), clip), str(graphs[label]))
        graphs["int8"] = int8
        for i in range(1, args.draws + 1):
            graphs[f"float32, weights + noise #{i}"] = Path(tmp) / f"noise{i}.onnx"
            onnx.save(with_weight_noise(onnx.load(str(fp32)), i), str(graphs[f"float32, weights + noise #{i}"]))
        for label, path in graphs.items():
            outs, _ = run_onnx(path, noisy, 1)
            fused = fuse_clip(np.asarray(outs, np.float32), noisy)
            rows.append({"graph": label,
                         "alone": float(np.mean([psnr(outs[i], clean[i]) for i in range(args.fit_frames, len(noisy))])),
                         "fused": float(np.mean([psnr(fused[i], clean[i]) for i in range(args.fit_frames, len(noisy))]))})
            log(f"{label}: {rows[-1]['alone']:.2f} / {rows[-1]['fused']:.2f}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"run": facts, "rows": rows}, indent=1) + "\n")
    table = render(rows, facts)
    print(table)
    if not args.no_doc:
        replace_section(DOC, HEADING, table)


if __name__ == "__main__":
    main()
