"""DeviceNearestNeighbors answers as scikit-learn's NearestNeighbors, and SMOTE samplers given it resample as with
their own neighbour search (on the CPU here; the workflow uses it on a CUDA device)."""
import numpy as np
import pandas as pd
import pytest
import torch
from imblearn.over_sampling import SMOTE, BorderlineSMOTE
from sklearn.neighbors import NearestNeighbors

from siteaug.arms.neighbours import DeviceNearestNeighbors
from siteaug.arms.protocol import arm_training_rows


def rows(n: int, d: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32)


@pytest.mark.parametrize("batch_rows", [7, 1024])
def test_kneighbors_equal_scikit_learns_with_and_without_query_rows(batch_rows):
    fitted, queries = rows(300, 12, 0), rows(45, 12, 1)
    ours = DeviceNearestNeighbors(6, batch_rows=batch_rows).fit(fitted)
    theirs = NearestNeighbors(n_neighbors=6, algorithm="brute").fit(fitted)
    for X in (queries, None):  # None: the fitted rows' neighbours, each row itself left out
        (d_ours, i_ours), (d_theirs, i_theirs) = ours.kneighbors(X), theirs.kneighbors(X)
        np.testing.assert_array_equal(i_ours, i_theirs)
        np.testing.assert_allclose(d_ours, d_theirs, rtol=1e-5)
    np.testing.assert_array_equal(ours.kneighbors(queries, n_neighbors=2, return_distance=False),
                                  theirs.kneighbors(queries, n_neighbors=2, return_distance=False))
    with pytest.raises(ValueError, match="n_neighbors"):
        ours.kneighbors(None, n_neighbors=300)
    for mode in ("connectivity", "distance"):
        np.testing.assert_allclose(ours.kneighbors_graph(queries, mode=mode).toarray(),
                                   theirs.kneighbors_graph(queries, mode=mode).toarray(), rtol=1e-5)


@pytest.mark.parametrize("sampler, counts", [(SMOTE, {"k_neighbors": 5}), (BorderlineSMOTE, {"k_neighbors": 5, "m_neighbors": 10})])
def test_samplers_resample_the_same_rows_with_it(sampler, counts):
    X = rows(400, 8, 2)
    y = (X[:, 0] + 0.5 * X[:, 1] > 1.0).astype(np.int64)  # a minority with a border, so some positives are in danger
    strategy = {1: 300}
    plain = sampler(sampling_strategy=strategy, random_state=3, **counts).fit_resample(X, y)
    estimators = {name: DeviceNearestNeighbors(n + 1) for name, n in counts.items()}
    ours = sampler(sampling_strategy=strategy, random_state=3, **estimators).fit_resample(X, y)
    np.testing.assert_array_equal(plain[1], ours[1])
    np.testing.assert_allclose(plain[0], ours[0], rtol=1e-6)


def test_arm_rows_on_a_device_search_neighbours_there(monkeypatch):
    """The arms' SMOTE rows take DeviceNearestNeighbors on a CUDA device (the device is faked: the search runs on the
    CPU), and give the same rows as imbalanced-learn's own search."""
    X = rows(300, 4, 5)
    train = pd.DataFrame(X, columns=[f"f_{k}" for k in range(4)]).assign(label=(X[:, 0] > 1.2).astype(np.int64))
    cols = [f"f_{k}" for k in range(4)]
    searched = []
    original = DeviceNearestNeighbors.fit

    def on_cpu(self, X, y=None):
        searched.append(self.n_neighbors)
        self.device = "cpu"
        return original(self, X, y)

    monkeypatch.setattr(DeviceNearestNeighbors, "fit", on_cpu)
    for arm in ("smote", "borderline_smote"):
        searched.clear()
        X_cpu, y_cpu = arm_training_rows(arm, train, None, 0.5, 0, cols)
        X_dev, y_dev = arm_training_rows(arm, train, None, 0.5, 0, cols, device="cuda")
        assert searched == ([6] if arm == "smote" else [11, 6])  # k + 1 and m + 1: each row finds itself first
        np.testing.assert_array_equal(y_cpu, y_dev)
        np.testing.assert_allclose(X_cpu, X_dev, rtol=1e-6)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_kneighbors_on_cuda_equal_scikit_learns():
    fitted, queries = rows(5000, 132, 6), rows(700, 132, 7)
    ours = DeviceNearestNeighbors(11, device="cuda").fit(fitted)
    theirs = NearestNeighbors(n_neighbors=11, algorithm="brute").fit(fitted)
    for X in (queries, None):
        (d_ours, i_ours), (d_theirs, i_theirs) = ours.kneighbors(X), theirs.kneighbors(X)
        np.testing.assert_array_equal(i_ours, i_theirs)
        np.testing.assert_allclose(d_ours, d_theirs, rtol=1e-5)
