"""Joint training of the context encoder and the denoiser on training-split positives."""
from __future__ import annotations

import contextlib
import copy
import logging
import sys

import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm import tqdm

from siteaug.features.graphs import GraphBatch, GraphStack, protein_graphs
from siteaug.generative.columns import ColumnCodec
from siteaug.generative.diffusion import DiffusionConfig, SiteDiffusion
from siteaug.runtime.cuda_graphs import PaddedGraphSteps, capture_step, clipped_step, keep_learning_rate_tensor
from siteaug.runtime.early_stopping import EarlyStopping
from siteaug.runtime.tables import feature_columns, split_rows

log = logging.getLogger(__name__)

VALIDATION_BATCH = 32  # proteins per batch of the validation loss


def _batch_loss(model: SiteDiffusion, batch: GraphBatch, generator) -> torch.Tensor:
    context = model.encoder(batch.x, batch.edge_index, batch.batch, batch.num_graphs)
    # An index (built on the host), not a boolean mask: masking would make the host wait for the GPU at every step.
    return model.loss(batch.x[batch.positive], context[batch.batch[batch.positive]], generator)


def _proteins_with_positives(residues: pd.DataFrame, split: str) -> list[str]:
    part = split_rows(residues, split)
    counts = part.groupby("protein_id", sort=True)["label"].sum()
    return counts[counts > 0].index.tolist()


class EmaWeights:
    """An exponential moving average of a model's parameters whose decay warms up as min(decay, (1 + n) / (10 + n)).

    The first update copies the weights; update n + 1 moves the average by 1 − min(decay, (1 + n) / (10 + n)) towards
    them (n updates so far). Without the warm-up the average would be dominated by the random initial weights for the
    first ~1/(1 − decay) steps, which is most of a short run. Buffers (schedule, feature range) are constants and stay
    as copied. The same average as torch's ``AveragedModel`` with that warm-up, but counted on the host: AveragedModel
    tests its counter on the device at every update, which makes every training step wait for the GPU.
    """

    def __init__(self, model: nn.Module, decay: float):
        self.module = copy.deepcopy(model).requires_grad_(False)
        self.decay = decay
        self.updates = 0

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        averaged, current = list(self.module.parameters()), [p.detach() for p in model.parameters()]
        if self.updates == 0:
            torch._foreach_copy_(averaged, current)
        else:
            torch._foreach_lerp_(averaged, current, 1 - min(self.decay, (1 + self.updates) / (10 + self.updates)))
        self.updates += 1


class _CapturedSteps(PaddedGraphSteps):
    """Training steps replayed from CUDA graphs: one graph per (node, edge, positive) capacity of ``GraphStack``. Each
    gathers its batch's rows itself and takes the loss over the real positives only, so it trains as the eager step
    does; its timesteps and noise come from the default CUDA generator (a graph replays its random draws from that
    generator's offset)."""

    def __init__(self, model: SiteDiffusion, stack: GraphStack, optimiser, running: torch.Tensor, autocast, graphs: int):
        super().__init__(stack)
        self.model, self.optimiser, self.running, self.autocast = model, optimiser, running, autocast
        self.batch_graphs = graphs

    def key(self, chosen) -> tuple[int, int, int]:
        return (*self.stack.capacities(chosen), self.stack.capacity(self.stack.positive_count(chosen)))

    def capture(self, static: torch.Tensor, node_capacity: int, edge_capacity: int, positive_capacity: int):
        # Views of ``static``, which self.graphs keeps (the graph holds addresses, not references).
        node_ids, edge_ids, edge_shift, _, graph_of_node, positive, real_positives = static.split(
            GraphStack.padded_layout(node_capacity, edge_capacity, positive_capacity))
        model, parameters = self.model, list(self.model.parameters())

        def step():
            x, edge_index, _, _ = self.stack.gather(node_ids, edge_ids, edge_shift)
            with self.autocast():
                # One context more than the batch has graphs: the padding nodes' own, which no real row reads.
                context = model.encoder(x, edge_index, graph_of_node, self.batch_graphs + 1)
                loss = model.loss(x[positive], context[graph_of_node[positive]], None, real_positives)
            clipped_step(loss, parameters, self.optimiser, self.running)

        return capture_step(step, parameters, self.optimiser, static.device, keep=[self.running], pool=self.pool)


def train_diffusion(
    residues: pd.DataFrame,
    edges: pd.DataFrame,
    config: DiffusionConfig,
    steps: int,
    batch_proteins: int,
    lr: float,
    seed: int,
    device: torch.device,
    eval_every: int = 100,
    progress: bool = True,
    ema_decay: float = 0.999,
    patience: int = 0,
    codec: ColumnCodec | None = None,
    mixed_precision: bool = False,
    cuda_graph: bool = False,
) -> tuple[SiteDiffusion, list[dict]]:
    """Train on positives of training proteins and return the EMA weights with the best validation loss.

    Every ``eval_every`` steps the validation denoising loss (fixed noise, validation-split positives) of the EMA
    weights, and of the online weights for comparison, goes into the history. Training stops after ``patience``
    evaluations without improvement (0: runs all ``steps``). Without validation positives the final EMA is returned.
    ``ema_decay`` 0 makes the EMA a copy of the online weights.

    With a ``codec`` (:mod:`siteaug.generative.columns`) the model learns, and its context encoder reads, the codec's model space
    (quantile-normal numeric columns, ±1 one-hot categories); without one, the feature columns as they are.

    ``mixed_precision`` runs the training steps' forward pass in bfloat16 on a CUDA device (weights, optimiser and the
    validation loss stay float32); on a CPU it changes nothing.

    ``cuda_graph`` replays each training step from a captured CUDA graph on a CUDA device (``_CapturedSteps``; no
    effect on a CPU): the eager step is bound by the host launching a few hundred small kernels. Its batches are padded
    to fixed sizes and its timesteps and noise come from another generator, so it trains as the eager step in
    distribution, not draw for draw.
    """
    if codec is not None:
        residues = codec.encode_table(residues)
        feature_cols = codec.model_columns
    else:
        feature_cols = feature_columns(residues)
    if len(feature_cols) != config.feature_dim:
        raise ValueError(f"the model has feature_dim {config.feature_dim} but the table gives {len(feature_cols)} columns to learn")
    train_ids = _proteins_with_positives(residues, "train")
    val_ids = _proteins_with_positives(residues, "validation")
    if not train_ids:
        raise ValueError("no training protein has a positive residue: the diffusion model has nothing to learn")
    # The graphs live on the device for the whole run: a step then gathers tensors already there. The validation
    # batches are the same at every evaluation and built once.
    train_graphs = GraphStack(protein_graphs(residues, edges, feature_cols, train_ids), device)
    val_batches = GraphStack(protein_graphs(residues, edges, feature_cols, val_ids), device).in_order(VALIDATION_BATCH)
    torch.manual_seed(seed)
    model = SiteDiffusion(config).to(device)
    model.set_feature_range(train_graphs.positives)
    ema = EmaWeights(model, ema_decay)
    on_cuda = torch.device(device).type == "cuda"
    captured = on_cuda and cuda_graph
    # Captured steps need the optimiser's step count on the device (capturable) and a tensor learning rate, which the
    # schedule changes in place.
    learning_rate = torch.tensor(lr, device=device) if captured else lr
    optimiser = torch.optim.AdamW(model.parameters(), lr=learning_rate, weight_decay=1e-4, fused=on_cuda, capturable=captured)
    # No autocast weight cache in a captured step: the cache would keep the capture's casts of the weights.
    autocast = ((lambda: torch.autocast("cuda", dtype=torch.bfloat16, cache_enabled=not captured)) if mixed_precision and on_cuda
                else contextlib.nullcontext)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=max(steps, 1), eta_min=lr * 0.05)
    rng = np.random.default_rng(seed)
    generator = torch.Generator(device=device).manual_seed(seed)
    # Here patience 0 means never stop (the config's meaning), where EarlyStopping would stop at the first evaluation
    # without a gain.
    stopping = EarlyStopping(higher_is_better=False, patience=patience if patience > 0 else None)
    history: list[dict] = []
    bar = tqdm(range(1, steps + 1), file=sys.stderr, mininterval=10, disable=not progress, desc="train_diffusion")
    # The training loss is summed on the device and read at evaluations only: reading it every step would make the
    # host wait for the GPU at every step.
    running, running_steps = torch.zeros((), dtype=torch.float64, device=device), 0
    parameters = list(model.parameters())
    graphs_per_step = min(batch_proteins, len(train_graphs))
    steps_from_graphs = _CapturedSteps(model, train_graphs, optimiser, running, autocast, graphs_per_step) if captured else None
    with contextlib.ExitStack() as scope:
        if captured:  # the captured steps draw from the default CUDA generator: seeded here, restored after
            scope.enter_context(torch.random.fork_rng(devices=[device]))
            torch.cuda.manual_seed(seed)
        for step in bar:
            model.train()
            chosen = rng.choice(len(train_graphs), size=graphs_per_step, replace=False)
            if steps_from_graphs is not None:
                steps_from_graphs.run(chosen)
            else:
                with autocast():
                    loss = _batch_loss(model, train_graphs.batch(chosen), generator)
                optimiser.zero_grad(set_to_none=True)
                clipped_step(loss, parameters, optimiser, running)
            scheduler.step()
            if captured:
                keep_learning_rate_tensor(optimiser, learning_rate)
            ema.update(model)
            running_steps += 1
            if step % eval_every == 0 or step == steps:
                record = {
                    "step": step,
                    "train_loss": running.item() / running_steps,
                    "validation_loss": _validation_loss(ema.module, val_batches, device, seed),
                    "validation_loss_online": _validation_loss(model, val_batches, device, seed),
                }
                running.zero_()  # in place: the captured steps add to this tensor
                running_steps = 0
                history.append(record)
                log.info("step %d train loss %.4f validation loss %s (online weights %s)", step, record["train_loss"],
                         *(f"{v:.4f}" if v is not None else "none" for v in (record["validation_loss"], record["validation_loss_online"])))
                if record["validation_loss"] is not None and stopping.update(step, record["validation_loss"], ema.module):
                    log.info("early stop at step %d: no validation gain in %d evaluations since step %s", step, patience, stopping.best_step)
                    break
    best = ema.module
    if stopping.best_state is not None:
        best.load_state_dict(stopping.best_state)
        log.info("kept the EMA weights of step %d (validation loss %.4f)", stopping.best_step, stopping.best_score)
    return best.eval(), history


def best_step(history: list[dict]) -> int | None:
    """Step whose EMA weights train_diffusion kept: the first lowest validation loss (None without validation)."""
    scored = [r for r in history if r.get("validation_loss") is not None]
    return min(scored, key=lambda r: r["validation_loss"])["step"] if scored else None


@torch.no_grad()
def _validation_loss(model: SiteDiffusion, batches: list[GraphBatch], device, seed: int) -> float | None:
    if not batches:
        return None
    model.eval()
    generator = torch.Generator(device=device).manual_seed(seed + 1)
    losses = torch.stack([_batch_loss(model, batch, generator) for batch in batches])
    return float(losses.double().mean())
