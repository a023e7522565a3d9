import numpy as np
import pandas as pd
import pytest

from siteaug.generative.balance import assign_shards, balance_training, generation_plan, positives_needed, shard_seed, synthetic_quota

FEATURES = ["f_a", "f_b"]


@pytest.mark.parametrize("pos, neg, ratio, expected", [(10, 90, 0.5, 80), (10, 90, 0.9, 800), (50, 50, 0.3, 0),
                                                        (0, 3, 0.25, 1), (0, 9, 0.1, 1), (10, 90, 0.1, 0)])
def test_positives_needed(pos, neg, ratio, expected):
    assert positives_needed(pos, neg, ratio) == expected
    if expected:
        assert (pos + expected) / (pos + expected + neg) >= ratio > (pos + expected - 1) / (pos + expected - 1 + neg)


def test_synthetic_quota():
    residues = pd.DataFrame({"protein_id": ["b"] * 10 + ["a"] * 4, "label": [1] * 2 + [0] * 8 + [1] * 3 + [0]})
    quota = synthetic_quota(residues, 0.5).set_index("protein_id")
    assert quota.index.tolist() == ["a", "b"]
    assert quota.loc["b"].tolist() == [2, 8, 6] and quota.loc["a"].tolist() == [3, 1, 0]


def test_assign_shards():
    quota = pd.DataFrame({"protein_id": [f"p{i}" for i in range(9)], "quota": [9, 1, 7, 3, 3, 0, 5, 8, 2]})
    shards = assign_shards(quota, 3)
    assert shards.index.equals(quota.index) and set(shards) == {0, 1, 2}
    assert assign_shards(quota.sample(frac=1.0, random_state=1), 3).sort_index().equals(shards)
    loads = quota.groupby(shards)["quota"].sum()
    assert loads.max() - loads.min() <= quota["quota"].max() and loads.sum() == 38


def test_generation_plan_holds_quota_shard_and_the_shard_seed():
    residues = pd.DataFrame({"protein_id": np.repeat([f"p{i}" for i in range(5)], 10),
                             "label": np.tile([1, 0, 0, 0, 0, 0, 0, 0, 0, 0], 5)})
    plan = generation_plan(residues, 0.5, 2, seed=7)
    assert list(plan.columns) == ["protein_id", "n_positive", "n_negative", "quota", "shard", "seed"]
    pd.testing.assert_frame_equal(plan.drop(columns=["shard", "seed"]), synthetic_quota(residues, 0.5))
    assert plan["shard"].tolist() == assign_shards(plan, 2).tolist() and set(plan["shard"]) == {0, 1}
    assert plan["seed"].tolist() == [shard_seed(7, s) for s in plan["shard"]]
    assert plan.groupby("shard")["seed"].nunique().eq(1).all() and plan["seed"].nunique() == 2
    assert generation_plan(residues, 0.5, 2, seed=8)["seed"].tolist() != plan["seed"].tolist()


def train_rows(n_proteins=4, length=250, seed=0):
    rng = np.random.default_rng(seed)
    n = n_proteins * length
    return pd.DataFrame({
        "protein_id": np.repeat([f"p{i}" for i in range(n_proteins)], length),
        "position": np.tile(np.arange(length), n_proteins).astype(np.int32),
        "label": (np.arange(n) % 10 == 0).astype(np.int8),  # 10 % positives
        "split": "train",
        **{c: rng.normal(size=n).astype(np.float32) for c in FEATURES},
    })


def synthetic_rows(n, seed=0, split="train"):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "protein_id": rng.choice(["p0", "p1", "p2", "p3"], n),
        "candidate_id": np.arange(n, dtype=np.int64),
        "quality_score": rng.permutation(n).astype(np.float32) / n,
        "split": split,
        **{c: rng.normal(size=n).astype(np.float32) for c in FEATURES},
    })


def keys(table, label):
    part = table[table["label"] == label]
    return set(zip(part["protein_id"], part["position"]))


def real_keys(table, label):
    return keys(table[table["origin"] == "real"], label)


def test_enough_synthetic():
    train, synthetic = train_rows(), synthetic_rows(400)
    table, summary = balance_training(train, synthetic, 0.3, seed=0, feature_cols=FEATURES)
    assert abs(summary["achieved_positive_ratio"] - 0.3) < 0.01 and summary["achieved_positive_ratio"] >= 0.3
    assert real_keys(table, 0) == keys(train, 0) and real_keys(table, 1) == keys(train, 1)  # all real rows kept
    used = table[table["origin"] == "synthetic"]
    assert len(used) == summary["synthetic_needed"] == 286
    assert set(used["candidate_id"]) == set(synthetic.nlargest(286, "quality_score")["candidate_id"])
    assert summary["real_negatives_kept"] == summary["real_negatives"] == 900


def test_too_few_synthetic_drops_negatives():
    train, synthetic = train_rows(), synthetic_rows(100)
    table, summary = balance_training(train, synthetic, 0.3, seed=0, feature_cols=FEATURES)
    assert abs(summary["achieved_positive_ratio"] - 0.3) < 0.01
    assert summary["synthetic_used"] == 100 and summary["real_negatives_kept"] == 466 < summary["real_negatives"]
    assert summary["rows"] == len(table) == summary["real_positives"] + summary["real_negatives_kept"] + summary["synthetic_used"]
    assert (table["label"] == 0).sum() == 466 and real_keys(table, 1) == keys(train, 1)
    again, _ = balance_training(train, synthetic, 0.3, seed=0, feature_cols=FEATURES)
    other, _ = balance_training(train, synthetic, 0.3, seed=1, feature_cols=FEATURES)
    pd.testing.assert_frame_equal(table, again)
    assert real_keys(table, 0) < keys(train, 0) and real_keys(table, 0) != real_keys(other, 0)


def test_synthetic_rows_are_marked_train():
    table, _ = balance_training(train_rows(), synthetic_rows(400, split="validation"), 0.3, seed=0, feature_cols=FEATURES)
    synthetic = table[table["origin"] == "synthetic"]
    assert (synthetic["position"] == -1).all() and (synthetic["label"] == 1).all()
    assert set(table["split"]) == {"train"} and set(table["origin"]) == {"real", "synthetic"}
    assert table["quality_score"][table["origin"] == "real"].isna().all()
