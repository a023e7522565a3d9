"""Hyper-parameter grid for the graph_transformer arm, chosen on the validation split only.

Reads a workflow results folder after the features stage (``features/residues.parquet`` and ``features/edges.parquet``),
trains the ``graph_transformer`` arm through ``siteaug.arms.protocol.train_arm`` (the workflow's own code path: same split,
same epoch choice on validation AUPRC) for every grid point and seed, and prints one row per grid point: mean pooled
AUPRC over seeds on validation (the only column used to choose) and on test (reported, never used to choose), plus
the seed-averaged ensemble's AUPRC. Workers share the GPU; each takes grid points in turn. Writes JSON.

    python bench/graph_transformer_grid.py results --grid '[{"dropout": 0.4}, {"hidden": 64, "lr": 3e-4}]' \
        --config config/ppi335.yaml --device cuda --seeds 2 --workers 4 --json grid.json
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import sys
import time
from pathlib import Path

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _merge(base: dict, overlay: dict) -> dict:
    for key, value in overlay.items():
        base[key] = _merge(base.get(key, {}), value) if isinstance(value, dict) and isinstance(base.get(key), dict) else value
    return base


def _settings(config_files: list[str]) -> dict:
    """config/config.yaml, then each overlay, then the schema's defaults: the config the Snakefile builds."""
    import yaml  # noqa: PLC0415
    from snakemake.utils import validate  # noqa: PLC0415

    root = Path(__file__).resolve().parents[1] / "config"
    config: dict = {}
    for path in [root / "config.yaml", *config_files]:
        config = _merge(config, yaml.safe_load(Path(path).read_text()) or {})
    validate(config, str(root / "schema.yaml"))
    return config


def _train(task):
    index, point, results, settings, seeds, device, threads, seed_processes, predictions_dir = task
    import torch  # noqa: PLC0415

    from siteaug.arms.protocol import train_arm  # noqa: PLC0415
    from siteaug.runtime.io import read_parquet  # noqa: PLC0415

    torch.set_num_threads(threads)
    residues = read_parquet(Path(results) / "features/residues.parquet")
    edges = read_parquet(Path(results) / "features/edges.parquet")
    classifier = dict(settings["classifier"])
    point = dict(point)
    arm = point.pop("arm", "graph_transformer")  # {"arm": "gbdt"}: the reference arm on the same seeds
    classifier["graph_transformer"] = {**classifier["graph_transformer"], **point}
    if arm == "graph_transformer" and classifier["graph_transformer"]["tree_input"]:
        from siteaug.arms.tree_scores import with_tree_scores  # noqa: PLC0415

        # As the workflow's tree_scores rule writes them (bench/tree_scores.py or the rule itself).
        residues = with_tree_scores(residues, read_parquet(Path(results) / "features/tree_scores.parquet"))
    start = time.perf_counter()
    predictions, _, summary = train_arm(arm, residues, classifier, 0.5,
                                        [settings["seed"] + s for s in range(seeds)], edges=edges, device=device,
                                        splits=("validation", "test"), seed_processes=seed_processes if arm != "gbdt" else 1,
                                        threads=threads)
    if predictions_dir:  # the test rows, as a workflow's classifier/<arm>/predictions.parquet (bench/issue13_report.py)
        from siteaug.runtime.io import write_parquet  # noqa: PLC0415

        test = predictions[predictions["split"] == "test"].reset_index(drop=True)
        # A reference arm keeps its name, so the report's paired differences take it as the reference of every point.
        name = arm if arm != "graph_transformer" else f"point{index}"
        write_parquet(test, Path(predictions_dir) / "classifier" / name / "predictions.parquet")
    row = {"point": {"arm": arm, **point} if arm != "graph_transformer" else point, "seconds": round(time.perf_counter() - start, 1),
           "best_epochs": [s.get("best_epoch") for s in summary]}
    for split in ("validation", "test"):
        part = predictions[predictions["split"] == split]
        per_seed = [float(average_precision_score(g["label"], g["score"])) for _, g in part.groupby("seed")]
        mean_score = part.groupby(["protein_id", "position"], sort=True).agg(label=("label", "first"), score=("score", "mean"))
        row[f"{split}_auprc"] = round(float(np.mean(per_seed)), 4)
        row[f"{split}_auprc_ensemble"] = round(float(average_precision_score(mean_score["label"], mean_score["score"])), 4)
        row[f"{split}_auroc_ensemble"] = round(float(roc_auc_score(mean_score["label"], mean_score["score"])), 4)
    print(json.dumps({"index": index, **row}), flush=True)
    return index, row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results", help="workflow results folder holding features/residues.parquet and edges.parquet")
    parser.add_argument("--grid", required=True, help="JSON list of classifier.graph_transformer overrides")
    parser.add_argument("--config", nargs="+", default=[], help="config overlays, as given to snakemake --configfile")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads per worker")
    parser.add_argument("--seed-processes", type=int, default=1, help="a point's seeds side by side (classifier.seed_processes)")
    parser.add_argument("--predictions", help="folder for each point's test predictions (classifier/point<k>/predictions.parquet; "
                        "a reference arm's point under its own name)")
    parser.add_argument("--json", required=True)
    args = parser.parse_args()
    grid = json.loads(args.grid)
    settings = _settings(args.config)
    tasks = [(k, point, args.results, settings, args.seeds, args.device, args.threads, args.seed_processes, args.predictions)
             for k, point in enumerate(grid)]
    with mp.get_context("spawn").Pool(args.workers) as pool:
        rows = dict(pool.imap_unordered(_train, tasks))
    rows = [rows[k] for k in sorted(rows)]
    best = max(range(len(rows)), key=lambda k: rows[k]["validation_auprc"])
    print(f"\n{'grid point':60s} {'val':>7s} {'val ens':>7s} {'test':>7s} {'test ens':>8s} {'AUROC ens':>9s} epochs  s")
    for k, row in enumerate(rows):
        mark = "*" if k == best else " "
        print(f"{mark}{json.dumps(row['point']):59s} {row['validation_auprc']:7.4f} {row['validation_auprc_ensemble']:7.4f} "
              f"{row['test_auprc']:7.4f} {row['test_auprc_ensemble']:8.4f} {row['test_auroc_ensemble']:9.4f} "
              f"{row['best_epochs']} {row['seconds']}")
    print("* chosen on validation AUPRC (mean over seeds)")
    Path(args.json).write_text(json.dumps({"results": args.results, "config": args.config, "seeds": args.seeds,
                                           "device": args.device, "chosen": best, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
