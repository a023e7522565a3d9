"""Reference arms without augmentation: gradient-boosted trees on the residue rows and a GNN on the residue graphs.

They show where the augmented MLP stands against what a user would otherwise pick. Both see real training rows only.
"""
from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, fields
from itertools import islice
from typing import TYPE_CHECKING

import numpy as np
import torch
from joblib import Parallel, delayed, parallel_config
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.ensemble._hist_gradient_boosting.common import PREDICTOR_RECORD_DTYPE
from sklearn.metrics import average_precision_score
from sklearn.model_selection import GroupKFold
from torch import nn

from siteaug.runtime.io import atomic_path, load_torch, save_torch

if TYPE_CHECKING:
    from torch_geometric.data import Data

log = logging.getLogger(__name__)

# The one type of a fitted HistGradientBoostingClassifier that skops does not trust by default. No code runs when it is
# loaded, but scikit-learn indexes its node arrays without bounds checks, so GBDTClassifier.load checks them itself.
GBDT_TRUSTED_TYPES = ("sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",)


def gbdt_grid(settings: dict) -> list[dict]:
    """The grid points of the config's ``classifier.gbdt`` settings, learning rate outermost."""
    return [{"learning_rate": lr, "max_leaf_nodes": leaves} for lr in settings["learning_rates"] for leaves in settings["max_leaf_nodes"]]


def parallel_workers(threads: int, tasks: int) -> int:
    """How many of ``tasks`` fits ``parallel_fits`` runs at a time with ``threads``."""
    return max(1, min(threads, tasks))


def parallel_fits(function, tasks: list[tuple], threads: int) -> list:
    """``function(*task)`` for every task, in task order. With ``threads`` > 1 up to that many run side by side in
    processes (joblib's loky), the threads shared out among them: a tree fit on a few hundred proteins' rows keeps only
    a few OpenMP threads busy, so on many cores several fits at a time beat one fit over every core. Each fit is seeded
    by its own arguments, so the results are the same for any ``threads``."""
    workers = parallel_workers(threads, len(tasks))
    with parallel_config(backend="loky", inner_max_num_threads=max(1, threads // workers)):
        return Parallel(n_jobs=workers)(delayed(function)(*task) for task in tasks)


def stopping_iteration(validation_scores, rounds: int, tol: float) -> int:
    """How many iterations a HistGradientBoostingClassifier fitted with ``n_iter_no_change=rounds`` and ``tol`` keeps,
    given the validation scores it would record (``validation_score_``: the score before the first iteration, then one
    per iteration). scikit-learn's rule: stop after iteration k when none of the last ``rounds`` scores beats the one
    before them by more than ``tol``. ``tests/test_classifier.py`` checks this against fits that stop early."""
    scores = list(validation_scores)
    for k in range(rounds, len(scores)):
        reference = scores[k - rounds] + tol
        if not any(score > reference for score in scores[k - rounds + 1 : k + 1]):
            return k
    return len(scores) - 1


@dataclass(frozen=True)
class FoldFit:
    """One grid point's trees on one fold of the protein-grouped cross-validation, fitted once for both of its uses:
    the out-of-fold tree scores (every iteration, never stopped early) and the gbdt arm's grid score (the trees that
    early stopping on the fold's held-out loss keeps, read from the same fit's staged predictions)."""

    held: np.ndarray  # held-out rows' probabilities after max_iter iterations
    other: np.ndarray  # the other rows' probabilities after max_iter iterations (empty when none were given)
    auprc: float  # held-out AUPRC of the first ``iterations`` iterations: the gbdt arm's score of this grid point
    iterations: int  # what early stopping on the held-out loss keeps (max_iter without early_stopping_rounds)


def grid_fold_fit(settings: dict, seed: int, params: dict, X_fit, y_fit, X_held, y_held, X_other=None) -> FoldFit:
    """A :class:`FoldFit`: trees of grid point ``params`` on the fold's rows, their held-out loss recorded at every
    iteration (``fit_gbdt``'s ``monitor``) without stopping.

    Stopping on the fold's held-out proteins makes the gbdt arm rank its grid points under the procedure its final fit
    follows (stopping on proteins the trees never trained on, the validation split there). Those proteins also score
    the fold, so its AUPRC is slightly optimistic, for every grid point alike; it only ranks grid points and is never
    reported as a result, and the test split is not touched. The out-of-fold scores use every iteration: stopping
    would let the held-out labels shape their own scores."""
    rounds = settings["early_stopping_rounds"]
    model = fit_gbdt(settings, seed, X_fit, y_fit, monitor=(X_held, y_held) if rounds is not None else None, **params)
    held = model.predict_proba(X_held)[:, 1]
    other = model.predict_proba(X_other)[:, 1] if X_other is not None and len(X_other) else np.zeros(0)
    kept, kept_held = int(model.n_iter_), held
    if rounds is not None:
        kept = stopping_iteration(model.validation_score_, rounds, model.tol)
        if kept < model.n_iter_:
            kept_held = next(islice(model.staged_predict_proba(X_held), kept - 1, None))[:, 1]
    return FoldFit(held, other, float(average_precision_score(y_held, kept_held)), kept)


def grouped_grid_fits(settings: dict, seed: int, X: np.ndarray, y: np.ndarray, groups: np.ndarray, threads: int = 1,
                      X_other: np.ndarray | None = None) -> tuple[list, list[list[FoldFit]]]:
    """(folds, fits): the config's ``classifier.gbdt`` grid fitted on every fold of GroupKFold over ``groups`` (no
    protein in two folds); ``folds`` holds (fit rows, held-out rows) pairs and ``fits[g][f]`` is grid point g's
    :class:`FoldFit` on fold f. Up to ``threads`` fits run side by side (``parallel_fits``); the fits do not depend on
    it."""
    n_folds = min(settings["cv_folds"], len(np.unique(groups)))
    if n_folds < 2:
        raise ValueError("a grouped cross-validation needs at least 2 training proteins")
    folds = list(GroupKFold(n_splits=n_folds).split(X, y, groups))
    grid = gbdt_grid(settings)
    tasks = [(settings, seed, params, X[fit_rows], y[fit_rows], X[held_rows], y[held_rows], X_other)
             for params in grid for fit_rows, held_rows in folds]
    log.info("gbdt: grouped %d-fold CV of %d grid points (%d fits, up to %d at a time) on %d rows", n_folds,
             len(grid), len(tasks), parallel_workers(threads, len(tasks)), len(y))
    fitted = parallel_fits(grid_fold_fit, tasks, threads)
    return folds, [fitted[g * n_folds : (g + 1) * n_folds] for g in range(len(grid))]


def gbdt_grid_choice(settings: dict, fits: list[list[FoldFit]]) -> dict:
    """The gbdt arm's grid point from :func:`grouped_grid_fits`' fits: the highest mean per-fold AUPRC of the
    early-stopped trees, the first in grid order on a tie. Returns {"params", "auprc", "grid": one record per grid
    point}, JSON-ready: the workflow's tree_scores job writes it for the gbdt arm's job."""
    grid, best = [], None
    for params, fold_fits in zip(gbdt_grid(settings), fits, strict=True):
        score = float(np.mean([f.auprc for f in fold_fits]))
        grid.append({"params": params, "auprc": score, "iterations": [f.iterations for f in fold_fits]})
        if best is None or score > best["auprc"]:
            best = {"params": dict(params), "auprc": score}
    return {**best, "grid": grid}


def log_gbdt_grid_choice(choice: dict, source: str = "") -> None:
    """The per-grid-point lines of a :func:`gbdt_grid_choice`, then the point chosen; ``source`` ends every line."""
    folds = len(choice["grid"][0]["iterations"])
    for point in choice["grid"]:
        log.info("gbdt: %s: grouped %d-fold CV AUPRC %.4f, iterations per fold %s%s", point["params"], folds,
                 point["auprc"], tuple(point["iterations"]), source)
    log.info("gbdt: grouped %d-fold CV AUPRC %.4f with %s%s", folds, choice["auprc"], choice["params"], source)


def fit_gbdt(settings: dict, seed: int, X: np.ndarray, y: np.ndarray, validation: tuple | None = None,
             monitor: tuple | None = None, **params) -> HistGradientBoostingClassifier:
    """Trees of the config's ``classifier.gbdt`` settings and grid ``params`` (learning rate, leaves), fitted on X, y.

    With ``validation`` = (X_val, y_val), rows of proteins none of X's rows come from, and ``early_stopping_rounds``
    set, boosting stops once the validation log loss has not improved for that many iterations (``max_iter`` is then
    an upper bound). scikit-learn's own early stopping would hold out random residues of X, so proteins would sit on
    both sides; ``validation_fraction=None`` makes sure it never does that, and without ``validation`` every fit runs
    ``max_iter`` iterations. ``monitor`` = (X_val, y_val) records their log loss at every iteration
    (``validation_score_``) and never stops: the trees are those of a fit without it.
    """
    if monitor is not None and validation is not None:
        raise ValueError("fit_gbdt: pass validation rows to stop on or rows to monitor, not both")
    rounds = settings["early_stopping_rounds"]
    stop_early = validation is not None and rounds is not None
    # A patience longer than max_iter never ends the fit: scikit-learn then only records the scores.
    patience = rounds if stop_early else settings["max_iter"] + 1 if monitor is not None else 10
    model = HistGradientBoostingClassifier(
        max_iter=settings["max_iter"], max_features=settings["max_features"], early_stopping=stop_early or monitor is not None,
        validation_fraction=None, n_iter_no_change=patience, scoring="loss", random_state=seed, **params,
    )
    scored = validation if stop_early else monitor
    if scored is not None:
        X_val, y_val = scored
        return model.fit(X, y, X_val=X_val, y_val=y_val)
    return model.fit(X, y)


class GBDTClassifier:
    """HistGradientBoostingClassifier, its grid tuned once by protein-grouped cross-validation on AUPRC."""

    def __init__(self, settings: dict, seed: int, params: dict | None = None):
        self.settings = settings
        self.seed = seed
        self.params = params or {}
        self.model: HistGradientBoostingClassifier | None = None

    def tune(self, X: np.ndarray, y: np.ndarray, groups: np.ndarray, threads: int = 1) -> dict:
        """Pick learning rate and leaf count by GroupKFold over proteins (no protein in two folds): the grid point of
        the highest mean per-fold AUPRC, the first in grid order on a tie (:func:`gbdt_grid_choice`). The grid point ×
        fold fits run up to ``threads`` at a time (``parallel_fits``); the choice does not depend on it. The workflow's
        tree_scores job makes the same fits (same rows, folds and seed) and writes this choice for the arm's job."""
        _, fits = grouped_grid_fits(self.settings, self.seed, X, y, groups, threads)
        choice = gbdt_grid_choice(self.settings, fits)
        log_gbdt_grid_choice(choice)
        self.params = dict(choice["params"])
        return self.params

    def fit(self, X: np.ndarray, y: np.ndarray, validation: tuple | None = None) -> GBDTClassifier:
        """Fit with the tuned grid point; ``validation`` (X_val, y_val) of other proteins stops boosting early."""
        self.model = fit_gbdt(self.settings, self.seed, X, y, validation, **self.params)
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        return self.model.predict_proba(X)[:, 1]

    def save(self, path) -> None:
        """Write the fitted model in the skops format (a zip of JSON and .npy arrays, no pickle); read it with ``load``."""
        import skops.io as skops_io  # here, not at the top: importing it costs every train_classifier job ~0.7 s of CPU

        with atomic_path(path) as tmp:
            skops_io.dump({"params": self.params, "settings": self.settings, "seed": self.seed, "model": self.model}, tmp)

    @classmethod
    def load(cls, path) -> GBDTClassifier:
        """Read a file written by ``save``.

        skops builds only the types it trusts by default plus ``GBDT_TRUSTED_TYPES``. A file holding any other type
        raises ``skops.io.exceptions.UntrustedTypesFoundException`` before any object is built. The trees are then
        bounds-checked, because scikit-learn's prediction reads their node indices unchecked.
        """
        import skops.io as skops_io

        payload = skops_io.load(path, trusted=list(GBDT_TRUSTED_TYPES))
        if not isinstance(payload, dict) or not isinstance(payload.get("model"), HistGradientBoostingClassifier):
            raise ValueError(f"{path}: not a saved GBDTClassifier")
        _check_trees(payload["model"], path)
        gbdt = cls(payload["settings"], payload["seed"], payload["params"])
        gbdt.model = payload["model"]
        return gbdt


def _check_trees(model: HistGradientBoostingClassifier, path) -> None:
    """Refuse trees whose node indices would make scikit-learn's prediction read outside its arrays or never end.

    scikit-learn numbers a tree's nodes depth first, so both children of a split come after it. Requiring that, and
    in-range feature indices, keeps every walk from the root inside the node array and makes it end at a leaf.
    Categorical splits are refused: this workflow never fits categorical features.
    """
    n_features = int(model.n_features_in_)
    for iteration in model._predictors:
        if len(iteration) != model.n_trees_per_iteration_:
            raise ValueError(f"{path}: {len(iteration)} trees in an iteration, expected {model.n_trees_per_iteration_}")
        for predictor in iteration:
            nodes = predictor.nodes
            if not isinstance(nodes, np.ndarray) or nodes.dtype != PREDICTOR_RECORD_DTYPE or nodes.ndim != 1 or not len(nodes):
                raise ValueError(f"{path}: malformed tree node array")
            index = np.arange(len(nodes))
            split = nodes["is_leaf"] == 0
            children_ok = all(((nodes[side][split] > index[split]) & (nodes[side][split] < len(nodes))).all()
                              for side in ("left", "right"))
            features = nodes["feature_idx"][split]
            features_ok = ((features >= 0) & (features < n_features)).all()
            if not (children_ok and features_ok) or nodes["is_categorical"].any():
                raise ValueError(f"{path}: a tree node points outside its tree or its features")


@dataclass
class GNNConfig:
    input_dim: int
    hidden: int = 64
    layers: int = 2
    dropout: float = 0.1
    epochs: int = 30
    batch_proteins: int = 16
    lr: float = 1e-3
    seed: int = 0


# The config file's classifier.gnn keys: every field but the two the arm sets.
GNN_SETTING_KEYS = tuple(f.name for f in fields(GNNConfig) if f.name not in ("input_dim", "seed"))


def gnn_config(settings: dict, input_dim: int, seed: int) -> GNNConfig:
    """A GNNConfig from the config file's ``classifier.gnn`` section."""
    return GNNConfig(input_dim=input_dim, seed=seed, **{k: settings[k] for k in GNN_SETTING_KEYS})


class GNNClassifier:
    """GraphSAGE node classifier: one logit per residue from its features and its neighbours' in the residue graph."""

    def __init__(self, config: GNNConfig, device: str | torch.device = "cpu"):
        self.config = config
        self.device = torch.device(device)
        # torch_geometric here, not at the top: the gbdt arm and tree scores (this module) and every MLP arm (through
        # siteaug.arms.protocol) run without it, about 2 s of CPU sooner.
        from torch_geometric.nn.models import GraphSAGE

        torch.manual_seed(config.seed)
        self.network = GraphSAGE(config.input_dim, config.hidden, config.layers, out_channels=1, dropout=config.dropout).to(self.device)

    def fit(self, graphs: list[Data], progress=None) -> GNNClassifier:
        from siteaug.features.graphs import GraphStack

        cfg = self.config
        if not any(int(g.y.sum()) > 0 for g in graphs):
            raise ValueError("training graphs hold no positive residue; a classifier cannot be fitted")
        optimiser = torch.optim.AdamW(self.network.parameters(), lr=cfg.lr, weight_decay=1e-4, fused=self.device.type == "cuda")
        loss_fn = nn.BCEWithLogitsLoss()
        rng = np.random.default_rng(cfg.seed)
        stack = GraphStack(graphs, self.device)
        with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
            torch.manual_seed(cfg.seed)  # dropout draws from the global generator
            self.network.train()
            epochs = range(cfg.epochs) if progress is None else progress(range(cfg.epochs))
            for _ in epochs:
                order = rng.permutation(len(graphs))
                for start in range(0, len(order), cfg.batch_proteins):
                    batch = stack.batch(order[start : start + cfg.batch_proteins])
                    loss = loss_fn(self.network(batch.x, batch.edge_index).squeeze(1), batch.y.float())
                    optimiser.zero_grad(set_to_none=True)
                    loss.backward()
                    optimiser.step()
        self.network.eval()
        return self

    @torch.inference_mode()
    def predict_graphs(self, graphs: list[Data]) -> np.ndarray:
        """Probabilities of every residue of ``graphs``, concatenated in graph order."""
        from siteaug.features.graphs import GraphStack

        batches = GraphStack(graphs, self.device).in_order(self.config.batch_proteins)
        out = [torch.sigmoid(self.network(batch.x, batch.edge_index)).squeeze(1) for batch in batches]
        return torch.cat(out).cpu().numpy() if out else np.zeros(0, np.float32)

    def save(self, path) -> None:
        save_torch({"config": asdict(self.config), "state_dict": self.network.state_dict()}, path)

    @classmethod
    def load(cls, path, device: str | torch.device = "cpu") -> GNNClassifier:
        payload = load_torch(path, device)  # a truncated file: one line naming it
        model = cls(GNNConfig(**payload["config"]), device)
        model.network.load_state_dict(payload["state_dict"])
        model.network.eval()
        return model

