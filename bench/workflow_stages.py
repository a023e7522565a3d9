"""Time per stage of a finished workflow run, from Snakemake's benchmark files.

    python bench/workflow_stages.py [RESULTS_DIR] [--json OUT.json]

Prints a table (stage, seconds, max RSS) and writes the same rows as JSON (default: RESULTS_DIR/stage_times.json).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd


def stage_times(results: Path) -> pd.DataFrame:
    rows = []
    for path in sorted((results / "benchmarks").glob("*.tsv")):
        table = pd.read_csv(path, sep="\t")
        rows.append({"stage": path.stem, "seconds": float(table["s"].mean()), "max_rss_mb": float(table["max_rss"].mean())})
    if not rows:
        sys.exit(f"no benchmark files under {results / 'benchmarks'}")
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="?", default="results", type=Path)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    times = stage_times(args.results)
    print(times.to_string(index=False, float_format=lambda v: f"{v:.1f}"))
    print(f"sum of stage times: {times['seconds'].sum():.1f} s")
    out = args.json or args.results / "stage_times.json"
    out.write_text(json.dumps(times.to_dict(orient="records"), indent=2) + "\n")


if __name__ == "__main__":
    main()
