"""The fast sampling paths against the fp32 reference on a trained model: same noise, relative error and sample quality.

    python bench/precision_quality.py [--results results] [--rows 200000] [--json OUT.json]

Needs a workflow run up to ``train_diffusion`` (``results/diffusion/model.pt``, ``contexts.parquet`` and
``results/features/residues.parquet``). Draws ``--rows`` candidates spread over the training proteins in proportion
to their synthetic quota, once per path, with the same seed and chunk size (so the same noise), using the
workflow's sampler settings from the model's training run. For each path: the relative error of the rows against
the fp32 path, and the quality metrics of ``siteaug.evaluation.sample_quality`` against the real training positives.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from siteaug.generative.balance import synthetic_quota
from siteaug.generative.diffusion import load_model
from siteaug.generative.generation import generate_candidates
from siteaug.runtime.io import read_parquet
from siteaug.evaluation.sample_quality import sample_quality

# (name, precision, compile); the first is the reference.
PATHS = [
    ("fp32", "fp32", False),
    ("tf32", "tf32", False),
    ("tf32 compiled", "tf32", True),
    ("bf16", "bf16", False),
    ("bf16 compiled", "bf16", True),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", default="results")
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--sampler", default="dpmpp_2m")
    parser.add_argument("--sampler-steps", type=int, default=20)
    parser.add_argument("--ratio", type=float, default=0.9)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default="precision_quality.json")
    args = parser.parse_args()
    device = torch.device("cuda")
    results = Path(args.results)
    model, extra = load_model(results / "diffusion/model.pt", device, with_encoder=False)
    contexts = read_parquet(results / "diffusion/contexts.parquet").set_index("protein_id")
    residues = read_parquet(results / "features/residues.parquet")
    cols = extra["feature_columns"]
    quota = synthetic_quota(residues[residues["split"] == "train"], args.ratio).set_index("protein_id")["quota"]
    counts = (quota * (args.rows / quota.sum())).round().astype(int)
    positives = residues[residues["label"] == 1]
    train_real = positives.loc[positives["split"] == "train", cols].to_numpy(np.float32)
    held_back = positives.loc[positives["split"] == "validation", cols].to_numpy(np.float32)

    rows, reference = [], None
    for name, precision, compile in PATHS:
        start = time.perf_counter()
        table = generate_candidates(model, contexts, cols, counts, seed=args.seed, device=device, precision=precision,
                                    sampler=args.sampler, sampler_steps=args.sampler_steps, compile=compile, progress=False)
        seconds = time.perf_counter() - start
        synthetic = table[cols].to_numpy(np.float32)
        reference = synthetic if reference is None else reference
        rel = float(np.linalg.norm(synthetic - reference) / np.linalg.norm(reference))
        metrics = sample_quality(train_real, held_back, synthetic, args.seed, device=device, threads=8)
        rows.append({"path": name, "precision": precision, "compile": compile, "seconds": seconds, "rel_error": rel, **metrics})
        print(f"{name:14s} rel. error {rel:.2e}  " + "  ".join(f"{k} {v:.4g}" for k, v in metrics.items() if isinstance(v, float)), flush=True)

    keys = ["knn_precision", "knn_recall", "c2st_auc_continuous", "wasserstein_mean", "correlation_distance"]
    print(f"\n{len(table)} rows, {args.sampler} {args.sampler_steps} steps, {torch.cuda.get_device_name()}")
    print("| path | rel. error vs fp32 | " + " | ".join(keys) + " |")
    print("|---|---|" + "---|" * len(keys))
    for r in rows:
        print(f"| {r['path']} | {r['rel_error']:.1e} | " + " | ".join(f"{r[k]:.4f}" for k in keys) + " |")
    Path(args.json).write_text(json.dumps({"gpu": torch.cuda.get_device_name(), "args": vars(args), "rows": rows}, indent=2, default=str) + "\n")


if __name__ == "__main__":
    main()
