"""The arms of the comparison: the same protocol, and (except the reference arms) the same MLP, on different training rows.

Protocol for every arm and seed: fit on training-split rows (synthetic rows only ever here), choose the decision
threshold on the validation split, freeze it, score the test split. Seeds ``seed, seed + 1, ...`` change the
classifier's initialisation and batches and, for the resampling arms, the resampling itself; the arms that read a
balanced table (diffusion ones, smote_filtered) use one table for all seeds.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch

from siteaug.arms.classifier import MLPClassifier, mlp_config
from siteaug.arms.reference_models import GBDTClassifier, GNNClassifier, gnn_config
from siteaug.arms.registry import ARM_INPUTS, ARM_NAMES, BALANCED_ROWS, GRAPHS, REAL_ROWS, Arm, lookup_arm, sweep_arm, sweep_ratio  # noqa: F401
from siteaug.evaluation.metrics import choose_threshold
from siteaug.generative.balance import positives_needed

# imbalanced-learn and the graph builders (torch_geometric) are imported by the arms that use them: each
# train_classifier job is a process of its own, and the two imports take about 2.5 s of CPU at its start (2-core CPU),
# more than an MLP arm's whole fit on the tiny test config. scikit-learn itself is imported here (reference_models),
# so that the thread limits the rule scripts set before training reach its OpenMP and BLAS libraries.
from siteaug.runtime.tables import feature_columns, sorted_split

log = logging.getLogger(__name__)

# The arms themselves (names, tables, fit functions) are described in siteaug.arms.registry.
ALL_ARMS = ARM_NAMES


def embedding_arm(arm: str) -> str | None:
    """For an ``embedding_<base>`` arm, the arm whose protocol it repeats on the embedding table (none, smote,
    diffusion); None for any other arm."""
    return lookup_arm(arm).base


def uses_balanced_table(arm: str) -> bool:
    return lookup_arm(arm).balanced is not None


def _oversample(sampler_cls, train, ratio, seed, feature_cols, **kwargs):
    y = train["label"].to_numpy(np.int64)
    n_pos = int(y.sum())
    target = n_pos + positives_needed(n_pos, len(y) - n_pos, ratio)
    sampler = sampler_cls(sampling_strategy={1: target}, random_state=seed, **kwargs)
    X, y = sampler.fit_resample(train[feature_cols].to_numpy(np.float32), y)
    if int(y.sum()) < target:
        # BorderlineSMOTE adds nothing when no positive is "in danger"; say so rather than pretend it balanced.
        log.warning("%s reached %d of %d positives (ratio %.3f instead of %.3f)", sampler_cls.__name__, int(y.sum()), target, y.mean(), ratio)
    return X.astype(np.float32), y.astype(np.int64)


def arm_training_rows(arm: str, train: pd.DataFrame, balanced: pd.DataFrame | None, ratio: float, seed: int, feature_cols: list[str],
                      device="cpu"):
    """(X, y) an arm trains on. Only training-split rows ever enter; synthetic rows come only from ``balanced``.
    ``device``: where the SMOTE samplers search for neighbours (a CUDA device: ``DeviceNearestNeighbors``)."""
    rows = lookup_arm(arm).rows
    n_pos = int(train["label"].sum())
    if rows == REAL_ROWS:
        return train[feature_cols].to_numpy(np.float32), train["label"].to_numpy(np.int64)
    if rows in ("random_oversampling", "smote", "borderline_smote"):
        from imblearn.over_sampling import SMOTE, BorderlineSMOTE, RandomOverSampler
    if rows == "random_oversampling":
        return _oversample(RandomOverSampler, train, ratio, seed, feature_cols)
    k_neighbors, m_neighbors = min(5, n_pos - 1), min(10, len(train) - 1)
    if torch.device(device).type == "cuda":
        from siteaug.arms.neighbours import DeviceNearestNeighbors

        # imbalanced-learn adds one neighbour to a count (each row finds itself first), not to an estimator.
        k_neighbors, m_neighbors = (DeviceNearestNeighbors(n + 1, str(device)) for n in (k_neighbors, m_neighbors))
    if rows == "smote":
        return _oversample(SMOTE, train, ratio, seed, feature_cols, k_neighbors=k_neighbors)
    if rows == "borderline_smote":
        return _oversample(BorderlineSMOTE, train, ratio, seed, feature_cols, k_neighbors=k_neighbors, m_neighbors=m_neighbors)
    if rows == BALANCED_ROWS:
        if balanced is None:
            raise ValueError(f"the {arm} arm needs its balanced training table")
        return balanced[feature_cols].to_numpy(np.float32), balanced["label"].to_numpy(np.int64)
    if rows == GRAPHS:
        raise ValueError(f"the {arm} arm trains on residue graphs, not on rows")
    raise ValueError(f"arm {arm}: no builder for training rows {rows!r}")


def class_weight(y: np.ndarray, ratio: float) -> float:
    """Loss weight of a positive row that gives positives the share ``ratio`` of the total weight."""
    n_pos = float(np.sum(y))
    return ratio / (1 - ratio) * (len(y) - n_pos) / n_pos


def _prediction_frame(part: pd.DataFrame, scores: np.ndarray, threshold: float, seed: int, split: str) -> pd.DataFrame:
    frame = pd.DataFrame({
        "protein_id": part["protein_id"].to_numpy(),
        "position": part["position"].to_numpy(np.int32),
        "label": part["label"].to_numpy(np.int8),
        "seed": np.int32(seed),
        "score": np.asarray(scores, np.float32),
        "threshold": np.float32(threshold),
        "split": split,
    })
    frame["predicted"] = (frame["score"] >= frame["threshold"]).astype(np.int8)
    return frame


def read_arm_inputs(residues, tree_scores=None, balanced=None, edges=None) -> tuple:
    """The tables of one ``train_classifier`` job from its input files (paths; None for an input the arm has not):
    (residue table, with the tree score column when ``tree_scores`` is given; balanced table or None; edges or None).
    The rule job and its seed processes (:mod:`siteaug.arms.seed_processes`) both read through here, so each child
    reads the job's own inputs instead of copies the job would have to write first."""
    from siteaug.runtime.io import read_parquet

    table = read_parquet(residues)
    if tree_scores is not None:  # graph_transformer with classifier.graph_transformer.tree_input
        from siteaug.arms.tree_scores import with_tree_scores  # joblib and scikit-learn's CV: only this arm needs them

        table = with_tree_scores(table, read_parquet(tree_scores))
    return table, *(read_parquet(path) if path is not None else None for path in (balanced, edges))


def train_arm(
    arm: str,
    residues: pd.DataFrame,
    settings: dict,
    ratio: float,
    seeds: list[int],
    balanced: pd.DataFrame | None = None,
    edges: pd.DataFrame | None = None,
    device="cpu",
    progress=None,
    splits=("test",),
    seed_processes: int = 1,
    threads: int = 1,
    inputs: dict | None = None,
    fitted: dict | None = None,
    tuned: dict | None = None,
    started=None,
):
    """Train ``arm`` once per seed; return (predictions of all seeds, models, per-seed training summary). A model fitted
    in a seed process or by another job (``fitted``) comes back as its file (``seed_processes.SavedModel``: ``save``
    writes it, ``load`` reads the model).

    ``settings`` holds the keys of the config's ``classifier`` section that the arm reads (``arm_settings``). Predictions hold one row per test residue and seed, ordered
    by (seed, protein_id, position), with that seed's validation-frozen threshold. ``splits=("validation", "test")``
    adds the validation rows (scored with the same model and threshold) before each seed's test rows. An
    ``embedding_<base>`` arm gets the embedding table as ``residues`` (and its balanced table) and runs ``<base>``.

    ``threads``: the CPU threads a fit may use (the fit's ``FitContext.threads``). ``seed_processes`` > 1 trains that
    many seeds side by side, each in a process of its own with ``threads`` CPU threads (siteaug.arms.seed_processes;
    the workflow asks for it on a CUDA device only, ``seed_process_count``); the results are those of the loop over
    seeds, which runs in this process otherwise. ``inputs`` (the arguments of
    :func:`read_arm_inputs` that gave ``residues``, ``balanced`` and ``edges``) lets those processes read the tables
    from the same files; without it they get copies written for them.

    ``fitted``: seed -> folder, for seeds that another job fitted on the same tables and settings and wrote with
    :func:`~siteaug.arms.seed_processes.save_seed_fit` (the workflow's ``embed_residues``): they are read, not fitted again, and
    scored as the others. Only an arm whose seeds draw from nothing but their own seed may be split so (``on_device``).

    ``tuned``: what the first seed's fit would compute and later seeds reuse, computed by another job on the same rows
    with the same settings and first seed (gbdt: {"params": the grid point}, from the workflow's tree_scores job, whose
    fits are the arm's own tuning fits: ``siteaug.arms.tree_scores``); it starts the fits' shared cache.

    ``started``: a :class:`~siteaug.arms.seed_processes.SeedProcesses` already fitting the seeds not in ``fitted``
    (started before the job read its tables, from the same input files); their fits are collected from it.
    """
    spec = lookup_arm(arm)
    unknown = [s for s in splits if s not in ("validation", "test")]
    if unknown:
        raise ValueError(f"train_arm scores the validation and test splits, not {unknown[0]!r}")
    fitted = dict(fitted or {})
    if fitted and not spec.on_device:  # its fit shares state between seeds (gbdt: the grid point tuned with the first seed)
        raise ValueError(f"arm {arm} fits its seeds together; no seed can come from another job")
    context = _fit_context(spec, residues, settings, ratio, balanced, edges, device, progress, threads)
    context.cache.update(tuned or {})
    to_fit = [seed for seed in seeds if seed not in fitted]
    if started is not None:
        if started.seeds != to_fit:
            raise ValueError(f"arm {arm}: seeds {started.seeds} were started in processes, but {to_fit} are to be fitted")
        fits = iter(started.results())
    elif seed_processes > 1 and len(to_fit) > 1:
        from siteaug.arms.seed_processes import fit_seeds_in_processes

        fits = iter(fit_seeds_in_processes(context, to_fit, seed_processes, threads, inputs))
    else:
        fits = (spec.fit_function()(context, seed) for seed in to_fit)

    def each_seed():
        for seed in seeds:
            if seed in fitted:
                from siteaug.arms.seed_processes import load_seed_fit

                log.info("arm %s seed %d: fitted by another job, read from %s", arm, seed, fitted[seed])
                yield load_seed_fit(fitted[seed], seed, as_file=True)
            else:
                yield next(fits)

    validation, test, metric = context.validation, context.test, settings["threshold_metric"]
    frames, models, summary = [], [], []
    for seed, (model, val_scores, test_scores, info) in zip(seeds, each_seed()):
        threshold = choose_threshold(validation["label"].to_numpy(), val_scores, metric)
        log.info("arm %s seed %d: threshold %.4f frozen from the validation split", arm, seed, threshold)
        scored = {"validation": (validation, val_scores), "test": (test, test_scores)}
        frames += [_prediction_frame(*scored[split], threshold, seed, split) for split in splits]
        models.append(model)
        summary.append({"seed": seed, "threshold": threshold, **info})
    return pd.concat(frames, ignore_index=True), models, summary


def _fit_context(spec: Arm, residues: pd.DataFrame, settings: dict, ratio: float, balanced, edges, device, progress,
                 threads: int) -> FitContext:
    """The :class:`FitContext` of an arm's job: ``residues`` split by protein as every seed sees it."""
    train, validation, test = (sorted_split(residues, s) for s in ("train", "validation", "test"))
    return FitContext(spec, train, validation, test, balanced, edges, feature_columns(residues), settings, ratio, device,
                      progress, threads)


def fit_one_seed(arm: str, residues: pd.DataFrame, settings: dict, ratio: float, seed: int, balanced=None, edges=None,
                 device="cpu", progress=None, threads: int = 1) -> tuple:
    """(model, validation scores, test scores, training summary) of ``seed`` alone, fitted exactly as :func:`train_arm`
    fits it, for a job that fits one seed for others (the workflow's ``embed_residues``; :func:`train_arm`'s ``fitted``)."""
    spec = lookup_arm(arm)
    context = _fit_context(spec, residues, settings, ratio, balanced, edges, device, progress, threads)
    return spec.fit_function()(context, seed)


@dataclass
class FitContext:
    """What every seed of one arm's fit sees: the arm, its tables, the ``classifier`` settings and where to train.

    A fit function takes ``(context, seed)`` and returns (model, validation scores, test scores, training summary).
    """

    arm: Arm
    train: pd.DataFrame
    validation: pd.DataFrame
    test: pd.DataFrame
    balanced: pd.DataFrame | None
    edges: pd.DataFrame | None
    feature_cols: list[str]
    settings: dict
    ratio: float
    device: object = "cpu"
    progress: Callable | None = None
    threads: int = 1  # CPU threads the fit may use (gbdt's grid fits run up to this many at a time)
    # What the first seed computes and later seeds reuse (the gbdt grid point, the graphs of the graph arms).
    cache: dict = field(default_factory=dict)

    def training_rows(self, seed: int):
        return arm_training_rows(self.arm.name, self.train, self.balanced, self.ratio, seed, self.feature_cols, self.device)

    def validation_rows(self) -> tuple:
        """(X, y) of the validation split: real rows only, as no synthetic row ever leaves the training rows."""
        return self.validation[self.feature_cols].to_numpy(np.float32), self.validation["label"].to_numpy(np.int64)

    def scores(self, model) -> tuple:
        """The model's validation and test scores of a row model."""
        return tuple(model.predict_proba(part[self.feature_cols].to_numpy(np.float32)) for part in (self.validation, self.test))


def _fit_mlp(context: FitContext, seed: int):
    X, y = context.training_rows(seed)
    weight = class_weight(y, context.ratio) if context.arm.positive_weight else None
    config = mlp_config(context.settings, len(context.feature_cols), seed, positive_weight=weight)
    # The validation split chooses the epoch (early stopping) as it freezes the threshold; never the test split.
    model = MLPClassifier(config, context.device).fit(X, y, context.validation_rows(), progress=context.progress)
    info = {"training_rows": int(len(y)), "positive_ratio": float(y.mean()), "positive_weight": weight,
            "best_epoch": model.best_epoch, "history": model.history}
    return model, *context.scores(model), info


def _fit_gbdt(context: FitContext, seed: int):
    X, y = context.training_rows(seed)
    cache = context.cache
    model = GBDTClassifier(context.settings["gbdt"], seed, cache.get("params"))
    if "params" not in cache:  # tuned once, with the first seed; every seed then fits with the chosen grid point
        cache["params"] = model.tune(X, y, context.train["protein_id"].to_numpy(), context.threads)
    # The validation split's proteins stop the boosting (never the test split's); the same split then freezes the
    # threshold, as for the graph_transformer arm and the MLP arms, whose epoch it also chooses.
    log.info("gbdt seed %d: fitting %d rows with %s", seed, len(y), cache["params"])
    model.fit(X, y, context.validation_rows())
    info = {"training_rows": int(len(y)), "positive_ratio": float(y.mean()), "params": cache["params"],
            "iterations": int(model.model.n_iter_)}
    return model, *context.scores(model), info


def _split_graphs(context: FitContext, build) -> dict:
    """The train/validation/test graphs of a graph arm, built by ``build`` with the first seed and kept in the cache."""
    if context.edges is None:
        raise ValueError(f"the {context.arm.name} arm needs the residue graph edges")
    if "graphs" not in context.cache:
        parts = (("train", context.train), ("validation", context.validation), ("test", context.test))
        context.cache["graphs"] = {name: build(part, context.edges, context.feature_cols, part["protein_id"].unique())
                                   for name, part in parts}
    return context.cache["graphs"]


def _fit_gnn(context: FitContext, seed: int):
    from siteaug.features.graphs import protein_graphs

    graphs = _split_graphs(context, protein_graphs)
    config = gnn_config(context.settings["gnn"], len(context.feature_cols), seed)
    model = GNNClassifier(config, context.device).fit(graphs["train"], progress=context.progress)
    train = context.train
    info = {"training_rows": int(len(train)), "positive_ratio": float(train["label"].mean()), "training_proteins": len(graphs["train"])}
    return model, model.predict_graphs(graphs["validation"]), model.predict_graphs(graphs["test"]), info


def _fit_graph_transformer(context: FitContext, seed: int):
    from siteaug.arms.graph_transformer import GraphTransformerClassifier, attributed_graphs, graph_transformer_config

    graphs = _split_graphs(context, attributed_graphs)
    config = graph_transformer_config(context.settings["graph_transformer"], len(context.feature_cols), seed)
    model = GraphTransformerClassifier(config, context.device).fit(graphs["train"], graphs["validation"], progress=context.progress)
    train = context.train
    info = {"training_rows": int(len(train)), "positive_ratio": float(train["label"].mean()),
            "training_proteins": len(graphs["train"]), "best_epoch": model.best_epoch, "member_best_epochs": model.best_epochs,
            "history": model.history}
    return model, model.predict_graphs(graphs["validation"]), model.predict_graphs(graphs["test"]), info
