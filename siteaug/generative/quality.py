"""Quality score of generated candidates, computed from real training rows only.

score = critic probability that the row is a binding residue × realism, where realism is 1 inside the k-NN ball of
some real training positive (the manifold estimate of Kynkäänniemi et al. 2019) and decays as r/d outside it. A
candidate closer to a real positive than ``near_copy_fraction`` of that positive's k-NN radius is a near-copy of a
training row (memorisation, not augmentation) and scores 0.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch


def nearest_neighbours(queries: torch.Tensor, reference: torch.Tensor, k: int, chunk: int = 8192, exclude_self: bool = False):
    """Distances and indices of the k nearest reference rows for every query row (exact, chunked cdist)."""
    dists, idxs = [], []
    for start in range(0, len(queries), chunk):
        d = torch.cdist(queries[start : start + chunk], reference)
        if exclude_self:
            rows = torch.arange(start, start + d.shape[0], device=d.device)
            d[torch.arange(d.shape[0], device=d.device), rows] = float("inf")
        value, index = torch.topk(d, k, dim=1, largest=False)
        dists.append(value)
        idxs.append(index)
    return torch.cat(dists), torch.cat(idxs)


@dataclass
class RealismModel:
    positives: torch.Tensor  # real training positives (standardised features)
    radii: torch.Tensor  # distance of each to its k-th nearest other positive
    k: int

    @classmethod
    def fit(cls, positives: np.ndarray, k: int, device="cpu") -> RealismModel:
        reference = torch.tensor(np.asarray(positives, np.float32), device=device)
        if len(reference) <= k:
            raise ValueError(f"need more than k={k} real training positives for the realism term, got {len(reference)}")
        dist, _ = nearest_neighbours(reference, reference, k, exclude_self=True)
        return cls(reference, dist[:, -1], k)

    def score(self, candidates: np.ndarray, near_copy_fraction: float, chunk: int = 8192) -> tuple[np.ndarray, np.ndarray]:
        """Realism in [0, 1] and a near-copy flag per candidate.

        realism = min(1, 1 / min_j d(x, p_j) / r_j): exactly 1 inside any positive's ball, as in the definition.
        """
        x = torch.as_tensor(np.require(candidates, np.float32, ["W"]), device=self.positives.device)  # writable: pandas 3 hands out read-only arrays
        radii = self.radii.clamp_min(1e-12)
        realism, near_copy = [], []
        for start in range(0, len(x), chunk):
            dist = torch.cdist(x[start : start + chunk], self.positives)
            realism.append((1 / (dist / radii).min(dim=1).values.clamp_min(1e-12)).clamp(max=1.0))
            nearest, index = dist.min(dim=1)
            near_copy.append(nearest < near_copy_fraction * self.radii[index])
        if not realism:
            return np.zeros(0, np.float32), np.zeros(0, bool)
        return torch.cat(realism).cpu().numpy(), torch.cat(near_copy).cpu().numpy()


def quality_scores(critic_probability: np.ndarray, realism: np.ndarray, near_copy: np.ndarray) -> np.ndarray:
    return np.where(near_copy, 0.0, critic_probability * realism).astype(np.float32)


def passed_filter(quality_score: np.ndarray, threshold: float) -> np.ndarray:
    """Whether each candidate passes the quality filter: its score reaches ``threshold``."""
    return np.asarray(quality_score) >= threshold


def select_candidates(scored: pd.DataFrame, quota: pd.Series, threshold: float) -> pd.DataFrame:
    """Keep rows with score >= threshold, then the best ``quota[protein]`` of each protein (ties: lower candidate id)."""
    return top_per_protein(scored[passed_filter(scored["quality_score"].to_numpy(), threshold)], quota)


def top_per_protein(passed: pd.DataFrame, quota: pd.Series) -> pd.DataFrame:
    """The best ``quota[protein]`` rows of each protein by quality score (ties: lower candidate id), from rows that
    passed the filter."""
    kept = passed.sort_values(["protein_id", "quality_score", "candidate_id"], ascending=[True, False, True], kind="stable")
    rank = kept.groupby("protein_id", sort=False).cumcount()
    limit = kept["protein_id"].map(quota).fillna(0).to_numpy()
    return kept[rank.to_numpy() < limit].reset_index(drop=True)
