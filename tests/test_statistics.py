import numpy as np
import pytest
from sklearn.metrics import (
    average_precision_score,
    f1_score,
    matthews_corrcoef,
    precision_score,
    recall_score,
    roc_auc_score,
)

import statistics_reference
from siteaug.evaluation.statistics import (
    METRICS,
    ArmScores,
    _ranking_metrics,
    compare_arms,
    interval,
    per_protein_metric_samples,
    per_protein_values,
    pooled_metric_samples,
    protein_resamples,
    threshold_curves,
    verdict,
)
from siteaug.runtime.io import InputError


def _test_set(seed: int, n_proteins: int = 12, separation: float = 1.0):
    rng = np.random.default_rng(seed)
    sizes = rng.integers(20, 60, n_proteins)
    protein = np.repeat(np.arange(n_proteins), sizes)
    labels = (rng.random(protein.size) < 0.2).astype(np.int64)
    # Rounded scores make ties, so tied thresholds are exercised.
    scores = np.round(1 / (1 + np.exp(-(separation * (2 * labels - 1) + rng.normal(0, 1, protein.size)))), 2)
    return labels, protein, scores


def _sklearn(y, s, threshold):
    pred = (s >= threshold).astype(int)
    return {
        "auprc": average_precision_score(y, s), "auroc": roc_auc_score(y, s), "mcc": matthews_corrcoef(y, pred),
        "f1": f1_score(y, pred, zero_division=0), "precision": precision_score(y, pred, zero_division=0),
        "recall": recall_score(y, pred, zero_division=0), "specificity": recall_score(y, pred, pos_label=0, zero_division=0),
    }


@pytest.mark.parametrize("seed", range(3))
def test_every_resample_equals_sklearn_on_the_duplicated_proteins(seed):
    labels, protein, scores = _test_set(seed)
    weights = protein_resamples(12, 25, seed)
    samples = pooled_metric_samples(labels, protein, scores, 0.5, weights)
    for b in range(len(weights)):
        # The resample written out: each protein's residues repeated as often as the protein was drawn.
        rows = np.concatenate([np.flatnonzero(protein == p) for p in range(12) for _ in range(int(weights[b, p]))])
        expected = _sklearn(labels[rows], scores[rows], 0.5)
        for metric in METRICS:
            assert samples[metric][b] == pytest.approx(expected[metric], abs=1e-10), (b, metric)


@pytest.mark.parametrize("seed", range(4))
def test_matrix_product_metrics_equal_the_per_resample_cumsum(seed):
    # Sizes and tie patterns vary: scores rounded to 2 decimals (many ties) or continuous; some proteins have no
    # positive or no residue at all, and some resamples draw no positive.
    rng = np.random.default_rng(seed)
    n_proteins = int(rng.integers(3, 40))
    protein = np.repeat(np.arange(n_proteins), rng.integers(0, 80, n_proteins))
    labels = (rng.random(protein.size) < rng.uniform(0.02, 0.5)).astype(np.int64)
    labels[protein == 0] = 0
    scores = rng.random(protein.size) + labels * rng.uniform(0, 1)
    if seed % 2:
        scores = np.round(scores, 1)
    weights = np.vstack([np.ones((1, n_proteins)), np.eye(n_proteins), protein_resamples(n_proteins, 300, seed)])
    new, old = _ranking_metrics(labels, protein, scores, weights), statistics_reference.ranking_metrics(labels, protein, scores, weights)
    for metric in ("auprc", "auroc"):
        np.testing.assert_array_equal(np.isnan(new[metric]), np.isnan(old[metric]))
        np.testing.assert_allclose(new[metric], old[metric], rtol=0, atol=1e-9, equal_nan=True)
    np.testing.assert_allclose(per_protein_values(labels, protein, scores, 0.6, n_proteins),
                               statistics_reference.per_protein_values(labels, protein, scores, 0.6, n_proteins),
                               rtol=0, atol=1e-9, equal_nan=True)


def test_threshold_curves_equal_sklearn_at_every_threshold():
    labels, protein, scores = _test_set(2)
    thresholds = np.r_[np.linspace(0.0, 1.0, 41), np.unique(scores)[:5], 2.0]  # includes exact score values, all-negative
    curves = threshold_curves(labels, scores, thresholds)
    for k, t in enumerate(thresholds):
        expected = _sklearn(labels, scores, t)
        for metric in ("mcc", "f1", "precision", "recall", "specificity"):
            assert curves[metric][k] == pytest.approx(expected[metric], abs=1e-12), (t, metric)


def test_full_weights_give_the_plain_metrics():
    labels, protein, scores = _test_set(7)
    got = pooled_metric_samples(labels, protein, scores, 0.45, np.ones((1, 12)))
    expected = _sklearn(labels, scores, 0.45)
    assert {m: got[m][0] for m in METRICS} == pytest.approx(expected)


def test_resamples_are_seeded_counts_of_whole_proteins():
    a, b = protein_resamples(30, 200, 1), protein_resamples(30, 200, 1)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, protein_resamples(30, 200, 2))
    assert (a.sum(axis=1) == 30).all() and (a >= 0).all()
    assert a.mean() == pytest.approx(1.0)  # every protein equally likely
    with pytest.raises(InputError):
        protein_resamples(0, 10, 0)


def test_per_protein_mean_skips_single_class_proteins():
    labels, protein, scores = _test_set(3, n_proteins=5)
    labels[protein == 2] = 0  # protein 2 has no positive: no AUPRC, so it cannot enter the mean
    values = per_protein_values(labels, protein, scores, 0.5, 5)
    assert np.isnan(values[2]).all() and not np.isnan(np.delete(values, 2, axis=0)).any()
    for p in (0, 4):
        rows = protein == p
        assert values[p, METRICS.index("auprc")] == pytest.approx(average_precision_score(labels[rows], scores[rows]))
    means = per_protein_metric_samples(values, np.array([[1, 1, 1, 1, 1], [3, 0, 5, 0, 2]], float))
    ok = [0, 1, 3, 4]
    assert means["auroc"][0] == pytest.approx(values[ok, METRICS.index("auroc")].mean())
    assert means["auroc"][1] == pytest.approx((3 * values[0, 1] + 2 * values[4, 1]) / 5)


def _arm(labels, protein, scores_by_seed, threshold=0.5):
    return ArmScores(labels, protein, np.stack(scores_by_seed), np.full(len(scores_by_seed), threshold))


def test_a_clearly_better_arm_is_better_and_a_copy_shows_no_difference():
    labels, protein, weak = _test_set(0, n_proteins=40, separation=0.3)
    rng = np.random.default_rng(1)
    strong = 1 / (1 + np.exp(-(3.0 * (2 * labels - 1) + rng.normal(0, 1, labels.size))))
    arms = {"none": _arm(labels, protein, [weak, weak]), "strong": _arm(labels, protein, [strong, strong]),
            "copy": _arm(labels, protein, [weak, weak])}
    comparison = compare_arms(arms, "pooled", 1000, 0)
    better = comparison.difference("strong", "none", "auprc", 0.95)
    assert better["verdict"] == "better" and better["low"] > 0
    assert comparison.difference("none", "strong", "auroc", 0.95)["verdict"] == "worse"
    same = comparison.difference("copy", "none", "auprc", 0.95)
    assert same == {"difference": 0.0, "low": 0.0, "high": 0.0, "verdict": "no detectable difference"}
    summary = comparison.summary("strong", "auprc", 0.95)
    assert summary["low"] <= summary["value"] <= summary["high"]
    assert summary["value"] == pytest.approx(average_precision_score(labels, strong))


def test_seeds_are_averaged_in_every_resample():
    labels, protein, a = _test_set(4, n_proteins=20)
    _, _, b = _test_set(5, n_proteins=20)
    b = b[: a.size] if b.size >= a.size else np.resize(b, a.size)
    two = compare_arms({"x": _arm(labels, protein, [a, b])}, "pooled", 1000, 3)
    one_a = compare_arms({"x": _arm(labels, protein, [a])}, "pooled", 1000, 3)
    one_b = compare_arms({"x": _arm(labels, protein, [b])}, "pooled", 1000, 3)
    np.testing.assert_allclose(two.samples["x"]["mcc"], (one_a.samples["x"]["mcc"] + one_b.samples["x"]["mcc"]) / 2)
    assert two.summary("x", "auprc", 0.95)["per_seed"] == pytest.approx(
        [average_precision_score(labels, a), average_precision_score(labels, b)])


def test_arms_on_several_threads_give_the_same_values_in_the_same_order():
    labels, protein, a = _test_set(6, n_proteins=30)
    rng = np.random.default_rng(2)
    arms = {name: _arm(labels, protein, [np.clip(a + rng.normal(0, s, a.size), 0, 1) for _ in range(2)])
            for name, s in (("z", 0.05), ("a", 0.2), ("m", 0.4))}
    one, three = (compare_arms(arms, aggregation, 300, 1, workers) for aggregation, workers in (("pooled", 1), ("pooled", 3)))
    assert list(three.samples) == list(one.samples) == ["z", "a", "m"]
    for arm in arms:
        for metric in METRICS:
            np.testing.assert_array_equal(three.samples[arm][metric], one.samples[arm][metric])
            np.testing.assert_array_equal(three.point[arm][metric], one.point[arm][metric])


def test_arms_must_share_the_test_residues():
    labels, protein, scores = _test_set(0)
    other = labels.copy()
    other[0] = 1 - other[0]
    with pytest.raises(InputError, match="arm 'b'"):
        compare_arms({"a": _arm(labels, protein, [scores]), "b": _arm(other, protein, [scores])}, "pooled", 1000, 0)


def test_interval_and_verdict():
    samples = np.r_[np.arange(1000.0), np.nan]
    assert interval(samples, 0.95) == pytest.approx((np.percentile(np.arange(1000.0), 2.5), np.percentile(np.arange(1000.0), 97.5)))
    assert verdict(0.01, 0.2) == "better" and verdict(-0.2, -0.01) == "worse"
    assert verdict(-0.1, 0.1) == "no detectable difference" and verdict(0.0, 0.1) == "no detectable difference"
