"""How three graph_transformer seeds share one GPU: one seed alone, K seeds in K processes (as the arm's seed
processes train them), and K seeds on K CUDA streams of one process (stepped in turn from one thread).

    python bench/graph_transformer_seeds.py single 1 EPOCHS [SEED]   # one seed alone
    python bench/graph_transformer_seeds.py procs K EPOCHS           # K processes, each "single"
    python bench/graph_transformer_seeds.py procs-mps K EPOCHS       # the same under an NVIDIA MPS daemon (gpu.mps's)
    python bench/graph_transformer_seeds.py streams K EPOCHS         # K streams in this process
    python bench/graph_transformer_seeds.py compiled 1 EPOCHS [SEED] # one seed alone, its network torch.compile'd
    python bench/graph_transformer_seeds.py procs-mps-compiled K EPOCHS  # K "compiled" processes under MPS

Training steps only (captured CUDA graphs, ``_CapturedSteps``), no validation pass, on synthetic graphs the size of
DNA-573's training split (``bench/graph_batching.py``'s ``synthetic_tables``: 460 proteins) at ``config/dna573.yaml``'s
model size. One epoch first captures the graphs; then EPOCHS epochs are timed, then one more with a synchronisation
after every step (the GPU-bound time). Prints one JSON line. The streams mode draws dropout masks from one shared
generator (an experiment on throughput, not a training the package runs). CUDA only.
"""
import json
import subprocess
import sys
import time

import numpy as np
import torch

sys.path.insert(0, "bench")
import siteaug.arms.graph_transformer as gt  # noqa: E402
from graph_batching import synthetic_tables  # noqa: E402
from siteaug.features.graphs import GraphStack  # noqa: E402
from siteaug.runtime.mps import MpsDaemon  # noqa: E402

DEVICE = torch.device("cuda")


def build():
    """The synthetic training graphs on the card, the validation graphs' batches (as the arm scores them each epoch),
    and their feature count."""
    residues, edges = synthetic_tables(460, 57, 81, seed=0)
    cols = [c for c in residues.columns if c.startswith("f_")]

    def graphs(split):
        ids = residues.loc[residues.split == split, "protein_id"].unique()
        return gt.attributed_graphs(residues, edges, cols, ids)

    validation = GraphStack(graphs("validation"), DEVICE).in_order(gt.VALIDATION_BATCH)
    return GraphStack(graphs("train"), DEVICE), validation, len(cols)


def member(stack, dim, seed, compiled=False):
    """(network, optimiser, loss sum, captured steps) of one seed, as the arm builds them on CUDA; with ``compiled`` the
    steps call the network through ``torch.compile`` (dynamic shapes: one compilation for every batch-size bucket)."""
    cfg = gt.GraphTransformerConfig(input_dim=dim, hidden=64, layers=6, heads=4, dropout=0.3, alpha=0.3, epochs=40, seed=seed)
    torch.manual_seed(seed)
    net = gt.ResidueGraphTransformer(cfg).to(DEVICE)
    net.train()
    lr = torch.tensor(1e-3, device=DEVICE)
    opt = torch.optim.AdamW(list(net.parameters()), lr=lr, weight_decay=1e-4, fused=True, capturable=True)
    total = torch.zeros((), dtype=torch.float64, device=DEVICE)
    return net, opt, total, gt._CapturedSteps(net, stack, opt, total, gt.training_forward(net, compiled))


def compile_counters() -> dict:
    """torch.compile's cache hits and misses in this process (empty when nothing was compiled)."""
    from torch._dynamo.utils import counters

    return {group: {k: v for k, v in counters[group].items() if "cache" in k} for group in ("inductor", "aot_autograd")}


def main():
    mode, K, epochs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    if mode in ("procs", "procs-mps", "procs-mps-compiled"):
        daemon = MpsDaemon() if mode.startswith("procs-mps") else None
        child = "compiled" if mode.endswith("compiled") else "single"
        if daemon:
            daemon.start()  # the children inherit its pipe folder, as the workflow's jobs do
        start = time.perf_counter()
        ps = [subprocess.Popen([sys.executable, __file__, child, "1", str(epochs), str(s)], stdout=subprocess.PIPE, text=True)
              for s in range(K)]
        outs = [json.loads(p.communicate()[0].strip().splitlines()[-1]) for p in ps]
        wall = time.perf_counter() - start
        clients = daemon.stop() if daemon else None
        print(json.dumps({"mode": mode, "K": K, "children": outs, "wall": wall, "mps_clients": clients}))
        return
    stack, validation, dim = build()
    seeds = [int(sys.argv[4])] if len(sys.argv) > 4 else list(range(K))
    members = [(*member(stack, dim, s, compiled=mode == "compiled")[2:], np.random.default_rng(s)) for s in seeds]  # (loss sum, steps, batch order)
    streams = [torch.cuda.Stream() for _ in members] if mode == "streams" else [torch.cuda.current_stream()] * len(members)
    nb = int(np.ceil(len(stack) / 8))

    def epoch(sync_each=False):
        orders = [rng.permutation(len(stack)) for _, _, rng in members]
        for b in range(nb):
            for (_, steps, _), order, st in zip(members, orders, streams):
                with torch.cuda.stream(st):
                    steps.run(order[b * 8:(b + 1) * 8])
                if sync_each:
                    torch.cuda.synchronize()
        torch.cuda.synchronize()

    t = time.perf_counter()
    epoch()  # captures (and compiles)
    first = time.perf_counter() - t
    times = []
    for _ in range(epochs):
        t = time.perf_counter()
        epoch()
        times.append(time.perf_counter() - t)
    t = time.perf_counter()
    epoch(sync_each=True)
    synced = time.perf_counter() - t
    network = members[0][1].network  # eager, as the arm scores

    @torch.inference_mode()
    def validate():  # the arm's per-epoch validation pass (eager), probabilities back on the host
        network.eval()
        out = torch.cat([torch.sigmoid(network(b.x, b.edge_index, b.edge_attr)).float() for b in validation]).cpu()
        network.train()
        return out

    validate()
    t = time.perf_counter()
    for _ in range(3):
        validate()
    validation_s = (time.perf_counter() - t) / 3
    print(json.dumps({"mode": mode, "K": len(members), "steps_per_epoch": nb, "s_per_epoch": times, "s_per_epoch_synced_steps": synced,
                      "first_epoch_s": first, "validation_pass_s": validation_s, "compile_counters": compile_counters(),
                      "graphs": sum(len(m[1].graphs) for m in members), "loss": [float(m[0]) for m in members]}))


if __name__ == "__main__":
    main()
