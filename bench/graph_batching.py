"""Training-loop speed of the two graph models: batching by ``GraphStack`` against ``Batch.from_data_list``.

    python bench/graph_batching.py [--device cuda] [--json OUT.json] [--epochs 4] [--steps 300]

On synthetic protein graphs the size of DNA-573's training split (460 training and 57 validation proteins, lengths
drawn from 60-600 residues, 18 edges per residue, as a 10 Å Cα radius gives), it times
- ``graph_transformer``: ``GraphTransformerClassifier.fit`` at ``config/dna573.yaml``'s settings (6 layers, hidden 64),
  seconds per epoch (training steps plus the validation pass);
- ``train_diffusion``: ``train_diffusion`` at the embedding-space model's size (64 features, hidden 512, context 256,
  16 proteins a step, bf16 forward), steps per second;
each with the graphs batched by ``GraphStack`` (what the package does) and by torch-geometric's
``Batch.from_data_list`` (what it did before 2026-12-06; swapped in here only), and, for ``graph_transformer`` on a
GPU, with and without AdamW's fused step (the package fuses on a GPU since 2026-12-06), and with the steps replayed
from captured CUDA graphs (``classifier.graph_transformer.cuda_graph`` and ``diffusion.cuda_graph``, batches padded to
``GraphStack.capacities``). The same seeds give the same first epochs either way on a CPU
(``tests/test_graph_stack.py`` checks that the batches are equal). Prints a table and writes JSON.
"""
from __future__ import annotations

import argparse
import contextlib
import functools
import json
import time

import numpy as np
import pandas as pd
import torch
from torch_geometric.data import Batch

import siteaug.arms.graph_transformer as graph_transformer
import siteaug.generative.training as training
from siteaug.features.graphs import GraphBatch
from siteaug.features.residues import EDGE_GEOMETRY_COLUMNS
from siteaug.generative.diffusion import DiffusionConfig


class PygStack:
    """The batching before GraphStack: ``Batch.from_data_list`` at every step, positives through a boolean mask."""

    def __init__(self, graphs, device):
        self.graphs = [g.clone().to(device) for g in graphs]
        self.device = torch.device(device)

    def __len__(self):
        return len(self.graphs)

    @property
    def positives(self):
        return torch.cat([g.x[g.y == 1] for g in self.graphs])

    def batch(self, indices):
        b = Batch.from_data_list([self.graphs[i] for i in indices]).to(self.device)
        return GraphBatch(x=b.x, edge_index=b.edge_index, edge_attr=getattr(b, "edge_attr", None), y=b.y, batch=b.batch,
                          positive=torch.nonzero(b.y == 1).squeeze(1), num_graphs=b.num_graphs)

    def in_order(self, size):
        return [self.batch(range(s, min(s + size, len(self)))) for s in range(0, len(self), size)]


def synthetic_tables(proteins: int, validation: int, dim: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    residue_parts, edge_parts = [], []
    for k in range(proteins + validation):
        n = int(rng.integers(60, 600))
        pid = f"p{k:04d}"
        split = "train" if k < proteins else "validation"
        label = (rng.random(n) < 0.09).astype(np.int64)
        label[rng.integers(n)] = 1
        part = pd.DataFrame(rng.normal(size=(n, dim)).astype(np.float32), columns=[f"f_{j}" for j in range(dim)])
        part.insert(0, "split", split)
        part.insert(0, "label", label)
        part.insert(0, "position", np.arange(n))
        part.insert(0, "protein_id", pid)
        residue_parts.append(part)
        src = np.repeat(np.arange(n), 18)
        offset = np.where(rng.random(len(src)) < 0.5, rng.integers(-9, 10, len(src)), rng.integers(-n, n, len(src)))
        dst = np.clip(src + offset, 0, n - 1)
        keep = src != dst
        e = pd.DataFrame({"protein_id": pid, "src": src[keep], "dst": dst[keep]})
        e["distance"] = rng.uniform(3.8, 10.0, len(e))
        for column in EDGE_GEOMETRY_COLUMNS[1:]:
            e[column] = rng.uniform(-1, 1, len(e))
        edge_parts.append(e)
    return pd.concat(residue_parts, ignore_index=True), pd.concat(edge_parts, ignore_index=True)


@contextlib.contextmanager
def batching(kind: str):
    """Swap the batching class of both training loops for ``kind`` ("stack" leaves the package as it is)."""
    saved = graph_transformer.GraphStack, training.GraphStack
    if kind == "pyg":
        graph_transformer.GraphStack = training.GraphStack = PygStack
    try:
        yield
    finally:
        graph_transformer.GraphStack, training.GraphStack = saved


@contextlib.contextmanager
def fused_adamw(on: bool):
    """AdamW with its fused step on or off, whatever the package asks for."""
    saved = torch.optim.AdamW
    torch.optim.AdamW = lambda *args, **kwargs: saved(*args, **{**kwargs, "fused": on})
    try:
        yield
    finally:
        torch.optim.AdamW = saved


def synchronize(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def time_graph_transformer(residues, edges, device, epochs: int, cuda_graph: bool = False) -> dict:
    cols = [c for c in residues.columns if c.startswith("f_")]
    ids = {s: residues.loc[residues.split == s, "protein_id"].unique() for s in ("train", "validation")}
    graphs = {s: graph_transformer.attributed_graphs(residues, edges, cols, ids[s]) for s in ids}
    config = graph_transformer.GraphTransformerConfig(input_dim=len(cols), hidden=64, layers=6, heads=4, dropout=0.3,
                                                      alpha=0.3, epochs=epochs, patience=epochs + 1, cuda_graph=cuda_graph)
    graph_transformer.GraphTransformerClassifier(config, device).fit(graphs["train"][:16], graphs["validation"][:8])  # warm-up
    synchronize(device)
    start = time.perf_counter()
    model = graph_transformer.GraphTransformerClassifier(config, device).fit(graphs["train"], graphs["validation"])
    synchronize(device)
    seconds = time.perf_counter() - start
    return {"seconds_per_epoch": seconds / epochs, "last_validation_auprc": model.history[-1]["validation_auprc"]}


def time_train_diffusion(residues, edges, device, steps: int, cuda_graph: bool = False) -> dict:
    config = DiffusionConfig(feature_dim=sum(c.startswith("f_") for c in residues.columns), hidden=512, blocks=4, context=256,
                             gnn_hidden=128, gnn_layers=2)
    run = functools.partial(training.train_diffusion, residues, edges, config, batch_proteins=16, lr=1e-3, seed=0,
                            device=device, eval_every=100, progress=False, patience=0, mixed_precision=True,
                            cuda_graph=cuda_graph)
    run(steps=20)  # warm-up
    synchronize(device)
    start = time.perf_counter()
    _, history = run(steps=steps)
    synchronize(device)
    seconds = time.perf_counter() - start
    return {"steps_per_second": steps / seconds, "last_validation_loss": history[-1]["validation_loss"]}


def profile(device, args) -> None:
    """Where a training step's time goes: the profiler's busiest operators, by host time and by device time."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    gt_tables = synthetic_tables(args.proteins, args.validation, 81, seed=0)
    diffusion_tables = synthetic_tables(args.proteins, args.validation, 64, seed=1)
    time_graph_transformer(*gt_tables, device, 1)
    time_train_diffusion(*diffusion_tables, device, 50)
    for name, run in (("graph_transformer, 1 epoch", lambda: time_graph_transformer(*gt_tables, device, 1)),
                      ("train_diffusion, 50 steps", lambda: time_train_diffusion(*diffusion_tables, device, 50))):
        with torch_profile(activities=activities) as prof:
            run()
        averages = prof.key_averages()
        print(f"\n## {name}: by host time")
        print(averages.table(sort_by="self_cpu_time_total", row_limit=18, max_name_column_width=60))
        if device.type == "cuda":
            print(f"\n## {name}: by device time")
            print(averages.table(sort_by="self_cuda_time_total", row_limit=12, max_name_column_width=60))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--proteins", type=int, default=460)
    parser.add_argument("--validation", type=int, default=57)
    parser.add_argument("--json")
    parser.add_argument("--loops", nargs="+", choices=("graph_transformer", "train_diffusion"),
                        default=["graph_transformer", "train_diffusion"], help="which loops to time (default: both)")
    parser.add_argument("--profile", action="store_true",
                        help="instead: profile one graph_transformer epoch and 50 train_diffusion steps (torch.profiler tables)")
    args = parser.parse_args()
    device = torch.device(args.device)
    if args.profile:
        profile(device, args)
        return
    rows = []
    if "graph_transformer" in args.loops:
        gt_tables = synthetic_tables(args.proteins, args.validation, 81, seed=0)
        variants = [("pyg", False, False)]  # the loop before 2026-12-06
        if device.type == "cuda":
            variants += [("stack", False, False), ("stack", True, False), ("stack", True, True)]
        for kind, fused, captured in variants:
            with batching(kind), (fused_adamw(False) if not fused else contextlib.nullcontext()):
                rows.append({"loop": "graph_transformer", "batching": kind, "fused_adamw": fused, "cuda_graph": captured,
                             **time_graph_transformer(*gt_tables, device, args.epochs, cuda_graph=captured)})
            print(rows[-1], flush=True)
    if "train_diffusion" in args.loops:
        diffusion_tables = synthetic_tables(args.proteins, args.validation, 64, seed=1)
        variants = [("pyg", False), ("stack", False)] + ([("stack", True)] if device.type == "cuda" else [])
        for kind, captured in variants:
            with batching(kind):
                rows.append({"loop": "train_diffusion", "batching": kind, "fused_adamw": device.type == "cuda",
                             "cuda_graph": captured, **time_train_diffusion(*diffusion_tables, device, args.steps, captured)})
            print(rows[-1], flush=True)
    print(f"\n{'loop':<18} {'batching':<8} {'fused':<6} {'graph':<6} {'s/epoch':>8} {'steps/s':>8} {'last validation':>16}")
    for r in rows:
        score = r.get("last_validation_auprc", r.get("last_validation_loss"))
        print(f"{r['loop']:<18} {r['batching']:<8} {r['fused_adamw']!s:<6} {r['cuda_graph']!s:<6} "
              f"{r.get('seconds_per_epoch', float('nan')):>8.2f} {r.get('steps_per_second', float('nan')):>8.1f} {score:>16.5f}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu", "args": vars(args),
                       "rows": rows}, fh, indent=1)


if __name__ == "__main__":
    main()
