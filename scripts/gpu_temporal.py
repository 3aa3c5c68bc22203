"""End-to-end throughput of a temporal (multi-frame) network at 720p on a GPU (issue 9), the
measurements scripts/gpu_temporal.sh makes; see that file for how to run it.

The model: a k=2 centred TemporalB2GNet of the ``fast`` preset's shape (width 32), started from
the shipped prior (``TemporalB2GNet.from_single_frame``: the weights a temporal fit starts
from; speed does not depend on the values), or ``--checkpoint`` a fitted one. It is exported to
ONNX (parity-checked by export on the CPU) and, when ``tensorrt`` imports, built into an fp16
TensorRT engine for (B, 15, 720, 1280) windows by the checked build ``export --trt`` uses.

Rows, each allowed to fail on its own (a missing package or provider skips that row):

- I/O alone: decoding the clip (OpenCV, to float32 frames) and encoding it (the sink's codec):
  the ceiling any runtime's end-to-end figure sits under.
- network: windows already on the GPU, batch B, CUDA events (the model's speed, not PCIe's),
  median of ``--runs`` after warm-ups; ms and fps per frame (one window = one output frame).
- torch fp16 with DIS alignment (the default of ``fit --temporal``): the same network behind the
  CPU-side optical flow (``temporal.align``), timed on host windows (flow, copies, network) and
  end to end; its checkpoint is the measured one with ``align`` set to the default ("dis-fine").
- torch fp16 with "lk" alignment: the torch flow (``temporal.flow_torch``) on the GPU, timed
  with the network on device windows and end to end (the windows assembled and aligned there).
- end to end: the product's video pipeline (``io.pipeline.run_pipeline``: decoder thread ->
  ring buffer of frames -> runtime -> encoder thread) on a noisy 720p clip written beforehand;
  fps = frames written / wall seconds, after a warm-up on the first 2B frames; then once more
  into a sink that discards the frames (what the encoder costs).
- the output fusion in torch on the GPU (`denoise --fuse-flow lk`, ``temporal.fuse_torch``): ms
  a 7-frame window with its Wiener step, frames already there (``fusion_lk``): what a fused GPU
  stream adds to the network's time a frame, where the CPU fusion takes ~0.5 s of a core.

Writes gpu_temporal.json (settings, card, every row, the target check) and gpu_temporal.md
under ``--out``. ``--cpu-smoke`` runs the same code on the CPU at a tiny size, to check the
plumbing without a GPU (its numbers mean nothing).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import traceback
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a file: the repo's package
from b2g_deploy.host_info import collect  # noqa: E402
from scripts.gpu_video_io import decode_fps, end_to_end, write_clip  # noqa: E402

TARGET_FPS = 200.0  # issue 9: 720p >= 200 fps end to end with torch fp16


def log(msg: str) -> None:
    print(msg, flush=True)


def error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {str(exc).splitlines()[0][:160] if str(exc) else ''}"


def make_model(work: Path, checkpoint: Path | None, k: int) -> Path:
    """The checkpoint to measure: given, or the prior as a k-centred temporal net."""
    from b2g_deploy.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
    from b2g_deploy.config import preset
    from b2g_deploy.priors import starting_network
    from b2g_deploy.temporal.model import TemporalB2GNet

    if checkpoint is not None:
        if not load_checkpoint(checkpoint).is_temporal:
            raise SystemExit(f"gpu_temporal: {checkpoint} is not a temporal checkpoint")
        return checkpoint
    single, cfg, label = starting_network("prior", 3, preset("fast"))
    net = TemporalB2GNet.from_single_frame(single, k, False).eval()
    torch.manual_seed(0)
    with torch.no_grad():  # a non-zero neighbour head, as after a temporal fit (values do not change speed)
        net.head.neighbours.weight.normal_(0.0, 0.02)
    path = work / "temporal.pt"
    save_checkpoint(path, Checkpoint(net, cfg, {"bit_depth": 8, "preset": "fast", "init": label}), force=True)
    return path


def build_engine(ckpt: Path, onnx: Path, work: Path, batch: int, h: int, w: int, fp16: bool, window: int) -> dict:
    """The checked build of ``export --trt`` for (B, T*C, h, w) windows; raises if it fails."""
    from b2g_deploy.api.exporting import build_checked_engine, parse_profile

    engine = work / f"temporal_{'fp16' if fp16 else 'fp32'}.engine"
    lo = f"1xCx{min(64, h)}x{min(64, w)}"
    profile = parse_profile(3, lo, f"{batch}xCx{h}x{w}", f"{batch}xCx{h}x{w}", window=window)
    t0 = time.perf_counter()
    report = build_checked_engine(ckpt, onnx, engine, profile, fp16=fp16, timing_cache=work / "timing.cache",
                                  force=True)
    sec = time.perf_counter() - t0
    log(f"  built {engine.name} in {sec:.0f} s (profile {report.profile}); parity: {report.parity}")
    return {"engine": engine, "build_s": round(sec, 1), "parity": report.parity, "profile": report.profile}


def aligned_copy(ckpt: Path, work: Path, mode: str | None = None) -> Path:
    """The checkpoint with alignment switched on (the same weights and graph): ``mode``, by
    default the default flow (DIS on the CPU)."""
    from b2g_deploy.checkpoint import load_checkpoint, save_checkpoint
    from b2g_deploy.temporal.align import DEFAULT_ALIGN

    loaded = load_checkpoint(ckpt)
    loaded.net.align = mode or DEFAULT_ALIGN
    path = work / f"temporal_{loaded.net.align}.pt"
    save_checkpoint(path, loaded, force=True)
    return path


ALIGNED = "torch fp16 + DIS alignment (CPU)"
LK_ALIGNED = "torch fp16 + lk alignment (GPU)"


def runtimes(ckpt: Path, onnx: Path, engines: dict, device: str, smoke: bool, aligned: Path | None):
    """(label, factory) pairs; a factory opens a temporal runtime or raises."""
    from b2g_deploy.runtimes.temporal import OrtTemporalRuntime, TorchTemporalRuntime
    from b2g_deploy.runtimes.trt_runtime import TrtTemporalRuntime

    yield "torch fp16", lambda: TorchTemporalRuntime(ckpt, device=device, fp16=True)
    if aligned is not None:
        yield ALIGNED, lambda: TorchTemporalRuntime(aligned, device=device, fp16=device == "cuda")
        lk = aligned_copy(ckpt, aligned.parent, "lk")
        yield LK_ALIGNED, lambda: TorchTemporalRuntime(lk, device=device, fp16=device == "cuda")
    for label, built in engines.items():
        if "error" in built:
            yield f"TensorRT {label}", built["error"]
        else:
            yield f"TensorRT {label}", lambda path=built["engine"]: TrtTemporalRuntime(path)
    yield "torch fp32", lambda: TorchTemporalRuntime(ckpt, device=device)
    yield "ORT CUDA EP fp32 (+copies)", lambda: OrtTemporalRuntime(onnx, provider="cuda")
    if smoke:  # 720p on ORT CPU takes seconds a frame: the smoke run only
        yield "ORT CPU fp32", lambda: OrtTemporalRuntime(onnx, provider="cpu")


def time_network(rt, x: torch.Tensor, runs: int, warmup: int = 3, host: bool = False) -> float:
    """Median seconds for one batch of windows already on the device (``host``: numpy windows
    through ``infer_windows``, what the pipeline calls, copies and alignment included)."""
    on_device = hasattr(rt, "infer_tensor") and not host
    if on_device:
        fn = rt.infer_tensor
    else:  # ORT: numpy in and out, the host copies included (labelled "+copies")
        windows = x.cpu().numpy()

        def fn(_):
            return rt.infer_windows(windows)

    if x.is_cuda and on_device:  # CUDA events around each call: scripts/gpu_check.py's timer
        from scripts.gpu_check import gpu_time

        return gpu_time(fn, x, runs, warmup)
    for _ in range(warmup):
        fn(x)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn(x)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


class _AlignThenRun:
    """``infer_tensor`` of a runtime whose windows the torch flow aligns first, on the device."""

    def __init__(self, rt) -> None:
        self.rt = rt

    def infer_tensor(self, windows):
        from b2g_deploy.temporal.flow_torch import align_windows_torch

        with torch.inference_mode():
            return self.rt.infer_tensor(align_windows_torch(windows, self.rt.info.channels, self.rt.target_index))


def measure(args, ckpt: Path, onnx: Path, clip: Path, engines: dict, deadline: float,
            aligned: Path | None) -> tuple[list, list]:
    from b2g_deploy.checkpoint import load_checkpoint, temporal_settings

    window = temporal_settings(load_checkpoint(ckpt).net)["window"]
    h, w = args.height, args.width
    x = torch.rand(args.batch, window * 3, h, w, device=args.device)
    network, e2e = [], []
    # The aligned row sees real frames (the flow of random noise is not what a clip costs).
    from b2g_deploy.io.video import open_source

    source = open_source(clip, 3)
    frames = [f for _, (_, f) in zip(range(window + args.batch - 1), source)]
    source.close()
    real = np.stack([np.concatenate([frames[(i + j) % len(frames)] for j in range(window)]) for i in range(args.batch)])
    for label, make in runtimes(ckpt, onnx, engines, args.device, args.cpu_smoke, aligned):
        net_row, e2e_row = {"runtime": label}, {"runtime": label}
        if time.monotonic() > deadline:
            net_row["error"] = e2e_row["error"] = "skipped: time budget"
        elif isinstance(make, str):
            net_row["error"] = e2e_row["error"] = make
        else:
            try:
                with make() as rt:
                    if label == ALIGNED:
                        sec = time_network(rt, torch.from_numpy(real), max(3, args.runs // 4), host=True)
                    elif label == LK_ALIGNED:  # the flow and the network, both on the device
                        sec = time_network(_AlignThenRun(rt), torch.from_numpy(real).to(args.device), args.runs)
                    else:
                        sec = time_network(rt, x, args.runs)
                    net_row.update(batch_ms=round(sec * 1000, 2), ms_per_frame=round(sec * 1000 / args.batch, 2),
                                   fps=round(args.batch / sec, 1))
                    log(f"  network {label}: {net_row}")
                    if time.monotonic() < deadline:
                        e2e_row.update(end_to_end(rt, clip, args.work / "e2e.mkv", args.batch, args.codec))
                        log(f"  end to end {label}: {e2e_row}")
                    else:
                        e2e_row["error"] = "skipped: time budget"
            except Exception as exc:  # a missing package or provider skips this row only
                msg = error_text(exc)
                net_row.setdefault("error", msg)
                e2e_row.setdefault("error", msg)
                log(f"  {label}: {msg}")
        network.append(net_row)
        e2e.append(e2e_row)
        if args.device == "cuda":
            torch.cuda.empty_cache()
    return network, e2e


def time_fusion(clip: Path, device: str, runs: int) -> dict:
    """ms a window of the output fusion in torch on the device (`--fuse-flow lk`,
    temporal.fuse_torch: Lucas-Kanade flows, bicubic warps, the Wiener step), 7 frames of the
    clip, frames already there: what a fused GPU stream adds to the network's time a frame."""
    from b2g_deploy.io.video import open_source
    from b2g_deploy.temporal.fuse import DEFAULT_STRENGTH
    from b2g_deploy.temporal.fuse_torch import fuse_window_torch
    from b2g_deploy.temporal.refine import SHARE

    source = open_source(clip, 3)
    frames = [f for _, (_, f) in zip(range(7), source)]
    source.close()
    noisy = torch.from_numpy(np.stack(frames)).to(device)
    outs = noisy.clamp(0, 1)  # stand-ins for the network's outputs: the cost does not depend on them

    def once(_):
        fuse_window_torch(outs, 3, 25 / 255, DEFAULT_STRENGTH, noisy, SHARE, invert_back=True)

    for _ in range(2):
        once(None)
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(runs):
        once(None)
    if device == "cuda":
        torch.cuda.synchronize()
    ms = (time.perf_counter() - start) * 1000 / runs
    return {"ms_per_window": round(ms, 2), "fps": round(1000 / ms, 1)}


def table(result: dict) -> str:
    s = result["settings"]
    io = result["io"]
    lines = [f"GPU: {result['card']}; {s['width']}x{s['height']}, k={s['k']} centred ({s['window']}-frame windows), "
             f"batch {s['batch']}, {s['frames']} frames, codec {s['codec']}",
             f"I/O alone: decode {io.get('decode_fps', '-')} fps, encode {io.get('encode_fps', '-')} fps", "",
             "| runtime | network ms/frame | network fps | end-to-end fps | end to end without encoding, fps |",
             "|---|---|---|---|---|"]
    for net, e2e in zip(result["network"], result["end_to_end"]):
        a = f"{net['ms_per_frame']} | {net['fps']}" if "fps" in net else f"– | – ({net.get('error', '')})"
        if "fps" in e2e:
            b = f"{e2e['fps']} | {e2e['fps_no_encode']}"
        else:  # the same reason twice says nothing new
            b = "– | –" if e2e.get("error") == net.get("error") else f"– ({e2e.get('error', '')}) | –"
        lines.append(f"| {net['runtime']} | {a} | {b} |")
    t = result["target"]
    lines += ["", f"Target: torch fp16 end to end >= {TARGET_FPS:g} fps at 720p: {t['verdict']}"]
    fusion = result.get("fusion_lk", {})
    lines += ["Output fusion in torch on the device (`--fuse-flow lk`, one window): "
              + (f"{fusion['ms_per_window']} ms, {fusion['fps']} windows/s" if "fps" in fusion
                 else fusion.get("error", "not measured"))]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, required=True, help="folder for gpu_temporal.json/.md")
    ap.add_argument("--work", type=Path, required=True, help="scratch folder (clip, models, engines)")
    ap.add_argument("--checkpoint", type=Path, default=None, help="a fitted temporal checkpoint (default: the prior, k=2)")
    ap.add_argument("--k", type=int, default=2)
    ap.add_argument("--frames", type=int, default=120)
    ap.add_argument("--width", type=int, default=1280)
    ap.add_argument("--height", type=int, default=720)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--codec", default="ffv1")
    ap.add_argument("--trt-fp32", action="store_true", help="also build and time an fp32 engine")
    ap.add_argument("--budget", type=float, default=300.0, help="seconds for everything after the engine builds")
    ap.add_argument("--no-aligned", dest="aligned", action="store_false", help="skip the DIS-aligned row")
    ap.add_argument("--cpu-smoke", action="store_true", help="the plumbing on the CPU at a tiny size")
    args = ap.parse_args()
    if args.cpu_smoke:
        args.device = "cpu"
        args.frames, args.width, args.height, args.batch, args.runs = min(args.frames, 8), 96, 64, 2, 2
    else:
        args.device = "cuda"
        if not torch.cuda.is_available():
            raise SystemExit("gpu_temporal: no CUDA GPU visible to PyTorch (use --cpu-smoke for a dry run)")
    args.out.mkdir(parents=True, exist_ok=True)
    args.work.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    env = collect()
    card = torch.cuda.get_device_name() if args.device == "cuda" else "none (CPU smoke run)"
    log(f"== card: {card}")

    from b2g_deploy.api import export
    from b2g_deploy.checkpoint import load_checkpoint, temporal_settings

    ckpt = make_model(args.work, args.checkpoint, args.k)
    settings_t = temporal_settings(load_checkpoint(ckpt).net)
    onnx = args.work / "temporal.onnx"
    report = export(ckpt, onnx, force=True)
    log(f"== model {ckpt.name}: {report.description}; parity: {report.parity}")

    clip = args.work / "clip.mkv"
    io = write_clip(clip, args.frames, args.height, args.width, args.codec)
    io.update(decode_fps(clip))
    log(f"== I/O alone: {io}")

    engines: dict = {}
    try:
        import tensorrt  # noqa: F401
        have_trt = True
    except ImportError:
        have_trt = False
    for label, fp16 in (("fp16", True), ("fp32", False)):
        if label == "fp32" and not args.trt_fp32:
            continue
        if not have_trt:
            engines[label] = {"error": "tensorrt not installed"}
            continue
        try:
            engines[label] = build_engine(ckpt, onnx, args.work, args.batch, args.height, args.width, fp16,
                                          settings_t["window"])
        except Exception as exc:
            traceback.print_exc()
            engines[label] = {"error": error_text(exc)}

    deadline = time.monotonic() + args.budget
    aligned = aligned_copy(ckpt, args.work) if args.aligned else None
    network, e2e = measure(args, ckpt, onnx, clip, engines, deadline, aligned)
    try:  # after the target's rows: the fusion's cost on the device, for the fused GPU stream
        fusion = time_fusion(clip, args.device, max(2, args.runs // 2)) if time.monotonic() < deadline else {
            "error": "skipped: time budget"}
    except Exception as exc:
        fusion = {"error": error_text(exc)}
    log(f"== fusion in torch (--fuse-flow lk): {fusion}")
    fp16_e2e = next((r.get("fps") for r in e2e if r["runtime"] == "torch fp16"), None)
    verdict = ("not measured" if fp16_e2e is None else
               f"{'met' if fp16_e2e >= TARGET_FPS else 'missed'} ({fp16_e2e} fps)")
    result = {
        "card": card,
        "env": env,
        "settings": {"width": args.width, "height": args.height, "frames": args.frames, "batch": args.batch,
                     "runs": args.runs, "codec": args.codec, "k": settings_t["k"], "causal": settings_t["causal"],
                     "window": settings_t["window"], "checkpoint": str(args.checkpoint or "prior, k-centred"),
                     "cpu_smoke": args.cpu_smoke, "command": " ".join(sys.argv)},
        "onnx": {"description": report.description, "parity": report.parity},
        "engines": {k: {kk: str(vv) for kk, vv in v.items()} for k, v in engines.items()},
        "io": io,
        "network": network,
        "end_to_end": e2e,
        "fusion_lk": fusion,
        "target": {"what": f"torch fp16 end to end >= {TARGET_FPS:g} fps", "fps": fp16_e2e, "verdict": verdict},
        "seconds": round(time.monotonic() - started, 1),
    }
    md = table(result)
    log(md)
    name = "gpu_temporal_smoke" if args.cpu_smoke else "gpu_temporal"
    (args.out / f"{name}.json").write_text(json.dumps(result, indent=2, default=str) + "\n")
    (args.out / f"{name}.md").write_text(md + "\n")
    log(f"== wrote {args.out / (name + '.json')} and .md in {result['seconds']} s")


if __name__ == "__main__":
    main()
