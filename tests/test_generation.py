import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import siteaug.generative.generation as generation
from conftest import FEATURES
from siteaug.features.graphs import encode_contexts, protein_contexts, protein_graphs
from siteaug.generative.diffusion import load_model, save_model
from siteaug.generative.generation import generate_candidates

COUNTS = pd.Series({"p0": 4, "p1": 0, "p2": 3})
# The tiny model has T = 10 steps, fewer than the default 20 sampler steps: these tests sample with the ancestral
# sampler over all T (tests/test_samplers.py covers the others).
ANCESTRAL = {"sampler": "ddpm", "sampler_steps": None}


def generate(model, tables, counts=COUNTS, seed=0, **kwargs):
    contexts = protein_contexts(model, *tables, FEATURES, ["p0", "p1", "p2"], "cpu")
    return generate_candidates(model, contexts, FEATURES, counts, seed=seed, device=torch.device("cpu"), progress=False,
                               **{**ANCESTRAL, **kwargs})


def test_protein_graphs(fake_tables):
    residues, edges = fake_tables
    shuffled = residues.sample(frac=1.0, random_state=0)
    graphs = protein_graphs(shuffled, edges, FEATURES, ["p2", "p0"])
    expected = residues[residues["protein_id"] == "p2"][FEATURES].to_numpy(np.float32)
    assert np.array_equal(graphs[0].x.numpy(), expected)  # position order, whatever the table order
    assert graphs[1].edge_index.shape == (2, 10) and graphs[1].y.tolist() == [1, 0, 0, 1, 0, 0]


def test_protein_graphs_match_graphs_built_protein_by_protein(fake_tables):
    # Shuffled residues, edges of the proteins interleaved, a protein with no edges, one asked for twice, and an edge
    # function of the rows: each graph must be what that protein's own rows give, in the order the ids were asked for.
    residues, edges = fake_tables
    edges = edges[edges["protein_id"] != "p1"].sample(frac=1.0, random_state=1).reset_index(drop=True)
    edges["w"] = np.arange(len(edges), dtype=np.float32)

    def weights(rows):
        return rows[["w"]].to_numpy(np.float32) * 2

    ids = ["p2", "p1", "p0", "p2"]
    graphs = protein_graphs(residues.sample(frac=1.0, random_state=0), edges, FEATURES, ids, edge_attributes=weights)
    assert len(graphs) == 4
    for pid, graph in zip(ids, graphs):
        own = residues[residues["protein_id"] == pid].sort_values("position")
        own_edges = edges[edges["protein_id"] == pid]
        assert np.array_equal(graph.x.numpy(), own[FEATURES].to_numpy(np.float32))
        assert graph.y.tolist() == own["label"].tolist()
        assert graph.edge_index.tolist() == [own_edges["src"].tolist(), own_edges["dst"].tolist()]
        assert np.array_equal(graph.edge_attr.numpy(), weights(own_edges))
    assert graphs[1].edge_index.shape == (2, 0) and graphs[1].edge_attr.shape == (0, 1)
    with pytest.raises(KeyError):
        protein_graphs(residues, edges, FEATURES, ["p9"])


def test_encode_contexts_batches_whole_graphs(model, fake_tables):
    graphs = protein_graphs(*fake_tables, FEATURES, ["p0", "p1", "p2"])
    with torch.inference_mode():
        together = encode_contexts(model.encoder, graphs, "cpu", batch_size=64)
        one_by_one = encode_contexts(model.encoder, graphs, "cpu", batch_size=1)
    assert together.shape == (3, model.config.context)
    torch.testing.assert_close(together, one_by_one, atol=1e-5, rtol=1e-5)


def test_protein_contexts_table(model, fake_tables):
    contexts = protein_contexts(model, *fake_tables, FEATURES, ["p2", "p0"], "cpu")
    assert contexts.index.tolist() == ["p2", "p0"] and contexts.shape == (2, model.config.context)
    with torch.inference_mode():
        direct = encode_contexts(model.encoder, protein_graphs(*fake_tables, FEATURES, ["p2", "p0"]), "cpu")
    np.testing.assert_array_equal(contexts.to_numpy(), direct.numpy())


def test_missing_cached_context_is_an_error(model, fake_tables):
    contexts = protein_contexts(model, *fake_tables, FEATURES, ["p0"], "cpu")
    with pytest.raises(ValueError, match="no cached context .* 'p2'"):
        generate_candidates(model, contexts, FEATURES, COUNTS, seed=0, device=torch.device("cpu"), progress=False)


def test_sampling_model_without_encoder(model, fake_tables, tmp_path):
    """The generate job loads the model without the context encoder: the same samples from the cached contexts."""
    save_model(model, tmp_path / "model.pt")
    light, _ = load_model(tmp_path / "model.pt", with_encoder=False)
    assert light.encoder is None
    contexts = protein_contexts(model, *fake_tables, FEATURES, ["p0", "p1", "p2"], "cpu")
    full = generate_candidates(model, contexts, FEATURES, COUNTS, seed=3, device=torch.device("cpu"), progress=False, **ANCESTRAL)
    alone = generate_candidates(light, contexts, FEATURES, COUNTS, seed=3, device=torch.device("cpu"), progress=False, **ANCESTRAL)
    pd.testing.assert_frame_equal(full, alone)


def test_generation_does_not_import_torch_geometric():
    code = "import sys, siteaug.generative.generation, siteaug.generative.diffusion; assert 'torch_geometric' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[1])


def test_counts_ids_and_columns(model, fake_tables):
    table = generate(model, fake_tables, chunk_size=3)
    assert list(table.columns) == ["protein_id", "candidate_id", *FEATURES]
    assert table.groupby("protein_id")["candidate_id"].apply(list).to_dict() == {"p0": [0, 1, 2, 3], "p2": [0, 1, 2]}
    assert "p1" not in set(table["protein_id"]) and np.isfinite(table[FEATURES].to_numpy()).all()


def test_seeded_for_a_given_chunk_size(model, fake_tables):
    # Chunking changes the order in which x_T and the step noise are drawn, so only (seed, chunk_size) fixes the rows.
    first = generate(model, fake_tables, seed=3, chunk_size=3)
    pd.testing.assert_frame_equal(first, generate(model, fake_tables, seed=3, chunk_size=3))
    assert not np.allclose(first[FEATURES], generate(model, fake_tables, seed=4, chunk_size=3)[FEATURES])


def test_the_progress_bar_names_the_chunk_and_sampler_step_and_changes_no_row(model, fake_tables, capsys, monkeypatch):
    contexts = protein_contexts(model, *fake_tables, FEATURES, ["p0", "p1", "p2"], "cpu")
    quiet = generate(model, fake_tables, seed=3, chunk_size=4)
    # Every step counts as "10 s later", so each one redraws the bar with its position.
    clock = iter(range(0, 10_000, 20))
    monkeypatch.setattr(generation.time, "perf_counter", lambda: float(next(clock)))
    shown = generate_candidates(model, contexts, FEATURES, COUNTS, seed=3, device=torch.device("cpu"), progress=True,
                                chunk_size=4, **ANCESTRAL)
    pd.testing.assert_frame_equal(quiet, shown)
    bars = capsys.readouterr().err
    steps = len(model.alpha_bar)  # T: the ancestral sampler visits every step
    for chunk in (1, 2):
        for step in (1, steps // 2, steps - 1):
            assert f"chunk {chunk} of 2, step {step}/{steps}" in bars, bars[-2000:]
    # A chunk's last step is drawn by the row update that follows it; the closed bar shows the end.
    assert bars.rstrip().rsplit("\r", 1)[-1].startswith("generate: 100%") and bars.rstrip().endswith(f"chunk 2 of 2, step {steps}/{steps}]")


def test_sample_reports_each_step_to_on_step(model):
    from siteaug.generative.diffusion import sample

    calls = []
    x_T = torch.randn(5, model.config.feature_dim, generator=torch.Generator().manual_seed(0))
    context = model.denoiser.context_modulation(torch.zeros(5, model.config.context))
    sample(model, context, x_T, torch.Generator().manual_seed(1), sampler="ddpm", on_step=lambda k, n: calls.append((k, n)))
    steps = len(model.alpha_bar)
    assert calls == [(k, steps) for k in range(1, steps + 1)]


def test_no_requested_rows(model, fake_tables):
    table = generate(model, fake_tables, counts=pd.Series({"p0": 0, "p1": 0}))
    assert table.empty and list(table.columns) == ["protein_id", "candidate_id", *FEATURES]


def fake_sampler(nan_rows):
    def fake(model, context_modulation, x_T, noise, **kwargs):
        out = x_T.clone()
        out[nan_rows] = float("nan")
        return out
    return fake


def test_nonfinite_rows_dropped_with_warning(model, fake_tables, monkeypatch, caplog):
    monkeypatch.setattr(generation, "sample", fake_sampler([0, 3, 6]))
    with caplog.at_level(logging.WARNING, logger="siteaug.generative.generation"):
        table = generate(model, fake_tables)
    assert "dropped 3 of 7" in caplog.text
    assert list(zip(table["protein_id"], table["candidate_id"])) == [("p0", 1), ("p0", 2), ("p2", 0), ("p2", 1)]


def test_mostly_nonfinite_is_an_error(model, fake_tables, monkeypatch):
    monkeypatch.setattr(generation, "sample", fake_sampler([1, 2, 3, 4, 5, 6]))
    with pytest.raises(RuntimeError, match="6 of 7"):
        generate(model, fake_tables)


def test_precision_options_on_cpu(model, fake_tables):
    reference = generate(model, fake_tables, seed=2, precision="fp32")
    for precision in ("tf32", "bf16"):  # both only change CUDA matmuls; on CPU the rows are the fp32 ones
        pd.testing.assert_frame_equal(generate(model, fake_tables, seed=2, precision=precision), reference)
    with pytest.raises(ValueError, match="unknown precision"):
        generate(model, fake_tables, precision="fp16")


def test_matmul_precision_is_restored():
    previous = torch.get_float32_matmul_precision()
    try:
        torch.set_float32_matmul_precision("medium")
        with generation.matmul_precision("fp32", torch.device("cpu")):
            assert torch.get_float32_matmul_precision() == "highest"
        assert torch.get_float32_matmul_precision() == "medium"
    finally:
        torch.set_float32_matmul_precision(previous)


def test_compile_only_when_it_pays():
    assert generation.compile_pays(True, 1) and not generation.compile_pays(False, 10**12)
    assert not generation.compile_pays("auto", 4_615_910 * 20)  # DNA-573 at the defaults: 20-step solver
    assert generation.compile_pays("auto", 4_615_910 * 200)  # the same rows through all-step DDPM


def test_compile_setting_keeps_auto_on_cuda_and_is_off_on_cpu():
    # "auto" must reach compile_pays as "auto": read as a plain truth value it would always compile.
    assert generation.compile_setting("auto", torch.device("cuda")) == "auto"
    assert generation.compile_setting(True, torch.device("cuda")) is True
    assert generation.compile_setting(True, torch.device("cpu")) is False
    assert generation.compile_setting("auto", torch.device("cpu")) is False


def test_bad_compile_option(model):
    with pytest.raises(ValueError, match="compile must be"):
        generation.ChunkedSampler(model, "ddpm", None, "fp32", "cpu", cuda_graph=False, compile="yes")
