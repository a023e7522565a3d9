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
from sklearn.model_selection import GroupKFold

from siteaug.arms.reference_models import fit_gbdt, gbdt_grid, parallel_fits, parallel_workers
from siteaug.runtime.tables import feature_columns, split_rows

log = logging.getLogger(__name__)

TREE_SCORE_COLUMN = "f_tree_logit"
# Scores are clipped before the logit, so a leaf of pure negatives gives a finite input.
_CLIP = 1e-4


def _fold_fit(gbdt_settings: dict, seed: int, params: dict, X_fit, y_fit, X_held, X_other) -> tuple:
    """One grid point's trees on one fold: (probabilities of the held-out rows, probabilities of the other rows)."""
    # No early stopping (validation=None: max_iter iterations): stopping on the held-out proteins would let their
    # labels shape their own scores, and stopping on the validation split would let its labels into the validation
    # rows' tree feature, on which the graph model chooses its epoch and threshold.
    model = fit_gbdt(gbdt_settings, seed, X_fit, y_fit, validation=None, **params)
    other = model.predict_proba(X_other)[:, 1] if len(X_other) else np.zeros(0)
    return model.predict_proba(X_held)[:, 1], other


def out_of_fold_tree_scores(residues: pd.DataFrame, gbdt_settings: dict, seed: int,
                            threads: int = 1) -> tuple[pd.DataFrame, dict]:
    """(table, summary): one row per residue of ``residues`` (protein_id, position, ``TREE_SCORE_COLUMN``: the logit of
    the out-of-fold tree probability) and what was chosen. ``gbdt_settings`` is the config's ``classifier.gbdt``.

    The grid points' fold fits are independent: with ``threads`` > 1 they run side by side (``parallel_fits``). The
    fits and the order they are assembled in are the same for any ``threads``."""
    cols = feature_columns(residues)
    train = split_rows(residues, "train")
    others = residues[residues["split"] != "train"]
    groups = train["protein_id"].to_numpy()
    folds = min(gbdt_settings["cv_folds"], len(np.unique(groups)))
    if folds < 2:
        raise ValueError("tree scores need at least 2 training proteins for out-of-fold scores")
    X, y = train[cols].to_numpy(np.float32), train["label"].to_numpy(np.int64)
    X_other = others[cols].to_numpy(np.float32)
    splits = list(GroupKFold(n_splits=folds).split(X, y, groups))
    grid = gbdt_grid(gbdt_settings)
    tasks = [(params, fit_rows, held_rows) for params in grid for fit_rows, held_rows in splits]
    log.info("tree scores: %d grid points x %d folds = %d fits, %d at a time", len(grid), folds, len(tasks),
             parallel_workers(threads, len(tasks)))
    fitted = parallel_fits(_fold_fit, [(gbdt_settings, seed, params, X[fit_rows], y[fit_rows], X[held_rows], X_other)
                                       for params, fit_rows, held_rows in tasks], threads)
    best = None
    for g, params in enumerate(grid):
        oof, other = np.zeros(len(train)), np.zeros(len(others))
        for (_, _, held_rows), (held, rest) in zip(tasks[g * folds : (g + 1) * folds], fitted[g * folds : (g + 1) * folds]):
            oof[held_rows] = held
            if len(others):
                other += rest / folds
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
    summary = {"folds": folds, "params": params, "out_of_fold_auprc": round(auprc, 5), "seed": seed}
    return table, summary


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
