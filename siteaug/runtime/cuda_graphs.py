"""Training steps captured as CUDA graphs, for loops whose eager steps are bound by the host launching small kernels.

A captured step replays every kernel of one optimiser step (gathers, forward, backward, clipping, AdamW) with one call.
Its tensors are fixed: the step reads its inputs from static buffers that the caller fills before each replay. Capture
needs an eager warm-up run first; ``capture_step`` runs it on a side stream and then puts back everything it changed
(parameters, optimiser state, the CUDA random state, and any tensors the caller names), so capturing leaves no trace
in the training: a captured step trains exactly as the eager step on the same inputs (``tests/test_classifier.py`` and
``tests/test_graph_transformer.py`` compare them on a GPU).

Every tensor the step reads that is made outside it (static buffers, constants) must outlive the graph: the graph
holds addresses, not references. The optimiser must be built with ``capturable=True`` (its step count then lives on the device) and, for a learning-rate
schedule, a tensor learning rate, which the scheduler updates in place.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable

import torch


def capture_step(step: Callable[[], None], parameters: Iterable[torch.Tensor], optimiser: torch.optim.Optimizer,
                 device: torch.device, keep: Iterable[torch.Tensor] = (), pool=None) -> torch.cuda.CUDAGraph:
    """``step`` (a function of the static buffers it closes over) warmed up once and captured; replay the returned
    graph to run it. ``keep``: more tensors that the step changes in place and that must not keep the warm-up's
    change (an on-device loss sum, say). ``pool``: a memory pool shared with graphs that never run at the same time."""
    parameters, keep = list(parameters), list(keep)
    saved_parameters = [p.detach().clone() for p in parameters]
    saved_state = {p: {k: v.clone() if torch.is_tensor(v) else v for k, v in s.items()} for p, s in optimiser.state.items()}
    saved_keep = [t.clone() for t in keep]
    rng_state = torch.cuda.get_rng_state(device)
    side = torch.cuda.Stream(device)
    side.wait_stream(torch.cuda.current_stream(device))
    with torch.cuda.stream(side):
        optimiser.zero_grad(set_to_none=True)
        step()
    torch.cuda.current_stream(device).wait_stream(side)
    with torch.no_grad():
        torch._foreach_copy_(parameters, saved_parameters)
        for p, state in optimiser.state.items():
            for key, value in state.items():
                if not torch.is_tensor(value):
                    continue
                if p in saved_state:
                    value.copy_(saved_state[p][key])
                else:  # state the warm-up created (the first step): a fresh optimiser's zeros
                    value.zero_()
        if keep:
            torch._foreach_copy_(keep, saved_keep)
    torch.cuda.set_rng_state(rng_state, device)
    graph = torch.cuda.CUDAGraph()
    optimiser.zero_grad(set_to_none=True)
    with torch.cuda.graph(graph, pool=pool):
        step()
    return graph


def clipped_step(loss: torch.Tensor, parameters: list[torch.Tensor], optimiser: torch.optim.Optimizer,
                 total: torch.Tensor) -> None:
    """The rest of one training step of the graph loops, the same whether it runs eagerly or inside a captured graph:
    backward, gradient norm clipped to 1, the optimiser's step, and the loss added to ``total`` (an on-device sum, read
    once per epoch or evaluation). The gradients must be None or zero before (``zero_grad``; a capture starts so)."""
    loss.backward()
    torch.nn.utils.clip_grad_norm_(parameters, 1.0)
    optimiser.step()
    total.add_(loss.detach().double().reshape(()))


def keep_learning_rate_tensor(optimiser: torch.optim.Optimizer, learning_rate: torch.Tensor) -> None:
    """Call after each scheduler step. Captured steps read the learning-rate tensor they were captured with; a torch
    whose scheduler assigns a new value (a float, or another tensor) instead of filling that tensor in place would leave
    them at the old rate, so the new value goes into the tensor, and the tensor back into the optimiser."""
    for group in optimiser.param_groups:
        if group["lr"] is not learning_rate:
            learning_rate.fill_(float(group["lr"]))
            group["lr"] = learning_rate


class PaddedGraphSteps:
    """Training steps over batches of protein graphs (a ``GraphStack``) replayed from CUDA graphs, one graph per batch
    size bucket: ``key`` gives the capacities a batch needs (the arguments of ``stack.padded_indices`` after the
    batch), ``capture`` captures the step for one bucket, reading its batch from a static index buffer. ``run`` pads a
    batch's indices into its bucket's buffer and replays the graph, capturing it the first time the bucket comes up (the
    warm-up step then runs on that batch, and ``capture_step`` undoes it)."""

    def __init__(self, stack):
        self.stack = stack
        self.graphs: dict[tuple, tuple[torch.cuda.CUDAGraph, torch.Tensor]] = {}
        self.pool = torch.cuda.graph_pool_handle()  # the graphs never run at the same time: one memory pool

    def key(self, chosen) -> tuple:
        raise NotImplementedError

    def capture(self, static: torch.Tensor, *key) -> torch.cuda.CUDAGraph:
        raise NotImplementedError

    def run(self, chosen) -> None:
        key = self.key(chosen)
        packed = self.stack.padded_indices(chosen, *key)
        if key in self.graphs:
            graph, static = self.graphs[key]
            self.stack.padded_to_device(packed, static)
        else:
            # self.graphs keeps the buffer: the graph holds its address, not a reference.
            static = torch.empty(len(packed), dtype=torch.int64, device=self.stack.device)
            self.stack.padded_to_device(packed, static)
            graph = self.capture(static, *key)
            self.graphs[key] = graph, static
        graph.replay()
