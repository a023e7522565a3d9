"""Per-protein residue graphs as torch-geometric ``Data`` objects, and context vectors computed from them."""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from torch_geometric.data import Batch, Data


def protein_graphs(residues: pd.DataFrame, edges: pd.DataFrame, feature_cols: list[str], protein_ids) -> list[Data]:
    """One ``Data`` per protein (node features = the residue feature table rows, in position order)."""
    residues = residues.sort_values(["protein_id", "position"])
    by_protein = dict(tuple(residues.groupby("protein_id", sort=False)))
    edges_by_protein = dict(tuple(edges.groupby("protein_id", sort=False)))
    graphs = []
    for pid in protein_ids:
        rows = by_protein[pid]
        e = edges_by_protein.get(pid)
        edge_index = (
            torch.from_numpy(np.stack([e["src"].to_numpy(np.int64), e["dst"].to_numpy(np.int64)]))
            if e is not None
            else torch.zeros((2, 0), dtype=torch.long)
        )
        graphs.append(
            Data(
                x=torch.tensor(rows[feature_cols].to_numpy(np.float32)),
                edge_index=edge_index,
                y=torch.tensor(rows["label"].to_numpy(np.int64)),
            )
        )
    return graphs


def encode_contexts(encoder, graphs: list[Data], device, batch_size: int = 64) -> torch.Tensor:
    """Context vector of every graph, in order, computed in batches of whole graphs."""
    out = []
    for start in range(0, len(graphs), batch_size):
        batch = Batch.from_data_list(graphs[start : start + batch_size]).to(device)
        out.append(encoder(batch.x, batch.edge_index, batch.batch, batch.num_graphs))
    return torch.cat(out) if out else torch.zeros((0, encoder.pool.nn.out_features), device=device)
