"""Exact nearest neighbours on a torch device, for imbalanced-learn's SMOTE and BorderlineSMOTE.

BorderlineSMOTE finds which positives are "in danger" from their m nearest neighbours among *all* training rows: on
DNA-573 that is 12 thousand queries against 140 thousand rows of 132 features, about 13 s of one CPU core per seed,
most of the ``borderline_smote`` arm's time. The arm's seeds train on a GPU anyway, where the same search takes well
under a second. imbalanced-learn accepts any k-neighbours estimator (an object with ``fit`` and ``kneighbors``) in place
of its ``k_neighbors`` / ``m_neighbors`` counts; this one answers as scikit-learn's brute-force Euclidean
``NearestNeighbors`` does, distances computed in float64 as scikit-learn computes float32 input's
(``tests/test_neighbours.py`` compares the two).
"""
from __future__ import annotations

import numpy as np
import torch
from sklearn.base import BaseEstimator


class DeviceNearestNeighbors(BaseEstimator):
    """``n_neighbors`` exact Euclidean nearest neighbours by brute force on ``device``, ``batch_rows`` queries at a
    time; ``fit`` and ``kneighbors`` as scikit-learn's ``NearestNeighbors`` (``kneighbors()`` without rows: the fitted
    rows' neighbours, each row itself left out)."""

    def __init__(self, n_neighbors: int = 5, device: str = "cpu", batch_rows: int = 1024):
        self.n_neighbors = n_neighbors
        self.device = device
        self.batch_rows = batch_rows

    def fit(self, X, y=None) -> DeviceNearestNeighbors:
        self.fit_rows_ = torch.as_tensor(np.asarray(X, dtype=np.float64), device=self.device)
        self.n_samples_fit_ = len(self.fit_rows_)
        return self

    def kneighbors(self, X=None, n_neighbors: int | None = None, return_distance: bool = True):
        k = self.n_neighbors if n_neighbors is None else n_neighbors
        fitted = self.fit_rows_
        queries = fitted if X is None else torch.as_tensor(np.asarray(X, dtype=np.float64), device=self.device)
        available = len(fitted) - (X is None)
        if k > available:
            raise ValueError(f"Expected n_neighbors <= n_samples_fit, but n_neighbors = {k}, n_samples_fit = {available}")
        fitted_norms = (fitted * fitted).sum(dim=1)
        distances, indices = [], []
        for start in range(0, len(queries), self.batch_rows):
            chunk = queries[start : start + self.batch_rows]
            squared = (chunk * chunk).sum(dim=1, keepdim=True) - 2 * chunk @ fitted.T + fitted_norms
            if X is None:  # a fitted row is not its own neighbour
                rows = torch.arange(len(chunk), device=squared.device)
                squared[rows, rows + start] = torch.inf
            nearest = torch.topk(squared, k, dim=1, largest=False, sorted=True)
            distances.append(nearest.values.clamp_(min=0).sqrt_().cpu())
            indices.append(nearest.indices.cpu())
        index = torch.cat(indices).numpy() if indices else np.zeros((0, k), dtype=np.int64)
        if not return_distance:
            return index
        return (torch.cat(distances).numpy() if distances else np.zeros((0, k))), index

    def kneighbors_graph(self, X=None, n_neighbors: int | None = None, mode: str = "connectivity"):
        """The neighbours as a sparse (queries × fitted rows) matrix: ones, or distances with ``mode="distance"``
        (imbalanced-learn requires the method of a neighbours estimator; its samplers here do not call it)."""
        from scipy.sparse import csr_matrix

        if mode not in ("connectivity", "distance"):
            raise ValueError(f'mode must be "connectivity" or "distance", not {mode!r}')
        distances, index = self.kneighbors(X, n_neighbors)
        values = np.ones(index.size) if mode == "connectivity" else distances.ravel()
        k = index.shape[1]
        return csr_matrix((values, index.ravel(), np.arange(0, index.size + 1, k)), shape=(len(index), self.n_samples_fit_))
