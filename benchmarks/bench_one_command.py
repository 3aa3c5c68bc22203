"""The one-command video flow on the cockatoo clip (issue 9): `denoise VIDEO -o OUT` without a
model (fit on the first frames, export, stream with the default fusion, Wiener step, unclipping
and blend), as a user runs it, measured once after its defaults were chosen on held-out clips
(``video_default_on_clips.py``).

The clip's first ``--frames`` frames at 1280x720 get the issue's noise (Gaussian, clipped, 8
bits; ``add_video_noise``) and are written losslessly (FFV1); the flow runs on that file with
``--ways`` (``temporal``: ``--temporal``, the default until 2026-12-07; ``single``:
``--single-frame``; ``default``: nothing asked, the flow's own choice, since 2026-12-07 the
network the check on the fitted frames keeps), one thread for the network's
runtime (ONNX Runtime until 2026-12-06; OpenVINO in float32 since, with the same outputs to 1e-6).
``--precisions f32,bf16``: the model each way exported streamed again with ``-m MODEL --precision
P`` for every precision after the first (OpenVINO's; the same fit, so the rows differ only by it);
``--fuse-flows lk``: the same with ``--fuse-flow F`` for each flow given (the fusion in torch).
Scored on the frames written: PSNR over frames 8 onwards (seen by neither fit: the temporal one
reads 8, the single-frame one 4), over all frames, the flicker against the clean clip's and the
temporal error (``io.temporal``), and the seconds of the whole call. ``--live``: the file run as
a camera or stream URL is (``video_default_on_clips.as_live_stream``: a causal temporal window,
fused over the frames before, nothing read ahead).

    python benchmarks/bench_one_command.py --sigmas 25 --json runs/one_s25.json --no-doc &
    python benchmarks/bench_one_command.py --sigmas 50 --json runs/one_s50.json --no-doc
    python benchmarks/merge_results.py runs/one_s25.json runs/one_s50.json -o benchmarks/results/one_command.json
    python benchmarks/bench_one_command.py --table-only
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from contextlib import nullcontext
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.bench_temporal_throughput import noisy_clip  # noqa: E402
from benchmarks.helpers import DOC, REPO, VIDEO, log, replace_section, run_facts  # noqa: E402
from benchmarks.video_default_on_clips import (  # noqa: E402  (UNSEEN: frames 8 onwards, seen by neither fit)
    UNSEEN, as_live_stream, flow_row, scored)

HEADING = "## The one-command video flow on the cockatoo clip (issue 9)"
RESULTS = REPO / "benchmarks" / "results" / "one_command.json"
WAYS = {"temporal": ("`denoise VIDEO -o OUT --temporal` (the default until 2026-12-07)", True),
        "single": ("`denoise VIDEO -o OUT --single-frame`", False),
        # nothing asked, the flow's own choice: since 2026-12-07 (eleventh session) the temporal network
        # or its single-frame fit, whichever streams better on the fitted frames (api.recorrupted_choice;
        # its noise level the Haar estimate inside since the twelfth); for a colour stream above noise
        # level 35 the single-frame network, unchecked
        "default": ("`denoise VIDEO -o OUT` (the default since the twelfth session: the check picks)", None)}


def command(row: dict) -> str:
    """The row's command as a user types it (a stream's source as a URL)."""
    label = WAYS[row["way"]][0]
    if row.get("restreamed"):  # the same fit's model streamed again with another precision or fusion flow
        options = ([f"--fuse-flow {row['fuse_flow']}"] if row.get("fuse_flow", "fine") != "fine" else []) + (
            [f"--precision {row['precision']}"] if row.get("precision", "f32") != "f32" else [])
        return f"the same model, `denoise VIDEO -m MODEL {' '.join(options)}`"
    check = row.get("network_check") or {}
    # the check's noise level: the Haar estimate inside since the twelfth session, the
    # single-frame network's residual before it (rows without "noise")
    since = "" if not check or check.get("noise") == "haar-inside" else " at the residual's noise level, eleventh session"
    if not row.get("live"):
        if row["way"] == "default" and check.get("skipped"):
            return (f"`denoise VIDEO -o OUT` (the default{' in the eleventh session' if since else ''}; noise above "
                    f"the check's limit of {check.get('max_sigma_255', 35):g}: temporal, unchecked)")
        if row["way"] == "default" and since:
            return f"`denoise VIDEO -o OUT` (the default, checked{since})"
        return label
    # Both ways are asked for: a colour stream's default is the causal temporal network up to a
    # noise level of 35 of 255, checked against its single-frame fit since 2026-12-07, and the
    # single-frame one above (api.video_flow.video_fit_choice).
    return {"temporal": "`denoise rtsp://CAMERA -o OUT --temporal` (causal)",
            "single": "`denoise rtsp://CAMERA -o OUT --single-frame` (a colour stream's default above noise "
                      "level 35)",
            "default": "`denoise rtsp://CAMERA -o OUT` " + (
                f"(the default, checked{since or ', twelfth session'})" if check else "(the default until the check of 2026-12-07)"
                if row["temporal_kept"] else "(the default: above noise level 35, the single-frame network)")
            }[row["way"]]


def render(rows: list[dict], facts: list[dict]) -> str:
    out = ["The cockatoo clip, 1280x720, the issue's noise, through the whole flow without a model (fit on the "
           "first frames, export, stream with the default fusion, Wiener step, unclipping and blend); ONNX Runtime "
           "on one thread (OpenVINO in float32 since 2026-12-07: the same outputs; its run of the default gave "
           "40.22 / 36.64 again, in `one_command_openvino_s{25,50}.json`)."
           + (" `--precision bf16` rows: that run's exported model streamed again in OpenVINO's bfloat16 (seconds: "
              "the stream alone)." if any(r.get("restreamed") for r in rows) else "") + " PSNR over frames 8 onwards (seen by neither fit) and over all frames, flicker against "
           "the clean clip's (0: the clean clip's), temporal error (x1000), seconds of the whole call."
           + (" `rtsp://` rows: the same noisy file run as a camera or stream is (`--live`: a causal window, "
              "fused over the frames before, frames 0..2k at the start, nothing read ahead after that)." if any(r.get("live") for r in rows) else "")
           + (" Since 2026-12-07 (eleventh session) the default streams whichever of the temporal network and the "
              "single-frame fit it started from (on the same 8 frames) scores better on the fitted frames, recorrupted "
              "(`api.recorrupted_choice`; noise up to 35 of 255, since the twelfth session up to 55 in colour and "
              "40 in grey, its noise level read by the Haar estimate inside); \"fitted\" says which it kept."
              if any(r.get("network_check") for r in rows) else ""), "",
           "| σ | command | frames | PSNR, frames 8+ | PSNR, all | flicker | temporal error | seconds | fitted |",
           "|---|---|---|---|---|---|---|---|---|"]
    for r in sorted(rows, key=lambda r: (r["sigma"], bool(r.get("live")), list(WAYS).index(r["way"]),
                                         bool(r.get("restreamed")))):
        fitted = f"{'temporal' if r['temporal_kept'] else 'single-frame'} on {r['fit_frames']} frames"
        out.append(f"| {r['sigma']:g} | {command(r)} | {r['frames']} | {r['psnr_unseen']:.2f} | "
                   f"{r['psnr_all']:.2f} | {r['flicker']:+.5f} | {1000 * r['temporal_error']:.3f} | "
                   f"{r['seconds']:.0f} | {fitted} |")
    out += [""] + [f"Run: `{f['command']}` on {f['cpu']} ({f['cores']} cores), {f['date']}, torch {f['torch']}."
                   for f in facts]
    return "\n".join(out)


def restreamed(noisy: Path, out: Path, clean: list[np.ndarray], fitted: dict, precision: str, threads: int,
               fuse_flow: str = "fine") -> dict:
    """``fitted``'s exported model streamed again over ``noisy`` in OpenVINO ``precision`` with the
    fusion flow ``fuse_flow``, scored."""
    import time

    from b2g_deploy import api
    from b2g_deploy.io.video_readers import read_frames

    start = time.perf_counter()
    report = api.denoise_video(str(noisy), out, Path(fitted["model"]), runtime="openvino", precision=precision,
                               threads=threads, force=True, fuse_flow=fuse_flow)
    return {**fitted, **scored(read_frames(str(out)), clean), "seconds": time.perf_counter() - start,
            "frames": report.written, "runtime": report.runtime, "precision": precision, "fuse_flow": fuse_flow,
            "restreamed": True}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sigmas", default="25,50")
    ap.add_argument("--frames", type=int, default=40)
    ap.add_argument("--ways", default="temporal,single")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", type=Path, default=RESULTS)
    ap.add_argument("--no-doc", action="store_true")
    ap.add_argument("--table-only", action="store_true", help="render --json (e.g. merged runs) into the doc")
    ap.add_argument("--live", action="store_true", help="the file run as a camera or stream is")
    ap.add_argument("--precisions", default="",
                    help="OpenVINO precisions, a comma list: the first for the flow, each later one streams the "
                         "same exported model again (-m MODEL --precision P)")
    ap.add_argument("--fuse-flows", default="",
                    help="fusion flows, a comma list: each streams the flow's exported model again with "
                         "--fuse-flow F (in float32)")
    args = ap.parse_args()
    if args.table_only:
        data = json.loads(args.json.read_text())
        rows, facts = data["rows"], data["runs"]
    else:
        import cv2
        import torch

        precisions = [p.strip() for p in args.precisions.split(",") if p.strip()]
        torch.set_num_threads(args.threads)
        cv2.setNumThreads(args.threads)
        from b2g_deploy.io.video import read_frames

        clean = [np.asarray(f, np.float32) for f in read_frames(VIDEO, limit=args.frames, channels=3)]
        rows, facts = [], [run_facts()]
        for sigma in (float(s) for s in args.sigmas.split(",")):
            with tempfile.TemporaryDirectory() as tmp:
                noisy = Path(tmp) / "noisy.mkv"
                noisy_clip(noisy, args.frames, sigma)
                for way in args.ways.split(","):
                    with as_live_stream() if args.live else nullcontext():
                        temporal = WAYS[way][1]
                        got = flow_row(noisy, Path(tmp) / f"out_{way}.mkv", clean, temporal=temporal,
                                       threads=args.threads, **({"precision": precisions[0]} if precisions else {}))
                    row = {"sigma": sigma, "way": way, "live": args.live, **got}
                    rows.append(row)
                    log(f"sigma {sigma:g} {way}: {row['psnr_unseen']:.2f} dB on frames {UNSEEN}+, "
                        f"{row['seconds']:.0f} s ({row['runtime']})")
                    for precision in precisions[1:]:
                        rows.append(restreamed(noisy, Path(tmp) / f"out_{way}_{precision}.mkv", clean, row,
                                               precision, args.threads))
                        log(f"sigma {sigma:g} {way}, {precision}: {rows[-1]['psnr_unseen']:.2f} dB")
                    for flow in (f.strip() for f in args.fuse_flows.split(",") if f.strip()):
                        rows.append(restreamed(noisy, Path(tmp) / f"out_{way}_{flow}.mkv", clean, row, "f32",
                                               args.threads, flow))
                        log(f"sigma {sigma:g} {way}, --fuse-flow {flow}: {rows[-1]['psnr_unseen']:.2f} dB")
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"runs": facts, "rows": rows}, indent=1) + "\n")
    table = render(rows, facts)
    print(table)
    if not args.no_doc:
        replace_section(DOC, HEADING, table)


if __name__ == "__main__":
    main()
