"""How much better alignment of the network's windows could give on the cockatoo clip (issue 9):
an analysis on the reported clip, nothing is chosen with it.

The shipped centred temporal prior (no fit; deterministic) on frames 0-39 at 720p with the
issue's noise, its windows aligned two ways: as every fit and stream aligns them (`dis-fine` DIS
flows between blurred grey guides of the *noisy* frames, temporal.align), and with the same flows
computed between the *clean* frames (an oracle no real stream has), the noisy neighbours warped
by them. Outputs alone and through the default output fusion with its Wiener step, PSNR on frames
8-38 by how fast each pixel moves (temporal_error_by_motion.py's bins). The network runs as its
float32 ONNX export on ONNX Runtime (one thread).

    python benchmarks/oracle_window_alignment.py --sigma 25
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.bench_temporal import load_clip  # noqa: E402
from benchmarks.helpers import VIDEO, add_video_noise  # noqa: E402
from benchmarks.temporal_error_by_motion import BINS, grey_u8  # noqa: E402


def oracle_window(noisy: np.ndarray, clean: np.ndarray, t: int, k: int = 2) -> np.ndarray:
    """Frame t's window (1, T*C, H, W), the noisy neighbours warped onto t by `dis-fine` flows
    computed between the clean frames' guides (temporal.align's guides and warp otherwise)."""
    import cv2

    from b2g_deploy.temporal.align import _dis, _grid, _guide, _guide_scale
    from b2g_deploy.temporal.windows import window_indices

    n, c, h, w = noisy.shape
    idx = window_indices(t, n, k, False)
    scale, (gy, gx) = _guide_scale(h, w), _grid(h, w)
    target = _guide(clean[t], scale)
    out = noisy[idx].copy()
    for j, f in enumerate(idx):
        if j == k:
            continue
        flow = _dis("dis-fine").calc(target, _guide(clean[f], scale), None)
        flow = cv2.resize(flow, (w, h), interpolation=cv2.INTER_LINEAR) * float(scale)
        for ch in range(c):
            out[j, ch] = cv2.remap(noisy[f, ch], gx + flow[..., 0], gy + flow[..., 1], cv2.INTER_LINEAR,
                                   borderMode=cv2.BORDER_REPLICATE)
    return out.reshape(1, -1, h, w)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sigma", type=float, default=25.0)
    ap.add_argument("--frames-limit", type=int, default=40)
    ap.add_argument("--fit-frames", type=int, default=8, help="frames before this one are not scored")
    args = ap.parse_args()
    import cv2
    import onnxruntime as ort

    from b2g_deploy.config import preset
    from b2g_deploy.priors import temporal_starting_network
    from b2g_deploy.temporal.align import align_window
    from b2g_deploy.temporal.export import export_temporal_onnx
    from b2g_deploy.temporal.fuse import fuse_clip
    from b2g_deploy.temporal.windows import window_indices

    cv2.setNumThreads(1)
    clean = np.stack(load_clip(VIDEO, args.frames_limit, 1.0))
    noisy = np.stack([add_video_noise(c, args.sigma, i) for i, c in enumerate(clean)]).astype(np.float32)
    n, (h, w) = len(noisy), noisy.shape[-2:]
    net, _ = temporal_starting_network(None, 3, 2, False, preset("fast"))
    net.align = "dis-fine"
    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.log_severity_level = 1, 3
    with tempfile.TemporaryDirectory() as tmp:
        model = export_temporal_onnx(net, Path(tmp) / "t.onnx").path.read_bytes()
    session = ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])

    def default(t: int) -> np.ndarray:
        return align_window(noisy[window_indices(t, n, 2, False)].reshape(-1, h, w), 3, 2, "dis-fine")[None]

    runs = {}
    for name, window in (("noisy-frame flows (the default)", default),
                         ("clean-frame flows (oracle)", lambda t: oracle_window(noisy, clean, t))):
        outs = np.stack([session.run(None, {"window": window(t)})[0][0] for t in range(n)])
        runs[f"{name}, alone"], runs[f"{name}, fused and refined"] = outs, fuse_clip(outs, noisy)
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    pixels, errors = np.zeros(len(BINS) - 1), {name: np.zeros(len(BINS) - 1) for name in runs}
    for t in range(args.fit_frames, n - 1):
        field = dis.calc(grey_u8(clean[t]), grey_u8(clean[t + 1]), None)
        which = np.digitize(np.hypot(field[..., 0], field[..., 1]), BINS).ravel() - 1
        pixels += np.bincount(which, minlength=len(BINS) - 1)
        for name, frames in runs.items():
            se = ((frames[t] - clean[t]) ** 2).mean(0).ravel()
            errors[name] += np.bincount(which, weights=se, minlength=len(BINS) - 1)
    print(f"| motion, px a frame (σ={args.sigma:g}) | pixels | " + " | ".join(runs) + " |")
    print("|---" * (len(runs) + 2) + "|")
    for b in range(len(BINS) - 1):
        cells = " | ".join(f"{10 * np.log10(pixels[b] / errors[name][b]):.2f}" for name in runs)
        print(f"| {BINS[b]:g}-{BINS[b + 1]:g} | {pixels[b] / pixels.sum():.3f} | {cells} |")
    print("| all | 1 | " + " | ".join(f"{10 * np.log10(pixels.sum() / errors[name].sum()):.2f}" for name in runs) + " |")


if __name__ == "__main__":
    main()
