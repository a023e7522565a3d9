"""Per-protein residue graphs as torch-geometric ``Data`` objects, the context encoder, and the context vectors it
computes from them."""
from __future__ import annotations

import math
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

    For a captured CUDA graph, whose tensors have fixed sizes, ``padded_indices`` pads a batch to a node and an edge
    capacity (``capacities``): padding nodes are zero rows labelled 0, and padding edges join the last padding node to
    itself, so no real node receives anything from them.
    """

    CAPACITY_FLOOR = 256
    CAPACITY_RATIO = 1.25  # padding adds at most a quarter; DNA-573's batches then fall in about 25 (nodes, edges) pairs

    def __init__(self, graphs: list[Data], device):
        self.device = torch.device(device)
        self._nodes = np.array([g.num_nodes for g in graphs], dtype=np.int64)
        self._edges = np.array([g.edge_index.shape[1] for g in graphs], dtype=np.int64)
        self._node_start = np.concatenate([[0], np.cumsum(self._nodes)[:-1]]).astype(np.int64)
        self._edge_start = np.concatenate([[0], np.cumsum(self._edges)[:-1]]).astype(np.int64)
        has_attr = [getattr(g, "edge_attr", None) is not None for g in graphs]
        if any(has_attr) and not all(has_attr):
            raise ValueError("some graphs carry edge_attr and some do not")
        # One padding row after the real ones of each table: node self.pad_node (zero features, label 0) and edge
        # self.pad_edge (from local node 0 to local node 0, zero attributes). Real batches never index them.
        self.pad_node, self.pad_edge = int(self._nodes.sum()), int(self._edges.sum())
        feature_dim = graphs[0].x.shape[1] if graphs else 0

        def stacked(tensors, pad):
            return torch.cat([*tensors, pad]).to(self.device)

        self.x = stacked([g.x for g in graphs], torch.zeros((1, feature_dim)))
        self.y = stacked([g.y for g in graphs], torch.zeros(1, dtype=torch.int64))
        self._labels = self.y.cpu().numpy()  # the host's copy: positive indices without asking the device
        # Each graph's positive count, so that a batch's is a sum, as its node and edge counts are (capacities).
        self._positives = np.bincount(np.repeat(np.arange(len(graphs)), self._nodes),
                                      weights=self._labels[: self.pad_node] == 1, minlength=len(graphs)).astype(np.int64)
        # Edge indices stay local to their graph; a batch adds each graph's new node offset.
        self._edge_index = torch.cat([*(g.edge_index for g in graphs), torch.zeros((2, 1), dtype=torch.int64)], dim=1).to(self.device)
        self.edge_attr = None
        if graphs and all(has_attr):
            self.edge_attr = stacked([g.edge_attr for g in graphs], torch.zeros((1, graphs[0].edge_attr.shape[1])))

    def __len__(self) -> int:
        return len(self._nodes)

    @property
    def positives(self) -> torch.Tensor:
        """Feature rows of every node labelled 1, in graph order."""
        return self.x[torch.from_numpy(np.flatnonzero(self._labels[: self.pad_node] == 1)).to(self.device)]

    def _index_arrays(self, indices) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Rows of the stacked node and edge tables for the graphs ``indices``, in that order, each edge's node offset
        in the batch, and each node's graph in the batch."""
        chosen = np.asarray(indices, dtype=np.int64)
        nodes, edges = self._nodes[chosen], self._edges[chosen]
        new_node_start = np.cumsum(nodes) - nodes
        new_edge_start = np.cumsum(edges) - edges
        node_ids = np.arange(nodes.sum()) + np.repeat(self._node_start[chosen] - new_node_start, nodes)
        edge_ids = np.arange(edges.sum()) + np.repeat(self._edge_start[chosen] - new_edge_start, edges)
        return node_ids, edge_ids, np.repeat(new_node_start, edges), np.repeat(np.arange(len(chosen)), nodes)

    def _host(self, packed: np.ndarray) -> torch.Tensor:
        """``packed`` as a host tensor to copy with non_blocking (the host goes on queueing work): pinned for a CUDA
        device, so that the copy is truly asynchronous."""
        tensor = torch.from_numpy(packed)
        return tensor.pin_memory() if self.device.type == "cuda" else tensor

    def gather(self, node_ids: torch.Tensor, edge_ids: torch.Tensor, edge_shift: torch.Tensor):
        """(x, edge_index, edge_attr or None, y) of the rows ``node_ids`` and edges ``edge_ids`` (on the device)."""
        return (self.x[node_ids], self._edge_index[:, edge_ids] + edge_shift,
                None if self.edge_attr is None else self.edge_attr[edge_ids], self.y[node_ids])

    def batch(self, indices) -> GraphBatch:
        """The graphs ``indices`` (in that order) as one batch."""
        chosen = np.asarray(indices, dtype=np.int64)
        node_ids, edge_ids, edge_shift, graph_of_node = self._index_arrays(chosen)
        positive = np.flatnonzero(self._labels[node_ids] == 1)
        # One host-to-device copy for all five index arrays.
        parts = [node_ids, edge_ids, edge_shift, graph_of_node, positive]
        on_device = self._host(np.concatenate(parts)).to(self.device, non_blocking=True)
        node_ids_d, edge_ids_d, shift_d, batch_d, positive_d = on_device.split([len(a) for a in parts])
        x, edge_index, edge_attr, y = self.gather(node_ids_d, edge_ids_d, shift_d)
        return GraphBatch(x=x, edge_index=edge_index, edge_attr=edge_attr, y=y, batch=batch_d, positive=positive_d,
                          num_graphs=len(chosen))

    def in_order(self, batch_size: int) -> list[GraphBatch]:
        """Every graph, in order, in batches of ``batch_size`` graphs (for evaluation passes)."""
        return [self.batch(range(start, min(start + batch_size, len(self)))) for start in range(0, len(self), batch_size)]

    @classmethod
    def capacity(cls, needed: int) -> int:
        """The smallest CAPACITY_FLOOR * CAPACITY_RATIO**k (rounded up) that holds ``needed``."""
        k = max(0, math.ceil(math.log(max(needed, 1) / cls.CAPACITY_FLOOR) / math.log(cls.CAPACITY_RATIO) - 1e-9))
        return math.ceil(cls.CAPACITY_FLOOR * cls.CAPACITY_RATIO**k)

    def capacities(self, indices) -> tuple[int, int]:
        """(node capacity, edge capacity) of the batch ``indices``: room for its nodes plus one padding node, and for
        its edges."""
        chosen = np.asarray(indices, dtype=np.int64)
        return self.capacity(int(self._nodes[chosen].sum()) + 1), self.capacity(int(self._edges[chosen].sum()))

    def positive_count(self, indices) -> int:
        """How many nodes of the graphs ``indices`` are labelled 1."""
        return int(self._positives[np.asarray(indices, dtype=np.int64)].sum())

    def padded_indices(self, indices, node_capacity: int, edge_capacity: int, positive_capacity: int | None = None) -> np.ndarray:
        """One int64 array for a captured step's static buffer (``padded_layout`` gives its parts' sizes): the batch's
        node rows padded with ``pad_node`` to ``node_capacity``, its edge rows padded with ``pad_edge`` to
        ``edge_capacity``, the edges' node offsets (``node_capacity`` - 1 for padding edges: the last padding node),
        then the number of real nodes.

        With ``positive_capacity``, for a step that also pools per graph and reads the positive nodes, three parts
        follow: each node's graph in the batch (padding nodes: one graph more, ``len(indices)``), the batch's positive
        nodes padded with the last padding node to ``positive_capacity``, and the number of real positives."""
        node_ids, edge_ids, edge_shift, graph_of_node = self._index_arrays(indices)
        if len(node_ids) >= node_capacity or len(edge_ids) > edge_capacity:
            raise ValueError(f"a batch of {len(node_ids)} nodes and {len(edge_ids)} edges does not fit capacities "
                             f"{node_capacity} and {edge_capacity} (a node capacity needs one padding node)")
        parts = [
            node_ids, np.full(node_capacity - len(node_ids), self.pad_node),
            edge_ids, np.full(edge_capacity - len(edge_ids), self.pad_edge),
            edge_shift, np.full(edge_capacity - len(edge_ids), node_capacity - 1),
            [len(node_ids)],
        ]
        if positive_capacity is not None:
            positive = np.flatnonzero(self._labels[node_ids] == 1)
            if len(positive) > positive_capacity:
                raise ValueError(f"a batch of {len(positive)} positives does not fit capacity {positive_capacity}")
            parts += [graph_of_node, np.full(node_capacity - len(node_ids), len(np.asarray(indices))),
                      positive, np.full(positive_capacity - len(positive), node_capacity - 1), [len(positive)]]
        return np.concatenate(parts).astype(np.int64)

    @staticmethod
    def padded_layout(node_capacity: int, edge_capacity: int, positive_capacity: int | None = None) -> list[int]:
        """Sizes of ``padded_indices``' parts, for ``torch.split``: node rows, edge rows, edge offsets, real nodes, and
        with ``positive_capacity`` node graphs, positive nodes, real positives."""
        sizes = [node_capacity, edge_capacity, edge_capacity, 1]
        return sizes if positive_capacity is None else [*sizes, node_capacity, positive_capacity, 1]

    def padded_to_device(self, packed: np.ndarray, out: torch.Tensor) -> None:
        """Copy ``padded_indices``' array into the device buffer ``out`` without waiting for the device."""
        out.copy_(self._host(packed), non_blocking=True)


def encode_contexts(encoder, graphs: list[Data], device, batch_size: int = 64) -> torch.Tensor:
    """Context vector of every graph, in order, computed in batches of whole graphs."""
    out = [encoder(b.x, b.edge_index, b.batch, b.num_graphs) for b in GraphStack(graphs, device).in_order(batch_size)]
    return torch.cat(out) if out else torch.zeros((0, encoder.pool.nn.out_features), device=device)


class ContextEncoder(nn.Module):
    """GATv2 layers over the residue graph, then attention pooling to one context vector per protein.

    Every node attends to itself as well as to its neighbours: the self loops are appended to the edges once per
    forward pass, where each ``GATv2Conv`` (``add_self_loops=True``) would first remove any self loop with a boolean
    mask, whose data-dependent size makes the host wait for the device and cannot be captured in a CUDA graph. The
    residue graphs hold no self loops (``siteaug.features.residues``: the diagonal is never an edge), so the layers
    see the same edges, in the same order, as GATv2Conv's own self loops give; the weights are the same modules."""

    def __init__(self, in_dim: int, hidden: int, context: int, layers: int, heads: int):
        super().__init__()
        self.input = nn.Linear(in_dim, hidden)
        self.convs = nn.ModuleList(GATv2Conv(hidden, hidden // heads, heads=heads, add_self_loops=False) for _ in range(layers))
        self.norms = nn.ModuleList(nn.LayerNorm(hidden) for _ in range(layers))
        self.pool = AttentionalAggregation(gate_nn=nn.Linear(hidden, 1), nn=nn.Linear(hidden, context))

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor, batch: torch.Tensor, num_graphs: int) -> torch.Tensor:
        loops = torch.arange(x.shape[0], device=x.device).expand(2, -1)
        edge_index = torch.cat([edge_index, loops], dim=1)
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
