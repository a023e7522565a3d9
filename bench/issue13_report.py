"""Metrics with bootstrap intervals and paired differences from returned arm predictions (bench/issue13_both.sh).

    python bench/issue13_report.py RESULTS_DIR [--resamples 1000] [--json OUT]

RESULTS_DIR holds classifier/<arm>/predictions.parquet (test split, one block per seed). Uses the report's own
evaluation (siteaug.evaluation.comparison.evaluate: test proteins resampled, metrics averaged over seeds in every resample).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd

from siteaug.evaluation.comparison import evaluate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path)
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=1, help="threads for the bootstrap (values do not depend on it)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    predictions = {p.parent.name: pd.read_parquet(p) for p in sorted(args.results.glob("classifier/*/predictions.parquet"))}
    proteins = next(iter(predictions.values()))["protein_id"].unique()
    rows, differences = evaluate(predictions, {p: "test" for p in proteins}, args.resamples, 0.95, args.seed, args.workers)
    metrics = pd.DataFrame(rows)
    pooled = metrics[metrics["aggregation"] == "pooled"]
    print(pooled[["arm", "seeds", "n_proteins", "auroc", "auprc", "auprc_low", "auprc_high", "mcc"]].round(3).to_string(index=False))
    diff = pd.DataFrame(differences)
    diff = diff[(diff["aggregation"] == "pooled") & (diff["metric"] == "auprc")]
    print(diff[["arm", "reference", "difference", "low", "high", "verdict"]].round(3).to_string(index=False))
    if args.json:
        args.json.write_text(json.dumps({"metrics": rows, "differences": differences}, indent=1, default=float))


if __name__ == "__main__":
    main()
