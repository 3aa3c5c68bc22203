"""How much arithmetic the shipped networks do a frame (issue 9): floating-point operations of
one forward pass at a frame size, counted by torch's FlopCounterMode (a multiply-add is 2), per
layer kind and per resolution, and, given a measured time a window, the rate that time implies.

Why: the CPU stream's float32 default does not reach OpenCV NLM's speed on this CPU
(docs/BENCHMARKS.md, "OpenVINO on the CPU"). Whether a faster runtime could still close that gap
depends on how far the runtime already is from the core's arithmetic peak: the count here, divided
by the seconds a window that ``cpu_runtimes_on_clips.py`` measured, gives the rate.

    python benchmarks/network_flops.py --size 1280x720 --seconds 0.56,0.35

Beside them, the rate of a 4096 x 4096 matrix product on one thread in torch, float32 and
bfloat16: the yardstick of dense arithmetic on this core. The temporal prior (centred, k=2) and the single-frame RGB prior are counted; the frame is
padded to the network's multiple as a stream pads it. "full resolution": the convolutions whose
output is the padded frame's size (the head, the last decoder stage, the tail).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.helpers import REPO, run_facts  # noqa: E402

RESULTS = REPO / "benchmarks" / "results" / "network_flops.json"


def count(net, channels: int, h: int, w: int) -> dict:
    """{"gflop": total, "by_op": {op: gflop}, "full_resolution_gflop": the share at h x w}."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    x = torch.rand(1, channels, h, w)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        net(x)
    by_op = {str(op).removeprefix("aten.").split(".")[0]: flops / 1e9
             for op, flops in counter.get_flop_counts()["Global"].items()}
    shapes: list[tuple[int, int, int, int, int]] = []  # (out channels, in channels/groups, kh*kw, oh, ow)

    def hook(module, inputs, output):
        shapes.append((module.out_channels, module.in_channels // module.groups,
                       module.kernel_size[0] * module.kernel_size[1], output.shape[-2], output.shape[-1]))

    handles = [m.register_forward_hook(hook) for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    try:
        with torch.no_grad():
            net(x)
    finally:
        for handle in handles:
            handle.remove()
    full = sum(2 * o * i * k * oh * ow for o, i, k, oh, ow in shapes if (oh, ow) == (h, w)) / 1e9
    return {"gflop": counter.get_total_flops() / 1e9, "by_op": by_op, "full_resolution_gflop": full}


def matmul_rate(dtype_name: str, n: int = 4096, repeats: int = 3) -> float:
    """GFLOP/s of an n x n matrix product on one thread in torch (best of ``repeats``): what dense
    arithmetic in that precision reaches on this core, the yardstick for the network's rate."""
    import time

    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        dtype = getattr(torch, dtype_name)
        a, b = torch.rand(n, n).to(dtype), torch.rand(n, n).to(dtype)
        a @ b  # warm-up
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            a @ b
            best = min(best, time.perf_counter() - start)
    finally:
        torch.set_num_threads(threads)
    return 2 * n**3 / best / 1e9


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", default="1280x720", help="WxH of a frame")
    ap.add_argument("--seconds", default="",
                    help="measured seconds a temporal window, a comma list: the rate each implies")
    ap.add_argument("--json", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    try:
        w, h = (int(v) for v in args.size.lower().split("x"))
        seconds = [float(s) for s in args.seconds.split(",") if s.strip()]
    except ValueError:
        raise SystemExit("--size is WxH and --seconds a comma list of numbers") from None
    from b2g_deploy.checkpoint import load_checkpoint
    from b2g_deploy.priors import shipped_prior_path, temporal_prior_name

    rows = []
    for label, path, channels in (
            ("temporal prior, centred k=2 (5 frames)", shipped_prior_path(3).with_name(temporal_prior_name(3, 2, False)),
             15),
            ("single-frame RGB prior", shipped_prior_path(3), 3)):
        net = load_checkpoint(path).net.eval()
        hp, wp = -(-h // net.multiple) * net.multiple, -(-w // net.multiple) * net.multiple  # as a stream pads
        got = count(net, channels, hp, wp)
        row = {"network": label, "size": f"{wp}x{hp}", **got}
        if channels == 15:
            row["gflop_per_s"] = {str(s): round(got["gflop"] / s, 1) for s in seconds}
        rows.append(row)
        print(json.dumps(row), flush=True)
    ceiling = {name: round(matmul_rate(name), 1) for name in ("float32", "bfloat16")}
    print(json.dumps({"matmul_gflop_per_s_one_thread": ceiling}), flush=True)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"run": run_facts(), "rows": rows, "matmul_gflop_per_s_one_thread": ceiling},
                                    indent=1))


if __name__ == "__main__":
    main()
