"""The default video stream of two checkouts of this repository timed side by side (issue 9): did
a change make the stream slower? A machine's speed drifts over minutes, so each round runs
both, alternating, in fresh processes (each imports its own checkout's package), on the same
noisy 720p clip and exported temporal model (bench_temporal_throughput.py's).

    git worktree add /tmp/before HEAD~1
    python benchmarks/ab_stream_speed.py /tmp/before . --rounds 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ONE_RUN = """
import json, sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
import b2g_deploy
assert b2g_deploy.__file__.startswith(sys.argv[1]), b2g_deploy.__file__
from benchmarks import bench_temporal_throughput as b
if sys.argv[2] == "prepare":
    b.noisy_clip(Path(sys.argv[3]), int(sys.argv[5]), 25.0)
    b.temporal_onnx(Path(sys.argv[4]), "dis-fine")
else:
    print(json.dumps(b.time_b2g(Path(sys.argv[3]), Path(sys.argv[4]), Path(sys.argv[5]), 1, "fine", True)))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("before", type=Path)
    ap.add_argument("after", type=Path)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--frames", type=int, default=24)
    args = ap.parse_args()
    repos = {"before": str(args.before.resolve()), "after": str(args.after.resolve())}
    seconds: dict[str, list[float]] = {"before": [], "after": []}
    with tempfile.TemporaryDirectory() as tmp:
        clip, model = Path(tmp) / "clip.mkv", Path(tmp) / "model.onnx"
        subprocess.run([sys.executable, "-c", ONE_RUN, repos["after"], "prepare", str(clip), str(model),
                        str(args.frames)], check=True)
        for _ in range(args.rounds):
            for name, repo in repos.items():
                out = subprocess.run([sys.executable, "-c", ONE_RUN, repo, "time", str(clip), str(model),
                                      str(Path(tmp) / "out.mkv")], check=True, capture_output=True, text=True)
                seconds[name].append(json.loads(out.stdout.strip().splitlines()[-1])["seconds"])
                print(name, round(seconds[name][-1], 1), "s", flush=True)
    before, after = (statistics.median(seconds[k]) for k in ("before", "after"))
    print(json.dumps({"before_s": seconds["before"], "after_s": seconds["after"],
                      "median_ratio_before_over_after": round(before / after, 3)}))


if __name__ == "__main__":
    main()
