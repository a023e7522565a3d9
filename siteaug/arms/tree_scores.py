"""Out-of-fold gradient-boosting scores of every residue, a node input of the graph model ("boost, then convolve").

Boosted trees are the strongest per-residue model on tabular profile features (the ``gbdt`` arm); a graph model is
strong where a residue's neighbourhood decides. Feeding the trees' score to the graph model as one more node feature
(the design of BGNN, Ivanov & Prokhorenkova, ICLR 2021, in its simplest, non-iterated form) lets the graph layers
smooth and correct the tree's per-residue evidence over the structure instead of relearning it from a few hundred
proteins.

Leak-free by construction: a training residue's score comes from trees fitted on the *other* training proteins
(GroupKFold over proteins), so the graph model never sees a score that has seen its own label; validation and test
residues get the mean of the same fold models, none of which saw a validation or test row. The leaf count and learning
rate are chosen from the ``classifier.gbdt`` grid by the pooled out-of-fold AUPRC, over training proteins only.
"""
from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score

from siteaug.arms.reference_models import gbdt_grid, gbdt_grid_choice, grouped_grid_fits
from siteaug.runtime.tables import feature_columns, sorted_split

log = logging.getLogger(__name__)

TREE_SCORE_COLUMN = "f_tree_logit"
# Scores are clipped before the logit, so a leaf of pure negatives gives a finite input.
_CLIP = 1e-4


def out_of_fold_tree_scores(residues: pd.DataFrame, gbdt_settings: dict, seed: int,
                            threads: int = 1) -> tuple[pd.DataFrame, dict]:
    """(table, summary): one row per residue of ``residues`` (protein_id, position, ``TREE_SCORE_COLUMN``: the logit of
    the out-of-fold tree probability) and what was chosen. ``gbdt_settings`` is the config's ``classifier.gbdt``.

    The fits are :func:`~siteaug.arms.reference_models.grouped_grid_fits`' on the training rows in the order the gbdt
    arm reads them (``sorted_split``), with the arm's first seed: the very fits with which the gbdt arm tunes its grid
    point. The summary's ``gbdt`` entry is that arm's choice (``gbdt_grid_choice``), so its job need not fit them
    again. The scores themselves use every iteration of each fit (never stopped early: stopping on the held-out
    proteins would let their labels shape their own scores, and stopping on the validation split would let its labels
    into the validation rows' tree feature, on which the graph model chooses its epoch and threshold). The fits run
    up to ``threads`` at a time; the results do not depend on it."""
    cols = feature_columns(residues)
    train = sorted_split(residues, "train")
    others = residues[residues["split"] != "train"]
    groups = train["protein_id"].to_numpy()  # fewer than 2 proteins: grouped_grid_fits says so in one line
    X, y = train[cols].to_numpy(np.float32), train["label"].to_numpy(np.int64)
    folds, fits = grouped_grid_fits(gbdt_settings, seed, X, y, groups, threads, X_other=others[cols].to_numpy(np.float32))
    best = None
    for params, fold_fits in zip(gbdt_grid(gbdt_settings), fits):
        oof, other = np.zeros(len(train)), np.zeros(len(others))
        for (_, held_rows), fit in zip(folds, fold_fits):
            oof[held_rows] = fit.held
            if len(others):
                other += fit.other / len(folds)
        auprc = float(average_precision_score(y, oof))
        log.info("tree scores: learning rate %g, %d leaves: out-of-fold AUPRC %.4f", params["learning_rate"], params["max_leaf_nodes"], auprc)
        if best is None or auprc > best[0]:
            best = (auprc, params, oof, other)
    auprc, params, oof, other = best
    table = pd.concat([
        pd.DataFrame({"protein_id": train["protein_id"].to_numpy(), "position": train["position"].to_numpy(), "p": oof}),
        pd.DataFrame({"protein_id": others["protein_id"].to_numpy(), "position": others["position"].to_numpy(), "p": other}),
    ], ignore_index=True)
    p = np.clip(table.pop("p").to_numpy(np.float64), _CLIP, 1 - _CLIP)
    table[TREE_SCORE_COLUMN] = np.log(p / (1 - p)).astype(np.float32)
    table = table.sort_values(["protein_id", "position"], kind="stable").reset_index(drop=True)
    summary = {"folds": len(folds), "params": params, "out_of_fold_auprc": round(auprc, 5), "seed": seed,
               "gbdt": {**gbdt_grid_choice(gbdt_settings, fits), "seed": seed, "settings": gbdt_settings}}
    return table, summary


def tree_grid_point(summary_path, gbdt_settings: dict, seed: int) -> dict:
    """The gbdt arm's grid point as the tree_scores job chose it (the ``gbdt`` entry of its summary at
    ``summary_path``), once that entry is checked to come from these ``classifier.gbdt`` settings and this first seed.
    Its per-grid-point scores are logged as the arm's own tuning logs them."""
    from siteaug.arms.reference_models import log_gbdt_grid_choice
    from siteaug.runtime.tables import read_json

    choice = read_json(summary_path).get("gbdt")
    if not choice or choice.get("settings") != gbdt_settings or choice.get("seed") != seed:
        raise ValueError(f"{summary_path}: its gbdt grid was not fitted with this run's classifier.gbdt settings and "
                         f"first seed {seed}: rerun the tree_scores rule")
    log_gbdt_grid_choice(choice, source=f" (the tree_scores job's fits, {summary_path})")
    return dict(choice["params"])


def with_tree_scores(residues: pd.DataFrame, scores: pd.DataFrame) -> pd.DataFrame:
    """``residues`` with ``TREE_SCORE_COLUMN`` appended, standardised with the training rows' mean and deviation (as
    every feature column is). Every residue must have a score: a missing one means the scores are stale."""
    if TREE_SCORE_COLUMN in residues.columns:
        raise ValueError(f"the residue table already has a {TREE_SCORE_COLUMN} column")
    merged = residues.merge(scores[["protein_id", "position", TREE_SCORE_COLUMN]], on=["protein_id", "position"],
                            how="left", validate="one_to_one")
    missing = merged[TREE_SCORE_COLUMN].isna()
    if missing.any():
        first = merged.loc[missing].iloc[0]
        raise ValueError(f"no tree score for residue {first['position']} of {first['protein_id']} "
                         f"({int(missing.sum())} residues): rerun the tree_scores rule")
    values = merged[TREE_SCORE_COLUMN].to_numpy(np.float64)
    in_train = (merged["split"] == "train").to_numpy()
    mean, std = values[in_train].mean(), values[in_train].std()
    merged[TREE_SCORE_COLUMN] = ((values - mean) / (std if std > 0 else 1.0)).astype(np.float32)
    return merged
