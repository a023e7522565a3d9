"""The arms of the comparison: the same protocol, and (except the reference arms) the same MLP, on different training rows.

Protocol for every arm and seed: fit on training-split rows (synthetic rows only ever here), choose the decision
threshold on the validation split, freeze it, score the test split. Seeds ``seed, seed + 1, ...`` change the
classifier's initialisation and batches and, for the resampling arms, the resampling itself; the arms that read a
balanced table (diffusion ones, smote_filtered) use one table for all seeds.
"""
from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from imblearn.over_sampling import SMOTE, BorderlineSMOTE, RandomOverSampler

from .balance import positives_needed
from .classifier import MLPClassifier, mlp_config
from .graphs import protein_graphs
from .metrics import choose_threshold
from .reference_models import GBDTClassifier, GNNClassifier, gnn_config, sorted_split

log = logging.getLogger(__name__)

ALL_ARMS = (
    "none", "class_weight", "random_oversampling", "smote", "borderline_smote",
    "diffusion_unfiltered", "diffusion", "smote_filtered", "gbdt", "gnn", "graph_transformer",
    "embedding_none", "embedding_smote", "embedding_diffusion",
)
# embedding_<base> arms: <base>'s protocol on the embedding table (rules/common.smk names the model that embeds).
EMBEDDING_PREFIX = "embedding_"
# Arms whose training table is built by the balance_variant rule (results/balanced/{arm}/train.parquet).
VARIANT_ARMS = ("diffusion_unfiltered", "smote_filtered")
REFERENCE_ARMS = ("gbdt", "gnn")
SWEEP_PREFIX = "diffusion_ratio"


def sweep_arm(ratio: float) -> str:
    """Name of the diffusion arm balanced to ``ratio`` in the ratio sweep, e.g. ``diffusion_ratio0.5``."""
    return f"{SWEEP_PREFIX}{ratio:g}"


def sweep_ratio(arm: str) -> float | None:
    """The target ratio of a sweep arm, None for any other arm."""
    return float(arm[len(SWEEP_PREFIX):]) if arm.startswith(SWEEP_PREFIX) else None


def embedding_arm(arm: str) -> str | None:
    """For an ``embedding_<base>`` arm, the arm whose protocol it repeats on the embedding table (none, smote,
    diffusion); None for any other arm."""
    return arm[len(EMBEDDING_PREFIX):] if arm.startswith(EMBEDDING_PREFIX) else None


def uses_balanced_table(arm: str) -> bool:
    return arm == "diffusion" or arm in VARIANT_ARMS or sweep_ratio(arm) is not None


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


def arm_training_rows(arm: str, train: pd.DataFrame, balanced: pd.DataFrame | None, ratio: float, seed: int, feature_cols: list[str]):
    """(X, y) an arm trains on. Only training-split rows ever enter; synthetic rows come only from ``balanced``."""
    n_pos = int(train["label"].sum())
    if arm in ("none", "class_weight", "gbdt"):
        return train[feature_cols].to_numpy(np.float32), train["label"].to_numpy(np.int64)
    if arm == "random_oversampling":
        return _oversample(RandomOverSampler, train, ratio, seed, feature_cols)
    if arm == "smote":
        return _oversample(SMOTE, train, ratio, seed, feature_cols, k_neighbors=min(5, n_pos - 1))
    if arm == "borderline_smote":
        return _oversample(BorderlineSMOTE, train, ratio, seed, feature_cols, k_neighbors=min(5, n_pos - 1), m_neighbors=min(10, len(train) - 1))
    if uses_balanced_table(arm):
        if balanced is None:
            raise ValueError(f"the {arm} arm needs its balanced training table")
        return balanced[feature_cols].to_numpy(np.float32), balanced["label"].to_numpy(np.int64)
    if arm in ("gnn", "graph_transformer"):
        raise ValueError(f"the {arm} arm trains on residue graphs, not on rows")
    raise ValueError(f"unknown arm {arm!r}; known arms: {', '.join(ALL_ARMS)} and {SWEEP_PREFIX}<ratio>")


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
):
    """Train ``arm`` once per seed; return (predictions of all seeds, models, per-seed training summary).

    ``settings`` is the config's ``classifier`` section. Predictions hold one row per test residue and seed, ordered
    by (seed, protein_id, position), with that seed's validation-frozen threshold. ``splits=("validation", "test")``
    adds the validation rows (scored with the same model and threshold) before each seed's test rows. An
    ``embedding_<base>`` arm gets the embedding table as ``residues`` (and its balanced table) and runs ``<base>``.
    """
    arm = embedding_arm(arm) or arm
    unknown = [s for s in splits if s not in ("validation", "test")]
    if unknown:
        raise ValueError(f"train_arm scores the validation and test splits, not {unknown[0]!r}")
    feature_cols = [c for c in residues.columns if c.startswith("f_")]
    train, validation, test = (sorted_split(residues, s) for s in ("train", "validation", "test"))
    metric = settings["threshold_metric"]
    fit = {"gnn": _fit_gnn, "graph_transformer": _fit_graph_transformer, "gbdt": _fit_gbdt}.get(arm, _fit_mlp)
    state: dict = {}
    frames, models, summary = [], [], []
    for seed in seeds:
        model, val_scores, test_scores, info = fit(arm, train, validation, test, balanced, edges, feature_cols, settings, ratio, seed, device, progress, state)
        threshold = choose_threshold(validation["label"].to_numpy(), val_scores, metric)
        log.info("arm %s seed %d: threshold %.4f frozen from the validation split", arm, seed, threshold)
        scored = {"validation": (validation, val_scores), "test": (test, test_scores)}
        frames += [_prediction_frame(*scored[split], threshold, seed, split) for split in splits]
        models.append(model)
        summary.append({"seed": seed, "threshold": threshold, **info})
    return pd.concat(frames, ignore_index=True), models, summary


def _fit_mlp(arm, train, validation, test, balanced, edges, cols, settings, ratio, seed, device, progress, state):
    X, y = arm_training_rows(arm, train, balanced, ratio, seed, cols)
    weight = class_weight(y, ratio) if arm == "class_weight" else None
    model = MLPClassifier(mlp_config(settings, len(cols), seed, positive_weight=weight), device).fit(X, y, progress=progress)
    info = {"training_rows": int(len(y)), "positive_ratio": float(y.mean()), "positive_weight": weight}
    return model, model.predict_proba(validation[cols].to_numpy(np.float32)), model.predict_proba(test[cols].to_numpy(np.float32)), info


def _fit_gbdt(arm, train, validation, test, balanced, edges, cols, settings, ratio, seed, device, progress, state):
    X, y = arm_training_rows(arm, train, balanced, ratio, seed, cols)
    model = GBDTClassifier(settings["gbdt"], seed, state.get("params"))
    if "params" not in state:  # tuned once, with the first seed; every seed then fits with the chosen grid point
        state["params"] = model.tune(X, y, train["protein_id"].to_numpy())
    model.fit(X, y)
    info = {"training_rows": int(len(y)), "positive_ratio": float(y.mean()), "params": state["params"]}
    return model, model.predict_proba(validation[cols].to_numpy(np.float32)), model.predict_proba(test[cols].to_numpy(np.float32)), info


def _split_graphs(arm, state, build, train, validation, test, edges, cols) -> dict:
    """The train/validation/test graphs of a graph arm, built by ``build`` with the first seed and kept in ``state``."""
    if edges is None:
        raise ValueError(f"the {arm} arm needs the residue graph edges")
    if "graphs" not in state:
        state["graphs"] = {name: build(part, edges, cols, part["protein_id"].unique())
                           for name, part in (("train", train), ("validation", validation), ("test", test))}
    return state["graphs"]


def _fit_gnn(arm, train, validation, test, balanced, edges, cols, settings, ratio, seed, device, progress, state):
    graphs = _split_graphs(arm, state, protein_graphs, train, validation, test, edges, cols)
    model = GNNClassifier(gnn_config(settings["gnn"], len(cols), seed), device).fit(graphs["train"], progress=progress)
    info = {"training_rows": int(len(train)), "positive_ratio": float(train["label"].mean()), "training_proteins": len(graphs["train"])}
    return model, model.predict_graphs(graphs["validation"]), model.predict_graphs(graphs["test"]), info


def _fit_graph_transformer(arm, train, validation, test, balanced, edges, cols, settings, ratio, seed, device, progress, state):
    from .graph_transformer import GraphTransformerClassifier, attributed_graphs, graph_transformer_config

    graphs = _split_graphs(arm, state, attributed_graphs, train, validation, test, edges, cols)
    config = graph_transformer_config(settings["graph_transformer"], len(cols), seed)
    model = GraphTransformerClassifier(config, device).fit(graphs["train"], graphs["validation"], progress=progress)
    info = {"training_rows": int(len(train)), "positive_ratio": float(train["label"].mean()),
            "training_proteins": len(graphs["train"]), "best_epoch": model.best_epoch, "history": model.history}
    return model, model.predict_graphs(graphs["validation"]), model.predict_graphs(graphs["test"]), info
