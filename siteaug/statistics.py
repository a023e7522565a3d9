"""Bootstrap over test proteins: metrics with confidence intervals, and paired differences between arms.

A bootstrap resample draws test proteins with replacement. It is stored as a count per protein (how many times the
protein was drawn), so every residue of a protein drawn twice counts twice. All arms are scored on the same
resamples, which makes differences between arms paired. Metrics are computed from weighted cumulative counts, one
sort per score vector for all resamples at once, instead of calling scikit-learn once per resample; the tests check
that each resample's value equals scikit-learn's on the explicitly duplicated rows.

Seeds: each arm is trained with several seeds. A metric of an arm is the mean over its seeds of the metric of each
seed's model; in every resample the same mean over seeds is taken. The interval is therefore the test-protein
uncertainty of the seed-averaged metric (seed-to-seed spread is reported separately, per seed).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score

from .io import InputError

RANKING_METRICS = ("auprc", "auroc")
THRESHOLD_METRICS = ("mcc", "f1", "precision", "recall", "specificity")
METRICS = RANKING_METRICS + THRESHOLD_METRICS
PRIMARY_METRIC = "auprc"
# Residue weights of one chunk of resamples are (chunk × residues) floats; this bounds that to ~32 MB.
_CHUNK_ELEMENTS = 4_000_000


@dataclass(frozen=True)
class ArmScores:
    """Scores of one arm on one test set: ``scores`` (seeds × residues), one frozen threshold per seed."""

    labels: np.ndarray  # (residues,) 0/1
    protein: np.ndarray  # (residues,) index into the test set's protein list
    scores: np.ndarray  # (seeds, residues)
    thresholds: np.ndarray  # (seeds,)


def protein_resamples(n_proteins: int, n_resamples: int, seed: int) -> np.ndarray:
    """(n_resamples, n_proteins) counts: how often each protein is drawn in each resample (rows sum to n_proteins)."""
    if n_proteins < 1 or n_resamples < 1:
        raise InputError(f"bootstrap needs at least one protein and one resample, got {n_proteins} and {n_resamples}")
    rng = np.random.default_rng(seed)
    return rng.multinomial(n_proteins, np.full(n_proteins, 1.0 / n_proteins), size=n_resamples).astype(np.float64)


def _confusion_metrics(tp, fp, fn, tn) -> dict[str, np.ndarray]:
    """Threshold metrics from (weighted) confusion counts, with scikit-learn's zero-division conventions (0)."""
    tp, fp, fn, tn = (np.asarray(v, dtype=np.float64) for v in (tp, fp, fn, tn))
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(tp + fp > 0, tp / (tp + fp), 0.0)
        recall = np.where(tp + fn > 0, tp / (tp + fn), 0.0)
        specificity = np.where(tn + fp > 0, tn / (tn + fp), 0.0)
        f1 = np.where(2 * tp + fp + fn > 0, 2 * tp / (2 * tp + fp + fn), 0.0)
        denominator = np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
        mcc = np.where(denominator > 0, (tp * tn - fp * fn) / denominator, 0.0)
    return {"mcc": mcc, "f1": f1, "precision": precision, "recall": recall, "specificity": specificity}


def _ranking_metrics(labels, protein, scores, weights) -> dict[str, np.ndarray]:
    """Weighted AUROC (trapezoid) and average precision (step sum, as scikit-learn) for each row of ``weights``."""
    order = np.argsort(-scores, kind="stable")
    y = labels[order].astype(np.float64)
    prot = protein[order]
    s = scores[order]
    # Only the last residue of each run of tied scores is a threshold: ties move together.
    last = np.flatnonzero(np.r_[s[1:] != s[:-1], True])
    chunk = max(1, _CHUNK_ELEMENTS // max(1, len(y)))
    auroc, auprc = [], []
    for start in range(0, len(weights), chunk):
        w = weights[start : start + chunk][:, prot]
        tp = np.cumsum(w * y, axis=1)[:, last]
        fp = np.cumsum(w * (1 - y), axis=1)[:, last]
        pos, neg = tp[:, -1:], fp[:, -1:]
        with np.errstate(divide="ignore", invalid="ignore"):
            tpr, fpr = tp / pos, fp / neg
            tpr0 = np.hstack([np.zeros_like(pos), tpr])
            fpr0 = np.hstack([np.zeros_like(neg), fpr])
            auroc.append(np.sum(np.diff(fpr0, axis=1) * (tpr0[:, 1:] + tpr0[:, :-1]) / 2, axis=1))
            precision = np.where(tp + fp > 0, tp / (tp + fp), 0.0)
            auprc.append(np.sum(np.diff(tpr0, axis=1) * precision, axis=1))
        # A resample without positives (or negatives) has no defined ranking metric.
        auroc[-1][(pos[:, 0] == 0) | (neg[:, 0] == 0)] = np.nan
        auprc[-1][pos[:, 0] == 0] = np.nan
    return {"auprc": np.concatenate(auprc), "auroc": np.concatenate(auroc)}


def pooled_metric_samples(labels, protein, scores, threshold: float, weights: np.ndarray) -> dict[str, np.ndarray]:
    """Every metric over all residues, for each protein-weight row in ``weights`` (resamples × proteins)."""
    labels = np.asarray(labels)
    protein = np.asarray(protein)
    scores = np.asarray(scores, dtype=np.float64)
    predicted = scores >= threshold
    n_proteins = weights.shape[1]
    # Per-protein confusion counts, then one matrix product gives them for every resample.
    counts = np.stack(
        [np.bincount(protein, weights=(predicted & (labels == a)) if p else (~predicted & (labels == a)), minlength=n_proteins)
         for p, a in ((1, 1), (1, 0), (0, 1), (0, 0))],
        axis=1,
    )
    tp, fp, fn, tn = (weights @ counts).T
    return {**_ranking_metrics(labels, protein, scores, weights), **_confusion_metrics(tp, fp, fn, tn)}


def per_protein_values(labels, protein, scores, threshold: float, n_proteins: int) -> np.ndarray:
    """(proteins × metrics) of each protein's own metrics; NaN rows for proteins lacking either class."""
    labels, protein, scores = np.asarray(labels), np.asarray(protein), np.asarray(scores, dtype=np.float64)
    values = np.full((n_proteins, len(METRICS)), np.nan)
    order = np.argsort(protein, kind="stable")
    bounds = np.searchsorted(protein[order], np.arange(n_proteins + 1))
    for p in range(n_proteins):
        rows = order[bounds[p] : bounds[p + 1]]
        y, s = labels[rows], scores[rows]
        if y.size == 0 or y.min() == y.max():
            continue
        pred = s >= threshold
        counts = [np.float64(np.sum(pred & (y == 1))), np.float64(np.sum(pred & (y == 0))),
                  np.float64(np.sum(~pred & (y == 1))), np.float64(np.sum(~pred & (y == 0)))]
        confusion = _confusion_metrics(*counts)
        ranking = {"auprc": average_precision_score(y, s), "auroc": roc_auc_score(y, s)}
        values[p] = [float({**ranking, **confusion}[m]) for m in METRICS]
    return values


def per_protein_metric_samples(values: np.ndarray, weights: np.ndarray) -> dict[str, np.ndarray]:
    """Mean over proteins (those with both classes) of each metric, for each protein-weight row."""
    eligible = ~np.isnan(values[:, 0])
    w = weights[:, eligible]
    with np.errstate(divide="ignore", invalid="ignore"):
        means = (w @ values[eligible]) / w.sum(axis=1, keepdims=True)
    return {m: means[:, k] for k, m in enumerate(METRICS)}


def arm_samples(arm: ArmScores, weights: np.ndarray, aggregation: str) -> dict[str, np.ndarray]:
    """(seeds × rows of weights) per metric, pooled over residues or averaged per protein."""
    n_proteins = weights.shape[1]
    per_seed = []
    for scores, threshold in zip(arm.scores, arm.thresholds):
        if aggregation == "pooled":
            per_seed.append(pooled_metric_samples(arm.labels, arm.protein, scores, threshold, weights))
        elif aggregation == "per_protein":
            values = per_protein_values(arm.labels, arm.protein, scores, threshold, n_proteins)
            per_seed.append(per_protein_metric_samples(values, weights))
        else:
            raise ValueError(f"aggregation must be 'pooled' or 'per_protein', got {aggregation!r}")
    return {m: np.stack([s[m] for s in per_seed]) for m in METRICS}


def interval(samples: np.ndarray, confidence: float) -> tuple[float, float]:
    """Percentile interval of the defined (non-NaN) bootstrap values."""
    tail = (1 - confidence) / 2 * 100
    finite = samples[~np.isnan(samples)]
    if finite.size == 0:
        return float("nan"), float("nan")
    low, high = np.percentile(finite, [tail, 100 - tail])
    return float(low), float(high)


def verdict(low: float, high: float) -> str:
    """'better', 'worse' or 'no detectable difference' from the interval of (arm − reference)."""
    if low > 0:
        return "better"
    if high < 0:
        return "worse"
    return "no detectable difference"


@dataclass
class Comparison:
    """Bootstrap results of several arms on one test set and one aggregation."""

    point: dict[str, dict[str, np.ndarray]]  # arm -> metric -> per-seed values on the full test set
    samples: dict[str, dict[str, np.ndarray]]  # arm -> metric -> per-resample seed-mean

    def summary(self, arm: str, metric: str, confidence: float) -> dict:
        low, high = interval(self.samples[arm][metric], confidence)
        seeds = self.point[arm][metric]
        return {"value": float(np.mean(seeds)), "low": low, "high": high, "per_seed": [float(v) for v in seeds]}

    def difference(self, arm: str, reference: str, metric: str, confidence: float) -> dict:
        diff = self.samples[arm][metric] - self.samples[reference][metric]
        low, high = interval(diff, confidence)
        value = float(np.mean(self.point[arm][metric]) - np.mean(self.point[reference][metric]))
        return {"difference": value, "low": low, "high": high, "verdict": verdict(low, high)}


def compare_arms(arms: dict[str, ArmScores], aggregation: str, n_resamples: int, seed: int) -> Comparison:
    """Point values (per seed) and bootstrap samples (seed means) of every arm on the same protein resamples."""
    first = next(iter(arms.values()))
    n_proteins = int(first.protein.max()) + 1
    weights = protein_resamples(n_proteins, n_resamples, seed)
    # Row 0 weighs every protein once: the full test set, computed by the same code as the resamples.
    weights = np.vstack([np.ones((1, n_proteins)), weights])
    point, samples = {}, {}
    for name, arm in arms.items():
        if not (np.array_equal(arm.labels, first.labels) and np.array_equal(arm.protein, first.protein)):
            raise InputError(f"arm {name!r}: its test residues differ from the first arm's; arms must share one test set")
        values = arm_samples(arm, weights, aggregation)
        point[name] = {m: v[:, 0] for m, v in values.items()}
        samples[name] = {m: v[:, 1:].mean(axis=0) for m, v in values.items()}
    return Comparison(point, samples)
