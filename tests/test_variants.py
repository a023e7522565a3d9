import numpy as np
import pandas as pd
import pytest

from siteaug.arms.classifier import MLPClassifier, MLPConfig
from siteaug.generative.balance import generation_plan, positives_needed
from siteaug.generative.variants import smote_filtered_table, sweep_table, unfiltered_table
from siteaug.runtime.io import InputError

FEATURES = ["f_a", "f_b", "f_c"]


def _train(n_proteins=6, length=40, seed=0):
    rng = np.random.default_rng(seed)
    frames = []
    for p in range(n_proteins):
        label = (np.arange(length) % 8 == 0).astype(np.int8)
        X = rng.normal(size=(length, 3)).astype(np.float32) + label[:, None]
        frames.append(pd.DataFrame(X, columns=FEATURES).assign(protein_id=f"p{p}", position=np.arange(length), label=label, split="train"))
    return pd.concat(frames, ignore_index=True)


def _candidates(train, per_protein, seed=1):
    rng = np.random.default_rng(seed)
    rows = [pd.DataFrame(rng.normal(size=(per_protein, 3)).astype(np.float32), columns=FEATURES).assign(protein_id=pid, candidate_id=np.arange(per_protein))
            for pid in train["protein_id"].unique()]
    return pd.concat(rows, ignore_index=True)


def test_unfiltered_table_takes_the_needed_count_at_random_and_is_seeded():
    train = _train()
    candidates = _candidates(train, per_protein=200)
    quota = generation_plan(train, 0.5, 2, 0).set_index("protein_id")["quota"]
    table, summary = unfiltered_table(train, candidates, quota, 0.5, 0, FEATURES)
    needed = positives_needed(int(train["label"].sum()), int((train["label"] == 0).sum()), 0.5)
    assert summary["synthetic_used"] == needed and abs(table["label"].mean() - 0.5) < 0.01
    synthetic = table[table["origin"] == "synthetic"]
    assert synthetic["candidate_id"].max() > needed  # not simply the first candidates
    again, _ = unfiltered_table(train, candidates, quota, 0.5, 0, FEATURES)
    pd.testing.assert_frame_equal(table, again)
    other, _ = unfiltered_table(train, candidates, quota, 0.5, 1, FEATURES)
    assert not other["candidate_id"].equals(table["candidate_id"])


def test_smote_filtered_table_keeps_only_rows_passing_the_filter():
    train = _train()
    critic = MLPClassifier(MLPConfig(input_dim=3, hidden=(8,), epochs=5, batch_size=32, lr=1e-2, balanced=True)).fit(
        train[FEATURES].to_numpy(), train["label"].to_numpy())
    table, summary = smote_filtered_table(train, critic, 0.3, 0, FEATURES, 3, 0.5, 3, 0.1)
    synthetic = table[table["origin"] == "synthetic"]
    needed = positives_needed(int(train["label"].sum()), int((train["label"] == 0).sum()), 0.3)
    assert summary["candidates"] == 3 * needed and summary["passed_filter"] <= summary["candidates"]
    assert (synthetic["quality_score"] >= 0.5).all() and len(synthetic) == min(needed, summary["passed_filter"])
    assert set(table["split"]) == {"train"}


def test_sweep_table_is_the_best_scored_subset_and_refuses_larger_ratios():
    train = _train()
    filtered = _candidates(train, per_protein=40).assign(quality_score=lambda d: np.linspace(1, 0.5, len(d)).astype(np.float32))
    table, summary = sweep_table(train, filtered, 0.3, 0.5, 0, FEATURES)
    used = table[table["origin"] == "synthetic"]
    assert used["quality_score"].min() >= filtered["quality_score"].nlargest(len(used)).min()
    with pytest.raises(InputError, match="ratio_sweep"):
        sweep_table(train, filtered, 0.7, 0.5, 0, FEATURES)
