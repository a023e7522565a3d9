"""What a graph_transformer seed process does before its first training step, step by step, on a workflow's outputs.

    python bench/seed_process_start.py RESULTS_DIR [--device cuda] [--json OUT.json]

RESULTS_DIR is a run's output folder holding features/residues.parquet, features/edges.parquet and (with
classifier.graph_transformer.tree_input) features/tree_scores.parquet. Run it in a fresh process: the first two steps
are imports. With ``--device cuda`` the process first makes its CUDA context (under the workflow's MPS daemon when
CUDA_MPS_PIPE_DIRECTORY names it) and stacks the graphs on the card. Prints each step's seconds and writes them as JSON.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

START = time.perf_counter()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("results", type=Path)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    steps, last = [], START

    def step(name: str) -> None:
        nonlocal last
        now = time.perf_counter()
        steps.append({"step": name, "seconds": round(now - last, 3)})
        last = now

    import torch

    step("import torch")
    if args.device != "cpu":
        torch.zeros(1, device=args.device)
        step(f"CUDA context ({args.device})")
    from siteaug.arms.protocol import read_arm_inputs
    from siteaug.runtime.tables import feature_columns, sorted_split

    step("import siteaug.arms.protocol")
    features = args.results / "features"
    tree_scores = features / "tree_scores.parquet"
    residues, _, edges = read_arm_inputs(features / "residues.parquet", tree_scores if tree_scores.exists() else None,
                                         None, features / "edges.parquet")
    step("read the tables")
    parts = {split: sorted_split(residues, split) for split in ("train", "validation", "test")}
    step("split")
    from siteaug.arms.graph_transformer import attributed_graphs
    from siteaug.features.graphs import GraphStack

    step("import torch_geometric (siteaug.arms.graph_transformer)")
    cols = feature_columns(residues)
    graphs = {name: attributed_graphs(part, edges, cols, part["protein_id"].unique()) for name, part in parts.items()}
    step("build the graphs")
    GraphStack(graphs["train"], args.device)
    step("stack the training graphs")
    total = round(last - START, 3)
    for row in steps:
        print(f"{row['step']:55s} {row['seconds']:7.2f} s")
    print(f"{'total':55s} {total:7.2f} s   ({len(residues)} residues, {len(edges)} edges)")
    if args.json:
        args.json.write_text(json.dumps({"device": args.device, "steps": steps, "total_seconds": total, "residues": len(residues),
                                         "edges": len(edges)}, indent=2))


if __name__ == "__main__":
    main()
