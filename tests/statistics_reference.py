"""The bootstrap metrics as computed before the matrix-product version in siteaug/evaluation/statistics.py (kept only here).

The old ranking metrics take a weighted cumulative sum over every residue for each resample; the old per-protein
values call scikit-learn on each protein. tests/test_statistics.py checks that the new code gives the same numbers.
"""
import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score

from siteaug.evaluation.statistics import METRICS, _confusion_metrics


def ranking_metrics(labels, protein, scores, weights) -> dict[str, np.ndarray]:
    """Weighted AUROC (trapezoid) and average precision (step sum) per row of ``weights``, one cumsum per resample."""
    order = np.argsort(-scores, kind="stable")
    y = labels[order].astype(np.float64)
    prot = protein[order]
    s = scores[order]
    last = np.flatnonzero(np.r_[s[1:] != s[:-1], True])
    w = weights[:, prot]
    tp = np.cumsum(w * y, axis=1)[:, last]
    fp = np.cumsum(w * (1 - y), axis=1)[:, last]
    pos, neg = tp[:, -1:], fp[:, -1:]
    with np.errstate(divide="ignore", invalid="ignore"):
        tpr, fpr = tp / pos, fp / neg
        tpr0 = np.hstack([np.zeros_like(pos), tpr])
        fpr0 = np.hstack([np.zeros_like(neg), fpr])
        auroc = np.sum(np.diff(fpr0, axis=1) * (tpr0[:, 1:] + tpr0[:, :-1]) / 2, axis=1)
        precision = np.where(tp + fp > 0, tp / (tp + fp), 0.0)
        auprc = np.sum(np.diff(tpr0, axis=1) * precision, axis=1)
    auroc[(pos[:, 0] == 0) | (neg[:, 0] == 0)] = np.nan
    auprc[pos[:, 0] == 0] = np.nan
    return {"auprc": auprc, "auroc": auroc}


def per_protein_values(labels, protein, scores, threshold: float, n_proteins: int) -> np.ndarray:
    """(proteins × metrics), scikit-learn on each protein's residues; NaN rows for proteins lacking either class."""
    values = np.full((n_proteins, len(METRICS)), np.nan)
    for p in range(n_proteins):
        y, s = labels[protein == p], scores[protein == p]
        if y.size == 0 or y.min() == y.max():
            continue
        pred = s >= threshold
        counts = [np.float64(np.sum(pred & (y == a))) if predicted else np.float64(np.sum(~pred & (y == a)))
                  for predicted, a in ((1, 1), (1, 0), (0, 1), (0, 0))]
        ranking = {"auprc": average_precision_score(y, s), "auroc": roc_auc_score(y, s)}
        values[p] = [float({**ranking, **_confusion_metrics(*counts)}[m]) for m in METRICS]
    return values
