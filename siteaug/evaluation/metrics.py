"""Per-residue classification metrics and the validation-chosen decision threshold."""
from __future__ import annotations

import numpy as np
from sklearn.metrics import (
    average_precision_score,
    f1_score,
    matthews_corrcoef,
    precision_score,
    recall_score,
    roc_auc_score,
)

from siteaug.runtime.io import InputError

METRIC_KEYS = (
    "f1", "mcc", "auroc", "auprc", "precision", "recall", "specificity", "threshold", "n_residues", "n_positives",
)
# Scores this close to the best count as tied: float rounding must not decide between equally good thresholds.
_TIE_TOL = 1e-12


def _check(y_true, scores, where: str, split: str) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y_true).ravel()
    s = np.asarray(scores, dtype=float).ravel()
    if y.shape != s.shape:
        raise InputError(f"{where}: {y.size} labels but {s.size} scores")
    if not np.isin(y, (0, 1)).all():
        raise InputError(f"{where}: labels must be 0/1")
    if not np.isfinite(s).all():
        raise InputError(f"{where}: scores must be finite (found NaN or inf)")
    n_pos = int(y.sum())
    if n_pos == 0 or n_pos == y.size:
        kind = "no positives" if n_pos == 0 else "no negatives"
        raise InputError(f"{where}: the {split} split has {kind} ({n_pos} of {y.size} residues); both classes are needed")
    return y.astype(np.int64), s


def choose_threshold(y_true, scores, metric: str = "mcc") -> float:
    """Return the score threshold (predict positive when ``score >= threshold``) that maximises MCC or F1.

    Candidates are the unique score values. Among thresholds tied for the best value (within 1e-12) the
    smallest is returned, i.e. ties favour recall. Runs in O(n log n): one sort, then cumulative counts.
    """
    if metric not in ("mcc", "f1"):
        raise InputError(f"threshold metric must be 'mcc' or 'f1', got {metric!r}")
    y, s = _check(y_true, scores, "choose_threshold", "validation")
    order = np.argsort(-s, kind="stable")
    s_desc, y_desc = s[order], y[order]
    # The last index of each run of equal scores: threshold = that score predicts every row up to it positive.
    last = np.flatnonzero(np.r_[s_desc[1:] != s_desc[:-1], True])
    tp = np.cumsum(y_desc)[last].astype(float)
    fp = (last + 1) - tp
    n_pos = float(y.sum())
    fn = n_pos - tp
    tn = (y.size - n_pos) - fp
    with np.errstate(divide="ignore", invalid="ignore"):
        if metric == "mcc":
            value = (tp * tn - fp * fn) / np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
        else:
            value = 2 * tp / (2 * tp + fp + fn)
    # sklearn's convention: an undefined score (zero denominator) counts as 0.
    value = np.nan_to_num(value, nan=0.0)
    tied = np.flatnonzero(value >= value.max() - _TIE_TOL)
    return float(s_desc[last[tied[-1]]])  # thresholds descend, so the last tied one is the smallest


def classification_metrics(y_true, scores, threshold: float) -> dict:
    """Threshold-dependent (f1, mcc, precision, recall, specificity) and ranking (auroc, auprc) metrics."""
    y, s = _check(y_true, scores, "classification_metrics", "evaluated")
    pred = (s >= threshold).astype(np.int64)
    return {
        "f1": float(f1_score(y, pred, zero_division=0)),
        "mcc": float(matthews_corrcoef(y, pred)),
        "auroc": float(roc_auc_score(y, s)),
        "auprc": float(average_precision_score(y, s)),
        "precision": float(precision_score(y, pred, zero_division=0)),
        "recall": float(recall_score(y, pred, zero_division=0)),
        "specificity": float(recall_score(y, pred, pos_label=0, zero_division=0)),
        "threshold": float(threshold),
        "n_residues": int(y.size),
        "n_positives": int(y.sum()),
    }
