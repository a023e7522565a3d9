"""Out-of-fold tree scores (siteaug.arms.tree_scores): leak-free for training residues, joined to every residue."""
import numpy as np
import pandas as pd
import pytest
from threadpoolctl import threadpool_limits

from siteaug.arms.reference_models import GBDTClassifier
from siteaug.arms.tree_scores import TREE_SCORE_COLUMN, out_of_fold_tree_scores, tree_grid_point, with_tree_scores
from siteaug.runtime.io import write_json
from siteaug.runtime.tables import sorted_split

GBDT = {"learning_rates": [0.1], "max_leaf_nodes": [7], "max_iter": 30, "max_features": 1.0, "cv_folds": 3,
        "early_stopping_rounds": 2}


def residue_table(seed=0, proteins=12, length=40):
    """Proteins whose label follows f_a (learnable), split 8 train / 2 validation / 2 test."""
    rng = np.random.default_rng(seed)
    rows = []
    for k in range(proteins):
        split = "train" if k < 8 else "validation" if k < 10 else "test"
        a, b = rng.normal(size=length), rng.normal(size=length)
        label = (a + 0.3 * rng.normal(size=length) > 0.8).astype(np.int64)
        rows.append(pd.DataFrame({"protein_id": f"p{k:02d}", "position": np.arange(length), "label": label,
                                  "split": split, "f_a": a.astype(np.float32), "f_b": b.astype(np.float32)}))
    return pd.concat(rows, ignore_index=True)


def test_scores_cover_every_residue_and_rank_positives_high():
    residues = residue_table()
    table, summary = out_of_fold_tree_scores(residues, GBDT, seed=0)
    assert len(table) == len(residues) and table[TREE_SCORE_COLUMN].notna().all()
    assert summary["folds"] == 3 and summary["params"] == {"learning_rate": 0.1, "max_leaf_nodes": 7}
    merged = residues.merge(table, on=["protein_id", "position"])
    held_out = merged[merged["split"] != "train"]
    # The trees learn f_a: a positive scores above a negative far more often than chance.
    pos, neg = held_out.loc[held_out.label == 1, TREE_SCORE_COLUMN], held_out.loc[held_out.label == 0, TREE_SCORE_COLUMN]
    assert (pos.to_numpy()[:, None] > neg.to_numpy()[None]).mean() > 0.8


def test_a_training_residue_score_never_sees_its_own_label():
    residues = residue_table()
    before, _ = out_of_fold_tree_scores(residues, GBDT, seed=0)
    flipped = residues.copy()
    own = flipped["protein_id"] == "p03"
    flipped.loc[own, "label"] = 1 - flipped.loc[own, "label"]
    after, _ = out_of_fold_tree_scores(flipped, GBDT, seed=0)
    own_rows = before["protein_id"] == "p03"
    # p03's scores come from trees fitted on the other folds, so its own labels cannot move them ...
    np.testing.assert_array_equal(before.loc[own_rows, TREE_SCORE_COLUMN], after.loc[own_rows, TREE_SCORE_COLUMN])
    # ... while the validation and test residues, scored by trees that did fit on p03, do move.
    others = before["protein_id"].isin(["p08", "p09", "p10", "p11"])
    assert not np.array_equal(before.loc[others, TREE_SCORE_COLUMN], after.loc[others, TREE_SCORE_COLUMN])


def test_with_tree_scores_standardises_on_training_rows_and_refuses_stale_scores():
    residues = residue_table()
    table, _ = out_of_fold_tree_scores(residues, GBDT, seed=0)
    merged = with_tree_scores(residues, table)
    train = merged.loc[merged["split"] == "train", TREE_SCORE_COLUMN]
    assert abs(train.mean()) < 1e-5 and abs(train.std(ddof=0) - 1) < 1e-4
    assert list(merged.columns[:len(residues.columns)]) == list(residues.columns)
    with pytest.raises(ValueError, match="no tree score for residue .* of p05.*rerun the tree_scores rule"):
        with_tree_scores(residues, table[table["protein_id"] != "p05"])
    with pytest.raises(ValueError, match="already has"):
        with_tree_scores(merged, table)


def test_too_few_training_proteins_is_one_clear_error():
    residues = residue_table()
    residues.loc[residues["protein_id"] != "p00", "split"] = "validation"
    with pytest.raises(ValueError, match="at least 2 training proteins"):
        out_of_fold_tree_scores(residues, GBDT, seed=0)


def test_out_of_fold_trees_never_stop_early():
    # Stopping on held-out proteins would let their labels shape their own scores; early_stopping_rounds is the
    # gbdt arm's, so the scores must be those of max_iter iterations whatever it says.
    residues = residue_table()
    with_rounds, _ = out_of_fold_tree_scores(residues, GBDT, seed=0)
    without, _ = out_of_fold_tree_scores(residues, {**GBDT, "early_stopping_rounds": None}, seed=0)
    np.testing.assert_array_equal(with_rounds[TREE_SCORE_COLUMN], without[TREE_SCORE_COLUMN])


def test_fits_side_by_side_in_processes_give_the_same_scores():
    residues, grid = residue_table(), {**GBDT, "learning_rates": [0.1, 0.3], "max_leaf_nodes": [3, 7]}
    with threadpool_limits(1):  # one thread per fit, as each of the two processes gets
        one_at_a_time, chosen = out_of_fold_tree_scores(residues, grid, seed=0)
    side_by_side, chosen_too = out_of_fold_tree_scores(residues, grid, seed=0, threads=2)
    pd.testing.assert_frame_equal(side_by_side, one_at_a_time)
    assert chosen_too == chosen


GRID = {**GBDT, "learning_rates": [0.1, 1.0], "max_leaf_nodes": [3, 7]}


def test_its_fits_choose_the_gbdt_arms_grid_point_as_the_arm_itself_would(caplog):
    """The summary's gbdt entry is the arm's own tuning (same rows, folds, seed): its job reads it instead of fitting."""
    residues = residue_table()
    _, summary = out_of_fold_tree_scores(residues, GRID, seed=3)
    caplog.set_level("INFO")
    train = sorted_split(residues, "train")
    X = train[["f_a", "f_b"]].to_numpy(np.float32)
    arm_choice = GBDTClassifier(GRID, seed=3).tune(X, train["label"].to_numpy(), train["protein_id"].to_numpy())
    assert summary["gbdt"]["params"] == arm_choice and summary["gbdt"]["seed"] == 3 and summary["gbdt"]["settings"] == GRID
    lines = [r.getMessage() for r in caplog.records if "CV AUPRC" in r.getMessage()]
    assert len(summary["gbdt"]["grid"]) == 4 and len(lines) == 5
    for point, line in zip(summary["gbdt"]["grid"], lines):
        assert f"CV AUPRC {point['auprc']:.4f}, iterations per fold {tuple(point['iterations'])}" in line
    # Early stopping on the held-out folds ends some grid points' fits before max_iter (learning rate 1.0).
    assert any(min(point["iterations"]) < GRID["max_iter"] for point in summary["gbdt"]["grid"])


def test_the_row_order_of_the_residue_table_changes_nothing():
    residues = residue_table()
    shuffled = residues.sample(frac=1.0, random_state=0)
    table, summary = out_of_fold_tree_scores(residues, GRID, seed=0)
    table_too, summary_too = out_of_fold_tree_scores(shuffled, GRID, seed=0)
    pd.testing.assert_frame_equal(table_too, table)
    assert summary_too == summary


def test_the_gbdt_arm_reads_the_grid_point_only_if_fitted_with_its_settings_and_seed(tmp_path, caplog):
    _, summary = out_of_fold_tree_scores(residue_table(), GRID, seed=3)
    write_json(summary, tmp_path / "tree_scores.json")
    caplog.set_level("INFO")
    assert tree_grid_point(tmp_path / "tree_scores.json", GRID, 3) == summary["gbdt"]["params"]
    assert any("the tree_scores job's fits" in r.getMessage() for r in caplog.records)
    for settings, seed in (({**GRID, "max_iter": 31}, 3), (GRID, 4)):
        with pytest.raises(ValueError, match=r"tree_scores.json: its gbdt grid was not fitted .* rerun the tree_scores rule"):
            tree_grid_point(tmp_path / "tree_scores.json", settings, seed)
