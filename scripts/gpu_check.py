"""The measurements scripts/gpu_check.sh makes on a GPU machine (see that file).

Steps, each timed and allowed to fail on its own (a missing package skips its rows, it does not
end the run): parity of the exported ONNX (done by export), torch fp16 against fp32, TensorRT
build and parity if tensorrt imports, then per-frame timings at 720p and 1080p with the frames
already on the GPU (the model's speed, not PCIe's). Prints a markdown table; writes it and a
JSON copy under $OUT when set.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
import traceback
from pathlib import Path

import numpy as np
import torch

from b2g_deploy.host_info import collect
from b2g_deploy.export.parity import psnr_between

SIZES = {"720p": (720, 1280), "1080p": (1080, 1920)}


def gpu_time(fn, x, runs: int, warmup: int = 3) -> float:
    """Median seconds per call, CUDA events around each call after ``warmup`` calls."""
    for _ in range(warmup):
        fn(x)
    torch.cuda.synchronize()
    times = []
    for _ in range(runs):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn(x)
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end) / 1000.0)
    return statistics.median(times)


def fp16_vs_fp32(ckpt: Path, frame: np.ndarray) -> dict:
    from b2g_deploy.runtimes import load_runtime

    with load_runtime(ckpt, device="cuda") as a, load_runtime(ckpt, device="cuda", fp16=True) as b:
        return {"torch_fp16_vs_fp32_psnr_db": round(psnr_between(a.infer(frame), b.infer(frame)), 2)}


def build_trt(ckpt: Path, onnx: Path, work: Path, fp16: bool) -> Path:
    from b2g_deploy.export.engine_sidecar import Profile
    from b2g_deploy.export.tensorrt_build import build_engine, engine_parity
    from b2g_deploy.runtimes.trt_runtime import TrtRuntime

    c = 3
    engine = work / f"m_{'fp16' if fp16 else 'fp32'}.engine"
    profile = Profile((1, c, 64, 64), (1, c, 1080, 1920), (1, c, 1088, 1920))
    t0 = time.perf_counter()
    build_engine(onnx, engine, profile, fp16=fp16, timing_cache=work / "timing.cache", force=True)
    with TrtRuntime(engine) as rt:
        report = engine_parity(rt, ckpt)
    print(f"  built {engine.name} in {time.perf_counter() - t0:.0f} s; {report.line()}", flush=True)
    return engine


def runners(ckpt: Path, onnx: Path, engines: dict[str, Path]):
    """(label, factory) pairs; a factory returns fn(cuda tensor) -> cuda tensor, or raises."""
    from b2g_deploy.runtimes import load_runtime

    def torch_rt(**kw):
        return lambda: load_runtime(ckpt, device="cuda", **kw).infer_tensor

    def ort(provider, fp16=False):
        def make():
            rt = load_runtime(onnx, provider=provider, fp16=fp16, cache_dir=str(onnx.parent / "ort_trt_cache"))
            return lambda x: torch.from_numpy(rt.infer(x.cpu().numpy()))  # host round trip included

        return make

    def trt(path):
        return lambda: load_runtime(path).infer_tensor

    yield "torch fp32", torch_rt()
    yield "torch fp16", torch_rt(fp16=True)
    for label, path in engines.items():
        yield f"TensorRT {label}", trt(path)
    yield "ORT CUDA EP fp32 (+copies)", ort("cuda")
    yield "ORT TensorRT EP fp16 (+copies)", ort("tensorrt", fp16=True)
    # Last: compiling for two frame sizes can take a minute, and the budget skips what is left.
    yield "torch fp16 + compile", torch_rt(fp16=True, compile=True)


def timings(ckpt: Path, onnx: Path, engines: dict[str, Path], runs: int, deadline: float) -> list[dict]:
    rows = []
    for label, make in runners(ckpt, onnx, engines):
        if time.monotonic() > deadline:
            rows.append({"runtime": label, "error": "skipped: time budget"})
            continue
        try:
            fn = make()
            row = {"runtime": label}
            for name, (h, w) in SIZES.items():
                x = torch.rand(1, 3, h, w, device="cuda")
                sec = gpu_time(fn, x, runs)
                row[name] = {"ms": round(sec * 1000, 2), "fps": round(1 / sec, 1)}
            print(f"  {label}: {row}", flush=True)
        except Exception as exc:  # a missing provider/package skips this row only
            row = {"runtime": label, "error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:120]}"}
            print(f"  {label}: {row['error']}", flush=True)
        rows.append(row)
    return rows


def table(rows: list[dict], gpu: str) -> str:
    lines = [f"GPU: {gpu}", "", "| runtime | 720p ms | 720p fps | 1080p ms | 1080p fps |", "|---|---|---|---|---|"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['runtime']} | - | - | - | - ({r['error']}) |")
        else:
            a, b = r["720p"], r["1080p"]
            lines.append(f"| {r['runtime']} | {a['ms']} | {a['fps']} | {b['ms']} | {b['fps']} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--checkpoint", type=Path, required=True)
    ap.add_argument("--onnx", type=Path, required=True)
    ap.add_argument("--frame", type=Path, required=True)
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--budget", type=float, default=200.0, help="seconds for this script")
    args = ap.parse_args()
    deadline = time.monotonic() + args.budget
    from b2g_deploy.io.images import read_image

    result: dict = {"env": collect()}
    frame = read_image(args.frame)[0][None]
    result.update(fp16_vs_fp32(args.checkpoint, frame))
    print(f"  torch fp16 vs fp32: {result['torch_fp16_vs_fp32_psnr_db']} dB", flush=True)
    engines = {}
    try:
        import tensorrt  # noqa: F401

        engines["fp16"] = build_trt(args.checkpoint, args.onnx, args.work, fp16=True)
    except ImportError:
        print("  tensorrt not installed: TensorRT build and parity skipped", flush=True)
    except Exception:
        traceback.print_exc()
    result["timings"] = timings(args.checkpoint, args.onnx, engines, args.runs, deadline)
    md = table(result["timings"], str(result["env"]["gpu"]))
    print(md)
    if os.environ.get("OUT"):
        out = Path(os.environ["OUT"])
        (out / "gpu_check.md").write_text(md + "\n")
        (out / "gpu_check.json").write_text(json.dumps(result, indent=2, default=str))


if __name__ == "__main__":
    main()
