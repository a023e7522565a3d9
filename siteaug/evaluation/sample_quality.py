"""How good generated rows are, measured against real rows: fidelity, coverage, detectability and memorisation.

Every metric compares synthetic rows with real training positives (what the generator learnt from); the
memorisation check also uses held-back real positives (validation proteins the generator never saw), so that
"close to a training row" is judged against how close unseen real rows come.

- k-NN precision / recall (Kynkäänniemi et al. 2019): a row is on a set's manifold when it lies inside the k-NN ball
  of one of that set's rows. Precision = synthetic rows on the real manifold; recall = real rows on the synthetic one.
- C2ST: cross-validated ROC AUC of a classifier telling real from synthetic (0.5 = indistinguishable).
- DCR: distance to the closest real training row, for synthetic rows and for held-back real rows.
- Marginals: mean per-feature Wasserstein-1 distance; correlation-matrix distance ‖C_real − C_syn‖_F / d.
"""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import numpy as np
import torch
from scipy.stats import wasserstein_distance
from sklearn.decomposition import PCA
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.model_selection import StratifiedKFold, cross_val_score
from threadpoolctl import threadpool_limits

from siteaug.generative.quality import RealismModel, nearest_neighbours

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def subsample(rows: np.ndarray, max_rows: int, rng: np.random.Generator) -> np.ndarray:
    """At most ``max_rows`` rows drawn without replacement (all rows, in order, when there are fewer)."""
    if len(rows) <= max_rows:
        return rows
    return rows[np.sort(rng.choice(len(rows), size=max_rows, replace=False))]


def _on_manifold(reference: np.ndarray, queries: np.ndarray, k: int, device) -> np.ndarray:
    # RealismModel's realism is exactly 1 inside some reference row's k-NN ball: that is the manifold test.
    realism, _ = RealismModel.fit(reference, k, device).score(queries, near_copy_fraction=0.0)
    return realism >= 1.0


def knn_precision_recall(real: np.ndarray, synthetic: np.ndarray, k: int, device="cpu") -> tuple[float, float]:
    """Improved precision and recall of Kynkäänniemi et al. (2019) with k-NN balls."""
    precision = float(_on_manifold(real, synthetic, k, device).mean())
    recall = float(_on_manifold(synthetic, real, k, device).mean())
    return precision, recall


def c2st_auc(real: np.ndarray, synthetic: np.ndarray, seed: int, folds: int = 5, threads: int = 1) -> float:
    """Mean cross-validated ROC AUC of gradient-boosted trees separating real (0) from synthetic (1) rows.

    The larger set is subsampled to the smaller one's size so that the classes are balanced. ``threads`` caps the
    trees' OpenMP threads: on an oversubscribed CPU, more OpenMP threads than free cores make them ~50x slower.
    """
    n = min(len(real), len(synthetic))
    if n < folds:
        raise ValueError(f"C2ST needs at least {folds} rows of each kind, got {len(real)} real and {len(synthetic)} synthetic")
    rng = np.random.default_rng(seed)
    X = np.concatenate([subsample(real, n, rng), subsample(synthetic, n, rng)])
    y = np.repeat([0, 1], n)
    classifier = HistGradientBoostingClassifier(max_iter=100, random_state=seed)
    cv = StratifiedKFold(folds, shuffle=True, random_state=seed)
    with threadpool_limits(threads, user_api="openmp"):
        return float(np.mean(cross_val_score(classifier, X, y, cv=cv, scoring="roc_auc")))


def continuous_columns(real: np.ndarray) -> np.ndarray:
    """Columns whose real values take more than two distinct values.

    Binary indicators (the amino-acid one-hot) are exactly two-valued in real rows and continuous in synthetic ones, so
    a C2ST that sees them separates the sets perfectly whatever the rest of the row looks like.
    """
    return np.array([len(np.unique(real[:, j])) > 2 for j in range(real.shape[1])], dtype=bool)


def distance_to_closest(queries: np.ndarray, reference: np.ndarray, device="cpu") -> np.ndarray:
    """Euclidean distance from every query row to its nearest reference row."""
    q = torch.as_tensor(np.require(queries, np.float32, ["W"]), device=device)  # pandas 3 hands out read-only arrays
    r = torch.as_tensor(np.require(reference, np.float32, ["W"]), device=device)
    _, index = nearest_neighbours(q, r, 1)
    # cdist's matrix-product form loses ~1e-3 to cancellation; recompute the chosen pair exactly so a copy reads 0.
    return torch.linalg.vector_norm(q - r[index[:, 0]], dim=1).cpu().numpy()


def dcr_summary(synthetic_dcr: np.ndarray, held_back_dcr: np.ndarray) -> dict:
    """Medians of both DCRs and the fraction of synthetic rows closer to training than 95 % of held-back rows.

    A generator that does not copy places about 5 % of its rows below that percentile, like unseen real rows do.
    """
    cutoff = float(np.percentile(held_back_dcr, 5))
    return {
        "dcr_synthetic_median": float(np.median(synthetic_dcr)),
        "dcr_held_back_median": float(np.median(held_back_dcr)),
        "dcr_held_back_p5": cutoff,
        "dcr_synthetic_below_held_back_p5": float(np.mean(synthetic_dcr < cutoff)),
    }


def mean_wasserstein(real: np.ndarray, synthetic: np.ndarray) -> float:
    """Per-feature Wasserstein-1 distance between the marginals, averaged over features."""
    return float(np.mean([wasserstein_distance(real[:, j], synthetic[:, j]) for j in range(real.shape[1])]))


def correlation_distance(real: np.ndarray, synthetic: np.ndarray) -> float:
    """‖corr(real) − corr(synthetic)‖_F / d, so that the value does not grow with the number of features."""
    d = real.shape[1]
    return float(np.linalg.norm(_correlation(real) - _correlation(synthetic)) / d)


def _correlation(rows: np.ndarray) -> np.ndarray:
    # A column that is constant in this set (an absent amino acid, say) correlates with nothing: 0, not NaN.
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = np.corrcoef(np.asarray(rows, np.float64), rowvar=False)
    return np.nan_to_num(corr, nan=0.0)


def acceptance_rate(quality_scores: np.ndarray, threshold: float) -> float:
    """Fraction of candidates whose quality score reaches the filter's threshold."""
    if len(quality_scores) == 0:
        raise ValueError("no scored candidates: the acceptance rate is undefined")
    return float(np.mean(np.asarray(quality_scores) >= threshold))


def sample_quality(
    train_real: np.ndarray, held_back: np.ndarray, synthetic: np.ndarray, seed: int, k: int = 5,
    max_rows: int = 20000, c2st_folds: int = 5, device="cpu", threads: int = 1,
) -> dict:
    """Every metric above on (seeded) subsamples of at most ``max_rows`` rows of each set."""
    for name, rows in (("real training", train_real), ("held-back real", held_back), ("synthetic", synthetic)):
        if len(rows) <= k:
            raise ValueError(f"need more than k={k} {name} rows for the quality metrics, got {len(rows)}")
    rng = np.random.default_rng(seed)
    real = subsample(np.asarray(train_real, np.float32), max_rows, rng)
    held = subsample(np.asarray(held_back, np.float32), max_rows, rng)
    syn = subsample(np.asarray(synthetic, np.float32), max_rows, rng)
    # One record before each part, so a job of minutes shows on the console what it is doing (siteaug.runtime.workflow).
    log.info("k-NN precision and recall (k=%d): %d real training, %d synthetic rows", k, len(real), len(syn))
    precision, recall = knn_precision_recall(real, syn, k, device)
    continuous = continuous_columns(real)
    log.info("C2ST: %d-fold gradient-boosted trees, real vs synthetic, all columns then the continuous ones", c2st_folds)
    c2st = c2st_auc(real, syn, seed, c2st_folds, threads)
    c2st_continuous = c2st_auc(real[:, continuous], syn[:, continuous], seed, c2st_folds, threads) if continuous.any() else None
    log.info("distance to the closest real row (%d held-back rows as the reference), Wasserstein, correlations", len(held))
    metrics = {
        "rows_real_train": len(real),
        "rows_held_back": len(held),
        "rows_synthetic": len(syn),
        "knn_precision": precision,
        "knn_recall": recall,
        "c2st_auc": c2st,
        "c2st_auc_continuous": c2st_continuous,
        **dcr_summary(distance_to_closest(syn, real, device), distance_to_closest(held, real, device)),
        "wasserstein_mean": mean_wasserstein(real, syn),
        "correlation_distance": correlation_distance(real, syn),
    }
    return metrics


def pca_figure(real: np.ndarray, synthetic: np.ndarray, seed: int, max_points: int = 5000) -> Figure:
    """Real training positives and synthetic rows in the first two principal components of the real rows."""
    from matplotlib.figure import Figure  # only the figures need matplotlib, not the metrics

    rng = np.random.default_rng(seed)
    real, synthetic = subsample(real, max_points, rng), subsample(synthetic, max_points, rng)
    pca = PCA(n_components=2, random_state=seed).fit(real)
    fig = Figure(figsize=(5.5, 5))
    ax = fig.subplots()
    for rows, label, colour in ((real, "real training positives", "tab:blue"), (synthetic, "synthetic", "tab:orange")):
        xy = pca.transform(rows)
        ax.scatter(xy[:, 0], xy[:, 1], s=3, alpha=0.35, color=colour, label=f"{label} (n={len(rows)})", rasterized=True)
    share = pca.explained_variance_ratio_
    ax.set(xlabel=f"PC1 ({share[0]:.0%} of real variance)", ylabel=f"PC2 ({share[1]:.0%})", title="Real vs synthetic (PCA of real)")
    ax.legend(fontsize="small", markerscale=4)
    return fig


def score_histogram_figure(quality_scores: np.ndarray, threshold: float) -> Figure:
    from matplotlib.figure import Figure  # only the figures need matplotlib, not the metrics

    fig = Figure(figsize=(5.5, 4))
    ax = fig.subplots()
    ax.hist(quality_scores, bins=50, range=(0, 1), color="tab:blue", alpha=0.8)
    ax.axvline(threshold, color="tab:red", ls="--", label=f"threshold {threshold:g} (accepted {acceptance_rate(quality_scores, threshold):.1%})")
    ax.set(xlabel="Quality score", ylabel="Candidates", title=f"Quality scores of generated candidates (n={len(quality_scores)})")
    ax.legend(fontsize="small")
    return fig


def loss_curve_figure(history: list[dict]) -> Figure:
    """Training loss and validation denoising loss (EMA and online weights, when recorded) against the step."""
    from matplotlib.figure import Figure  # only the figures need matplotlib, not the metrics

    fig = Figure(figsize=(5.5, 4))
    ax = fig.subplots()
    steps = [r["step"] for r in history]
    ax.plot(steps, [r["train_loss"] for r in history], marker="o", ms=3, label="training loss (online weights)")
    for key, label in (("validation_loss", "validation loss (EMA weights)"), ("validation_loss_online", "validation loss (online weights)")):
        points = [(r["step"], r[key]) for r in history if r.get(key) is not None]
        if points:
            ax.plot(*zip(*points), marker="o", ms=3, label=label)
    best = [r for r in history if r.get("validation_loss") is not None]
    if best:
        chosen = min(best, key=lambda r: r["validation_loss"])
        ax.axvline(chosen["step"], color="grey", ls=":", label=f"kept weights (step {chosen['step']})")
    ax.set(xlabel="Optimiser step", ylabel="ε-prediction MSE", title="Diffusion training")
    ax.legend(fontsize="small")
    return fig
