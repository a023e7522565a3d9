"""Generation-quality metrics of a finished run's candidates, without the figures (no matplotlib needed).

    python bench/sample_quality_tables.py RESULTS_DIR [--space features|embedding] [--json OUT]

Computes what the sample_quality rule computes (siteaug.evaluation.sample_quality.sample_quality against the real training
positives; DCR against held-back validation positives), plus C2ST on the continuous columns against the held-back
*validation* positives, the target issue 13 names. Quality settings are the schema defaults.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd

from siteaug.features.residues import feature_columns
from siteaug.runtime.io import read_parquet
from siteaug.evaluation.sample_quality import c2st_auc, continuous_columns, knn_precision_recall, sample_quality, subsample


def run_parser(description: str) -> argparse.ArgumentParser:
    """The arguments of a script that reads one finished run's generated rows (also bench/c2st_diagnosis.py)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("results", type=Path)
    parser.add_argument("--space", choices=["features", "embedding"], default="features")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--json", type=Path)
    return parser


def read_run(results: Path, space: str, meta: tuple[str, ...] = ()) -> tuple[pd.DataFrame, list[str], pd.DataFrame]:
    """(residue table, its feature columns, every generated shard's ``meta`` and feature columns) of a run's space."""
    root = results if space == "features" else results / "embedding"
    residues = read_parquet(root / "features/residues.parquet")
    cols = feature_columns(residues)
    shards = sorted((root / "generated").glob("shard_*.parquet"))
    return residues, cols, pd.concat([read_parquet(p, columns=[*meta, *cols]) for p in shards])


def main() -> None:
    args = run_parser(__doc__.splitlines()[0]).parse_args()
    residues, cols, generated = read_run(args.results, args.space)
    positives = residues[residues["label"] == 1]
    train = positives.loc[positives["split"] == "train", cols].to_numpy(np.float32)
    held = positives.loc[positives["split"] == "validation", cols].to_numpy(np.float32)
    synthetic = generated.to_numpy(np.float32)
    metrics = sample_quality(train, held, synthetic, args.seed, threads=args.threads)
    rng = np.random.default_rng(args.seed)
    syn = subsample(synthetic, len(held), rng)
    continuous = continuous_columns(train)
    metrics["c2st_auc_continuous_vs_validation"] = c2st_auc(held[:, continuous], syn[:, continuous], args.seed, 5, args.threads)
    metrics["knn_precision_vs_validation"], metrics["knn_recall_vs_validation"] = knn_precision_recall(held, syn, 5)
    # The floor: real training positives against real validation positives (different proteins).
    real = subsample(train, len(held), rng)
    metrics["c2st_auc_continuous_real_train_vs_validation"] = c2st_auc(held[:, continuous], real[:, continuous], args.seed, 5, args.threads)
    metrics = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in metrics.items()}
    print(json.dumps({"space": args.space, **metrics}))
    if args.json:
        args.json.write_text(json.dumps({"space": args.space, **metrics}, indent=1))


if __name__ == "__main__":
    main()
