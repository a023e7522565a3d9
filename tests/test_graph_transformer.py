"""The graph_transformer base model, its edge features, the embedding export and the embedding_* arms (CPU, tiny)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.metrics import average_precision_score

from siteaug.arms.graph_transformer import (
    EDGE_DIM,
    GraphTransformerClassifier,
    GraphTransformerConfig,
    ResidueGraphTransformer,
    attributed_graphs,
    edge_attributes,
    embedding_table,
    member_seed,
)
from siteaug.arms.protocol import embedding_arm, train_arm
from siteaug.features.graphs import GraphStack
from siteaug.features.residues import EDGE_GEOMETRY_COLUMNS, edge_geometry, residue_graph
from siteaug.runtime.tables import feature_columns

SETTINGS = {"hidden": 16, "layers": 2, "heads": 2, "dropout": 0.0, "alpha": 0.1, "epochs": 30, "patience": 30,
            "batch_proteins": 4, "lr": 1e-2, "weight_decay": 0.0, "members": 1, "tree_input": False,
            "cuda_graph": True, "compile": True}


def helix_backbone(length: int, rise: float = 1.5, radius: float = 2.3) -> np.ndarray:
    """An ideal-ish α-helix backbone (L, 4, 3): N, CA, C, O placed around the CA trace."""
    k = np.arange(length)
    angle = np.deg2rad(100.0) * k
    ca = np.column_stack([radius * np.cos(angle), radius * np.sin(angle), rise * k])
    n = ca + np.array([-0.5, 1.2, -0.6])
    c = ca + np.array([1.0, 0.3, 0.9])
    return np.stack([n, ca, c, c + np.array([0.5, 0.8, 0.2])], axis=1)


def test_edge_geometry_directions_are_unit_vectors_in_the_local_frame():
    backbone = helix_backbone(12)
    edges = residue_graph(backbone[:, 1], 12, 8.0)
    distances = np.linalg.norm(backbone[:, None, 1] - backbone[None, :, 1], axis=-1)
    geometry = edge_geometry(edges, distances, backbone)
    assert geometry.shape == (edges.shape[1], len(EDGE_GEOMETRY_COLUMNS))
    np.testing.assert_allclose(geometry[:, 0], distances[edges[0], edges[1]], rtol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(geometry[:, 1:4], axis=1), 1.0, rtol=1e-5)
    # A rigid motion of the whole protein leaves every geometry column unchanged (they are frame-relative).
    q, _ = np.linalg.qr(np.random.default_rng(0).normal(size=(3, 3)))
    moved = backbone @ q.T + np.array([5.0, -3.0, 2.0])
    np.testing.assert_allclose(edge_geometry(edges, distances, moved), geometry, atol=1e-5)
    # Without a structure: unknown distance (NaN) and zero orientation.
    bare = edge_geometry(edges, None, None)
    assert np.isnan(bare[:, 0]).all() and not bare[:, 1:].any()


def test_edge_attributes_encode_distance_separation_and_refuse_old_tables():
    edges = pd.DataFrame({"src": [0, 5, 3], "dst": [1, 0, 40], "distance": [3.8, np.nan, 9.0],
                          **{c: [0.0, 0.0, 0.0] for c in EDGE_GEOMETRY_COLUMNS[1:]}})
    attributes = edge_attributes(edges)
    assert attributes.shape == (3, EDGE_DIM)
    assert attributes[1, :16].sum() == 0 and attributes[1, 16] == 0  # unknown distance: no RBF, flag off
    assert attributes[0, 16] == 1 and attributes[0, :16].argmax() == np.abs(np.linspace(2, 22, 16) - 3.8).argmin()
    assert list(attributes[:, 17]) == [1, -1, 1]  # sign of dst - src
    with pytest.raises(ValueError, match="rerun the features rule"):
        edge_attributes(edges.drop(columns=["distance"]))


def planted_proteins(n_proteins: int = 24, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Proteins whose binding label depends on a *neighbour's* feature, which only message passing can see: residue
    i is positive when residue i+1's signal feature is high. Splits: 14 train, 5 validation, 5 test."""
    rng = np.random.default_rng(seed)
    rows, edge_rows = [], []
    for p in range(n_proteins):
        length = int(rng.integers(25, 40))
        signal = (rng.random(length) < 0.2).astype(float)
        label = np.append(signal[1:], 0).astype(np.int8)
        split = "train" if p < 14 else "validation" if p < 19 else "test"
        pid = f"p{p:02d}"
        noise = rng.normal(size=(length, 3))
        rows.append(pd.DataFrame({"protein_id": pid, "position": np.arange(length, dtype=np.int32), "residue": "A",
                                  "label": label, "split": split, "f_signal": signal, **{f"f_noise{k}": noise[:, k] for k in range(3)}}))
        edges = residue_graph(None, length, 0.0)
        edge_rows.append(pd.DataFrame({"protein_id": pid, "src": edges[0], "dst": edges[1],
                                       **dict(zip(EDGE_GEOMETRY_COLUMNS, edge_geometry(edges, None, None).T))}))
    return pd.concat(rows, ignore_index=True), pd.concat(edge_rows, ignore_index=True)


def classifier_settings() -> dict:
    return {"graph_transformer": SETTINGS, "threshold_metric": "mcc", "hidden": [16], "dropout": 0.0, "epochs": 30,
            "batch_size": 128, "lr": 3e-3, "mixed_precision": True, "cuda_graph": True,
            "early_stopping_patience": 5}


def test_graph_transformer_learns_a_neighbour_rule_and_keeps_its_best_validation_epoch():
    residues, edges = planted_proteins()
    predictions, models, summary = train_arm("graph_transformer", residues, classifier_settings(), 0.5, [0], edges=edges)
    auprc = average_precision_score(predictions["label"], predictions["score"])
    assert auprc > 0.9, auprc  # a per-residue model cannot: the label is a function of the next residue
    model = models[0]
    scores = [r["validation_auprc"] for r in model.history]
    assert summary[0]["best_epoch"] == model.best_epoch == 1 + int(np.argmax(scores))


def planted_split_graphs() -> tuple[list[str], dict[str, list]]:
    """The planted proteins' feature columns and their training and validation graphs."""
    residues, edges = planted_proteins()
    cols = [c for c in residues.columns if c.startswith("f_")]
    ids = {s: residues.loc[residues["split"] == s, "protein_id"].unique() for s in ("train", "validation")}
    return cols, {s: attributed_graphs(residues, edges, cols, ids[s]) for s in ids}


def test_compile_changes_nothing_on_a_cpu():
    """classifier.graph_transformer.compile is for CUDA only: on a CPU (the demo, the tests) both settings train the
    same eager network, bit for bit, and nothing is compiled (that would take about 40 s here)."""
    from torch._dynamo.utils import counters

    cols, graphs = planted_split_graphs()
    traced = sum(counters["stats"].values())
    scores = []
    for compiled in (True, False):
        config = GraphTransformerConfig(input_dim=len(cols), **{**SETTINGS, "epochs": 2, "compile": compiled}, seed=5)
        model = GraphTransformerClassifier(config).fit(graphs["train"], graphs["validation"])
        scores.append(model.predict_graphs(graphs["validation"]))
    np.testing.assert_array_equal(scores[0], scores[1])
    assert sum(counters["stats"].values()) == traced  # torch.compile traced nothing


def test_graph_transformer_is_deterministic_on_cpu_and_round_trips(tmp_path):
    cols, graphs = planted_split_graphs()
    config = GraphTransformerConfig(input_dim=len(cols), **{**SETTINGS, "epochs": 3}, seed=5)
    first = GraphTransformerClassifier(config).fit(graphs["train"], graphs["validation"])
    second = GraphTransformerClassifier(config).fit(graphs["train"], graphs["validation"])
    np.testing.assert_array_equal(first.predict_graphs(graphs["validation"]), second.predict_graphs(graphs["validation"]))
    first.save(tmp_path / "model.pt")
    loaded = GraphTransformerClassifier.load(tmp_path / "model.pt")
    np.testing.assert_array_equal(loaded.predict_graphs(graphs["validation"]), first.predict_graphs(graphs["validation"]))
    assert loaded.best_epoch == first.best_epoch


def test_a_padded_batch_gives_the_same_outputs_and_loss_on_its_real_nodes():
    # What the captured CUDA step computes, checked on the CPU: padding nodes and edges change nothing for real nodes.
    residues, edges = planted_proteins()
    cols = [c for c in residues.columns if c.startswith("f_")]
    stack = GraphStack(attributed_graphs(residues, edges, cols, residues["protein_id"].unique()), "cpu")
    network = ResidueGraphTransformer(GraphTransformerConfig(input_dim=len(cols), **SETTINGS)).eval()
    chosen = np.array([3, 0, 5])
    batch = stack.batch(chosen)
    node_capacity, edge_capacity = stack.capacities(chosen)
    packed = torch.from_numpy(stack.padded_indices(chosen, node_capacity, edge_capacity))
    node_ids, edge_ids, shift, real = packed.split([node_capacity, edge_capacity, edge_capacity, 1])
    x, edge_index, edge_attr, y = stack.gather(node_ids, edge_ids, shift)
    assert int(real) == len(batch.y) < node_capacity and len(batch.edge_index[0]) <= edge_capacity
    with torch.no_grad():
        padded, direct = network(x, edge_index, edge_attr), network(batch.x, batch.edge_index, batch.edge_attr)
    torch.testing.assert_close(padded[: len(batch.y)], direct, rtol=1e-5, atol=1e-6)
    per_node = torch.nn.functional.binary_cross_entropy_with_logits(padded, y.float(), reduction="none")
    mean = (per_node * (torch.arange(node_capacity) < real).float()).sum() / real.float()
    torch.testing.assert_close(mean.squeeze(), torch.nn.BCEWithLogitsLoss()(direct, batch.y.float()))
    assert (edge_index[:, len(batch.edge_index[0]):] == node_capacity - 1).all()  # padding edges: padding node only


needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (captured steps are CUDA-only)")


@needs_cuda
@pytest.mark.parametrize("option", ["cuda_graph", "compile"])
def test_captured_and_compiled_steps_train_as_eager_steps(option):
    """Captured steps against eager ones (neither compiled), then compiled against not (both captured)."""
    cols, graphs = planted_split_graphs()
    models = {}
    for on in (True, False):
        config = GraphTransformerConfig(input_dim=len(cols), **{**SETTINGS, "epochs": 4, "compile": False, option: on}, seed=2)
        models[on] = GraphTransformerClassifier(config, "cuda").fit(graphs["train"], graphs["validation"])
    assert [r["epoch"] for r in models[True].history] == [r["epoch"] for r in models[False].history]
    for a, b in zip(models[True].history, models[False].history):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-3)
    # Eager steps repeat bit for bit, but a padded batch (or a fused kernel) sums its loss and its scatters in another
    # order; 4 epochs at lr 1e-2 grow that to a largest weight difference of 2.8e-4 (H100, captured against eager). A
    # step reading wrong memory moves the first epoch's loss itself (0.258 against 0.471, bench/RESULTS.md).
    for a, b in zip(models[True].network.parameters(), models[False].network.parameters()):
        torch.testing.assert_close(a, b, rtol=2e-2, atol=2e-3)


@needs_cuda
def test_a_compiled_network_draws_new_dropout_masks_at_every_replay():
    """The compiled training step's dropout must draw afresh at each replay of its captured graph, as the eager
    network's does, not repeat the masks of the capture."""
    from siteaug.runtime.cuda_graphs import capture_step

    network = torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.Dropout(0.5)).cuda()
    runner = torch.compile(network, dynamic=True, fullgraph=True)
    optimiser = torch.optim.SGD(network.parameters(), lr=0.0)
    x, out = torch.ones(256, 64, device="cuda"), torch.zeros(256, 64, device="cuda")

    def step():
        y = runner(x)
        y.sum().backward()
        out.copy_(y.detach())

    graph = capture_step(step, list(network.parameters()), optimiser, torch.device("cuda"), keep=[out])
    masks = []
    for _ in range(3):
        graph.replay()
        masks.append((out != 0).cpu())
    assert 0.4 < masks[0].float().mean() < 0.6
    assert not torch.equal(masks[0], masks[1]) and not torch.equal(masks[1], masks[2])


@needs_cuda
def test_captured_cuda_steps_are_deterministic_with_dropout():
    """Compiled too (SETTINGS): the same seed gives the same dropout draws and the same model."""
    cols, graphs = planted_split_graphs()
    config = GraphTransformerConfig(input_dim=len(cols), **{**SETTINGS, "epochs": 4, "dropout": 0.3}, seed=2)
    runs = [GraphTransformerClassifier(config, "cuda").fit(graphs["train"], graphs["validation"]).predict_graphs(graphs["validation"])
            for _ in range(2)]
    np.testing.assert_array_equal(runs[0], runs[1])


def test_embedding_table_is_what_the_head_reads():
    residues, edges = planted_proteins()
    cols = [c for c in residues.columns if c.startswith("f_")]
    train_ids = residues.loc[residues["split"] == "train", "protein_id"].unique()
    config = GraphTransformerConfig(input_dim=len(cols), **{**SETTINGS, "epochs": 2})
    model = GraphTransformerClassifier(config).fit(attributed_graphs(residues, edges, cols, train_ids), [])
    shuffled = residues.sample(frac=1.0, random_state=0)
    table = embedding_table(model, shuffled, edges, cols)
    assert list(table.columns[:5]) == ["protein_id", "position", "residue", "label", "split"]
    emb_cols = [c for c in table.columns if c.startswith("f_emb_")]
    assert len(emb_cols) == SETTINGS["hidden"] and len(table) == len(residues)
    assert table[["protein_id", "position"]].equals(
        residues.sort_values(["protein_id", "position"])[["protein_id", "position"]].reset_index(drop=True))
    # The network's own head applied to the exported embeddings gives the network's own probabilities.
    with torch.inference_mode():
        head = torch.sigmoid(model.network.head(torch.tensor(table[emb_cols].to_numpy(np.float32))).squeeze(-1)).numpy()
    ordered = residues.sort_values(["protein_id", "position"])
    direct = model.predict_graphs(attributed_graphs(ordered, edges, cols, list(dict.fromkeys(ordered["protein_id"]))))
    np.testing.assert_allclose(head, direct, atol=1e-5)


def test_embedding_arms_run_their_base_protocol_on_the_embedding_table():
    assert embedding_arm("embedding_diffusion") == "diffusion" and embedding_arm("diffusion") is None
    residues, _ = planted_proteins()
    table = residues.rename(columns={c: c.replace("f_", "f_emb_") for c in residues.columns if c.startswith("f_")})
    predictions, _, summary = train_arm("embedding_smote", table, classifier_settings(), 0.5, [0, 1])
    assert sorted(predictions["seed"].unique()) == [0, 1]
    assert summary[0]["positive_ratio"] == pytest.approx(0.5, abs=0.01)  # SMOTE balanced the embedding rows
    with pytest.raises(ValueError, match="balanced training table"):
        train_arm("embedding_diffusion", table, classifier_settings(), 0.5, [0])


def test_members_are_a_deep_ensemble_whose_first_member_is_the_single_model(tmp_path):
    residues, edges = planted_proteins()
    cols = feature_columns(residues)
    graphs = {s: attributed_graphs(residues[residues.split == s], edges, cols, residues.loc[residues.split == s, "protein_id"].unique())
              for s in ("train", "validation")}
    single = GraphTransformerClassifier(GraphTransformerConfig(input_dim=len(cols), **{**SETTINGS, "epochs": 3}, seed=5))
    single.fit(graphs["train"], graphs["validation"])
    ensemble = GraphTransformerClassifier(GraphTransformerConfig(input_dim=len(cols), **{**SETTINGS, "epochs": 3, "members": 3}, seed=5))
    ensemble.fit(graphs["train"], graphs["validation"])
    assert len(set(member_seed(5, m) for m in range(3)) | {6, 7}) == 5  # members never reuse the arm's next seeds
    assert len(ensemble.best_epochs) == 3 and ensemble.best_epoch == single.best_epoch
    # The first member is the single model; the ensemble's probability is the mean over its members.
    np.testing.assert_array_equal(ensemble.embed_graphs(graphs["validation"]), single.embed_graphs(graphs["validation"]))
    per_member = [GraphTransformerClassifier(ensemble.config) for _ in range(3)]
    for member, network in zip(per_member, ensemble.networks):
        member.networks = [network]
    expected = np.mean([m.predict_graphs(graphs["validation"]) for m in per_member], axis=0)
    np.testing.assert_allclose(ensemble.predict_graphs(graphs["validation"]), expected, rtol=1e-6)
    assert not np.allclose(ensemble.predict_graphs(graphs["validation"]), single.predict_graphs(graphs["validation"]))
    ensemble.save(tmp_path / "m.pt")
    loaded = GraphTransformerClassifier.load(tmp_path / "m.pt")
    np.testing.assert_array_equal(loaded.predict_graphs(graphs["validation"]), ensemble.predict_graphs(graphs["validation"]))
    assert loaded.best_epochs == ensemble.best_epochs


def test_a_diverged_fit_stops_with_an_error_naming_the_epoch_and_the_setting():
    cols, graphs = planted_split_graphs()
    model = GraphTransformerClassifier(GraphTransformerConfig(input_dim=len(cols), **{**SETTINGS, "epochs": 3}, seed=5))
    with torch.no_grad():  # weights already non-finite: every step's loss is NaN
        next(model.networks[0].parameters()).fill_(float("nan"))
    with pytest.raises(FloatingPointError, match=r"diverged at epoch 1 .*classifier.graph_transformer.lr"):
        model.fit(graphs["train"], graphs["validation"])
