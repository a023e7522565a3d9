"""Generation-quality metrics on constructed cases whose answer is known."""
import numpy as np
import pytest

from siteaug.evaluation.sample_quality import (
    acceptance_rate,
    c2st_auc,
    continuous_columns,
    correlation_distance,
    dcr_summary,
    distance_to_closest,
    knn_precision_recall,
    loss_curve_figure,
    mean_wasserstein,
    pca_figure,
    sample_quality,
    score_histogram_figure,
    subsample,
)


def gaussian(n, d=6, shift=0.0, seed=0):
    return np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32) + np.float32(shift)


def test_same_distribution_has_high_precision_and_recall():
    precision, recall = knn_precision_recall(gaussian(800, seed=1), gaussian(800, seed=2), k=5)
    assert precision > 0.85 and recall > 0.85


def test_collapsed_generator_has_precision_but_no_recall():
    real = gaussian(800, seed=1)
    collapsed = real[:1].repeat(800, axis=0) + gaussian(800, seed=2) * 0.01  # every sample near one real row
    precision, recall = knn_precision_recall(real, collapsed, k=5)
    assert precision > 0.95 and recall < 0.05


def test_far_away_samples_have_neither():
    precision, recall = knn_precision_recall(gaussian(500, seed=1), gaussian(500, shift=20.0, seed=2), k=5)
    assert precision == 0.0 and recall == 0.0


def test_c2st_is_chance_for_one_distribution_and_one_for_a_shift():
    same = c2st_auc(gaussian(1000, seed=1), gaussian(1000, seed=2), seed=0)
    shifted = c2st_auc(gaussian(1000, seed=1), gaussian(1000, shift=3.0, seed=2), seed=0)
    assert abs(same - 0.5) < 0.07
    assert shifted > 0.98


def test_continuous_c2st_ignores_one_hot_columns_the_generator_blurs():
    rng = np.random.default_rng(0)
    real = np.column_stack([rng.normal(size=(800, 3)), rng.integers(0, 2, size=(800, 1)).astype(float)])
    synthetic = np.column_stack([rng.normal(size=(800, 3)), rng.uniform(0, 1, size=(800, 1))])
    assert list(continuous_columns(real)) == [True, True, True, False]
    metrics = sample_quality(real, real[:400], synthetic, seed=0, max_rows=800)
    assert metrics["c2st_auc"] > 0.9  # the blurred indicator gives the synthetic rows away
    assert metrics["c2st_auc_continuous"] < 0.65  # the rest of the row is indistinguishable


def test_c2st_refuses_too_few_rows():
    with pytest.raises(ValueError, match="at least 5 rows"):
        c2st_auc(gaussian(3), gaussian(100), seed=0)


def test_copies_of_training_rows_have_zero_dcr():
    real = gaussian(300, seed=1)
    copies = real[::3]
    assert np.allclose(distance_to_closest(copies, real), 0.0, atol=1e-3)
    unseen = gaussian(300, seed=2)
    summary = dcr_summary(distance_to_closest(copies, real), distance_to_closest(unseen, real))
    assert summary["dcr_synthetic_below_held_back_p5"] == 1.0  # every copy is closer than 95 % of unseen rows
    assert summary["dcr_synthetic_median"] < 1e-3 < summary["dcr_held_back_median"]


def test_dcr_is_the_exact_nearest_distance():
    reference = np.array([[0.0, 0.0], [10.0, 0.0]], np.float32)
    queries = np.array([[3.0, 4.0], [10.0, 1.0]], np.float32)
    np.testing.assert_allclose(distance_to_closest(queries, reference), [5.0, 1.0], rtol=1e-6)


def test_wasserstein_is_the_shift_and_zero_for_identical_rows():
    real = gaussian(2000, seed=1)
    assert mean_wasserstein(real, real) == 0.0
    assert mean_wasserstein(real, real + 0.7) == pytest.approx(0.7, rel=1e-5)  # W1 of a translation is its length


def test_correlation_distance_sees_a_broken_correlation():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(4000, 1))
    correlated = np.hstack([z, z + 0.1 * rng.normal(size=(4000, 1))])
    independent = rng.normal(size=(4000, 2))
    # off-diagonal entries ~1 vs ~0: Frobenius norm sqrt(2) over d = 2
    assert correlation_distance(correlated, independent) == pytest.approx(np.sqrt(2) / 2, abs=0.05)
    assert correlation_distance(correlated, correlated[::-1]) == pytest.approx(0.0, abs=1e-12)


def test_constant_column_does_not_make_nan():
    real = gaussian(200, d=3, seed=1)
    synthetic = gaussian(200, d=3, seed=2)
    synthetic[:, 2] = 1.0
    assert np.isfinite(correlation_distance(real, synthetic))


def test_acceptance_rate():
    assert acceptance_rate(np.array([0.1, 0.5, 0.9, 0.4]), 0.5) == 0.5
    with pytest.raises(ValueError, match="no scored candidates"):
        acceptance_rate(np.array([]), 0.5)


def test_subsample_is_seeded_and_bounded():
    rows = np.arange(100)[:, None]
    a = subsample(rows, 10, np.random.default_rng(3))
    assert len(a) == 10 and len(np.unique(a)) == 10
    assert np.array_equal(a, subsample(rows, 10, np.random.default_rng(3)))
    assert np.array_equal(subsample(rows, 500, np.random.default_rng(3)), rows)


def test_sample_quality_on_a_good_and_a_bad_generator(caplog):
    real, held = gaussian(600, seed=1), gaussian(300, seed=2)
    caplog.set_level("INFO", logger="siteaug.evaluation.sample_quality")
    good = sample_quality(real, held, gaussian(600, seed=3), seed=0, max_rows=500)
    # One record before each part of a job of minutes, for the console's progress line.
    assert [r.getMessage().split(":")[0].split(" (")[0] for r in caplog.records] == [
        "k-NN precision and recall", "C2ST", "distance to the closest real row"]
    bad = sample_quality(real, held, gaussian(600, shift=2.0, seed=3), seed=0, max_rows=500)
    assert good["rows_real_train"] == 500 and good["rows_held_back"] == 300
    assert good["c2st_auc"] < 0.65 < 0.95 < bad["c2st_auc"]
    assert good["knn_precision"] > bad["knn_precision"] and good["knn_recall"] > bad["knn_recall"]
    assert good["wasserstein_mean"] < 0.2 < 1.5 < bad["wasserstein_mean"]
    # a fresh sample of the real distribution sits as far from training rows as held-back rows do
    assert good["dcr_synthetic_below_held_back_p5"] < 0.15
    assert sample_quality(real, held, gaussian(600, seed=1), seed=0)["dcr_synthetic_median"] == 0.0  # the training rows


def test_sample_quality_refuses_tiny_sets():
    with pytest.raises(ValueError, match="held-back real rows"):
        sample_quality(gaussian(50), gaussian(3), gaussian(50), seed=0)


def test_figures_draw():
    history = [{"step": s, "train_loss": 1.0 / s, "validation_loss": 1.0 / s + 0.1, "validation_loss_online": 1.1 / s}
               for s in (10, 20, 30)]
    for fig in (pca_figure(gaussian(300, seed=1), gaussian(300, seed=2), seed=0),
                score_histogram_figure(np.linspace(0, 1, 50), 0.5), loss_curve_figure(history)):
        assert len(fig.axes) == 1 and fig.axes[0].has_data()
