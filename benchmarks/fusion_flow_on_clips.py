"""The output fusion's optical-flow settings on held-out clips (issue 9), never on a reported set:
what the flow's cheaper settings cost in PSNR, now that the fusion is the CPU stream's largest
cost (docs/BENCHMARKS.md, "OpenVINO on the CPU").

Two sets of held-out clips, 12 frames each, 8-bit-quantised Gaussian noise per frame:
- ``mosaic``: tune_int8.py's two 720p mosaics of held-out photographs, panned;
- ``disc``: tune_output_fusion.py's 256x256 pans with a disc of the next photograph crossing
  them and a 6 px non-rigid wobble (tune_refine.py's ``--disc --wobble 6``), four photographs.
The shipped centred temporal prior's outputs (no fit, `dis-fine` windows) go through
``fuse_clip`` (the default k=3 and Wiener step) with each variant: the ``fine`` flow as shipped
(DIS fast preset down to scale 0, 5 variational refinement iterations), the same with DIS's
settings changed (``fine/vrN``, ``/stN`` patch stride, ``/gdN`` gradient-descent iterations,
``/sN`` finest scale), with the backward flows DIS's own (``/direct``) or inverted (``/inv``),
the Wiener step on the luminance only (``/luma``), direct flows only up to N frames away and
chained beyond (``/reachN``),
and ``medium`` (`--fuse-flow medium`). PSNR over all frames, means over the clips; seconds of
the fusion beside (one thread, indicative).

    python benchmarks/fusion_flow_on_clips.py --set mosaic --json runs/flow_mosaic.json &
    python benchmarks/fusion_flow_on_clips.py --set disc --json runs/flow_disc.json
    python benchmarks/fusion_flow_on_clips.py --set disc --variants fine/direct,fine/inv,fine/st6,fine/s1
    python benchmarks/fusion_flow_on_clips.py --set disc --causal --variants fine,fine/reach1,fine/reach2

``--causal``: the fusion a live stream gets (the 4 frames before each, direct flows to all by
default) of the shipped single-frame prior's outputs, a colour live stream's network before its fit.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import benchmarks.tune_temporal_fit as clips  # noqa: E402
from benchmarks.helpers import REPO, add_video_noise, run_facts  # noqa: E402

RESULTS = REPO / "benchmarks" / "results" / "fusion_flow_on_clips.json"
VARIANTS = ("fine", "fine/vr2", "fine/vr1", "fine/vr0", "medium")
# A variant's options after the flow, "/"-separated: DIS's settings (finest scale, patch stride,
# gradient-descent and variational-refinement iterations), and how the backward flows are made
# (``fuse_flows.window_fields``' ``invert_back``): ``inv``, the inverses of the forward ones (the
# default since 2026-12-07), or ``direct``, DIS's own (the default before); and ``luma``: the
# Wiener step on the luminance only (``refine.wiener_step``'s ``luma_only``, a third of its work);
# ``reachN``: direct flows up to N frames away, chained beyond (``fuse_flows.window_fields``);
# ``lk``: the flows from ``temporal.flow_torch`` (pyramidal Lucas-Kanade in torch, which could run
# on a GPU beside the network) instead of DIS, with ``lkwN`` / ``lkbN`` its window and flow blur
# in px (its defaults were chosen for blurred noisy guides, these are denoised frames).
LUMA, REACH, LK = "wiener_luma_only", "direct_reach", "lk"
LK_SETTINGS = {"lkw": "_WINDOW", "lkb": "_FLOW_BLUR"}
DIS_SETTINGS = {"s": "setFinestScale", "st": "setPatchStride", "gd": "setGradientDescentIterations",
                "vr": "setVariationalRefinementIterations"}


def parse_variant(text: str) -> tuple[str, dict[str, int], bool | None]:
    """``fine``, ``medium``, ``fine/vr2``, ``fine/s1/direct``... -> (fusion flow, {DIS setter: value},
    inverted backward flows: True, False or None for the fusion's default)."""
    flow, *options = text.split("/")
    settings, inverted = {}, None
    for option in options:
        name = option.rstrip("0123456789")
        if option in ("inv", "direct"):
            inverted = option == "inv"
        elif option == "luma":
            settings[LUMA] = 1
        elif name == "reach" and option[len(name):]:
            settings[REACH] = int(option[len(name):])
        elif option == "lk":
            settings[LK] = 1
        elif name in LK_SETTINGS and option[len(name):]:
            settings[LK_SETTINGS[name]] = int(option[len(name):])
        elif name in DIS_SETTINGS and option[len(name):]:
            settings[DIS_SETTINGS[name]] = int(option[len(name):])
        else:
            flow = ""
    if flow not in ("fine", "medium", "lk"):
        raise SystemExit(f"unknown variant {text!r}; use fine, medium or lk, then /sN /stN /gdN /vrN /inv /direct /luma /reachN /lk /lkwN /lkbN")
    return flow, settings, inverted


@contextmanager
def flow_settings(settings: dict[str, int]):
    """The fusion's DIS objects with ``settings`` applied (empty: as shipped), its Wiener step
    on the luminance only with ``LUMA``, its flows Lucas-Kanade's with ``LK``."""
    from functools import partial

    from b2g_deploy.temporal import flow_torch, fuse, fuse_flows, refine

    shipped, step, field = fuse._dis, refine.wiener_step, fuse_flows.dis_field
    lk_shipped = {name: getattr(flow_torch, name) for name in LK_SETTINGS.values()}

    def dis(flow: str = fuse.DEFAULT_FLOW):
        made = shipped(flow)
        for setter, value in settings.items():
            if setter.startswith("set"):
                getattr(made, setter)(value)
        return made

    fuse._dis = dis
    if settings.get(LUMA):
        refine.wiener_step = partial(step, luma_only=True)  # fuse_window imports it at each call
    if settings.get(LK):
        fuse_flows.dis_field = lk_field
        for name in LK_SETTINGS.values():
            setattr(flow_torch, name, float(settings.get(name, lk_shipped[name])))
    try:
        yield
    finally:
        fuse._dis, refine.wiener_step, fuse_flows.dis_field = shipped, step, field
        for name, value in lk_shipped.items():
            setattr(flow_torch, name, value)


def lk_field(target_guide: np.ndarray, guide: np.ndarray, flow: str) -> np.ndarray:
    """``fuse_flows.dis_field``'s flow (h, w, 2) from ``temporal.flow_torch`` on the fusion's
    uint8 guides (``flow`` ignored)."""
    import torch

    from b2g_deploy.temporal.flow_torch import flow_between

    a, b = (torch.from_numpy(g.astype(np.float32) / 255.0)[None, None] for g in (target_guide, guide))
    with torch.no_grad():
        return np.ascontiguousarray(flow_between(a, b)[0].permute(1, 2, 0).numpy())


def held_out_clips(which: str) -> list[tuple[str, list[np.ndarray]]]:
    if which == "mosaic":
        return [(name, clips.clip_from(photo, clips.MOSAIC_SIZE)) for name, photo in clips.mosaics()]
    from benchmarks.temporal_priors_on_clips import wobbled
    from benchmarks.tune_output_fusion import with_disc

    photos = clips.held_out_photos(5)
    return [(f"{photos[i][0]}+disc", wobbled(with_disc(clips.clip_from(photos[i][1]), photos[i + 1][1]), 6.0, seed=i))
            for i in range(4)]


def single_frame_outputs(noisy: np.ndarray) -> np.ndarray:
    """The shipped single-frame RGB prior's f(y) on every frame: what a colour live stream's
    network is before its fit."""
    import torch

    from b2g_deploy.config import preset
    from b2g_deploy.model import denoise
    from b2g_deploy.priors import starting_network

    net, _, _ = starting_network(None, 3, preset("fast"))
    with torch.no_grad():
        return np.stack([denoise(net.eval(), torch.from_numpy(y)[None])[0].numpy() for y in noisy])


def run_clip(name: str, clean: list[np.ndarray], sigma: float, variants: list[str], causal: bool = False) -> list[dict]:
    from b2g_deploy.metrics import psnr
    from b2g_deploy.temporal.fuse import fuse_clip
    from benchmarks.tune_fusion_width import network_outputs

    noisy = np.stack([add_video_noise(c, sigma, i) for i, c in enumerate(clean)]).astype(np.float32)
    outs = single_frame_outputs(noisy) if causal else network_outputs(name, noisy, False, None)
    rows = []
    for variant in variants:
        flow, settings, inverted = parse_variant(variant)
        with flow_settings(settings):
            start = time.perf_counter()
            fused = fuse_clip(outs, noisy, flow=flow, invert_back=inverted, causal=causal,
                              direct_reach=settings.get(REACH))
            seconds = time.perf_counter() - start
        rows.append({"clip": name, "sigma": sigma, "variant": variant, "causal": causal, "seconds": round(seconds, 2),
                     "psnr": round(float(np.mean([psnr(f, c) for f, c in zip(fused, clean)])), 3)})
        print(json.dumps(rows[-1]), flush=True)
    return rows


def table(rows: list[dict]) -> str:
    sigmas = sorted({r["sigma"] for r in rows})
    variants = list(dict.fromkeys(r["variant"] for r in rows))
    base = {s: np.mean([r["psnr"] for r in rows if r["variant"] == variants[0] and r["sigma"] == s]) for s in sigmas}
    head = " | ".join(f"σ={s:g} | against {variants[0]}" for s in sigmas)
    lines = [f"| fusion flow | {head} | s a clip |", "|---|" + "---|---|" * len(sigmas) + "---|"]
    for v in variants:
        cells = []
        for s in sigmas:
            mean = np.mean([r["psnr"] for r in rows if r["variant"] == v and r["sigma"] == s])
            cells += [f"{mean:.2f}", f"{mean - base[s]:+.2f}"]
        seconds = np.mean([r["seconds"] for r in rows if r["variant"] == v])
        lines.append(f"| {v} | " + " | ".join(cells) + f" | {seconds:.1f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--set", choices=("mosaic", "disc"), default="mosaic")
    ap.add_argument("--sigmas", default="25,50")
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--causal", action="store_true",
                    help="causal fusion (a live stream's: the 4 frames before) of the single-frame prior's outputs")
    ap.add_argument("--json", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    for v in variants:
        parse_variant(v)
    import cv2
    import torch

    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    rows = []
    for sigma in (float(s) for s in args.sigmas.split(",")):
        for name, clean in held_out_clips(args.set):
            rows += run_clip(name, clean, sigma, variants, args.causal)
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps({"run": run_facts(), "set": args.set, "rows": rows}, indent=1))
    print(table(rows))


if __name__ == "__main__":
    main()
