"""From the prior against from scratch at the same fitting time (issue 8): the `fast` fit on the
first 4 Kodak24 images at sigma 25 with time budgets of 30, 60 and 120 s, started from the
shipped prior (`--init prior`) or from random weights (`--init none`), beside our ZS-N2N at
2,000 steps and BM3D on the same noisy pixels. Renders what these runs wrote (nothing is
measured here) as the section "From the prior or from scratch, at the same time (issue 8)" of
docs/BENCHMARKS.md and the plot docs/prior_vs_scratch.png.

The runs (one thread each; the budget sets the cosine schedule's length, --iters only caps it):

    for b in 30 60 120; do for init in prior none; do
      python benchmarks/bench_prior.py --sets Kodak24 --limit 4 --noises 25 --methods fast \\
        --init $init --time-budget $b --iters 100000 --threads 1 \\
        --json benchmarks/results/prior_vs_scratch/t${b}_$init.json --output /tmp/pvs.md
    done; done
    # optional (a GPU: on one CPU thread it takes more than 13 minutes an image):
    python benchmarks/bench_quality.py --sets Kodak24 --limit 4 --noises 25 --methods zsn2n \\
      --zsn2n-iters 2000 --threads 1 --no-doc --json benchmarks/results/prior_vs_scratch/zsn2n.json
    python benchmarks/prior_vs_scratch.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.helpers import DOC, REPO, replace_section  # noqa: E402

HEADING = "## From the prior or from scratch, at the same time (issue 8)"
RESULTS = REPO / "benchmarks" / "results" / "prior_vs_scratch"
BUDGETS = (30, 60, 120)


def rows_of(path: Path) -> list[dict]:
    return json.loads(path.read_text())["rows"] if path.is_file() else []


def mean(rows: list[dict], key: str) -> float | None:
    return float(np.mean([r[key] for r in rows])) if rows else None


def main() -> None:
    quality = rows_of(REPO / "benchmarks" / "results" / "quality.json")
    series: dict[str, list[tuple[float, float, float, int]]] = {"from the prior": [], "from scratch": []}
    images: set[str] = set()
    for budget in BUDGETS:
        for init, name in (("prior", "from the prior"), ("none", "from scratch")):
            got = [r for r in rows_of(RESULTS / f"t{budget}_{init}.json") if r["method"].startswith("b2g-single")]
            if got:
                images |= {r["image"] for r in got}
                series[name].append((budget, mean(got, "seconds"), mean(got, "psnr"), round(mean(got, "steps"))))
    zs = [r for r in rows_of(RESULTS / "zsn2n.json") if "zsn2n" in r["method"]]
    bm3d = [r for r in quality if r["method"] == "bm3d" and r["set"] == "Kodak24" and r["noise"] == "25"
            and r["image"] in images]
    lines = [f"Kodak24 {', '.join(sorted(images))}, σ=25 (mean PSNR of f(y), dB); one thread of the 2-core "
             "CPU while 1-3 other jobs ran, 2026-11-28. Commands: the docstring of "
             "`benchmarks/prior_vs_scratch.py`; raw rows in `benchmarks/results/prior_vs_scratch/`.", "",
             "| fit | budget 30 s | budget 60 s | budget 120 s |", "|---|---|---|---|"]
    for name, points in series.items():
        cells = [f"{p:.2f} ({s:,} steps)" for _, _, p, s in points]
        lines.append(f"| `fast` {name} | " + " | ".join(cells + ["–"] * (3 - len(cells))) + " |")
    if zs:
        lines.append(f"| ZS-N2N, 2,000 steps ({mean(zs, 'seconds'):.0f} s) | {mean(zs, 'psnr'):.2f} | | |")
    if bm3d:
        lines.append(f"| BM3D ({mean(bm3d, 'seconds'):.0f} s) | {mean(bm3d, 'psnr'):.2f} | | |")
    if not zs:
        lines += ["", "ZS-N2N at 2,000 steps is not in the table: on one thread of this CPU it ran more than 13 "
                  "minutes on kodim01 without finishing (stopped), "
                  "so here it is a GPU method. On the H200 (section \"GPU (issues 2 and 3)\") it "
                  "reached 28.24 dB on kodim01 in 9.3 s, where the `fast` fit from the prior reaches 29.20 "
                  "dB in 30 s on one CPU thread (the rows above, kodim01 alone)."]
    lines += ["", "![PSNR against fitting time](prior_vs_scratch.png)", ""]
    replace_section(DOC, HEADING, "\n".join(lines))
    plot(series, zs, bm3d)
    print("\n".join(lines))


def plot(series, zs, bm3d) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for name, points in series.items():
        if points:
            ax.plot([s for _, s, _, _ in points], [p for _, _, p, _ in points], "o-", label=f"fast preset, {name}")
    if zs:
        ax.plot([mean(zs, "seconds")], [mean(zs, "psnr")], "s", label="ZS-N2N, 2,000 steps")
    if bm3d:
        ax.axhline(mean(bm3d, "psnr"), color="grey", linestyle="--", label="BM3D")
    ax.set_xlabel("fitting time per 768x512 image, s (one CPU thread)")
    ax.set_ylabel("PSNR, dB (Kodak24, 4 images, σ=25)")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(REPO / "docs" / "prior_vs_scratch.png", dpi=100)


if __name__ == "__main__":
    main()
