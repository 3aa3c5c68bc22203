"""CPU-side overhead of the temporal video pipeline at 720p, with no network (issue 9).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_pipeline_overhead.py --frames 60 --runs 3

On an H200 the k=2 network ran at 347 fps while the whole pipeline (``io.pipeline.run_pipeline``:
decoder thread -> ``TemporalFeeder``/``RingBuffer`` -> ``infer_windows`` -> encoder thread)
reached 21.7 fps into a discarding sink: the glue around the network, not the network, is the
limit. This benchmark measures that glue alone. A synthetic noisy clip (``--frames`` frames,
1280x720 RGB, smooth pattern + Gaussian noise) is written losslessly (FFV1) to a temporary file;
then, median of ``--runs``:

- decode alone: ``io.video.open_source`` read to the end (OpenCV decode + conversion to float32).
- the product's ``run_pipeline`` (batch ``--batch``) with a *null temporal runtime* (a
  ``TemporalRuntime`` whose ``_run`` does no network work) into a sink that discards the frames,
  and into an FFV1 file (``io.video.open_sink``). Two null runtimes: ``target`` returns a copy of
  each window's target frame (what a network's fresh output costs), ``const`` returns slices of
  one preallocated array (the least a runtime can do).
- the same pipeline fed from ``--stage-frames`` frames decoded beforehand (no decoder thread): on
  a CPU where decoding is the slowest stage this shows the glue's own rate.
- per stage, single-threaded, ms per frame: the decoder's OpenCV read and its conversion to
  float32 RGB planes; then, on frames decoded beforehand, the feeder (ring
  buffer + window/batch assembly, outside ``infer_windows``), ``infer_windows``' own work
  (checks, copies, padding; ``_run`` excluded), the sink's conversion (``io.images.to_storage``)
  and the FFV1 write without it.

The table goes to the section "## Video pipeline overhead at 720p (issue 9)" of docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a file: make `benchmarks` importable

from benchmarks.helpers import DOC, REPO, log, replace_section, run_facts  # noqa: E402

HEADING = "## Video pipeline overhead at 720p (issue 9)"
RESULTS = REPO / "benchmarks" / "results" / "pipeline_overhead.json"


def write_clip(path: Path, frames: int, h: int, w: int, sigma: float = 25.0) -> None:
    """A smooth moving pattern with Gaussian noise (seed = frame index), written losslessly."""
    from b2g_deploy.io.video import VideoInfo, open_sink

    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    sink = open_sink(path, VideoInfo(w, h, 3, 30.0, frames), codec="ffv1", force=True)
    for i in range(frames):
        clean = np.stack([0.5 + 0.4 * np.sin((xx + 2 * i) / (40 + 10 * c)) * np.cos(yy / 50) for c in range(3)])
        noise = np.random.default_rng(i).normal(0.0, sigma / 255.0, clean.shape).astype(np.float32)
        sink.write(clean + noise, i)
    sink.close()


def null_runtime(kind: str, channels: int = 3, k: int = 2, causal: bool = False):
    """A temporal runtime with no network: ``target`` copies each window's target frame out,
    ``const`` returns slices of one preallocated array."""
    from b2g_deploy.runtimes.temporal import TemporalRuntime, _info
    from b2g_deploy.temporal.windows import target_slot, window_size

    class NullTemporalRuntime(TemporalRuntime):
        name = f"null-{kind}"

        def __init__(self):
            self.k, self.causal, self.window, self.multiple = k, causal, window_size(k), 1
            self.info = _info(channels, k, causal, self.window)
            self._const: np.ndarray | None = None

        def _run(self, windows: np.ndarray) -> np.ndarray:
            b, _, h, w = windows.shape
            if kind == "const":
                if self._const is None or self._const.shape[0] < b or self._const.shape[2:] != (h, w):
                    self._const = np.full((b, channels, h, w), 0.5, np.float32)
                return self._const[:b]
            slot = target_slot(k, causal)
            return windows[:, slot * channels : (slot + 1) * channels].copy()  # fresh memory, as a network's

    return NullTemporalRuntime()


class NullSink:
    """Discards frames (the pipeline without the encoder)."""

    def write(self, frame, index=None) -> None:
        pass

    def close(self) -> None:
        pass


def decode_seconds(clip: Path) -> tuple[int, float]:
    from b2g_deploy.io.video import open_source

    t0 = time.perf_counter()
    source = open_source(clip, 3)
    n = sum(1 for _ in source)
    source.close()
    return n, time.perf_counter() - t0


def pipeline_seconds(clip: Path, runtime, sink_path: Path | None, batch: int) -> tuple[int, float]:
    from b2g_deploy.io.pipeline import run_pipeline
    from b2g_deploy.io.video import open_sink, open_source

    source = open_source(clip, 3)
    try:
        sink = NullSink() if sink_path is None else open_sink(sink_path, source.info, "ffv1", force=True)
        stats = run_pipeline(source, runtime, sink, batch=batch)
    finally:
        source.close()
    if sink_path is not None:
        sink_path.unlink(missing_ok=True)
    return stats.written, stats.seconds


class DecodedSource:
    """Frames decoded beforehand, served as a source: the pipeline without the decoder, so that
    what is left is the glue (ring, batch assembly, runtime copies, queues)."""

    def __init__(self, frames: list[tuple[int, np.ndarray]]):
        from b2g_deploy.io.video import VideoInfo

        c, h, w = frames[0][1].shape
        self.frames, self.info, self.skipped = frames, VideoInfo(w, h, c, 30.0, len(frames)), 0

    def __iter__(self):
        return iter(self.frames)


def decode_split_ms(clip: Path, frames: int) -> dict:
    """The decoder's two parts, ms per frame: OpenCV's read (``CaptureSource.read_raw``) and the
    conversion of its BGR uint8 frame to float32 RGB planes (what the source yields)."""
    from b2g_deploy.io.video import open_source
    from b2g_deploy.io.video_readers import _bgr_to_unit

    source = open_source(clip, 3)
    t0 = time.perf_counter()
    raws = [raw for raw in (source.read_raw() for _ in range(frames)) if raw is not None]
    read = time.perf_counter() - t0
    source.close()
    t0 = time.perf_counter()
    converted = [_bgr_to_unit(raw, 3) for raw in raws]
    convert = time.perf_counter() - t0
    del converted
    return {"opencv_read_ms": read * 1000.0 / len(raws), "to_float_ms": convert * 1000.0 / len(raws)}


def decoded_frames(clip: Path, frames: int) -> list[tuple[int, np.ndarray]]:
    from b2g_deploy.io.video import open_source

    source = open_source(clip, 3)
    decoded = [item for _, item in zip(range(frames), source)]
    source.close()
    return decoded


def glue_seconds(decoded: list[tuple[int, np.ndarray]], runtime, batch: int) -> tuple[int, float]:
    from b2g_deploy.io.pipeline import run_pipeline

    stats = run_pipeline(DecodedSource(decoded), runtime, NullSink(), batch=batch)
    return stats.written, stats.seconds


class _Clock:
    """Seconds spent inside wrapped calls."""

    def __init__(self):
        self.seconds = 0.0

    def wrap(self, fn):
        def timed(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - t0

        return timed


def stage_ms(clip: Path, frames: int, batch: int, tmp: Path) -> dict:
    """Per-frame ms of each CPU stage, single-threaded, on frames decoded beforehand."""
    from b2g_deploy.io.images import to_storage
    from b2g_deploy.io.pipeline import TemporalFeeder
    from b2g_deploy.io.video import VideoInfo, open_sink

    decoder = decode_split_ms(clip, frames)  # first: its fresh arrays cost what the allocator's state makes them
    decoded = decoded_frames(clip, frames)
    runtime = null_runtime("target")
    infer, run = _Clock(), _Clock()
    runtime._run = run.wrap(runtime._run)
    runtime.infer_windows = infer.wrap(runtime.infer_windows)
    for warm in (True, False):  # the timed pass after a warm-up: what a long video's frames cost
        infer.seconds = run.seconds = 0.0
        feeder, outputs = TemporalFeeder(runtime), []
        t0 = time.perf_counter()
        for first in range(0, len(decoded), batch):
            outputs += feeder.push(decoded[first : first + batch])
        outputs += feeder.flush()
        total = time.perf_counter() - t0
    n = len(outputs)
    t0 = time.perf_counter()
    stored = [to_storage(d, 8) for _, _, d in outputs]
    convert = time.perf_counter() - t0
    h, w = decoded[0][1].shape[1:]
    sink = open_sink(tmp / "stages.mkv", VideoInfo(w, h, 3, 30.0, n), codec="ffv1", force=True)
    t0 = time.perf_counter()
    for u8 in stored:
        sink._writer.write(u8)  # the encoder alone: the conversion was timed above
    sink.close()
    encode = time.perf_counter() - t0
    ms = 1000.0 / n
    return {**decoder, "feeder_ms": (total - infer.seconds) * ms, "infer_copies_ms": (infer.seconds - run.seconds) * ms,
            "null_run_ms": run.seconds * ms, "to_storage_ms": convert * ms, "ffv1_write_ms": encode * ms}


def measure(args, tmp: Path) -> dict:
    clip = tmp / "noisy.mkv"
    write_clip(clip, args.frames, args.height, args.width)
    log(f"{args.frames} noisy frames {args.width}x{args.height} written")
    rows: dict[str, list[float]] = {}

    def add(label: str, n: int, seconds: float) -> None:
        rows.setdefault(label, []).append(n / seconds)
        log(f"{label}: {n / seconds:.1f} fps")

    # The stages first: single-threaded copies of fresh arrays are sensitive to the state the
    # allocator was left in (after the threaded runs a stage measured up to 10x slower here).
    stages = [stage_ms(clip, min(args.frames, args.stage_frames), args.batch, tmp) for _ in range(args.runs)]
    decoded = decoded_frames(clip, min(args.frames, args.stage_frames))
    for _ in range(args.runs):
        add("decode alone", *decode_seconds(clip))
        for kind in ("target", "const"):
            add(f"pipeline from frames decoded beforehand, null runtime ({kind}), discarding sink",
                *glue_seconds(decoded, null_runtime(kind), args.batch))
        for kind in ("target", "const"):
            add(f"pipeline, null runtime ({kind}), discarding sink",
                *pipeline_seconds(clip, null_runtime(kind), None, args.batch))
        add("pipeline, null runtime (target), FFV1 file",
            *pipeline_seconds(clip, null_runtime("target"), tmp / "out.mkv", args.batch))
    return {"fps": {label: statistics.median(v) for label, v in rows.items()}, "fps_runs": rows,
            "stages_ms": {key: statistics.median(s[key] for s in stages) for key in stages[0]}}


STAGE_LABELS = {
    "opencv_read_ms": "decoder: OpenCV read (FFV1 decode)",
    "to_float_ms": "decoder: BGR uint8 -> float32 RGB planes",
    "feeder_ms": "feeder: ring buffer + window/batch assembly (outside infer_windows)",
    "infer_copies_ms": "infer_windows' own work (checks, copies, padding; _run excluded)",
    "null_run_ms": "null runtime's _run (copying out the target frame)",
    "to_storage_ms": "sink's conversion to 8-bit BGR (io.images.to_storage)",
    "ffv1_write_ms": "FFV1 encode and write (OpenCV), conversion excluded",
}


def _run_line(run: dict) -> str:
    return f"`{run['command']}` on {run['cpu']} ({run['cores']} cores), {run['date']}, torch {run['torch']}"


def render(data: dict, baseline: dict | None = None) -> str:
    """The tables; with ``baseline`` (this benchmark's JSON from an earlier commit) a column of
    its numbers and the ratio beside each row."""
    s = data["settings"]
    before = baseline["fps"] if baseline else {}
    head = "| what | fps | ms/frame |"
    if baseline:
        head = f"| what | fps before ({baseline['label']}) | fps | ms/frame | ratio |"
    out = [
        f"{s['width']}x{s['height']} RGB, k=2 centred (5-frame windows), batch {s['batch']}, {s['frames']} frames, "
        f"no network (null temporal runtimes); median of {s['runs']} runs.",
        "",
        head,
        "|" + "---|" * (head.count("|") - 1),
    ]
    for label, fps in data["fps"].items():
        if baseline:
            was = before.get(label)
            then = f"{was:.1f}" if was else "–"
            ratio = f"{fps / was:.2f}x" if was else "–"
            out.append(f"| {label} | {then} | {fps:.1f} | {1000.0 / fps:.1f} | {ratio} |")
        else:
            out.append(f"| {label} | {fps:.1f} | {1000.0 / fps:.1f} |")
    stage_head = "| stage | ms/frame before | ms/frame |" if baseline else "| stage | ms/frame |"
    out += ["", f"Per stage, single-threaded, on {s['stage_frames']} frames (after the decoder's two parts: "
            "frames decoded beforehand):", "",
            stage_head, "|" + "---|" * (stage_head.count("|") - 1)]
    for key, ms in data["stages_ms"].items():
        was = ""
        if baseline:
            was = f"{baseline['stages_ms'][key]:.2f} | " if key in baseline["stages_ms"] else "– | "
        out.append(f"| {STAGE_LABELS[key]} | {was}{ms:.2f} |")
    out += ["", f"Run: {_run_line(data['run'])}; other jobs shared the machine, so compare rows of one "
            "run (or runs made one after the other), not across tables."]
    if baseline:
        out += [f"Before: {_run_line(baseline['run'])}, the same benchmark file run against {baseline['label']}."]
    out += ["", "On this VM, writing into freshly allocated memory (page faults) costs up to ~2 ms per MB, "
            "and how often a large array is fresh depends on the allocator's state, so single-threaded "
            "stages that allocate (the conversions, the null runtime's copy) move by up to 10x between "
            "processes. The feeder is timed on a second pass over the frames (after a warm-up pass)."]
    if data.get("note"):
        out += ["", data["note"]]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frames", type=int, default=60)
    p.add_argument("--stage-frames", type=int, default=24, help="frames held in memory for the per-stage timing")
    p.add_argument("--width", type=int, default=1280)
    p.add_argument("--height", type=int, default=720)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--json", type=Path, default=RESULTS)
    p.add_argument("--note", default="", help="a line printed under the tables")
    p.add_argument("--baseline", type=Path, default=None,
                   help="this benchmark's JSON from an earlier commit: shown beside, with the ratio")
    p.add_argument("--baseline-label", default="the earlier commit", help="what --baseline measured")
    p.add_argument("--no-doc", action="store_true")
    args = p.parse_args(argv)

    import torch

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        data = measure(args, Path(tmp))
    data.update(run=run_facts(), note=args.note,
                settings={"width": args.width, "height": args.height, "frames": args.frames, "batch": args.batch,
                          "runs": args.runs, "stage_frames": min(args.frames, args.stage_frames)})
    baseline = None
    if args.baseline is not None:
        baseline = {**json.loads(args.baseline.read_text()), "label": args.baseline_label}
        data["baseline"] = {"path": str(args.baseline), "label": args.baseline_label}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(data, indent=1))
    body = render(data, baseline)
    print(body)
    if not args.no_doc:
        replace_section(DOC, HEADING, body)


if __name__ == "__main__":
    main()
