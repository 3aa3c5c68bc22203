"""Which network `denoise VIDEO -o OUT` (no model) should fit, chosen on held-out clips (issue 9),
never on a reported set.

Each clip is ``temporal_priors_on_clips.held_out_clips``' (a pan over a held-out photograph crossed
by a disc of the next one, 12 frames of 256x256, ``--wobble`` px of non-rigid motion), with the
issue's noise (Gaussian, clipped, 8 bits), written as a folder of PNG frames. The whole one-command
flow runs on it (``api.denoise_video``: fit on the first frames, export, stream with the default
fusion, Wiener step, unclipping and blend), once per way:

- single-frame: ``temporal=False`` (a file's default until 2026-12-06, still a colour camera's),
  fitted on its 4 first frames;
- temporal: ``temporal=True`` (a file's default since), a k=2 network fitted on 8 frames from the
  shipped temporal prior: centred for a file, causal with ``--causal`` or ``--live``.

Scored on the frames written: PSNR over all 12 (what a user gets), over frames 8-11 (seen by
neither fit), the flicker against the clean clip's and the temporal error
(``io.temporal``), and the seconds of the whole call (fit, export, stream; one thread).
``--grey``: the same clips in grey (BT.601 luma), for the grey priors; ``--causal``: the
temporal way with a causal window (what a camera or stream gets), both ways fused as a file is
(centred windows for the single-frame network); ``--live``: both ways as the flow runs a camera
or stream (``as_live_stream``): the temporal network causal, both outputs fused over the frames
before, nothing read ahead; ``--live --centred``: the same with the centred temporal network
(`denoise rtsp://... --temporal --centred`: k frames of delay). ``--mosaics``: instead of
the 256x256 clips, ``tune_temporal_fit.mosaics``' two 720p mosaics of held-out photographs,
panned and bent by ``--wobble`` px: a 720p video's regime, where the fit sees each pixel about
as often as on the cockatoo clip (12 frames; "video" names them "720p"). ``--speed S``: the pan
S times faster ("pan xS" in "video"; the held-out clips pan ~3.8 px a frame, DIS's mean, a real
subject may move faster); ``--disc-speed D``: the 256x256 clips' crossing disc D times faster
("disc xD").

    python benchmarks/video_default_on_clips.py --sigmas 25 --json runs/default_s25.json --no-doc &
    python benchmarks/video_default_on_clips.py --sigmas 50 --json runs/default_s50.json --no-doc
    python benchmarks/merge_results.py runs/default_s25.json runs/default_s50.json -o benchmarks/results/video_default_on_clips.json
    python benchmarks/video_default_on_clips.py --table-only
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import Counter
from contextlib import contextmanager, nullcontext
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.helpers import DOC, REPO, add_video_noise, log, replace_section, run_facts  # noqa: E402

HEADING = "## Which network a video gets, held-out clips (issue 9)"
RESULTS = REPO / "benchmarks" / "results" / "video_default_on_clips.json"
WAYS = {"single-frame (`--single-frame`)": False, "temporal (`--temporal`)": True,
        # nothing asked: since 2026-12-07 (eleventh session) the flow fits the temporal network and
        # streams whichever of it and its single-frame fit scores better (api.recorrupted_choice)
        "default, checked (`denoise VIDEO -o OUT`)": None}
WAY_KEYS = dict(zip(("single", "temporal", "default"), WAYS))
UNSEEN = 8  # the first frame neither fit read (the temporal one reads 8)
SCORES = ("psnr_all", "psnr_unseen", "flicker", "temporal_error", "seconds")


def write_frames(folder: Path, noisy: list[np.ndarray]) -> None:
    """(C, H, W) frames in [0, 1] (C = 1 or 3), already on the 8-bit grid, as PNG files in order."""
    import cv2

    folder.mkdir(parents=True)
    for i, frame in enumerate(noisy):
        pixels = np.round(frame.transpose(1, 2, 0) * 255).astype(np.uint8)
        cv2.imwrite(str(folder / f"f{i:03d}.png"), pixels[..., 0] if pixels.shape[2] == 1
                    else cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR))


def grey(frame: np.ndarray) -> np.ndarray:
    """(3, H, W) RGB -> (1, H, W) BT.601 luma, float32."""
    return np.tensordot(np.array([0.299, 0.587, 0.114], np.float32), frame, axes=1)[None].astype(np.float32)


def scored(outs: list[np.ndarray], clean: list[np.ndarray]) -> dict:
    from b2g_deploy.io.temporal import flicker, temporal_error
    from b2g_deploy.metrics import psnr

    return {"psnr_all": float(np.mean([psnr(o, c) for o, c in zip(outs, clean)])),
            "psnr_unseen": float(np.mean([psnr(o, c) for o, c in zip(outs[UNSEEN:], clean[UNSEEN:])])),
            "flicker": float(flicker(outs, clean)), "temporal_error": float(temporal_error(outs, clean))}


def flow_row(source: Path, out: Path, clean: list[np.ndarray], **options) -> dict:
    """One run of the flow without a model (``api.denoise_video(source, out, **options)``),
    timed and scored against ``clean``, with what it fitted and its notes."""
    from b2g_deploy import api
    from b2g_deploy.checkpoint import load_checkpoint
    from b2g_deploy.io.video_readers import read_frames

    start = time.perf_counter()
    report = api.denoise_video(str(source), out, force=True, **options)
    seconds = time.perf_counter() - start
    checkpoint = load_checkpoint(report.checkpoint)
    return {"frames": report.written, **scored(read_frames(str(out)), clean), "seconds": seconds,
            "temporal_kept": checkpoint.is_temporal, "fit_frames": len(checkpoint.meta["frames"]),
            # what was fitted, read back from the checkpoint: the proof a label needs (a causal row
            # once ran the centred network because of an argument passed wrongly)
            "causal_kept": bool(checkpoint.is_temporal and checkpoint.meta["temporal"]["causal"]),
            "notes": list(report.notes), "model": str(report.model), "runtime": report.runtime,
            "network_check": checkpoint.meta.get("network_check")}


@contextmanager
def as_live_stream():
    """``api.denoise_video`` runs a folder of frames as it runs a camera or stream URL: its live
    test answers yes (what is fitted, causal fusion, no reading ahead), while the frames still
    open as a folder (a live reader would try to reconnect at their end)."""
    from b2g_deploy.api import denoising
    from b2g_deploy.io.video_readers import open_source

    is_live, open_ = denoising._is_live, denoising._open
    denoising._is_live = lambda spec: True
    denoising._open = lambda spec, channels, reconnects: open_source(spec, channels)
    try:
        yield
    finally:
        denoising._is_live, denoising._open = is_live, open_


def run_clip(clean: list[np.ndarray], sigma: float, seed: int = 0, causal: bool | None = None,
             live: bool = False, label: str | None = None, ways: tuple[str, ...] = tuple(WAYS)) -> list[dict]:
    """The ``ways`` on one clip: a row each, with the flow's notes (``causal``: the temporal one's
    window, None: the flow's choice, centred for a file and causal for a stream; ``live``: both
    as a camera or stream, ``as_live_stream``; ``label``: put before the video's colour)."""
    colour = "grey" if clean[0].shape[0] == 1 else "RGB"
    video = colour if label is None else f"{label} {colour}"
    if causal is not None:
        video += (", `--causal`" if causal else ", `--centred`") + ("" if live else " on a file")
    if live:
        video += ", as a stream"
    rows = []
    with tempfile.TemporaryDirectory() as tmp, as_live_stream() if live else nullcontext():
        source = Path(tmp) / "noisy"
        write_frames(source, [add_video_noise(f, sigma, i) for i, f in enumerate(clean)])
        for n, way in enumerate(ways):
            temporal = WAYS[way]
            rows.append({"sigma": sigma, "way": way, "video": video,
                         **flow_row(source, Path(tmp) / f"out_{n}", clean, temporal=temporal,
                                    causal=causal if temporal else None, threads=1, seed=seed)})
    return rows


def fitted(group: list[dict]) -> str:
    """What a group of rows fitted, from the checkpoints: "centred temporal" on every clip, or
    the labels with their clip counts where the clips differ (a fallback)."""
    def label(row: dict) -> str:
        if not row["temporal_kept"]:
            return "single-frame"
        if "causal_kept" not in row:
            return "temporal"
        return "causal temporal" if row["causal_kept"] else "centred temporal"

    counts = Counter(label(row) for row in group)
    return next(iter(counts)) if len(counts) == 1 else ", ".join(f"{k} ({n})" for k, n in counts.items())


def render(rows: list[dict], facts: list[dict]) -> str:
    sigmas = sorted({r["sigma"] for r in rows})
    clips = len({(r["sigma"], r["clip"]) for r in rows}) // max(len(sigmas), 1)
    out = [f"{clips} held-out clips (pan + crossing disc + wobble, 12 frames of 256x256, the issue's noise) through "
           "the whole `denoise VIDEO -o OUT` flow without a model (fit, export, stream with the default fusion, "
           "Wiener step, unclipping and blend), one thread. PSNR over all frames and over frames 8-11 (seen by "
           "neither fit), flicker against the clean clip's (0: the clean clip's), temporal error (x1000), seconds "
           "of the whole call; means over the clips; what was fitted, read back from the checkpoints (\"temporal\": "
           "a row run before the window was recorded). Causal windows (the network's with `--causal` or as a "
           "stream, the fusion's as a stream) take frames 0..2k at a clip's start since the seventh session of "
           "2026-12-06 (docs/METHOD_NOTES.md, \"Windows at a clip's ends\"); the \"`--causal` on a file\" and "
           "\"centred, fused causally\" rows ran before, with frame 0 replicated, as did the session's first "
           "\"as a stream\" runs (benchmarks/results/video_default_on_clips_live_replicated_start.json)."
           + (" \"720p\" rows: `--mosaics`, the two 720p mosaics of held-out photographs, panned and bent by 6 px, "
              "12 frames; a 720p video's regime." if any(r.get("video", "").startswith("720p") for r in rows) else "")
           + (" \"pan xS\" rows: `--speed S`, the pan S times faster (the held-out clips move ~3.8 px a frame)."
              if any("pan x" in r.get("video", "") for r in rows) else "")
           + (" \"disc xD\" rows: `--disc-speed D`, the crossing disc D times faster (2.6 px a frame at 1)."
              if any("disc x" in r.get("video", "") for r in rows) else ""),
           "",
           "| video | σ | way | PSNR, all frames | PSNR, frames 8-11 | flicker | temporal error | seconds | fitted |",
           "|---|---|---|---|---|---|---|---|---|"]
    for video in dict.fromkeys(r.get("video", "RGB") for r in rows):
        for s in sigmas:
            mine = [r for r in rows if r["sigma"] == s and r.get("video", "RGB") == video]
            for way in WAYS:
                group = [r for r in mine if r["way"] == way]
                if not group:
                    continue
                m = {k: float(np.mean([r[k] for r in group])) for k in SCORES}
                out.append(f"| {video} | {s:g} | {way} | {m['psnr_all']:.3f} | {m['psnr_unseen']:.3f} | "
                           f"{m['flicker']:+.5f} | {1000 * m['temporal_error']:.3f} | {m['seconds']:.0f} | "
                           f"{fitted(group)} |")
            for first, then in (("temporal", "single"), ("default", "temporal"), ("default", "single")):
                pairs = [(a, b) for a in mine for b in mine if a["clip"] == b["clip"]
                         and a["way"] == WAY_KEYS[then] and b["way"] == WAY_KEYS[first]]
                if pairs:
                    gains = [b["psnr_all"] - a["psnr_all"] for a, b in pairs]
                    out.append(f"| {video} | {s:g} | {first} minus {then}, per clip | "
                               + ", ".join(f"{g:+.2f}" for g in gains) + f" (mean {np.mean(gains):+.2f}) | | | | | |")
    out += [""] + [f"Run: `{f['command']}` on {f['cpu']} ({f['cores']} cores), {f['date']}, torch {f['torch']}."
                   for f in facts]
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--photos", type=int, default=6)
    ap.add_argument("--sigmas", default="25,50")
    ap.add_argument("--wobble", type=float, default=6.0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--grey", action="store_true", help="the clips in grey (the grey priors)")
    ap.add_argument("--mosaics", action="store_true", help="the two 720p held-out mosaics instead")
    ap.add_argument("--speed", type=float, default=1.0, help="pan this many times faster")
    ap.add_argument("--disc-speed", type=float, default=1.0, help="the crossing disc this many times faster")
    window = ap.add_mutually_exclusive_group()
    window.add_argument("--causal", dest="window", action="store_const", const=True,
                        help="the temporal way with a causal window")
    window.add_argument("--centred", dest="window", action="store_const", const=False,
                        help="the temporal way with a centred window (with --live: k frames of delay)")
    ap.add_argument("--live", action="store_true",
                    help="both ways as a camera or stream runs them: causal temporal window, causal fusion")
    ap.add_argument("--ways", default="single,temporal",
                    help="of single, temporal, default (nothing asked: the network the flow's check keeps)")
    ap.add_argument("--json", type=Path, default=RESULTS)
    ap.add_argument("--no-doc", action="store_true")
    ap.add_argument("--table-only", action="store_true", help="render --json (e.g. merged runs) into the doc")
    args = ap.parse_args()
    if args.table_only:
        data = json.loads(args.json.read_text())
        table = render(data["rows"], data["runs"])
    else:
        import cv2
        import torch

        torch.set_num_threads(args.threads)
        cv2.setNumThreads(args.threads)
        from benchmarks import tune_temporal_fit
        from benchmarks.temporal_priors_on_clips import held_out_or_mosaic_clips

        from benchmarks import tune_output_fusion

        # clip_from and with_disc read these
        tune_temporal_fit.VELOCITY = tuple(v * args.speed for v in tune_temporal_fit.VELOCITY)
        tune_output_fusion.DISC_VELOCITY = tuple(v * args.disc_speed for v in tune_output_fusion.DISC_VELOCITY)
        label = " ".join((["720p"] if args.mosaics else []) + ([f"pan x{args.speed:g}"] if args.speed != 1 else [])
                         + ([f"disc x{args.disc_speed:g}"] if args.disc_speed != 1 else []))
        facts, rows = run_facts(), []
        clips = held_out_or_mosaic_clips(args.mosaics, args.photos, args.wobble)
        for sigma in (float(s) for s in args.sigmas.split(",")):
            for c, clean in enumerate(clips):
                got = run_clip([grey(f) for f in clean] if args.grey else clean, sigma, causal=args.window,
                               live=args.live, label=label or None,
                               ways=tuple(WAY_KEYS[w] for w in args.ways.split(",")))
                rows += [{**r, "clip": c} for r in got]
                log(f"sigma {sigma:g} clip {c}: " + ", ".join(f"{r['way']} {r['psnr_all']:.2f}" for r in got))
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"runs": [facts], "rows": rows}, indent=1) + "\n")
        table = render(rows, [facts])
    print(table)
    if not args.no_doc:
        replace_section(DOC, HEADING, table)


if __name__ == "__main__":
    main()
