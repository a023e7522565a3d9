"""EMA weights, early stopping on the validation loss, and determinism of diffusion training."""
import pytest
import torch
from torch import nn

from conftest import tiny_config
from siteaug.features.graphs import GraphStack, protein_graphs
from siteaug.generative.diffusion import load_model, save_model
from siteaug.generative.training import EmaWeights, _validation_loss, best_step, train_diffusion


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
