"""Per-protein residue graphs as torch-geometric ``Data`` objects, the context encoder, and the context vectors it
computes from them."""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch_geometric.data import Batch, Data
from torch_geometric.nn import GATv2Conv
from torch_geometric.nn.aggr import AttentionalAggregation


def protein_graphs(residues: pd.DataFrame, edges: pd.DataFrame, feature_cols: list[str], protein_ids,
                   edge_attributes=None) -> list[Data]:
    """One ``Data`` per protein (node features = the residue feature table rows, in position order).

    ``edge_attributes`` (a function of one protein's rows of the edges table, returning (E, D) float32) adds
    ``edge_attr``."""
    residues = residues.sort_values(["protein_id", "position"], kind="stable")
    by_protein = dict(tuple(residues.groupby("protein_id", sort=False)))
    edges_by_protein = dict(tuple(edges.groupby("protein_id", sort=False)))
    graphs = []
    for pid in protein_ids:
        rows = by_protein[pid]
        e = edges_by_protein.get(pid, edges.iloc[:0])
        graph = Data(
            x=torch.tensor(rows[feature_cols].to_numpy(np.float32)),  # a copy: pandas' arrays are read-only
            edge_index=torch.from_numpy(np.stack([e["src"].to_numpy(np.int64), e["dst"].to_numpy(np.int64)])),
            y=torch.tensor(rows["label"].to_numpy(np.int64)),
        )
        if edge_attributes is not None:
            graph.edge_attr = torch.from_numpy(edge_attributes(e))
        graphs.append(graph)
    return graphs


def encode_contexts(encoder, graphs: list[Data], device, batch_size: int = 64) -> torch.Tensor:
    """Context vector of every graph, in order, computed in batches of whole graphs."""
    out = []
    for start in range(0, len(graphs), batch_size):
        batch = Batch.from_data_list(graphs[start : start + batch_size]).to(device)
        out.append(encoder(batch.x, batch.edge_index, batch.batch, batch.num_graphs))
    return torch.cat(out) if out else torch.zeros((0, encoder.pool.nn.out_features), device=device)


class ContextEncoder(nn.Module):
    """GATv2 layers over the residue graph, then attention pooling to one context vector per protein."""

    def __init__(self, in_dim: int, hidden: int, context: int, layers: int, heads: int):
        super().__init__()
        self.input = nn.Linear(in_dim, hidden)
        self.convs = nn.ModuleList(GATv2Conv(hidden, hidden // heads, heads=heads) for _ in range(layers))
        self.norms = nn.ModuleList(nn.LayerNorm(hidden) for _ in range(layers))
        self.pool = AttentionalAggregation(gate_nn=nn.Linear(hidden, 1), nn=nn.Linear(hidden, context))

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor, batch: torch.Tensor, num_graphs: int) -> torch.Tensor:
        h = self.input(x)
        for conv, norm in zip(self.convs, self.norms):
            h = h + conv(norm(h), edge_index).relu()
        return self.pool(h, batch, dim_size=num_graphs)


@torch.inference_mode()
def protein_contexts(model, residues: pd.DataFrame, edges: pd.DataFrame, feature_cols: list[str], protein_ids, device) -> pd.DataFrame:
    """The model's context vector of every protein: rows ``protein_ids`` (index ``protein_id``), columns ``context_k``.
    Computed once after training, so that sampling jobs only look them up."""
    encoder = model.encoder.eval()
    contexts = encode_contexts(encoder, protein_graphs(residues, edges, feature_cols, protein_ids), device).float().cpu().numpy()
    return pd.DataFrame(contexts, index=pd.Index(list(protein_ids), name="protein_id"), columns=[f"context_{k}" for k in range(contexts.shape[1])])
