
import numpy as np
import pytest
from sklearn.metrics import f1_score, matthews_corrcoef

from siteaug.evaluation.metrics import METRIC_KEYS, choose_threshold, classification_metrics
from siteaug.runtime.io import InputError


def _toy(seed: int, n: int = 300):
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.2).astype(int)
    # Rounding makes many equal scores, so the tie handling is exercised too.
    scores = np.round(np.clip(0.3 * y + rng.normal(0.4, 0.2, n), 0, 1), 2)
    return y, scores


def _brute_force(y, scores, metric):
    fn = matthews_corrcoef if metric == "mcc" else f1_score
    values = {t: fn(y, (scores >= t).astype(int)) for t in np.unique(scores)}
    best = max(values.values())
    return best, min(t for t, v in values.items() if v >= best - 1e-12)


@pytest.mark.parametrize("metric", ["mcc", "f1"])
@pytest.mark.parametrize("seed", range(6))
def test_choose_threshold_matches_brute_force(seed, metric):
    y, scores = _toy(seed)
    best, threshold = _brute_force(y, scores, metric)
    chosen = choose_threshold(y, scores, metric=metric)
    assert chosen == pytest.approx(threshold)
    fn = matthews_corrcoef if metric == "mcc" else f1_score
    assert fn(y, (scores >= chosen).astype(int)) == pytest.approx(best)


def test_choose_threshold_on_100k_residues_beats_every_other_candidate():
    y, scores = _toy(0, n=100_000)
    chosen = choose_threshold(y, scores)
    best = matthews_corrcoef(y, (scores >= chosen).astype(int))
    for other in np.quantile(scores, [0.1, 0.5, 0.9, 0.99]):
        assert matthews_corrcoef(y, (scores >= other).astype(int)) <= best + 1e-12


def test_choose_threshold_perfect_separation():
    y = np.array([0, 0, 0, 1, 1])
    assert choose_threshold(y, [0.1, 0.2, 0.3, 0.8, 0.9]) == pytest.approx(0.8)


@pytest.mark.parametrize("y, word", [([0, 0, 0], "no positives"), ([1, 1, 1], "no negatives")])
def test_single_class_is_an_input_error(y, word):
    with pytest.raises(InputError, match=f"validation split has {word}"):
        choose_threshold(y, [0.1, 0.5, 0.9])
    with pytest.raises(InputError, match=word):
        classification_metrics(y, [0.1, 0.5, 0.9], 0.5)


def test_bad_inputs():
    with pytest.raises(InputError, match="labels"):
        choose_threshold([0, 2, 1], [0.1, 0.2, 0.3])
    with pytest.raises(InputError, match="2 labels but 3 scores"):
        choose_threshold([0, 1], [0.1, 0.2, 0.3])
    with pytest.raises(InputError, match="finite"):
        choose_threshold([0, 1], [0.1, np.nan])
    with pytest.raises(InputError, match="metric"):
        choose_threshold([0, 1], [0.1, 0.2], metric="accuracy")


def test_metrics_ranges_and_types():
    y, scores = _toy(1)
    m = classification_metrics(y, scores, choose_threshold(y, scores))
    assert list(m) == list(METRIC_KEYS)
    for key in ("f1", "auroc", "auprc", "precision", "recall", "specificity"):
        assert type(m[key]) is float and 0.0 <= m[key] <= 1.0
    assert type(m["mcc"]) is float and -1.0 <= m["mcc"] <= 1.0
    assert m["n_residues"] == 300 and m["n_positives"] == int(y.sum())
    assert type(m["n_residues"]) is int and type(m["threshold"]) is float


def test_perfect_classifier_scores_one():
    y = np.array([0, 1, 0, 1, 1, 0])
    m = classification_metrics(y, [0.1, 0.9, 0.2, 0.7, 0.8, 0.3], threshold=0.5)
    for key in ("f1", "mcc", "auroc", "auprc", "precision", "recall", "specificity"):
        assert m[key] == 1.0, key
