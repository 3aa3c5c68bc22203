"""Merge the JSON results of benchmark runs made side by side (e.g. one process per noise
level, one core each) into one file, so that one table is built from all of them:

    python benchmarks/merge_results.py runs/quality_s25.json runs/quality_s50.json -o runs/quality.json
    python benchmarks/bench_quality.py --table-only --json runs/quality.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def merge(paths: list[Path]) -> dict:
    merged: dict = {"runs": [], "rows": []}
    for path in paths:
        data = json.loads(path.read_text())
        offset = len(merged["runs"])
        merged["runs"].extend(data.get("runs", []))
        for row in data.get("rows", []):
            merged["rows"].append({**row, "run": row.get("run", 0) + offset})
    return merged


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("inputs", type=Path, nargs="+")
    parser.add_argument("-o", "--output", type=Path, required=True)
    args = parser.parse_args()
    args.output.write_text(json.dumps(merge(args.inputs), indent=1))


if __name__ == "__main__":
    main()
