"""Bootstrap over test proteins: metrics with confidence intervals, and paired differences between arms.

A bootstrap resample draws test proteins with replacement. It is stored as a count per protein (how many times the
protein was drawn), so every residue of a protein drawn twice counts twice. All arms are scored on the same
resamples, which makes differences between arms paired. Metrics are computed from weighted cumulative counts, one
sort per score vector for all resamples at once, then matrix products with the protein weights, instead of calling
scikit-learn once per resample; the tests check that each resample's value equals scikit-learn's on the explicitly
duplicated rows.

Seeds: each arm is trained with several seeds. A metric of an arm is the mean over its seeds of the metric of each
seed's model; in every resample the same mean over seeds is taken. The interval is therefore the test-protein
uncertainty of the seed-averaged metric (seed-to-seed spread is reported separately, per seed).
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from siteaug.runtime.io import InputError

RANKING_METRICS = ("auprc", "auroc")
THRESHOLD_METRICS = ("mcc", "f1", "precision", "recall", "specificity")
METRICS = RANKING_METRICS + THRESHOLD_METRICS
PRIMARY_METRIC = "auprc"
# Counts of one chunk of resamples at every recall step are (chunk × steps) floats; this bounds each to ~32 MB.
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
    """Weighted AUROC and average precision (both as scikit-learn) for each row of ``weights`` (resamples × proteins).

    Scores are sorted once; a run of tied scores is one threshold. Recall only steps at thresholds whose tie run holds
    a positive ("steps"), so per step and protein the counts ranked so far are tabulated once, and every resample's
    counts at every step are one matrix product with its protein weights (exact in float64: integer counts and
    weights). Average precision is the sum of recall steps times precision at them. AUROC (the trapezoid under the
    ROC curve) equals the Mann-Whitney count of (positive, negative) pairs ranked in order, ties counting one half;
    that count is the quadratic form w·M·w, where M[p, q] counts such pairs of a positive of p and a negative of q.
    """
    labels, protein, scores = np.asarray(labels), np.asarray(protein), np.asarray(scores, dtype=np.float64)
    n_proteins = weights.shape[1]
    order = np.argsort(-scores, kind="stable")
    s, y, prot = scores[order], labels[order].astype(bool), protein[order]
    group = np.r_[0, np.cumsum(s[1:] != s[:-1])]
    steps = np.unique(group[y])
    # Residue -> first step at or after its tie run; residues after the last step land in an overflow row.
    at_step = np.searchsorted(steps, group)
    tied = at_step < len(steps)
    tied[tied] = steps[at_step[tied]] == group[tied]
    shape = (len(steps) + 1, n_proteins)
    cell = at_step * n_proteins + prot

    def count(rows):  # (step, protein) counts of the residues in ``rows``
        return np.bincount(cell[rows], minlength=shape[0] * shape[1]).reshape(shape).astype(np.float64)

    positives, negatives, negatives_tied = count(y), count(~y), count(~y & tied)
    positives_through = np.cumsum(positives, axis=0)[:-1]
    negatives_through = np.cumsum(negatives, axis=0)[:-1]
    negatives_below = negatives.sum(axis=0) - negatives_through
    pairs = positives[:-1].T @ (negatives_below + negatives_tied[:-1] / 2)
    pos, neg = weights @ positives.sum(axis=0), weights @ negatives.sum(axis=0)
    auprc = np.empty(len(weights))
    chunk = max(1, _CHUNK_ELEMENTS // max(1, len(steps)))
    for start in range(0, len(weights), chunk):
        w = weights[start : start + chunk]
        tp = w @ positives_through.T
        ranked = tp + w @ negatives_through.T
        with np.errstate(divide="ignore", invalid="ignore"):
            precision = np.where(ranked > 0, tp / ranked, 0.0)
        auprc[start : start + chunk] = np.sum((w @ positives[:-1].T) * precision, axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        auprc = auprc / pos
        auroc = np.sum((weights @ pairs) * weights, axis=1) / (pos * neg)
    # A resample without positives (or negatives) has no defined ranking metric.
    auroc[(pos == 0) | (neg == 0)] = np.nan
    auprc[pos == 0] = np.nan
    return {"auprc": auprc, "auroc": auroc}


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


def threshold_curves(labels, scores, thresholds) -> dict[str, np.ndarray]:
    """Every threshold metric (unweighted) at each of ``thresholds``, predicting positive where score >= threshold."""
    labels, scores = np.asarray(labels).astype(bool), np.asarray(scores, dtype=np.float64)
    thresholds = np.asarray(thresholds, dtype=np.float64)
    positive_scores, negative_scores = np.sort(scores[labels]), np.sort(scores[~labels])
    tp = len(positive_scores) - np.searchsorted(positive_scores, thresholds, side="left")
    fp = len(negative_scores) - np.searchsorted(negative_scores, thresholds, side="left")
    return _confusion_metrics(tp, fp, len(positive_scores) - tp, len(negative_scores) - fp)


def per_protein_values(labels, protein, scores, threshold: float, n_proteins: int) -> np.ndarray:
    """(proteins × metrics) of each protein's own metrics; NaN rows for proteins lacking either class.

    A protein's own metrics are the pooled metrics with weight 1 on that protein and 0 on every other.
    """
    labels, protein = np.asarray(labels), np.asarray(protein)
    own = pooled_metric_samples(labels, protein, scores, threshold, np.eye(n_proteins))
    values = np.stack([own[m] for m in METRICS], axis=1)
    positives = np.bincount(protein, weights=labels, minlength=n_proteins)
    residues = np.bincount(protein, minlength=n_proteins)
    values[(positives == 0) | (positives == residues)] = np.nan
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


def compare_arms(arms: dict[str, ArmScores], aggregation: str, n_resamples: int, seed: int, workers: int = 1) -> Comparison:
    """Point values (per seed) and bootstrap samples (seed means) of every arm on the same protein resamples.

    ``workers`` threads compute arms side by side (NumPy's products and array operations release the GIL); the
    values do not depend on it.
    """
    first = next(iter(arms.values()))
    n_proteins = int(first.protein.max()) + 1
    weights = protein_resamples(n_proteins, n_resamples, seed)
    # Row 0 weighs every protein once: the full test set, computed by the same code as the resamples.
    weights = np.vstack([np.ones((1, n_proteins)), weights])
    for name, arm in arms.items():
        if not (np.array_equal(arm.labels, first.labels) and np.array_equal(arm.protein, first.protein)):
            raise InputError(f"arm {name!r}: its test residues differ from the first arm's; arms must share one test set")
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        per_arm = dict(zip(arms, pool.map(lambda arm: arm_samples(arm, weights, aggregation), arms.values())))
    point = {name: {m: v[:, 0] for m, v in values.items()} for name, values in per_arm.items()}
    samples = {name: {m: v[:, 1:].mean(axis=0) for m, v in values.items()} for name, values in per_arm.items()}
    return Comparison(point, samples)
