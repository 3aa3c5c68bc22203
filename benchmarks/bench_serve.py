"""Load on a Triton-served denoiser (`b2g-deploy serve`) against the local runtime in one process.

    python benchmarks/bench_serve.py [--model M.onnx] [--seconds 5] [--clients 1,4,16]
                                     [--sizes 360p,720p] [--threads 1] [--write-doc]

Each cell: N clients (threads of this process, one gRPC client each, like N cameras) send one
frame per request, back to back, for --seconds; throughput is frames completed over the time
to the last completion, latency is per request (send to denoised frame back), and the batch
sizes are the ones Triton's dynamic batcher formed during the cell (the server's statistics).
The local row runs the same frames through ONNX Runtime in this process, N threads sharing one
session (no batching across them). Server and local ORT use --threads intra-op threads.

Without --model a `tiny` preset network (fitted for a few steps: the timings do not depend on
the weights) is exported to a temporary folder. Frames: cockatoo.mp4 from ../shared/data
resized to each size, sigma 25 noise; synthetic noise frames without it. Raw rows go to
benchmarks/results/serve.json; with --write-doc the table replaces the "Serving with Triton
(issue 11)" section of docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
from pathlib import Path

import sys

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a file: make `benchmarks` importable

from benchmarks.helpers import DOC, REPO, VIDEO, replace_section, run_facts  # noqa: E402

SIZES = {"360p": (360, 640), "720p": (720, 1280), "1080p": (1080, 1920)}
HEADING = "## Serving with Triton (issue 11)"
RESULTS = REPO / "benchmarks" / "results" / "serve.json"


def frames_for(size: str, count: int = 4) -> np.ndarray:
    """(count, 3, H, W) float32 noisy frames at ``size``."""
    h, w = SIZES[size]
    rng = np.random.default_rng(0)
    clean = None
    if VIDEO.exists():
        import cv2

        cap = cv2.VideoCapture(str(VIDEO))
        got = []
        while len(got) < count:
            ok, bgr = cap.read()
            if not ok:
                break
            rgb = cv2.resize(bgr, (w, h), interpolation=cv2.INTER_AREA)[..., ::-1]
            got.append(rgb.transpose(2, 0, 1).astype(np.float32) / 255.0)
        cap.release()
        clean = np.stack(got) if got else None
    if clean is None:
        clean = rng.random((count, 3, h, w), dtype=np.float32)
    return np.clip(clean + rng.normal(0, 25 / 255, clean.shape), 0, 1).astype(np.float32)


def tiny_model(folder: Path) -> Path:
    import torch

    from b2g_deploy.checkpoint import Checkpoint, save_checkpoint
    from b2g_deploy.config import preset
    from b2g_deploy.export.onnx_export import export_onnx
    from b2g_deploy.export.parity import parity_image
    from b2g_deploy.fit import fit

    cfg = preset("tiny").with_overrides(iters=5)
    net = fit(torch.from_numpy(parity_image(3, (48, 64))[0]), cfg, seed=0).net
    save_checkpoint(folder / "tiny.pt", Checkpoint(net, cfg, {"bit_depth": 8, "preset": "tiny"}))
    export_onnx(folder / "tiny.pt", folder / "tiny.onnx")
    return folder / "tiny.onnx"


def run_cell(make_client, frames: np.ndarray, clients: int, seconds: float) -> dict:
    """``clients`` threads, each with ``make_client()``, sending one frame per call for ``seconds``."""
    workers = [make_client() for _ in range(clients)]
    latencies: list[list[float]] = [[] for _ in range(clients)]
    done_at = [0.0] * clients
    errors: list[BaseException] = []
    start = threading.Barrier(clients + 1)
    t0 = [0.0]

    def loop(i: int) -> None:
        infer = workers[i].infer
        start.wait()
        deadline = t0[0] + seconds
        k = i
        try:
            while time.perf_counter() < deadline:
                frame = frames[k % len(frames)][None]
                s = time.perf_counter()
                infer(frame)
                done_at[i] = time.perf_counter()
                latencies[i].append(done_at[i] - s)
                k += 1
        except BaseException as exc:  # noqa: BLE001 - reported after the cell
            errors.append(exc)

    threads = [threading.Thread(target=loop, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    t0[0] = time.perf_counter()
    start.wait()
    for t in threads:
        t.join()
    for w in workers:
        close = getattr(w, "close", None)
        if close is not None and w is not workers[0]:
            close()
    if errors:
        raise errors[0]
    lat = sorted(x for per in latencies for x in per)
    elapsed = max(done_at) - t0[0]
    return {"frames": len(lat), "seconds": round(elapsed, 3), "fps": round(len(lat) / elapsed, 3),
            "p50_ms": round(1000 * lat[len(lat) // 2], 1),
            "p99_ms": round(1000 * lat[min(len(lat) - 1, int(0.99 * len(lat)))], 1)}


def batch_delta(before: dict[int, int], after: dict[int, int]) -> dict[int, int]:
    return {b: n - before.get(b, 0) for b, n in sorted(after.items()) if n - before.get(b, 0) > 0}


def fmt_batches(counts: dict) -> str:
    return " ".join(f"{b}x{n}" for b, n in sorted((int(b), n) for b, n in counts.items())) or "-"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", type=Path, help="an exported .onnx (default: a tiny network, exported here)")
    p.add_argument("--seconds", type=float, default=5.0, help="length of each cell")
    p.add_argument("--clients", default="1,4,16")
    p.add_argument("--sizes", default="360p,720p")
    p.add_argument("--threads", type=int, default=1, help="ONNX Runtime threads, server and local")
    p.add_argument("--max-batch", type=int, default=8)
    p.add_argument("--queue-delay-us", type=int, default=100)
    p.add_argument("--port", type=int, default=8600)
    p.add_argument("--device", default="cpu", help="server and local ORT provider: cpu | cuda | tensorrt")
    p.add_argument("--json", type=Path, default=RESULTS, help="where the raw rows go")
    p.add_argument("--write-doc", action="store_true")
    args = p.parse_args()
    clients = [int(c) for c in args.clients.split(",")]
    sizes = args.sizes.split(",")

    from b2g_deploy.runtimes.ort_runtime import OrtRuntime
    from b2g_deploy.runtimes.triton_client import TritonRuntime
    from b2g_deploy.serving.launch import RunningServer
    from b2g_deploy.serving.server import ServeOptions

    facts = run_facts()
    with tempfile.TemporaryDirectory() as tmp:
        model = args.model or tiny_model(Path(tmp))
        opts = ServeOptions(str(model), port=args.port, max_batch=args.max_batch,
                            queue_delay_us=args.queue_delay_us, threads=args.threads, provider=args.device)
        rows = []
        t_start = time.perf_counter()
        with RunningServer(opts) as server:
            startup = round(time.perf_counter() - t_start, 1)
            url = server.url("grpc")
            probe = TritonRuntime(url, opts.name)
            local = OrtRuntime(model, provider=args.device, threads=args.threads)
            for size in sizes:
                frames = frames_for(size)
                probe.infer(frames[:1])  # warm-up: first-call allocations on both sides
                local.infer(frames[:1])
                for n in clients:
                    before = probe.batch_stats()
                    served = run_cell(lambda: TritonRuntime(url, opts.name), frames, n, args.seconds)
                    served["batches"] = batch_delta(before, probe.batch_stats())
                    rows.append({"size": size, "clients": n, "where": "triton", **served})
                    print(json.dumps(rows[-1]), flush=True)
                    loc = run_cell(lambda: local, frames, n, args.seconds)
                    rows.append({"size": size, "clients": n, "where": "local", **loc})
                    print(json.dumps(rows[-1]), flush=True)
            probe.close()
            local.close()
        model_name = Path(model).name if args.model else "the `tiny` preset network (width 8, depth 3; 5 fit steps), exported here"
    record = {"facts": {**facts, "server_startup_s": startup, "model": model_name, "threads": args.threads,
                        "max_batch": args.max_batch, "queue_delay_us": args.queue_delay_us,
                        "seconds_per_cell": args.seconds, "device": args.device}, "rows": rows}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(record, indent=1) + "\n")
    table = render(record)
    print(table)
    if args.write_doc:
        replace_section(DOC, HEADING, table)


def render(record: dict) -> str:
    f = record["facts"]
    lines = [
        f"Command: `{f['command']}`  ",
        f"Machine: {f['cpu']}, {f['cores']} cores visible (shared with other jobs while measured), "
        f"Python {f['python']}; date {f['date'][:10]}; device {f['device']}.  ",
        f"Model: {f['model']}; ONNX Runtime with {f['threads']} intra-op thread(s) in the server and locally; "
        f"Triton (PyTriton 0.7, Python backend) max batch {f['max_batch']}, queue delay "
        f"{f['queue_delay_us']} us; {f['seconds_per_cell']:g} s per cell; server start-up "
        f"{f['server_startup_s']} s. Clients are threads of one process, one gRPC client each, one "
        "frame per request; local = the same frames through ONNX Runtime in one process, the "
        "threads sharing one session. Raw rows: `benchmarks/results/serve.json`.",
        "",
        "| size | clients | where | frames/s | p50 ms | p99 ms | frames | batch sizes formed (size x count) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in record["rows"]:
        batches = fmt_batches(r["batches"]) if "batches" in r else "(none: one call per frame)"
        lines.append(f"| {r['size']} | {r['clients']} | {r['where']} | {r['fps']:.2f} | {r['p50_ms']:.0f} | "
                     f"{r['p99_ms']:.0f} | {r['frames']} | {batches} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()

