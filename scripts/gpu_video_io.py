"""The clip and the video pipeline around the network, for scripts/gpu_temporal.py: a noisy
720p clip written with a codec (encode timed alone), its decode timed alone, and the pipeline
end to end (decode -> ring buffer -> runtime -> encode, and into a sink that discards)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np


def write_clip(path: Path, n: int, h: int, w: int, codec: str) -> dict:
    """A noisy clip (kodim03 panning 2 px a frame, sigma 25 noise, seed = frame index) written
    with ``codec``; returns the time the sink's writes took (encode alone)."""
    import cv2

    from b2g_deploy.export.parity import NOISE_SIGMA, clean_parity_image
    from b2g_deploy.io.video import VideoInfo, open_sink

    scene = np.stack([cv2.resize(c, (w + 2 * n, h + n), interpolation=cv2.INTER_CUBIC) for c in clean_parity_image()])
    sink = open_sink(path, VideoInfo(w, h, 3, 30.0, n), codec=codec, force=True)
    spent = 0.0
    for i in range(n):
        clean = scene[:, i // 2 : i // 2 + h, 2 * i : 2 * i + w]
        noisy = np.clip(clean + np.random.default_rng(i).normal(0, NOISE_SIGMA, clean.shape), 0, 1)
        t0 = time.perf_counter()
        sink.write(noisy.astype(np.float32))
        spent += time.perf_counter() - t0
    t0 = time.perf_counter()
    sink.close()
    spent += time.perf_counter() - t0
    return {"frames": n, "encode_s": round(spent, 3), "encode_fps": round(n / spent, 1)}


def decode_fps(path: Path) -> dict:
    from b2g_deploy.io.video import open_source

    t0 = time.perf_counter()
    source = open_source(path, 3)
    n = sum(1 for _ in source)
    source.close()
    sec = time.perf_counter() - t0
    return {"frames": n, "decode_s": round(sec, 3), "decode_fps": round(n / sec, 1)}


class NullSink:
    """Discards frames: the pipeline without the encoder, to show what encoding costs."""

    def write(self, frame, index=None) -> None:
        pass

    def close(self) -> None:
        pass


def end_to_end(rt, clip: Path, out: Path, batch: int, codec: str) -> dict:
    """The video pipeline: decode -> ring buffer -> runtime -> encode, after a short warm-up;
    then again into a sink that discards (``fps_no_encode``)."""
    from b2g_deploy.io.pipeline import run_pipeline
    from b2g_deploy.io.video import open_sink, open_source

    row = {}
    for limit, target in ((2 * batch, out.with_name(out.stem + "_warmup" + out.suffix)), (None, out), (None, None)):
        source = open_source(clip, rt.info.channels)
        try:
            sink = NullSink() if target is None else open_sink(target, source.info, codec, force=True)
            stats = run_pipeline(source, rt, sink, batch=batch, limit=limit)
        finally:
            source.close()
        if target is not None:
            target.unlink(missing_ok=True)  # only the timing matters
        if limit is None and target is not None:
            row.update(frames=stats.written, s=round(stats.seconds, 3), fps=round(stats.fps, 1), skipped=stats.skipped)
        elif limit is None:
            row.update(fps_no_encode=round(stats.fps, 1))
    return row
