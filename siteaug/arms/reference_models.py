"""Reference arms without augmentation: gradient-boosted trees on the residue rows and a GNN on the residue graphs.

They show where the augmented MLP stands against what a user would otherwise pick. Both see real training rows only.
"""
from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, fields
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


def _scored_fold_fit(settings: dict, seed: int, params: dict, X_fit, y_fit, X_held, y_held) -> tuple[float, int]:
    # Each fold's trees stop early on the fold's held-out proteins: the grid is then ranked under the procedure the
    # final fit follows (stopping on proteins the trees never trained on, the validation split there). Those proteins
    # also score the fold, so its AUPRC is slightly optimistic, for every grid point alike; it only ranks grid points
    # and is never reported as a result, and the test split is not touched. The tree_scores rule, whose out-of-fold
    # scores become features, does not do this.
    model = fit_gbdt(settings, seed, X_fit, y_fit, (X_held, y_held), **params)
    return float(average_precision_score(y_held, model.predict_proba(X_held)[:, 1])), int(model.n_iter_)


def fit_gbdt(settings: dict, seed: int, X: np.ndarray, y: np.ndarray, validation: tuple | None = None,
             **params) -> HistGradientBoostingClassifier:
    """Trees of the config's ``classifier.gbdt`` settings and grid ``params`` (learning rate, leaves), fitted on X, y.

    With ``validation`` = (X_val, y_val), rows of proteins none of X's rows come from, and ``early_stopping_rounds``
    set, boosting stops once the validation log loss has not improved for that many iterations (``max_iter`` is then
    an upper bound). scikit-learn's own early stopping would hold out random residues of X, so proteins would sit on
    both sides; ``validation_fraction=None`` makes sure it never does that, and without ``validation`` every fit runs
    ``max_iter`` iterations.
    """
    rounds = settings["early_stopping_rounds"]
    stop_early = validation is not None and rounds is not None
    model = HistGradientBoostingClassifier(
        max_iter=settings["max_iter"], max_features=settings["max_features"], early_stopping=stop_early,
        validation_fraction=None, n_iter_no_change=rounds if stop_early else 10, scoring="loss", random_state=seed, **params,
    )
    if stop_early:
        X_val, y_val = validation
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
        the highest mean per-fold AUPRC, the first in grid order on a tie. The grid point × fold fits run up to
        ``threads`` at a time (``parallel_fits``); the choice does not depend on it."""
        folds = min(self.settings["cv_folds"], len(np.unique(groups)))
        splits = list(GroupKFold(n_splits=folds).split(X, y, groups))
        grid = gbdt_grid(self.settings)
        tasks = [(self.settings, self.seed, params, X[fit_rows], y[fit_rows], X[held_rows], y[held_rows])
                 for params in grid for fit_rows, held_rows in splits]
        log.info("gbdt: grouped %d-fold CV of %d grid points (%d fits, up to %d at a time) on %d rows", folds, len(grid),
                 len(tasks), parallel_workers(threads, len(tasks)), len(y))
        fitted = parallel_fits(_scored_fold_fit, tasks, threads)
        best = None
        for g, params in enumerate(grid):
            scores, iterations = zip(*fitted[g * folds : (g + 1) * folds])
            score = float(np.mean(scores))
            log.info("gbdt: %s: grouped %d-fold CV AUPRC %.4f, iterations per fold %s", params, folds, score, iterations)
            if best is None or score > best[0]:
                best = (score, params)
        self.params = dict(best[1])
        log.info("gbdt: grouped %d-fold CV AUPRC %.4f with %s", folds, best[0], self.params)
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

