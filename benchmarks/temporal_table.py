"""The table of benchmarks/bench_temporal.py (section "Temporal video (issue 9)" of
docs/BENCHMARKS.md): the method names its rows carry, their labels, the issue's targets and the
rendering of the rows as markdown."""

from __future__ import annotations

import numpy as np

from benchmarks.helpers import describe_runs, fmt

TARGET_VS_NLM = 2.0  # dB, temporal over NLM on unseen frames
TARGET_VS_SINGLE = 1.5  # dB, temporal over the single-frame fit on unseen frames

SINGLE, TEMPORAL, CAUSAL, NLM, INPUT = "b2g-single", "b2g-temporal", "b2g-temporal-causal", "nlm", "input"
BM3D = "bm3d"  # on the 256x256 centre crops of the first CROP_FRAMES unseen frames only
CROP_FRAMES = 8
TPRIOR, TFIT, TALIGNED = "b2g-temporal-prior", "b2g-temporal-from-prior", "b2g-temporal-aligned"
CPRIOR, CFIT = "b2g-causal-prior", "b2g-causal-from-prior"  # the same with the causal prior (live streams)
# `denoise --mode flips --passes 8`: each output averaged over the frame's (window's) 8 flips/turns
SINGLE_X8, TPRIOR_X8 = "b2g-single-flips8", "b2g-temporal-prior-flips8"
# The single-frame prior alone (no fit), and the single-frame path as `denoise VIDEO --no-fuse`
# runs it since 2026-11-29: the fit, then the frame-to-frame check that keeps the prior when better.
SPRIOR, SCHECKED = "b2g-single-prior", "b2g-single-checked"
LABELS = {
    INPUT: "noisy input",
    SINGLE: "B2G single-frame (`fast` from the prior)",
    TPRIOR: "temporal prior alone, k=2 centred, DIS-aligned (no fit)",
    TFIT: "B2G temporal from the temporal prior, k=2 centred, DIS-aligned (fitted)",
    CPRIOR: "causal temporal prior alone, k=2 causal, DIS-aligned (no fit)",
    CFIT: "B2G temporal from the causal temporal prior, k=2 causal, DIS-aligned (fitted)",
    TALIGNED: "B2G temporal from the single-frame fit, k=2 centred, DIS-aligned",
    TEMPORAL: "B2G temporal from the single-frame fit, k=2 centred, unaligned",
    CAUSAL: "B2G temporal, k=2 causal, unaligned",
    NLM: "OpenCV NLM per frame (h = kσ, k the oracle best on frame 0)",
    BM3D: "BM3D per frame (bm3d.bm3d_rgb, told σ), 256x256 centre crop only",
    SINGLE_X8: "B2G single-frame, averaged over 8 flips/turns (`--mode flips`)",
    SPRIOR: "B2G single-frame prior alone (no fit)",
    SCHECKED: "B2G single-frame, fit kept only if it beats the prior (`denoise --no-fuse` since 2026-11-29)",
    TPRIOR_X8: "temporal prior alone, averaged over the window's 8 flips/turns (`--mode flips`)",
}
# B2G rows whose outputs bench_temporal --fuse also sends through the output fusion
# (temporal/fuse.py; causal rows with causal windows): row "<method>+fuse".
FUSABLE = (SINGLE, TEMPORAL, CAUSAL, TALIGNED, TPRIOR, TFIT, CPRIOR, CFIT, SINGLE_X8, TPRIOR_X8, SPRIOR, SCHECKED)
TEMPORAL_ROWS = (TEMPORAL, CAUSAL, TFIT, TPRIOR, TALIGNED, CPRIOR, CFIT, TPRIOR_X8)


def fused_method(method: str, flow: str = "fine", k: int | None = None, refine: bool = False) -> str:
    """The row of ``method``'s outputs fused with the fusion flow ``flow`` (temporal/fuse.py
    FUSION_FLOWS; the rows before 2026-11-29 fused with "medium" and carry the plain name) over
    ``k`` frames each side (None: the fusion's default); ``refine``: with the fusion's Wiener
    step on the noisy frames (temporal/refine.py; the rows without it are the fusion before
    2026-11-29's fifth session)."""
    name = method + "+fuse" if flow == "fine" else f"{method}+fuse-{flow}"
    name = name if k is None else f"{name}-k{k}"
    return name + "+refine" if refine else name


LABELS.update({fused_method(m): LABELS[m] + " + output fusion" for m in FUSABLE})
LABELS.update({fused_method(m, "medium"): LABELS[m] + " + output fusion, medium flow" for m in FUSABLE})
LABELS.update({fused_method(m, "fine", 4): LABELS[m] + " + output fusion, 4 frames each side" for m in FUSABLE})
LABELS.update({fused_method(m, refine=True): LABELS[m] + " + output fusion + Wiener step on the noisy frames"
               for m in FUSABLE})


def target_cell(row: dict, by_method: dict[str, dict]) -> str:
    """For a temporal row: each target of the issue, its value, met or the gap."""
    if row["method"] not in TEMPORAL_ROWS + tuple(fused_method(m, refine=r) for m in TEMPORAL_ROWS for r in (False, True)):
        return ""
    cells = []
    for ref, margin, name in ((NLM, TARGET_VS_NLM, "NLM"), (SINGLE, TARGET_VS_SINGLE, "single")):
        other = by_method.get(ref)
        if other is None or not np.isfinite(other["psnr_unseen"]) or not np.isfinite(row["psnr_unseen"]):
            cells.append(f"≥ {name} + {margin:g} dB: –")
            continue
        need = other["psnr_unseen"] + margin
        gap = row["psnr_unseen"] - need
        verdict = f"met (+{gap:.2f})" if gap >= 0 else f"**missed by {-gap:.2f} dB**"
        cells.append(f"≥ {name} + {margin:g} = {need:.2f}: {verdict}")
    bm3d = by_method.get(BM3D)
    if bm3d is not None and np.isfinite(row.get("psnr_crop", float("nan"))):
        gap = row["psnr_crop"] - bm3d["psnr_crop"]
        cells.append(f"≥ BM3D on the crop = {bm3d['psnr_crop']:.2f}: "
                     + (f"met (+{gap:.2f})" if gap >= 0 else f"**missed by {-gap:.2f} dB**"))
    return "; ".join(cells)


def render(rows: list[dict], runs: list[dict]) -> str:
    groups: dict[tuple[str, str], dict[str, dict]] = {}
    for r in rows:  # the last row of a (setup, sigma, method) wins
        groups.setdefault((r["image"], r["noise"]), {})[r["method"]] = r
    order = [m for base in (INPUT, NLM, BM3D, SINGLE, SPRIOR, SCHECKED, SINGLE_X8, TEMPORAL, CAUSAL, TALIGNED, TPRIOR, TPRIOR_X8, TFIT,
                            CPRIOR, CFIT)
             for m in (base, fused_method(base), fused_method(base, refine=True), fused_method(base, "medium"),
                       fused_method(base, "fine", 4))]
    out = [
        "Targets of the issue, on the frames no network was fitted on: temporal B2G ≥ NLM + "
        f"{TARGET_VS_NLM:g} dB and ≥ the single-frame fit + {TARGET_VS_SINGLE:g} dB. A row that misses a "
        "target shows the gap.",
        "",
    ]
    for (image, noise), by_method in sorted(groups.items(), key=lambda kv: (kv[0][0], float(kv[0][1]))):
        any_row = next(iter(by_method.values()))
        h, w = any_row.get("size", ["?", "?"])
        crops = [r for r in by_method.values() if r.get("crop_frames")]
        crop_head = (f" 256 crop, frames {any_row['fit_frames']}-{any_row['fit_frames'] + crops[0]['crop_frames'] - 1} |"
                     if crops else "")
        out += [
            f"### σ={noise}: {image} ({w}x{h}, {any_row['frames']} frames)",
            "",
            f"| method | PSNR unseen (frames {any_row['fit_frames']}-{any_row['frames'] - 1}) | PSNR fitted "
            f"(0-{any_row['fit_frames'] - 1}) |{crop_head} flicker | fit s (total) | ms/frame | steps | noise corr. "
            "| targets |",
            "|---|---|---|" + ("---|" if crops else "") + "---|---|---|---|---|---|",
        ]
        for m in order + sorted(set(by_method) - set(order)):
            r = by_method.get(m)
            if r is None:
                continue
            fit_cell = "–" if not r.get("fit_s") else fmt(r["fit_s"], 1) + (
                f" ({fmt(r['fit_total_s'], 1)})" if r.get("fit_total_s", r["fit_s"]) != r["fit_s"] else "")
            corr = fmt(r["noise_correlation"], 3) if r.get("noise_correlation") is not None else "–"
            label = LABELS.get(m, m)
            if m in (TEMPORAL, CAUSAL, TALIGNED, TFIT, CFIT) and r.get("k") not in (None, 2):
                label = label.replace("k=2", f"k={r['k']}")
            if r.get("temporal_prior"):
                label += f" [{r['temporal_prior']}, {r.get('temporal_prior_steps')} steps]"
            if m in (TEMPORAL, CAUSAL, TFIT, TALIGNED, CFIT) and not r.get("temporal", True):
                label += " (fell back to single-frame: correlated noise)"
            steps = str(r["steps"]) if r.get("steps") else "–"
            crop_cell = f" {fmt(r.get('psnr_crop', float('nan')))} |" if crops else ""
            out.append(f"| {label} | {fmt(r['psnr_unseen'])} | {fmt(r['psnr_fitted'])} |{crop_cell} {fmt(r['flicker'], 4)} "
                       f"| {fit_cell} | {fmt(r.get('infer_ms', float('nan')), 0)} | {steps} | {corr} "
                       f"| {target_cell(r, by_method)} |")
        out.append("")
    out += [
        "Notes",
        "- Noise: Gaussian σ/255 with seed = frame index, clipped and quantised to 8 bits (bench_video.py's; "
        "the same pixels as the issue 4 table at the same scale). Frames downscaled with INTER_AREA before the noise.",
        "- Single-frame: `fast` preset from the shipped prior, fitted on the first N frames, f(y) per frame. "
        "Temporal: `b2g_deploy.api.fit_temporal_stage` from that network on the same N consecutive frames "
        "(the noise check, then the temporal fit with the preset's loss and steps), `denoise_clip` on all frames. "
        "Its fit seconds are the temporal stage; in brackets with the single-frame fit it starts from. "
        "Temporal from the temporal prior: the same stage started from a temporal prior (pretrained on "
        "photographs with synthetic motion, `pretrain --temporal-k 2`) instead of the single-frame fit; "
        "the prior alone is that network unfitted. DIS-aligned: each neighbour warped onto the target with "
        "OpenCV DIS optical flow (`temporal/align.py`) in the fit and at inference; its ms/frame include the flow.",
        "- Flicker: `b2g_deploy.io.temporal.flicker`, the output's mean frame-to-frame difference minus the clean "
        "clip's, over all frames (0 is ideal). Noise corr.: the residual correlation between neighbouring frames "
        "that decides whether the temporal net is kept.",
        "- ms/frame: torch (B2G) or OpenCV (NLM) on the CPU with the run's threads, frames already decoded.",
        "- The 640x360 rows were measured with the 14,000-step RGB prior as the single-frame start; the full-size "
        "(x1, 1280x720) rows with the 30,000-step one that replaced it. The temporal prior `prior_rgb_t2.pt` was "
        "pretrained from the 14,000-step prior. Aligned rows: flow on half-size guides.",
        "- End-to-end throughput at 720p (decode, align, network, encode): section \"Temporal video throughput\".",
        "",
        "Runs",
        describe_runs(runs),
    ]
    return "\n".join(out)
