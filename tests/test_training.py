"""EMA weights, early stopping on the validation loss, and determinism of diffusion training."""
import copy

import numpy as np
import pytest
import torch
from torch import nn

from conftest import tiny_config, tiny_model
from siteaug.features.graphs import GraphStack, protein_graphs
from siteaug.generative.diffusion import load_model, save_model
from siteaug.generative.training import EmaWeights, _validation_loss, best_step, train_diffusion
from test_graph_stack import random_graphs


@pytest.fixture
def split_tables(fake_tables):
    residues, edges = fake_tables
    residues = residues.copy()
    residues.loc[residues["protein_id"] == "p2", "split"] = "validation"
    return residues, edges


def train(tables, **overrides):
    residues, edges = tables
    settings = dict(config=tiny_config(), steps=30, batch_proteins=2, lr=1e-2, seed=4, device=torch.device("cpu"),
                    eval_every=5, progress=False, ema_decay=0.9, patience=0)
    settings.update(overrides)
    return train_diffusion(residues, edges, **settings)


def test_ema_warms_up_then_uses_the_decay():
    online = nn.Linear(1, 1, bias=False)
    ema = EmaWeights(online, 0.5)
    values = [1.0, 3.0, 5.0, 7.0]
    expected = None
    for n, value in enumerate(values):
        online.weight.data.fill_(value)
        ema.update(online)
        # first update copies; then decay = min(0.5, (1 + n_before) / (10 + n_before)) with n_before = n
        expected = value if expected is None else expected + (1 - min(0.5, (1 + n) / (10 + n))) * (value - expected)
        assert ema.module.weight.item() == pytest.approx(expected, rel=1e-6)
    assert ema.module.weight.item() < values[-1]  # an average lags behind the online weights


def test_ema_decay_zero_follows_the_online_weights():
    online = nn.Linear(2, 1)
    ema = EmaWeights(online, 0.0)
    for value in (1.0, -2.0, 4.0):
        online.weight.data.fill_(value)
        ema.update(online)
        assert torch.equal(ema.module.weight, online.weight)


def test_ema_matches_torch_averaged_model_with_the_same_warm_up():
    from torch.optim.swa_utils import AveragedModel

    def warm_up(averaged, current, n_averaged):  # the reference: torch's average, decay warmed up by its own counter
        n = float(n_averaged)
        for a, c in zip(averaged, current):
            a.lerp_(c, 1 - min(0.9, (1 + n) / (10 + n)))

    torch.manual_seed(0)
    online = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1))
    ours, reference = EmaWeights(online, 0.9), AveragedModel(online, multi_avg_fn=warm_up, use_buffers=False)
    for _ in range(30):
        with torch.no_grad():
            for p in online.parameters():
                p.add_(torch.randn_like(p))
        ours.update(online)
        reference.update_parameters(online)
    for mine, theirs in zip(ours.module.parameters(), reference.module.parameters()):
        torch.testing.assert_close(mine, theirs, rtol=1e-6, atol=1e-6)


def test_training_is_deterministic_on_cpu(split_tables):
    a, history_a = train(split_tables)
    b, history_b = train(split_tables)
    assert history_a == history_b
    for name, value in a.state_dict().items():
        assert torch.equal(b.state_dict()[name], value), name


def test_history_and_returned_weights_are_the_best_evaluation(split_tables):
    model, history = train(split_tables)
    assert [r["step"] for r in history] == [5, 10, 15, 20, 25, 30]
    assert set(history[0]) == {"step", "train_loss", "validation_loss", "validation_loss_online"}
    residues, edges = split_tables
    cols = [c for c in residues.columns if c.startswith("f_")]
    val_batches = GraphStack(protein_graphs(residues, edges, cols, ["p2"]), "cpu").in_order(32)
    # the returned weights reproduce the lowest recorded validation loss, at the step best_step names
    best = min(r["validation_loss"] for r in history)
    assert _validation_loss(model, val_batches, torch.device("cpu"), seed=4) == pytest.approx(best, rel=1e-6)
    assert [r["validation_loss"] for r in history if r["step"] == best_step(history)] == [best]
    assert not model.training


def test_training_stops_after_patience_without_gain(split_tables):
    # lr 0: the weights never move, so no evaluation after the first improves and training stops after `patience`.
    _, history = train(split_tables, lr=0.0, patience=2, steps=50)
    assert [r["step"] for r in history] == [5, 10, 15]
    assert best_step(history) == 5


def test_no_validation_positives_trains_all_steps(fake_tables):
    model, history = train(fake_tables, patience=1, steps=12)
    assert [r["step"] for r in history] == [5, 10, 12]
    assert all(r["validation_loss"] is None for r in history) and best_step(history) is None


def test_trained_model_round_trips_through_load_model(split_tables, tmp_path):
    model, _ = train(split_tables, steps=10)
    save_model(model, tmp_path / "model.pt", {"best_step": 5})
    loaded, extra = load_model(tmp_path / "model.pt")
    assert extra == {"best_step": 5}
    for name, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], value), name


def test_mixed_precision_changes_nothing_on_cpu(split_tables):
    plain, history_plain = train(split_tables, steps=10)
    mixed, history_mixed = train(split_tables, steps=10, mixed_precision=True)
    assert history_plain == history_mixed
    for name, value in plain.state_dict().items():
        assert torch.equal(mixed.state_dict()[name], value), name


def test_context_encoder_attends_to_each_node_as_gatv2_self_loops_do():
    """The encoder appends the self loops once; GATv2Conv's own (add_self_loops=True) gives the same numbers."""
    from torch_geometric.nn import GATv2Conv

    model = tiny_model(seed=3, gnn_layers=2, feature_dim=5)
    graphs = random_graphs(5, seed=1, edge_attr=False)
    for g in graphs:  # the residue graphs have no self loop (siteaug.features.residues never makes one)
        g.edge_index = g.edge_index[:, g.edge_index[0] != g.edge_index[1]]
    batch = GraphStack(graphs, "cpu").batch(range(5))
    reference = copy.deepcopy(model.encoder)
    for k, conv in enumerate(model.encoder.convs):
        own_loops = GATv2Conv(conv.in_channels, conv.out_channels, heads=conv.heads)
        own_loops.load_state_dict(conv.state_dict())
        reference.convs[k] = own_loops
    with torch.no_grad():
        got = model.encoder(batch.x, batch.edge_index, batch.batch, batch.num_graphs)
        want = reference(batch.x, batch.edge_index, batch.batch, batch.num_graphs)
    assert torch.equal(got, want)


def test_a_padded_step_gives_the_real_graphs_contexts_and_a_loss_blind_to_padding():
    """What a captured train_diffusion step computes (training._CapturedSteps), run eagerly on the CPU."""
    model = tiny_model(seed=5, feature_dim=5)
    graphs = random_graphs(6, seed=2, edge_attr=False)
    for g in graphs:
        g.edge_index = g.edge_index[:, g.edge_index[0] != g.edge_index[1]]
    stack = GraphStack(graphs, "cpu")
    chosen = np.array([4, 0, 3])
    batch = stack.batch(chosen)
    key = (*stack.capacities(chosen), stack.capacity(stack.positive_count(chosen)))
    packed = torch.from_numpy(stack.padded_indices(chosen, *key))
    node_ids, edge_ids, shift, real_nodes, graph_of_node, positive, real_positives = packed.split(GraphStack.padded_layout(*key))
    assert int(real_nodes) == len(batch.y) and int(real_positives) == len(batch.positive) > 0
    assert torch.equal(positive[: len(batch.positive)], batch.positive) and (positive[len(batch.positive):] == key[0] - 1).all()
    assert torch.equal(graph_of_node[: len(batch.y)], batch.batch) and (graph_of_node[len(batch.y):] == len(chosen)).all()
    x, edge_index, _, _ = stack.gather(node_ids, edge_ids, shift)
    with torch.no_grad():
        padded = model.encoder(x, edge_index, graph_of_node, len(chosen) + 1)
        direct = model.encoder(batch.x, batch.edge_index, batch.batch, batch.num_graphs)
    torch.testing.assert_close(padded[: len(chosen)], direct, rtol=1e-5, atol=1e-6)
    # The padded loss: the mean over the real rows only; neither the padding rows' values nor their gradients count.
    x0 = x[positive].clone().requires_grad_(True)
    context = padded[graph_of_node[positive]]
    loss = model.loss(x0, context, torch.Generator().manual_seed(0), real_positives)
    loss.backward()
    assert (x0.grad[int(real_positives):] == 0).all() and x0.grad[: int(real_positives)].abs().sum() > 0
    scrambled = x0.detach().clone()
    scrambled[int(real_positives):] = 1e3
    assert model.loss(scrambled, context, torch.Generator().manual_seed(0), real_positives).item() == pytest.approx(loss.item(), rel=1e-6)
    # Without padding rows, the same draws give the plain mean.
    full = torch.tensor([len(x0)])
    assert model.loss(x0.detach(), context, torch.Generator().manual_seed(0), full).item() == pytest.approx(
        model.loss(x0.detach(), context, torch.Generator().manual_seed(0)).item(), rel=1e-6)


needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="captured CUDA graphs need a CUDA device")


@needs_cuda
def test_captured_cuda_steps_train_as_eager_steps_in_distribution(split_tables):
    """Captured steps draw other timesteps and noise than eager steps, so the runs match in loss level, not exactly;
    and a captured run repeats (to the last digits, which the GATv2 layers' atomic scatters on a GPU move)."""
    cuda = dict(device=torch.device("cuda"), steps=60, eval_every=20)
    eager, history_eager = train(split_tables, **cuda)
    captured, history_captured = train(split_tables, cuda_graph=True, **cuda)
    _, history_again = train(split_tables, cuda_graph=True, **cuda)
    for a, b in zip(history_captured, history_again, strict=True):
        assert a == pytest.approx(b, rel=1e-5)
    for a, b in zip(history_captured, history_eager):
        assert a["step"] == b["step"] and a["validation_loss"] == pytest.approx(b["validation_loss"], rel=0.25)
    assert history_captured[-1]["validation_loss"] < history_captured[0]["validation_loss"] * 1.05
