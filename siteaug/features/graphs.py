"""Per-protein residue graphs as torch-geometric ``Data`` objects, the context encoder, and the context vectors it
computes from them."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch_geometric.data import Data
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


@dataclass(frozen=True)
class GraphBatch:
    """Some graphs of a ``GraphStack`` as one disjoint union: the tensors, and their order, that torch-geometric's
    ``Batch.from_data_list`` gives for the same graphs; ``positive`` indexes the nodes labelled 1."""

    x: torch.Tensor
    edge_index: torch.Tensor
    edge_attr: torch.Tensor | None
    y: torch.Tensor
    batch: torch.Tensor
    positive: torch.Tensor
    num_graphs: int


class GraphStack:
    """Protein graphs concatenated once on a device, from which any subset is batched by a few index gathers.

    ``Batch.from_data_list`` does Python work per graph and per attribute, and launches a dozen small kernels, at every
    step; on a GPU that bounds the training loops (the host cannot queue work fast enough). Here the host only builds
    the batch's index arrays with NumPy, and they reach the device in one copy that does not wait for the GPU.
    """

    def __init__(self, graphs: list[Data], device):
        self.device = torch.device(device)
        self._nodes = np.array([g.num_nodes for g in graphs], dtype=np.int64)
        self._edges = np.array([g.edge_index.shape[1] for g in graphs], dtype=np.int64)
        self._node_start = np.concatenate([[0], np.cumsum(self._nodes)[:-1]]).astype(np.int64)
        self._edge_start = np.concatenate([[0], np.cumsum(self._edges)[:-1]]).astype(np.int64)
        has_attr = [getattr(g, "edge_attr", None) is not None for g in graphs]
        if any(has_attr) and not all(has_attr):
            raise ValueError("some graphs carry edge_attr and some do not")

        def stacked(tensors, empty_shape, dtype):
            return (torch.cat(tensors) if tensors else torch.zeros(empty_shape, dtype=dtype)).to(self.device)

        self.x = stacked([g.x for g in graphs], (0, 0), torch.float32)
        self.y = stacked([g.y for g in graphs], (0,), torch.int64)
        self._labels = self.y.cpu().numpy()  # the host's copy: positive indices without asking the device
        # Edge indices stay local to their graph; a batch adds each graph's new node offset.
        self._edge_index = torch.cat([g.edge_index for g in graphs], dim=1).to(self.device) if graphs else \
            torch.zeros((2, 0), dtype=torch.int64, device=self.device)
        self.edge_attr = stacked([g.edge_attr for g in graphs], (0, 0), torch.float32) if graphs and all(has_attr) else None

    def __len__(self) -> int:
        return len(self._nodes)

    @property
    def positives(self) -> torch.Tensor:
        """Feature rows of every node labelled 1, in graph order."""
        return self.x[torch.from_numpy(np.flatnonzero(self._labels == 1)).to(self.device)]

    def batch(self, indices) -> GraphBatch:
        """The graphs ``indices`` (in that order) as one batch."""
        chosen = np.asarray(indices, dtype=np.int64)
        nodes, edges = self._nodes[chosen], self._edges[chosen]
        new_node_start = np.cumsum(nodes) - nodes
        new_edge_start = np.cumsum(edges) - edges
        node_ids = np.arange(nodes.sum()) + np.repeat(self._node_start[chosen] - new_node_start, nodes)
        edge_ids = np.arange(edges.sum()) + np.repeat(self._edge_start[chosen] - new_edge_start, edges)
        edge_shift = np.repeat(new_node_start, edges)
        graph_of_node = np.repeat(np.arange(len(chosen)), nodes)
        positive = np.flatnonzero(self._labels[node_ids] == 1)
        # One host-to-device copy for all five index arrays; non_blocking: the host goes on queueing work.
        sizes = [len(node_ids), len(edge_ids), len(edge_shift), len(graph_of_node), len(positive)]
        packed = torch.from_numpy(np.concatenate([node_ids, edge_ids, edge_shift, graph_of_node, positive]))
        if self.device.type == "cuda":
            packed = packed.pin_memory()  # so that the copy below is truly asynchronous
        node_ids_d, edge_ids_d, shift_d, batch_d, positive_d = packed.to(self.device, non_blocking=True).split(sizes)
        return GraphBatch(
            x=self.x[node_ids_d],
            edge_index=self._edge_index[:, edge_ids_d] + shift_d,
            edge_attr=None if self.edge_attr is None else self.edge_attr[edge_ids_d],
            y=self.y[node_ids_d],
            batch=batch_d,
            positive=positive_d,
            num_graphs=len(chosen),
        )

    def in_order(self, batch_size: int) -> list[GraphBatch]:
        """Every graph, in order, in batches of ``batch_size`` graphs (for evaluation passes)."""
        return [self.batch(range(start, min(start + batch_size, len(self)))) for start in range(0, len(self), batch_size)]


def encode_contexts(encoder, graphs: list[Data], device, batch_size: int = 64) -> torch.Tensor:
    """Context vector of every graph, in order, computed in batches of whole graphs."""
    out = [encoder(b.x, b.edge_index, b.batch, b.num_graphs) for b in GraphStack(graphs, device).in_order(batch_size)]
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
