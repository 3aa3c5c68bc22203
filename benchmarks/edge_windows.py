"""Windows at a clip's ends (issue 9): which frames fill the slots a centred window would take
from before the first frame or after the last, chosen on held-out clips, never on a reported set.

Three rules for a clip at least one window long (``temporal.windows.window_indices`` ships the
last; clips shorter than the window keep their own rule):

- ``reflected``: the slot for t+d takes frame t-d (frame 0: frames 2, 1, 0, 1, 2), the rule
  until 2026-12-06. Two slots hold the same frame, and so the same noise draw.
- ``distinct, own slots``: frames inside the clip stay in their own slots; the empty ones take
  the nearest frames not yet in the window (frame 0: 4, 3, 0, 1, 2).
- ``distinct, by distance`` (shipped): the 2k+1 consecutive frames nearest t, nearer frames in
  nearer slots (frame 0: 3, 1, 0, 2, 4); inside the clip, t-k..t+k as always.

The clips are tune_output_fusion.py's (a pan over a held-out photograph crossed by a disc of the
next one, 12 frames of 256x256, 8-bit-quantised Gaussian noise per frame), optionally bent by
temporal_priors_on_clips.py's ``--wobble``. The shipped centred temporal prior (no fit, its
``dis-fine`` alignment) denoises every frame, and the output fusion (its defaults, Wiener step
included: what ``denoise VIDEO`` streams) fuses them, both through the rule under test. PSNR on
the first and last two frames (where the rules differ) and over all frames.

    python benchmarks/edge_windows.py --photos 6 --sigmas 25,50 --wobbles 0,6 --threads 1

``--causal``: the same for causal windows (a camera's or stream's), with the shipped causal
prior and causal fusion, on the first 2k frames of the clip (where the rules differ), between
two rules: ``frame 0 replicated`` (until 2026-12-06, still the fit's) and ``distinct, by
distance`` (shipped: frames 0..2k other than the target, nearer ones in nearer slots). ``--grey``
runs the clips in grey (BT.601 luma), with ``--prior`` a grey prior. The table goes to its own
section, "Causal windows at a stream's start".

    python benchmarks/edge_windows.py --causal --photos 6 --sigmas 25,50 --wobbles 6 --threads 1
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from pathlib import Path
from unittest import mock

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.helpers import DOC, REPO, add_video_noise, log, replace_section, run_facts  # noqa: E402

HEADING = "## Windows at the clip's ends (issue 9)"
CAUSAL_HEADING = "## Causal windows at a stream's start (issue 9)"
RESULTS = REPO / "benchmarks" / "results" / "edge_windows.json"


def reflected(t: int, n: int, k: int, causal: bool = False) -> list[int]:
    """The rule until 2026-12-06, which the fit on the clip still uses (short centred clips: the
    same as the shipped rule; causal windows: frame 0 replicated)."""
    from b2g_deploy.temporal.windows import window_indices

    return window_indices(t, n, k, causal, edges="reflected")


def distinct_own_slots(t: int, n: int, k: int, causal: bool = False) -> list[int]:
    from b2g_deploy.temporal.windows import window_indices

    if causal or n < 2 * k + 1:
        return window_indices(t, n, k, causal)
    slots = {d: t + d for d in range(-k, k + 1) if 0 <= t + d < n}
    spare = sorted((i for i in range(n) if i not in slots.values()), key=lambda i: (abs(i - t), i))
    for d in sorted((d for d in range(-k, k + 1) if d not in slots), key=abs):
        slots[d] = spare.pop(0)
    return [slots[d] for d in range(-k, k + 1)]


def shipped(t: int, n: int, k: int, causal: bool = False) -> list[int]:
    from b2g_deploy.temporal.windows import window_indices

    return window_indices(t, n, k, causal)


RULES = {"reflected (until 2026-12-06)": reflected, "distinct, own slots": distinct_own_slots,
         "distinct, by distance (shipped)": shipped}
CAUSAL_RULES = {"frame 0 replicated (until 2026-12-06)": reflected, "distinct, by distance (shipped)": shipped}


@contextlib.contextmanager
def windows_by(rule):
    """The network's windows (``temporal.model``) and the fusion's (``temporal.fuse``) by ``rule``."""
    with mock.patch("b2g_deploy.temporal.model.window_indices", rule), \
            mock.patch("b2g_deploy.temporal.fuse.window_indices", rule):
        yield


def edge_frames(n: int, causal: bool = False, k: int = 2) -> list[int]:
    """The frames whose windows the rules change: the first and last two (centred), the first 2k
    (causal: a window reaches 2k frames back)."""
    return list(range(min(2 * k, n))) if causal else [0, 1, n - 2, n - 1]


def score(net, clips, sigma: float, rule, causal: bool = False) -> dict:
    import torch

    from b2g_deploy.metrics import psnr
    from b2g_deploy.temporal.fuse import fuse_clip
    from b2g_deploy.temporal.model import denoise_clip

    got: dict[str, list[float]] = {"edge": [], "edge_fused": [], "all": [], "all_fused": []}
    with windows_by(rule):
        for clean in clips:
            noisy = np.stack([add_video_noise(c, sigma, i) for i, c in enumerate(clean)])
            with torch.no_grad():
                outs = denoise_clip(net, torch.from_numpy(noisy)).numpy()
            fused = fuse_clip(outs, noisy, causal=causal)
            for key, frames in (("", outs), ("_fused", fused)):
                p = [psnr(o, c) for o, c in zip(frames, clean)]
                got["edge" + key] += [p[i] for i in edge_frames(len(clean), causal)]
                got["all" + key].append(float(np.mean(p)))
    return {key: float(np.mean(v)) for key, v in got.items()}


def render(rows: list[dict], facts: dict, photos: int, causal: bool = False, prior: str = "") -> str:
    sigmas = sorted({r["sigma"] for r in rows})
    clips = (f"Held-out clips ({photos} pans over held-out photographs crossed by a disc of another, 12 frames "
             "of 256x256, `--wobble` px of smooth non-rigid motion on top), ")
    if causal:
        intro = clips + (f"the causal temporal prior `{prior}` (no fit, `dis-fine` windows) and the causal output "
                         "fusion (k = 2, what a camera or stream gets), both taking their windows by each rule. PSNR "
                         "on the first 4 frames (the frames whose windows differ), and over all 12.")
        edge = "first 4"
    else:
        intro = clips + ("the shipped centred temporal prior (no fit, `dis-fine` windows) and the default output "
                         "fusion, both taking their windows by each rule. PSNR on the first and last two frames (the "
                         "frames whose windows differ), and over all 12.")
        edge = "ends"
    out = [intro, ""]
    for wobble in sorted({r["wobble"] for r in rows}):
        out += [f"| wobble {wobble:g} px | " + " | ".join(f"σ={s:g} {edge}, alone / fused | σ={s:g} all, alone / fused"
                                                          for s in sigmas) + " |",
                "|---|" + "---|---|" * len(sigmas)]
        for rule in CAUSAL_RULES if causal else RULES:
            got = {r["sigma"]: r for r in rows if r["wobble"] == wobble and r["rule"] == rule}
            cells = " | ".join(f"{got[s]['edge']:.2f} / {got[s]['edge_fused']:.2f} | "
                               f"{got[s]['all']:.2f} / {got[s]['all_fused']:.2f}" for s in sigmas)
            out.append(f"| {rule} | {cells} |")
        out.append("")
    out.append(f"Run: `{facts['command']}` on {facts['cpu']} ({facts['cores']} cores), {facts['date']}, "
               f"torch {facts['torch']}.")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--photos", type=int, default=6)
    ap.add_argument("--sigmas", default="25,50")
    ap.add_argument("--wobbles", default="0,6", help="non-rigid motion on top, px (temporal_priors_on_clips.py)")
    ap.add_argument("--prior", type=Path, help="default: the shipped RGB prior for the window (centred or causal)")
    ap.add_argument("--causal", action="store_true", help="causal windows: the first 2k frames' rules")
    ap.add_argument("--grey", action="store_true", help="the clips in grey (give a grey --prior)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--no-doc", action="store_true")
    args = ap.parse_args()
    prior = args.prior or REPO / "b2g_deploy" / "data" / ("prior_rgb_t2c.pt" if args.causal else "prior_rgb_t2.pt")
    json_path = args.json or (RESULTS.with_name("edge_windows_causal.json") if args.causal else RESULTS)
    import cv2
    import torch

    from b2g_deploy.checkpoint import load_checkpoint
    from b2g_deploy.temporal.model import window_shape
    from benchmarks.temporal_priors_on_clips import held_out_clips

    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    from benchmarks.video_default_on_clips import grey

    net = load_checkpoint(prior).net.eval()
    if window_shape(net)[1] != args.causal:
        raise SystemExit(f"error: {prior} is {'centred' if args.causal else 'causal'}; "
                         f"{'--causal' if args.causal else 'without --causal'} needs the other window")
    net.align = "dis-fine"
    facts, rows = run_facts(), []
    for wobble in (float(w) for w in args.wobbles.split(",")):
        clips = held_out_clips(args.photos, wobble)
        if args.grey:
            clips = [[grey(f) for f in clip] for clip in clips]
        for sigma in (float(s) for s in args.sigmas.split(",")):
            for name, rule in (CAUSAL_RULES if args.causal else RULES).items():
                rows.append({"wobble": wobble, "sigma": sigma, "rule": name,
                             **score(net, clips, sigma, rule, args.causal)})
                log(f"wobble {wobble:g} sigma {sigma:g} {name}: " + ", ".join(f"{k} {v:.2f}" for k, v in rows[-1].items()
                                                                               if isinstance(v, float) and k not in ("wobble", "sigma")))
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps({"run": facts, "rows": rows}, indent=1) + "\n")
    table = render(rows, facts, args.photos, args.causal, prior.name)
    print(table)
    if not args.no_doc:
        replace_section(DOC, CAUSAL_HEADING if args.causal else HEADING, table)


if __name__ == "__main__":
    main()
