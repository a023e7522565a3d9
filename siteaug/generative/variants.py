"""Balanced training tables of the control arms: unfiltered diffusion rows, SMOTE rows through the quality filter,
and the diffusion ratio sweep. Each is real training rows plus synthetic positives, built by ``balance_training``.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from siteaug.generative.balance import balance_training, positives_needed
from siteaug.generative.quality import RealismModel, quality_scores
from siteaug.runtime.io import InputError


def unfiltered_table(
    train: pd.DataFrame, candidates: pd.DataFrame, quota: pd.Series, ratio: float, seed: int, feature_cols: list[str]
):
    """Generated candidates without the quality filter: per protein a seeded random ``quota[protein]`` of its
    candidates (the generation plan's, as the filter's top-k), then a seeded random subset of the size the ratio
    needs. Same counts as the filtered arm, no scores."""
    rng = np.random.default_rng(seed)
    shuffled = candidates.iloc[rng.permutation(len(candidates))]
    rank = shuffled.groupby("protein_id", sort=False).cumcount().to_numpy()
    per_protein = shuffled[rank < shuffled["protein_id"].map(quota).fillna(0).to_numpy()]
    n_pos = int(train["label"].sum())
    needed = positives_needed(n_pos, len(train) - n_pos, ratio)
    chosen = per_protein.iloc[np.sort(rng.choice(len(per_protein), size=min(needed, len(per_protein)), replace=False))]
    # balance_training keeps the highest-scored rows; every row here is kept, so a constant score changes nothing.
    return balance_training(train, chosen.assign(quality_score=np.float32(np.nan)), ratio, seed, feature_cols)


def smote_filtered_table(
    train: pd.DataFrame, critic, ratio: float, seed: int, feature_cols: list[str], sample_multiplier: int,
    threshold: float, knn_k: int, near_copy_fraction: float, device="cpu",
):
    """SMOTE candidates (``sample_multiplier`` × the positives needed) scored by the same critic × realism filter
    as the diffusion candidates; those at or above ``threshold`` enter, best first. Returns (table, summary)."""
    # Here, not at the top: of the balance_variant jobs only this one needs imbalanced-learn (about 1.5 s of CPU with
    # scikit-learn, at the start of a process of its own).
    from imblearn.over_sampling import SMOTE

    y = train["label"].to_numpy(np.int64)
    n_pos = int(y.sum())
    needed = positives_needed(n_pos, len(y) - n_pos, ratio)
    sampler = SMOTE(sampling_strategy={1: n_pos + sample_multiplier * needed}, k_neighbors=min(5, n_pos - 1), random_state=seed)
    X, _ = sampler.fit_resample(train[feature_cols].to_numpy(np.float32), y)
    candidates = X[len(y):].astype(np.float32)  # imbalanced-learn appends the new rows after the originals
    positives = train.loc[train["label"] == 1, feature_cols].to_numpy(np.float32)
    realism, near_copy = RealismModel.fit(positives, knn_k, device).score(candidates, near_copy_fraction)
    scores = quality_scores(critic.predict_proba(candidates), realism, near_copy)
    keep = scores >= threshold
    # SMOTE rows belong to no protein: the filter's per-protein top-k does not apply, the global ranking does.
    kept = pd.DataFrame(candidates[keep], columns=feature_cols).assign(
        protein_id="smote", candidate_id=np.flatnonzero(keep).astype(np.int64), quality_score=scores[keep]
    )
    table, summary = balance_training(train, kept, ratio, seed, feature_cols)
    summary |= {"candidates": int(len(candidates)), "near_copies": int(near_copy.sum()), "passed_filter": int(keep.sum())}
    return table, summary


def sweep_table(train: pd.DataFrame, filtered: pd.DataFrame, ratio: float, target_ratio: float, seed: int, feature_cols: list[str]):
    """The filtered synthetic rows (generated for ``target_ratio``) balanced to a smaller ``ratio``: the best-scored
    subset. A larger ratio than generated for would have to drop real negatives, so it is refused."""
    if ratio > target_ratio:
        raise InputError(
            f"config classifier.ratio_sweep: ratio {ratio:g} exceeds balance.target_positive_ratio {target_ratio:g}, "
            "which fixes how many candidates are generated"
        )
    return balance_training(train, filtered, ratio, seed, feature_cols)
