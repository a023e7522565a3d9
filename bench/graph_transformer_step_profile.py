"""Where the GPU time of one graph_transformer training step goes, and what three cheap variants do to it.

    python bench/graph_transformer_step_profile.py

On ``bench/graph_batching.py``'s synthetic DNA-573-sized graphs (460 training proteins, 8 a step, ``config/dna573.yaml``'s
model size): seconds per epoch of captured steps (training only); torch.profiler tables by device time of 10 captured
replays and of 10 eager steps (with input shapes); then seconds per epoch with TF32 matrix products, and with 16 and
32 proteins a step (a hyper-parameter change, timed for scale only). CUDA only; prints the tables.
"""
import sys
import time

import numpy as np
import torch
from torch import nn
from torch.profiler import ProfilerActivity, profile
sys.path.insert(0, "bench")
from graph_transformer_seeds import build, member  # noqa: E402
from siteaug.runtime.cuda_graphs import clipped_step  # noqa: E402

stack, dim = build()
print("nodes", stack.pad_node, "edges", stack.pad_edge, "per protein edges/node", stack.pad_edge / stack.pad_node)


def epoch_time(steps, bp=8, epochs=2):
    rng = np.random.default_rng(0)
    nb = int(np.ceil(len(stack) / bp))
    def one():
        order = rng.permutation(len(stack))
        for b in range(nb):
            steps.run(order[b * bp:(b + 1) * bp])
        torch.cuda.synchronize()
    one()
    t = time.perf_counter()
    for _ in range(epochs):
        one()
    return (time.perf_counter() - t) / epochs

net, opt, total, steps = member(stack, dim, 0)
print("baseline s/epoch", epoch_time(steps))
rng = np.random.default_rng(1)
chosen = [rng.permutation(len(stack))[:8] for _ in range(12)]
with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
    for c in chosen[:10]:
        steps.run(c)
    torch.cuda.synchronize()
print("\n## captured replays, 10 steps, by device time")
print(prof.key_averages().table(sort_by="self_cuda_time_total", row_limit=40, max_name_column_width=90))
loss_fn = nn.BCEWithLogitsLoss()
def eager(c):
    batch = stack.batch(c)
    loss = loss_fn(net(batch.x, batch.edge_index, batch.edge_attr), batch.y.float())
    opt.zero_grad(set_to_none=True)
    clipped_step(loss, list(net.parameters()), opt, total)
for c in chosen[:3]:
    eager(c)
torch.cuda.synchronize()
with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA], record_shapes=True) as prof:
    for c in chosen[:10]:
        eager(c)
    torch.cuda.synchronize()
print("\n## eager, 10 steps, by device time (with shapes)")
print(prof.key_averages(group_by_input_shape=True).table(sort_by="self_cuda_time_total", row_limit=45, max_name_column_width=70))
torch.backends.cuda.matmul.allow_tf32 = True
net, opt, total, steps = member(stack, dim, 0)
print("tf32 s/epoch", epoch_time(steps))
torch.backends.cuda.matmul.allow_tf32 = False
for bp in (16, 32):
    net, opt, total, steps = member(stack, dim, 0)
    print(f"batch_proteins {bp} s/epoch", epoch_time(steps, bp=bp))
