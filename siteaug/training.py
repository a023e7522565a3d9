"""Joint training of the context encoder and the denoiser on training-split positives."""
from __future__ import annotations

import logging
import sys

import numpy as np
import pandas as pd
import torch
from torch_geometric.data import Batch
from tqdm import tqdm

from .diffusion import DiffusionConfig, SiteDiffusion
from .features import feature_columns
from .graphs import protein_graphs

log = logging.getLogger(__name__)


def _batch_loss(model: SiteDiffusion, graphs, device, generator) -> torch.Tensor:
    batch = Batch.from_data_list(graphs).to(device)
    context = model.encoder(batch.x, batch.edge_index, batch.batch, batch.num_graphs)
    positive = batch.y == 1
    return model.loss(batch.x[positive], context[batch.batch[positive]], generator)


def _proteins_with_positives(residues: pd.DataFrame, split: str) -> list[str]:
    part = residues[residues["split"] == split]
    counts = part.groupby("protein_id", sort=True)["label"].sum()
    return counts[counts > 0].index.tolist()


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
) -> tuple[SiteDiffusion, list[dict]]:
    """Train on positives of training proteins; validation loss (fixed noise) on validation positives is logged."""
    feature_cols = feature_columns(residues)
    train_ids = _proteins_with_positives(residues, "train")
    val_ids = _proteins_with_positives(residues, "validation")
    if not train_ids:
        raise ValueError("no training protein has a positive residue: the diffusion model has nothing to learn")
    train_graphs = protein_graphs(residues, edges, feature_cols, train_ids)
    val_graphs = protein_graphs(residues, edges, feature_cols, val_ids)
    torch.manual_seed(seed)
    model = SiteDiffusion(config).to(device)
    model.set_feature_range(torch.cat([g.x[g.y == 1] for g in train_graphs]).to(device))
    optimiser = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=max(steps, 1), eta_min=lr * 0.05)
    rng = np.random.default_rng(seed)
    generator = torch.Generator(device=device).manual_seed(seed)
    history: list[dict] = []
    bar = tqdm(range(1, steps + 1), file=sys.stderr, mininterval=10, disable=not progress, desc="train_diffusion")
    running = []
    for step in bar:
        model.train()
        chosen = rng.choice(len(train_graphs), size=min(batch_proteins, len(train_graphs)), replace=False)
        loss = _batch_loss(model, [train_graphs[i] for i in chosen], device, generator)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimiser.step()
        scheduler.step()
        running.append(loss.item())
        if step % eval_every == 0 or step == steps:
            record = {"step": step, "train_loss": float(np.mean(running)), "validation_loss": _validation_loss(model, val_graphs, device, seed)}
            running = []
            history.append(record)
            log.info("step %d train loss %.4f validation loss %s", step, record["train_loss"], record["validation_loss"])
    model.eval()
    return model, history


@torch.no_grad()
def _validation_loss(model: SiteDiffusion, graphs, device, seed: int, batch: int = 32) -> float | None:
    if not graphs:
        return None
    model.eval()
    generator = torch.Generator(device=device).manual_seed(seed + 1)
    losses = [_batch_loss(model, graphs[i : i + batch], device, generator).item() for i in range(0, len(graphs), batch)]
    return float(np.mean(losses))
