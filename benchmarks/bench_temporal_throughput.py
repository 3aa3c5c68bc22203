"""End-to-end throughput of the temporal video path on this CPU (issue 9): decode, align,
network, encode, against OpenCV NLM per frame on the same frames.

    .venv/bin/python benchmarks/bench_temporal_throughput.py --frames 12 --threads 1
    .venv/bin/python benchmarks/bench_temporal_throughput.py --frames 24 --threads 1 --repeats 3

``--repeats R`` runs every method R times, round-robin (this machine's speed drifts by several
percent over minutes), and reports each one's median with the runs beside it.

The first F frames of the cockatoo clip at full size (1280x720) get Gaussian noise sigma 25
(bench_video.py's quantised camera noise) and are written losslessly (FFV1) to a temporary
file; each method then reads that file and writes an FFV1 file, timed from open to close:

- temporal B2G: the shipped temporal prior (k=2 centred, the `fast` network) with DIS alignment
  ("dis-fine", the default; also "dis", the coarser flow, without the fusion),
  exported to ONNX and streamed by ``b2g_deploy.api.denoise_video`` on ONNX Runtime (CPU) with
  ``--threads`` threads: the path `denoise VIDEO -m temporal.onnx` takes. Weights do not change
  the speed, so no fit is run; its quality is bench_temporal.py's.
- the same with the output fusion (``temporal.fuse``, the default of `denoise VIDEO`; it runs on
  the encoder thread, beside the next frames' inference), with its default "fine" flow and its
  Wiener step on the noisy frames (``temporal.refine``, the default since 2026-11-29), without
  that step (`--no-refine`), with `--fuse-flow medium`, without the stream's last steps
  (`--no-unclip --blend 0`: the unclipping and the light blend a fused output gets, method
  ``...-unfinished``), and without alignment (what the alignment costs);
- the same network exported in int8 (`export --int8`, calibrated on the clip's first frames;
  export.int8), with the default fusion and with `--no-fuse` (``--methods`` picks rows by name);
- OpenCV NLM per frame (``fastNlMeansDenoisingColored``, h = 0.5 sigma, template 7, search 21)
  with ``cv2.setNumThreads(n)`` for each n of ``--nlm-threads`` (default: one thread and all
  the machine's cores), decode and encode by OpenCV as well.

``--threads`` is ONNX Runtime's thread count for the network (a comma list runs each).
``--runtimes onnxruntime,openvino-f32,openvino-bf16`` runs every B2G row on each of those
(``denoise --runtime openvino --precision P``; docs/BENCHMARKS.md, "OpenVINO on the CPU"). The
stream's other work (aligning the next batch, the fusion and its Wiener step, encoding) runs on
threads of its own beside it, so a one-thread network still keeps two cores busy. Each row
therefore also gives the process's CPU seconds a frame (all its threads), and the target is
read against NLM on all the machine's cores: the same CPU for both.

The issue's target: the temporal path no slower than NLM per frame. The table goes to the
section "## Temporal video throughput (issue 9)" of docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a file: make `benchmarks` importable

from benchmarks.helpers import DOC, REPO, VIDEO, add_video_noise, log, replace_section, run_facts  # noqa: E402

HEADING = "## Temporal video throughput (issue 9)"
# --runtimes: (runtime, OpenVINO precision) and the words each row's label gets
RUNTIMES = {"onnxruntime": ("onnxruntime", None), "openvino-f32": ("openvino", "f32"),
            "openvino-bf16": ("openvino", "bf16")}
RUNTIME_WORDS = {"onnxruntime": "ONNX Runtime CPU", "openvino-f32": "OpenVINO CPU float32",
                 "openvino-bf16": "OpenVINO CPU bfloat16"}
RESULTS = REPO / "benchmarks" / "results" / "temporal_throughput.json"


def noisy_clip(path: Path, frames: int, sigma: float) -> tuple[int, int]:
    from b2g_deploy.io.video import VideoInfo, open_sink, read_frames

    clean = read_frames(VIDEO, limit=frames, channels=3)
    h, w = clean[0].shape[1:]
    sink = open_sink(path, VideoInfo(w, h, 3, 25.0, len(clean)), codec="ffv1")
    for i, c in enumerate(clean):
        sink.write(add_video_noise(np.asarray(c, np.float32), sigma, i), i)
    sink.close()
    return h, w


def temporal_onnx(out: Path, align: str, int8_clip: Path | None = None) -> Path:
    """The shipped temporal prior exported as `export` writes it; ``int8_clip``: in int8, calibrated
    on that clip's first frames (`export --int8 --calibrate CLIP`)."""
    from b2g_deploy import api
    from b2g_deploy.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
    from b2g_deploy.config import preset
    from b2g_deploy.priors import shipped_prior_path, temporal_prior_name

    prior = load_checkpoint(shipped_prior_path(3).with_name(temporal_prior_name(3, 2, False)))
    net = prior.net
    net.align = align
    ckpt = out.with_suffix(".pt")
    save_checkpoint(ckpt, Checkpoint(net, preset("fast"), {"bit_depth": 8}), force=True)
    api.export(ckpt, out, int8=int8_clip is not None, calibrate=int8_clip, force=True)
    return out


def time_b2g(clip: Path, model: Path, out: Path, threads: int, fuse_flow: str | None = None,
             refine: bool = True, finish: bool = True, runtime: str = "onnxruntime") -> dict:
    """``fuse_flow`` None: ``--no-fuse``; else the output fusion with that flow (and ``refine``);
    "fine-direct": the fine flow with DIS's own backward flows (the fusion before 2026-12-07,
    ``fuse.default_invert``). ``finish`` False: ``--no-unclip --blend 0`` (the stream without
    its last steps). ``runtime``: a key of RUNTIMES."""
    from b2g_deploy import api
    from b2g_deploy.temporal import fuse

    name, precision = RUNTIMES[runtime]
    shipped = fuse.default_invert
    if fuse_flow == "fine-direct":
        fuse.default_invert, fuse_flow = (lambda causal: False), "fine"
    t0, c0 = time.perf_counter(), time.process_time()
    try:
        report = api.denoise_video(clip, out, model, runtime=name, precision=precision, threads=threads, force=True,
                                   batch=1, fuse=fuse_flow is not None,
                                   fuse_flow=fuse_flow or "fine", refine=refine, unclip=finish,
                                   blend=None if finish else 0.0)
    finally:
        fuse.default_invert = shipped
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {"frames": report.written, "seconds": seconds, "fps": report.written / seconds,
            "cpu_per_frame": cpu / max(report.written, 1), "threads": threads, "runtime": report.runtime}


def time_nlm(clip: Path, out: Path, sigma: float, threads: int) -> dict:
    import cv2

    previous = cv2.getNumThreads()
    cv2.setNumThreads(threads)
    t0, c0 = time.perf_counter(), time.process_time()
    cap = cv2.VideoCapture(str(clip))
    writer, n = None, 0
    h = 0.5 * sigma
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        den = cv2.fastNlMeansDenoisingColored(frame, None, h, h, 7, 21)
        if writer is None:
            writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"FFV1"), 25.0, den.shape[1::-1])
        writer.write(den)
        n += 1
    cap.release()
    if writer is not None:
        writer.release()
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    cv2.setNumThreads(previous)  # the B2G rows after this one keep OpenCV's own thread count
    return {"frames": n, "seconds": seconds, "fps": n / seconds, "cpu_per_frame": cpu / max(n, 1),
            "threads": threads, "runtime": f"OpenCV NLM ({threads} thread(s))"}


def baseline(rows: list[dict]) -> dict:
    """The NLM row the target is read against: the one with the most threads (older results
    have a single one-thread row named "nlm")."""
    return max((r for r in rows if r["method"].startswith("nlm")), key=lambda r: r.get("threads", 1))


def render(data: dict) -> str:
    rows = data["rows"]
    nlm = baseline(rows)
    repeats = len(nlm.get("runs", [nlm["seconds"]]))
    timed = f"each method run {repeats} times round-robin, the median of the times" if repeats > 1 else "timed"
    seconds = "seconds (median) | runs (s)" if repeats > 1 else "seconds"
    out = [
        f"Decode, (align,) network, encode, {timed} from opening the noisy file to closing the "
        "output; the issue's target: the temporal path no slower than NLM per frame.",
        "",
        f"| method | frames | size | {seconds} | fps | CPU s a frame | vs NLM | target |",
        "|---" * (9 if repeats > 1 else 8) + "|",
    ]
    for r in rows:
        ratio = r["fps"] / nlm["fps"]
        target = ("" if r["method"].startswith("nlm")
                  else "met" if ratio >= 1 else f"**missed: {ratio:.2f}x NLM's speed**")
        spread = f" {', '.join(f'{x:.1f}' for x in r['runs'])} |" if repeats > 1 else ""
        cpu = f"{r['cpu_per_frame']:.2f}" if "cpu_per_frame" in r else "–"
        out.append(f"| {r['label']} | {r['frames']} | {r['size']} | {r['seconds']:.1f} |{spread} {r['fps']:.2f} | "
                   f"{cpu} | {ratio:.2f}x | {target} |")
    run = data["run"]
    out += ["", f"Run: `{run['command']}` on {run['cpu']} ({run['cores']} cores), {run['date']}, torch {run['torch']}; "
            "other jobs shared the machine, so compare the rows with each other (same run), not with other tables."]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frames", type=int, default=12)
    p.add_argument("--sigma", type=float, default=25.0)
    p.add_argument("--threads", default="1", help="ONNX Runtime's threads for the network; a comma list runs each")
    p.add_argument("--nlm-threads", default=f"1,{os.cpu_count() or 1}",
                   help="OpenCV's threads for NLM, a comma list (default: one, and all the machine's cores)")
    p.add_argument("--json", type=Path, default=RESULTS)
    p.add_argument("--repeats", type=int, default=1,
                   help="run every method this many times, round-robin (a noisy machine drifts over minutes), "
                        "and report each one's median")
    p.add_argument("--methods", default="", help="comma-separated method names to run (default: all; nlm always)")
    p.add_argument("--runtimes", default="onnxruntime",
                   help=f"comma-separated runtimes for every B2G method ({', '.join(RUNTIMES)}); rows other than "
                        "ONNX Runtime's get the runtime's name after the method's")
    p.add_argument("--no-doc", action="store_true")
    args = p.parse_args(argv)
    if args.repeats < 1:
        p.error("--repeats must be at least 1")
    try:
        threads = sorted({int(t) for t in args.threads.split(",")})
        nlm_threads = sorted({int(t) for t in args.nlm_threads.split(",")})
    except ValueError:
        p.error("--threads and --nlm-threads take comma-separated whole numbers")
    if min(threads + nlm_threads) < 1:
        p.error("thread counts must be at least 1")
    runtimes = [r.strip() for r in args.runtimes.split(",") if r.strip()]
    if not runtimes or set(runtimes) - set(RUNTIMES):
        p.error(f"--runtimes takes a comma list of {', '.join(RUNTIMES)}")

    import torch

    torch.set_num_threads(threads[0])
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        clip = tmp / "noisy.mkv"
        h, w = noisy_clip(clip, args.frames, args.sigma)
        size = f"{w}x{h}"
        log(f"{args.frames} noisy frames {size} written")
        names = {"dis-fine": "DIS-aligned (dis-fine, the default)", "dis": "DIS-aligned (dis, the coarser flow)",
                 "none": "unaligned"}
        fusions = {("fine", True): ", output fusion with its Wiener step (fine flow: the default)",
                   ("fine", False): ", output fusion, `--no-refine`",
                   ("medium", True): ", output fusion with its Wiener step, `--fuse-flow medium`",
                   ("fine-direct", True): ", output fusion with its Wiener step, fine flow with DIS's own backward "
                                          "flows (the default before 2026-12-07)",
                   (None, False): ", `--no-fuse`"}
        # (alignment, fusion flow or None for --no-fuse, Wiener step, int8 export, unclip and blend)
        configs = (("dis-fine", "fine", True, False, True), ("dis-fine", "fine-direct", True, False, True),
                   ("dis-fine", "fine", True, False, False),
                   ("dis-fine", "fine", True, True, True), ("dis-fine", "fine", False, False, True),
                   ("dis-fine", "medium", True, False, True), ("dis-fine", None, False, False, True),
                   ("dis-fine", None, False, True, True), ("dis", None, False, False, True),
                   ("none", None, False, False, True))
        wanted = {m.strip() for m in args.methods.split(",") if m.strip()}
        runs: dict[str, list[dict]] = {}
        labels: dict[str, str] = {}
        for round_ in range(args.repeats):
            for align, flow, refine, int8, finish in configs:
                method = (f"b2g-temporal-{align}" + ("" if flow is None else "-fuse" if flow == "fine" else f"-fuse-{flow}")
                          + ("-refine" if refine else "") + ("-int8" if int8 else "") + ("" if finish else "-unfinished"))
                if wanted and method not in wanted:
                    continue
                model = tmp / f"t_{align}{'_int8' if int8 else ''}.onnx"
                if not model.exists():
                    temporal_onnx(model, align, clip if int8 else None)
                for n, rt in ((n, rt) for rt in runtimes for n in threads):
                    key = method + ("" if rt == "onnxruntime" else f"-{rt}") + ("" if n == 1 else f"-t{n}")
                    r = time_b2g(clip, model, tmp / f"out_{key}.mkv", n, flow, refine, finish, rt)
                    label = (f"temporal B2G k=2, {RUNTIME_WORDS[rt]}{', int8 (`export --int8`)' if int8 else ''}, "
                             f"{names[align]}{fusions[flow, refine]}"
                             + ("" if finish else ", `--no-unclip --blend 0` (without the last steps)")
                             + f", network on {n} thread{'s' if n > 1 else ''}")
                    runs.setdefault(key, []).append(r)
                    labels[key] = label
                    log(f"round {round_ + 1}: {label}: {r['fps']:.2f} fps")
            for n in nlm_threads:
                key = "nlm" if n == 1 else f"nlm-t{n}"
                r = time_nlm(clip, tmp / f"{key}.mkv", args.sigma, n)
                runs.setdefault(key, []).append(r)
                labels[key] = f"OpenCV NLM per frame (h = 0.5σ, 7/21), {n} thread{'s' if n > 1 else ''}"
                log(f"round {round_ + 1}: NLM ({n} threads): {r['fps']:.2f} fps")
        for method, got in runs.items():
            seconds = [g["seconds"] for g in got]
            median = float(np.median(seconds))
            # CPU seconds a frame: the median over the runs too (the first run's alone until 2026-12-07)
            cpu = float(np.median([g["cpu_per_frame"] for g in got]))
            rows.append({"method": method, "label": labels[method], "size": size, **got[0], "seconds": median,
                         "fps": got[0]["frames"] / median, "runs": [round(x, 2) for x in seconds],
                         "cpu_per_frame": cpu})
    data = {"run": run_facts(), "rows": rows}
    args.json.write_text(json.dumps(data, indent=1))
    body = render(data)
    print(body)
    if not args.no_doc:
        replace_section(DOC, HEADING, body)


if __name__ == "__main__":
    main()
