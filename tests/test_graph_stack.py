"""GraphStack batches exactly what torch-geometric's Batch.from_data_list batches, by index gathers."""
import numpy as np
import pytest
import torch
from torch_geometric.data import Batch, Data

from siteaug.features.graphs import GraphStack


def random_graphs(count: int, seed: int, edge_attr: bool) -> list[Data]:
    rng = np.random.default_rng(seed)
    graphs = []
    for k in range(count):
        n = int(rng.integers(1, 12))
        e = 0 if k == 1 else int(rng.integers(0, 3 * n))  # graph 1 has no edge at all
        graph = Data(x=torch.tensor(rng.normal(size=(n, 5)), dtype=torch.float32),
                     edge_index=torch.tensor(rng.integers(0, n, size=(2, e)), dtype=torch.int64),
                     y=torch.tensor(rng.integers(0, 2, size=n), dtype=torch.int64))
        if edge_attr:
            graph.edge_attr = torch.tensor(rng.normal(size=(e, 3)), dtype=torch.float32)
        graphs.append(graph)
    return graphs


@pytest.mark.parametrize("edge_attr", [False, True])
@pytest.mark.parametrize("chosen", [[0, 1, 2, 3, 4, 5, 6], [5, 1, 6, 2], [3], [1]])
def test_a_batch_equals_batch_from_data_list(edge_attr, chosen):
    graphs = random_graphs(7, seed=len(chosen), edge_attr=edge_attr)
    got = GraphStack(graphs, "cpu").batch(np.array(chosen))
    want = Batch.from_data_list([graphs[i] for i in chosen])
    assert torch.equal(got.x, want.x)
    assert torch.equal(got.edge_index, want.edge_index)
    assert torch.equal(got.y, want.y)
    assert torch.equal(got.batch, want.batch)
    assert got.num_graphs == want.num_graphs == len(chosen)
    assert torch.equal(got.positive, torch.from_numpy(np.flatnonzero(want.y.numpy() == 1)))
    assert GraphStack(graphs, "cpu").positive_count(np.array(chosen)) == int((want.y == 1).sum())
    if edge_attr:
        assert torch.equal(got.edge_attr, want.edge_attr)
    else:
        assert got.edge_attr is None


def test_in_order_covers_every_graph_once_and_positives_are_the_labelled_rows():
    graphs = random_graphs(9, seed=3, edge_attr=True)
    stack = GraphStack(graphs, "cpu")
    batches = stack.in_order(4)
    assert [b.num_graphs for b in batches] == [4, 4, 1]
    assert torch.equal(torch.cat([b.x for b in batches]), torch.cat([g.x for g in graphs]))
    assert torch.equal(stack.positives, torch.cat([g.x[g.y == 1] for g in graphs]))
    assert len(stack) == 9


def test_an_empty_stack_has_no_batches_and_mixed_edge_attributes_are_refused():
    assert GraphStack([], "cpu").in_order(4) == []
    graphs = random_graphs(2, seed=0, edge_attr=False)
    graphs[0].edge_attr = torch.zeros((graphs[0].edge_index.shape[1], 3))
    with pytest.raises(ValueError, match="edge_attr"):
        GraphStack(graphs, "cpu")


def test_capacities_hold_the_batch_plus_a_padding_node_and_waste_at_most_a_quarter():
    for needed in [0, 1, 255, 256, 257, 1000, 2241, 40000, 123457]:
        capacity = GraphStack.capacity(needed)
        assert capacity >= needed
        assert capacity <= max(GraphStack.CAPACITY_FLOOR, needed * GraphStack.CAPACITY_RATIO + 1)
    graphs = random_graphs(5, seed=2, edge_attr=True)
    stack = GraphStack(graphs, "cpu")
    nodes, edges = stack.capacities([0, 2])
    assert nodes > graphs[0].num_nodes + graphs[2].num_nodes
    with pytest.raises(ValueError, match="does not fit"):
        stack.padded_indices([0, 2], graphs[0].num_nodes + graphs[2].num_nodes, edges)


def test_padded_graph_steps_capture_once_per_bucket_and_refill_the_buffer(monkeypatch):
    """PaddedGraphSteps.run, the part of the captured training loops that runs without a GPU: a bucket's graph is
    captured at its first batch, later batches of that bucket only refill its static buffer and replay."""
    from siteaug.runtime import cuda_graphs

    monkeypatch.setattr(cuda_graphs.torch.cuda, "graph_pool_handle", lambda: None)
    monkeypatch.setattr(GraphStack, "CAPACITY_FLOOR", 4)  # buckets the size of these small graphs
    graphs = random_graphs(7, seed=4, edge_attr=False)
    stack = GraphStack(graphs, "cpu")
    events = []

    class Graph:
        def __init__(self, static):
            self.static = static

        def replay(self):
            events.append(("replay", self.static.clone()))

    class Steps(cuda_graphs.PaddedGraphSteps):
        def key(self, chosen):
            return stack.capacities(chosen)

        def capture(self, static, *key):
            events.append(("capture", key))
            return Graph(static)

    steps = Steps(stack)
    batches = [[0, 1], [1, 0], [0, 1, 2, 3, 4, 5, 6], [2, 3], [6, 5, 4, 3, 2, 1, 0]]
    for chosen in batches:
        steps.run(chosen)
    keys = [stack.capacities(c) for c in batches]
    assert 1 < len(set(keys)) < len(batches)
    assert [e[1] for e in events if e[0] == "capture"] == list(dict.fromkeys(keys))
    replays = [e[1] for e in events if e[0] == "replay"]
    assert len(replays) == len(batches)
    for chosen, key, buffer in zip(batches, keys, replays):
        assert torch.equal(buffer, torch.from_numpy(stack.padded_indices(chosen, *key)))
