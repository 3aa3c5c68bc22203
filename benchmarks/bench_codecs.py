"""How fast each `denoise --codec` writes 720p video, how large, and whether it is lossless.

On the GPU machine the network ran 347 fps at 720p but FFV1 encoding capped a file output at
9.3 fps (docs/BENCHMARKS.md, "Temporal video on a GPU"); the same sink on this CPU is measured
here for every codec the product offers. The frames are the first ``--frames`` of the cockatoo
clip (decoded 8-bit BGR, the kind of smooth frame a denoiser writes), written through
``b2g_deploy.io.video.open_sink`` exactly as ``denoise`` writes them, ``--runs`` times; the table
gives the median fps, MB a frame, and the largest difference after decoding the file again.

    .venv/bin/python benchmarks/bench_codecs.py --frames 40 --runs 3 --threads 1
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a file: make `benchmarks` importable

from benchmarks.helpers import DOC, VIDEO, cpu_model, log, replace_section  # noqa: E402

HEADING = "## Video codecs (issue 9)"
SUFFIX = {"ffv1": ".mkv", "hfyu": ".mkv", "mp4v": ".mp4", "mjpg": ".avi"}


def encode(frames: list[np.ndarray], path: Path, codec: str, fps: float) -> float:
    """Seconds to write ``frames`` (C, H, W float in [0, 1]) through the product's sink."""
    from b2g_deploy.io.video import VideoInfo, open_sink

    c, h, w = frames[0].shape
    sink = open_sink(path, VideoInfo(w, h, c, fps, len(frames)), codec, force=True)
    t0 = time.perf_counter()
    try:
        for f in frames:
            sink.write(f)
    finally:
        sink.close()
    return time.perf_counter() - t0


def largest_difference(path: Path, frames: list[np.ndarray]) -> int:
    from b2g_deploy.io.video import read_frames

    back = read_frames(path, channels=frames[0].shape[0])
    if len(back) != len(frames):
        return -1
    return int(max(np.abs(np.round(np.asarray(b) * 255) - np.round(f * 255)).max() for b, f in zip(back, frames)))


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frames", type=int, default=40)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--threads", type=int, default=1, help="OpenCV threads")
    p.add_argument("--codecs", default="ffv1,hfyu,mjpg,mp4v", type=lambda s: [c.strip() for c in s.split(",") if c.strip()])
    p.add_argument("--no-doc", action="store_true")
    args = p.parse_args(argv)
    import cv2

    from b2g_deploy.io.video import read_frames

    cv2.setNumThreads(args.threads)
    frames = [np.asarray(f, dtype=np.float32) for f in read_frames(VIDEO, limit=args.frames, channels=3)]
    h, w = frames[0].shape[1:]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for codec in args.codecs:
            path = Path(tmp) / f"out{SUFFIX[codec]}"
            seconds = sorted(encode(frames, path, codec, 25.0) for _ in range(args.runs))
            fps = len(frames) / seconds[len(seconds) // 2]
            rows.append((codec, fps, path.stat().st_size / len(frames) / 1e6, largest_difference(path, frames)))
            log(f"{codec}: {fps:.1f} fps")
    ffv1 = next((r[1] for r in rows if r[0] == "ffv1"), None)
    lines = [f"Writing {len(frames)} frames of {w}x{h} (the cockatoo clip, 8-bit) through `denoise`'s video sink, "
             f"median of {args.runs} runs, {args.threads} OpenCV thread(s).", "",
             "| codec | fps | vs FFV1 | MB a frame | largest difference after decoding (0-255) |", "|---|---|---|---|---|"]
    for codec, fps, mb, diff in rows:
        ratio = f"{fps / ffv1:.1f}x" if ffv1 else "–"
        lines.append(f"| {codec}{' (default)' if codec == 'ffv1' else ''} | {fps:.1f} | {ratio} | {mb:.2f} | "
                     f"{diff if diff >= 0 else 'frame count differs'} |")
    by = {r[0]: r for r in rows}
    if "ffv1" in by and "hfyu" in by:
        f, h = by["ffv1"], by["hfyu"]
        lines += ["", f"Both lossless codecs decode to the frames written (difference 0); HuffYUV writes them "
                  f"{h[1] / f[1]:.1f}x faster than FFV1 for {h[2] / f[2]:.1f}x the bytes. FFV1 stays the default (the "
                  "smaller lossless file); `--codec hfyu` is for streams where writing is the cap, as on the GPU "
                  "machine, where FFV1 alone ran at 9.3 fps (section \"Temporal video on a GPU\"). MJPG and mp4v "
                  "are lossy (the last column)."]
    lines += ["", f"Run: `python benchmarks/bench_codecs.py {' '.join(sys.argv[1:] if argv is None else argv)}` on "
              f"{cpu_model()}, {time.strftime('%Y-%m-%d')}."]
    body = "\n".join(lines)
    print(body)
    if not args.no_doc:
        replace_section(DOC, HEADING, body)


if __name__ == "__main__":
    main()
