"""The arms of the comparison: the same classifier trained on differently balanced training rows."""
from __future__ import annotations

import numpy as np
import pandas as pd
from imblearn.over_sampling import SMOTE

from .balance import positives_needed
from .classifier import MLPClassifier, MLPConfig
from .metrics import choose_threshold

ARMS = ("none", "smote", "diffusion")


def arm_training_rows(arm: str, train: pd.DataFrame, balanced: pd.DataFrame | None, ratio: float, seed: int, feature_cols: list[str]):
    """(X, y) an arm trains on. Only training-split rows ever enter; synthetic rows come only from ``balanced``."""
    if arm == "none":
        return train[feature_cols].to_numpy(np.float32), train["label"].to_numpy(np.int64)
    if arm == "smote":
        y = train["label"].to_numpy(np.int64)
        n_pos = int(y.sum())
        target = n_pos + positives_needed(n_pos, len(y) - n_pos, ratio)
        sampler = SMOTE(sampling_strategy={1: target}, k_neighbors=min(5, n_pos - 1), random_state=seed)
        X, y = sampler.fit_resample(train[feature_cols].to_numpy(np.float32), y)
        return X.astype(np.float32), y
    if arm == "diffusion":
        if balanced is None:
            raise ValueError("the diffusion arm needs the balanced training table")
        return balanced[feature_cols].to_numpy(np.float32), balanced["label"].to_numpy(np.int64)
    raise ValueError(f"unknown arm {arm!r}; known arms: {', '.join(ARMS)}")


def train_and_predict(X: np.ndarray, y: np.ndarray, residues: pd.DataFrame, feature_cols: list[str], config: MLPConfig, threshold_metric: str, device, progress=None):
    """Fit, freeze the threshold on the validation split, and return (model, test predictions)."""
    model = MLPClassifier(config, device).fit(X, y, progress=progress)
    validation = residues[residues["split"] == "validation"]
    threshold = choose_threshold(validation["label"].to_numpy(), model.predict_proba(validation[feature_cols].to_numpy(np.float32)), threshold_metric)
    test = residues[residues["split"] == "test"]
    predictions = pd.DataFrame(
        {
            "protein_id": test["protein_id"].to_numpy(),
            "position": test["position"].to_numpy(np.int32),
            "label": test["label"].to_numpy(np.int8),
            "score": model.predict_proba(test[feature_cols].to_numpy(np.float32)),
            "threshold": np.float32(threshold),
            "split": "test",
        }
    )
    predictions["predicted"] = (predictions["score"] >= threshold).astype(np.int8)
    return model, predictions
