"""Evaluation of the arms on the test proteins (rule evaluate): metrics with bootstrap intervals, paired differences
against the reference arms, and a verdict per arm.

Outputs: metrics.tsv (one row per test set, arm and aggregation; each metric with its interval), differences.tsv
(paired differences and verdicts) and metrics.json (all of it plus the per-seed values, the protocol, the arms without
a verdict and the training summaries). The figures (siteaug.evaluation.figures) and the HTML page
(siteaug.evaluation.report) read metrics.json instead of evaluating again.
"""
from __future__ import annotations

import os

import numpy as np
import pandas as pd

from siteaug.evaluation.statistics import METRICS, PRIMARY_METRIC, ArmScores, compare_arms
from siteaug.runtime.io import InputError, atomic_path, write_json

PREDICTION_COLUMNS = ("protein_id", "position", "label", "seed", "score", "threshold", "split")
# Every arm is compared with each of these that ran: the real-rows baseline, the classical oversampler, and the two
# strong models (the tree ensemble and the graph base model that the embedding arms build on).
REFERENCES = ("none", "smote", "gbdt", "graph_transformer")
REFERENCE_NAMES = {"none": "none", "smote": "SMOTE", "gbdt": "gbdt", "graph_transformer": "graph_transformer"}
AGGREGATIONS = ("pooled", "per_protein")
TEST_SET_NAMES = {"labels": "test", "external_test": "external test"}
DIFFERENCE_COLUMNS = ("test_set", "aggregation", "arm", "reference", "metric", "difference", "low", "high", "verdict")
NO_VERDICT = "no verdict"


def check_predictions(arm: str, df: pd.DataFrame) -> None:
    """One arm's test predictions as train_classifier writes them; InputError naming the arm otherwise."""
    where = f"predictions for arm {arm!r}"
    missing = [c for c in PREDICTION_COLUMNS if c not in df.columns]
    if missing:
        raise InputError(f"{where}: missing column(s) {', '.join(missing)}")
    if df.empty:
        raise InputError(f"{where}: no rows")
    if set(df["split"].unique()) != {"test"}:
        raise InputError(f"{where}: every row must be from the test split, found {sorted(map(str, df['split'].unique()))}")
    # The threshold is frozen on validation; several values for one seed would mean it was tuned on test rows.
    per_seed = df.groupby("seed")["threshold"].nunique()
    if (per_seed != 1).any():
        raise InputError(f"{where}: expected one frozen threshold per seed, seed {per_seed.index[per_seed != 1][0]} has several")
    if not np.isin(df["label"].unique(), (0, 1)).all() or not np.isfinite(df["score"].to_numpy(float)).all():
        raise InputError(f"{where}: labels must be 0/1 and scores finite")


def arm_scores(arm: str, df: pd.DataFrame, proteins: list[str]) -> ArmScores:
    """Residues in (protein_id, position) order, proteins indexed by ``proteins``; one score row per seed."""
    seeds = sorted(df["seed"].unique())
    rows = [df[df["seed"] == s].sort_values(["protein_id", "position"], kind="stable") for s in seeds]
    first = rows[0]
    for seed, part in zip(seeds, rows):
        if not (np.array_equal(part["protein_id"].to_numpy(), first["protein_id"].to_numpy())
                and np.array_equal(part["position"].to_numpy(), first["position"].to_numpy())):
            raise InputError(f"predictions for arm {arm!r}: seed {seed} scored other residues than seed {seeds[0]}")
    index = pd.Index(proteins).get_indexer(first["protein_id"])
    return ArmScores(
        labels=first["label"].to_numpy(np.int64), protein=index,
        scores=np.stack([p["score"].to_numpy(np.float64) for p in rows]),
        thresholds=np.array([p["threshold"].iloc[0] for p in rows], dtype=np.float64),
    )


def evaluate(predictions: dict[str, pd.DataFrame], test_sets: dict[str, str], n_resamples: int, confidence: float, seed: int,
             workers: int = 1):
    """(metrics rows, difference rows) for every test set, aggregation, arm and metric (arms on ``workers`` threads)."""
    metric_rows, difference_rows = [], []
    any_arm = next(iter(predictions.values()))
    for test_set in dict.fromkeys(any_arm["protein_id"].map(test_sets)):
        proteins = sorted(p for p in any_arm["protein_id"].unique() if test_sets[p] == test_set)
        scores = {arm: arm_scores(arm, df[df["protein_id"].isin(proteins)], proteins) for arm, df in predictions.items()}
        for aggregation in AGGREGATIONS:
            comparison = compare_arms(scores, aggregation, n_resamples, seed, workers)
            for arm, s in scores.items():
                row = {"test_set": test_set, "arm": arm, "aggregation": aggregation, "seeds": len(s.thresholds),
                       "n_proteins": len(proteins), "n_residues": len(s.labels), "n_positives": int(s.labels.sum()),
                       "threshold": float(np.mean(s.thresholds))}
                for metric in METRICS:
                    summary = comparison.summary(arm, metric, confidence)
                    row |= {metric: summary["value"], f"{metric}_low": summary["low"], f"{metric}_high": summary["high"],
                            f"{metric}_per_seed": summary["per_seed"]}
                metric_rows.append(row)
                for reference in REFERENCES:
                    if reference == arm or reference not in scores:
                        continue
                    for metric in METRICS:
                        difference_rows.append({"test_set": test_set, "aggregation": aggregation, "arm": arm, "reference": reference,
                                                "metric": metric, **comparison.difference(arm, reference, metric, confidence)})
    return metric_rows, difference_rows


def verdict_sentence(by_reference: dict[str, str], metric: str = PRIMARY_METRIC) -> str:
    """One line, e.g. 'better than none and SMOTE on AUPRC' or 'no detectable difference from none; worse than SMOTE'."""
    names = REFERENCE_NAMES
    phrase = {"better": "better than", "worse": "worse than", "no detectable difference": "no detectable difference from"}
    words = set(by_reference.values())
    if len(words) == 1:
        joiner = " or " if words == {"no detectable difference"} else " and "
        text = f"{phrase[words.pop()]} {joiner.join(names[r] for r in by_reference)}"
    else:
        text = "; ".join(f"{phrase[v]} {names[r]}" for r, v in by_reference.items())
    return f"{text} on {metric.upper()}"


def verdicts(differences: pd.DataFrame, arms: list[str]) -> list[dict]:
    """Per test set and arm: the primary-metric (pooled) differences against the references and the one-line verdict."""
    primary = differences[(differences["metric"] == PRIMARY_METRIC) & (differences["aggregation"] == "pooled")]
    out = []
    for test_set in dict.fromkeys(differences["test_set"]) if len(differences) else []:
        for arm in arms:
            rows = primary[(primary["test_set"] == test_set) & (primary["arm"] == arm)].set_index("reference")
            if rows.empty:
                continue
            by_reference = {r: rows.loc[r, "verdict"] for r in REFERENCES if r in rows.index}
            out.append({"test_set": test_set, "arm": arm, "verdict": verdict_sentence(by_reference),
                        **{f"vs_{r}": rows.loc[r, ["difference", "low", "high", "verdict"]].to_dict() for r in by_reference}})
    return out


def protein_test_sets(predictions: dict[str, pd.DataFrame], proteins: pd.DataFrame | None) -> dict[str, str]:
    """Test set of every predicted protein: ``test``, or ``external test`` for the proteins of the external test set
    (``proteins``: protein_id, source as prepare writes them; None: all are ``test``)."""
    ids = next(iter(predictions.values()))["protein_id"].unique()
    if proteins is None:
        return {p: "test" for p in ids}
    source = proteins.set_index("protein_id")["source"]
    unknown = sorted(set(ids) - set(source.index))
    if unknown:
        raise InputError(f"predictions: protein {unknown[0]} is not in the protein table")
    return {p: TEST_SET_NAMES.get(source[p], str(source[p])) for p in ids}


def compare(predictions: dict[str, pd.DataFrame], proteins: pd.DataFrame | None, n_resamples: int, confidence: float,
            seed: int, no_verdict: dict[str, str] | None = None, training: dict[str, dict] | None = None, workers: int = 1) -> dict:
    """The evaluation of every arm, as metrics.json holds it.

    ``predictions`` maps arm to its test predictions (``PREDICTION_COLUMNS``, one block per seed); ``proteins`` splits
    test proteins into the internal and an external test set, evaluated separately. ``no_verdict`` maps an arm that
    is not what its name says (e.g. diffusion trained on zero synthetic rows) to the reason: it keeps its metrics but
    gets no verdict. ``training`` (each arm's summary.json) is passed through for the page. ``workers``: threads for
    the bootstrap (the values do not depend on it).
    """
    if not predictions:
        raise InputError("evaluation: no arms given")
    for arm, df in predictions.items():
        check_predictions(arm, df)
    arms = list(predictions)
    metric_rows, difference_rows = evaluate(predictions, protein_test_sets(predictions, proteins), n_resamples, confidence, seed,
                                           workers)
    no_verdict = {arm: reason for arm, reason in (no_verdict or {}).items() if arm in arms}
    evaluation = {
        "protocol": {"bootstrap_resamples": n_resamples, "confidence": confidence, "bootstrap_seed": seed,
                     "unit_resampled": "test protein", "seeds": "metric averaged over seeds in every resample",
                     "primary_metric": PRIMARY_METRIC, "references": list(REFERENCES)},
        "metrics": metric_rows, "differences": difference_rows, "no_verdict": no_verdict, "training": training or {},
    }
    evaluation["verdicts"] = verdicts(difference_frame(evaluation), [arm for arm in arms if arm not in no_verdict])
    return evaluation


def metric_frame(evaluation: dict) -> pd.DataFrame:
    """One row per test set, arm and aggregation, each metric with its interval and per-seed values."""
    return pd.DataFrame(evaluation["metrics"])


def difference_frame(evaluation: dict) -> pd.DataFrame:
    """The paired differences, with the verdict of every arm without one set to ``no verdict``."""
    differences = pd.DataFrame(evaluation["differences"], columns=list(DIFFERENCE_COLUMNS))
    differences.loc[differences["arm"].isin(list(evaluation["no_verdict"])), "verdict"] = NO_VERDICT
    return differences


def pooled_metrics(metrics: pd.DataFrame, test_set: str) -> pd.DataFrame:
    """The pooled metrics of one test set, indexed by arm."""
    return metrics[(metrics["test_set"] == test_set) & (metrics["aggregation"] == "pooled")].set_index("arm")


def ordered_test_sets(metrics: pd.DataFrame) -> list[str]:
    """The test sets in evaluation order; the first is the one the answer sentence and the figures are about."""
    return list(dict.fromkeys(metrics["test_set"]))


def write_evaluation(evaluation: dict, metrics_tsv: str | os.PathLike, differences_tsv: str | os.PathLike,
                     metrics_json: str | os.PathLike) -> pd.DataFrame:
    """Write metrics.tsv (without the per-seed lists), differences.tsv and metrics.json; return the metrics.tsv frame."""
    metrics = metric_frame(evaluation)
    flat = metrics.drop(columns=[c for c in metrics.columns if c.endswith("_per_seed")])
    with atomic_path(metrics_tsv) as tmp:
        flat.to_csv(tmp, sep="\t", index=False, float_format="%.4f")
    with atomic_path(differences_tsv) as tmp:
        difference_frame(evaluation).to_csv(tmp, sep="\t", index=False, float_format="%.4f")
    write_json(evaluation, metrics_json)
    return flat
