"""MLP arm training speed on a GPU: the captured CUDA-graph step against the eager step.

    python bench/mlp_training.py [--rows 1200000] [--features 100] [--epochs 3] [--json OUT.json]

A table the size of DNA-573's balanced training table (about 1.2 M rows at 90 % positives, 100 features), the arms'
MLP (hidden 256, 128, dropout 0.1, batch 1024, bf16 hidden layers), trained ``--epochs`` epochs, one process. Prints
seconds per epoch and steps per second for ``cuda_graph`` on and off, and the largest weight difference of the two
with dropout 0 in float32 (the same training either way, up to rounding). Writes JSON.
"""
from __future__ import annotations

import argparse
import json
import math
import time

import numpy as np
import torch

from siteaug.arms.classifier import MLPClassifier, MLPConfig


def fit_seconds(X, y, epochs: int, **overrides) -> tuple[float, MLPClassifier]:
    config = MLPConfig(input_dim=X.shape[1], epochs=epochs, early_stopping_patience=None, **overrides)
    torch.cuda.synchronize()
    start = time.perf_counter()
    model = MLPClassifier(config, "cuda").fit(X, y)
    torch.cuda.synchronize()
    return time.perf_counter() - start, model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_200_000)
    parser.add_argument("--features", type=int, default=100)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--json")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    X = rng.normal(size=(args.rows, args.features)).astype(np.float32)
    y = (X[:, 0] + 0.5 * rng.normal(size=args.rows) > -1.3).astype(np.int64)  # about 90 % positives
    fit_seconds(X[:20000], y[:20000], 1)  # warm-up: CUDA context, cuBLAS handles
    rows = []
    steps = math.ceil(args.rows / 1024) * args.epochs
    for graph in (False, True):
        seconds, _ = fit_seconds(X, y, args.epochs, cuda_graph=graph)
        rows.append({"cuda_graph": graph, "seconds": seconds, "seconds_per_epoch": seconds / args.epochs,
                     "steps_per_second": steps / seconds})
        print(rows[-1], flush=True)
    small = slice(0, 200_000)
    models = [fit_seconds(X[small], y[small], 2, cuda_graph=g, dropout=0.0, mixed_precision=False)[1] for g in (False, True)]
    difference = max(float((a - b).abs().max()) for a, b in zip(models[0].network.parameters(), models[1].network.parameters()))
    print(f"\n{'cuda_graph':<11} {'s/epoch':>8} {'steps/s':>9}")
    for r in rows:
        print(f"{r['cuda_graph']!s:<11} {r['seconds_per_epoch']:>8.2f} {r['steps_per_second']:>9.0f}")
    print(f"largest weight difference, dropout 0, float32, 2 epochs of 200k rows: {difference:.2e}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"device": torch.cuda.get_device_name(), "args": vars(args), "rows": rows,
                       "largest_weight_difference": difference}, fh, indent=1)


if __name__ == "__main__":
    main()
