"""Feature-group ablation: what each feature group is worth to the classifier trained on real rows (arm ``none``).

The config's ``report.feature_ablation`` lists settings, each a subset of ``features.groups`` (e.g. ``[sequence]`` and
``[sequence, structure]``). For every setting the workflow rebuilds the feature table with only those groups, by the
same code as the ``features`` rule: the ``nbr_*`` columns are neighbour means over the residue graph of that setting,
which without the structure group comes from the distance maps or sequence neighbours, so a sequence-only setting
never sees structure through its neighbour means. The table is standardised on the training proteins and the ``none``
arm is trained with the ``classifier`` config and seeds on the same protein split.

This module checks the settings and summarises the predictions: AUROC, AUPRC, MCC and F1 pooled over the residues
of the validation and of the test proteins, each the mean over seeds with a percentile bootstrap interval over
proteins (:mod:`siteaug.evaluation.statistics`). Every setting is scored on the same resamples, so the difference of each
setting from the first one is paired.
"""
from __future__ import annotations

import logging
import os

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from siteaug.evaluation.comparison import arm_scores
from siteaug.evaluation.figures import save_png
from siteaug.evaluation.report import METRIC_NAMES, interval_text
from siteaug.evaluation.statistics import compare_arms
from siteaug.runtime.io import InputError, atomic_path, write_json
from siteaug.runtime.tables import split_rows

log = logging.getLogger(__name__)

SEPARATOR = "+"
SPLITS = ("validation", "test")
ABLATION_METRICS = ("auroc", "auprc", "mcc", "f1")


def setting_name(groups) -> str:
    """A setting's name: its groups joined by '+', e.g. ``sequence+structure``."""
    return SEPARATOR.join(groups)


def ablation_settings(settings, groups) -> dict[str, tuple[str, ...]]:
    """Check ``report.feature_ablation`` against ``features.groups``; return {name: groups in features.groups order}."""
    groups = list(groups)
    out: dict[str, tuple[str, ...]] = {}
    for k, setting in enumerate(settings or []):
        where = f"config report.feature_ablation[{k}]"
        setting = list(setting)
        if not setting:
            raise InputError(f"{where}: a setting needs at least one feature group")
        unknown = [g for g in setting if g not in groups]
        if unknown:
            raise InputError(f"{where}: group {unknown[0]!r} is not in features.groups ({', '.join(groups)})")
        if len(set(setting)) != len(setting):
            raise InputError(f"{where}: a group is listed twice in {setting}")
        ordered = tuple(g for g in groups if g in setting)
        name = setting_name(ordered)
        if name in out:
            raise InputError(f"{where}: the same groups as an earlier setting ({name})")
        out[name] = ordered
    return out


def _split_scores(predictions: dict[str, pd.DataFrame], split: str) -> dict:
    """ArmScores of every setting on the proteins of ``split`` that every setting scored."""
    parts = {}
    for name, df in predictions.items():
        parts[name] = split_rows(df, split)
        if parts[name].empty:
            raise InputError(f"predictions of ablation setting {name!r}: no {split} rows")
    proteins = sorted(set.intersection(*(set(part["protein_id"]) for part in parts.values())))
    for name, part in parts.items():
        dropped = part["protein_id"].nunique() - len(proteins)
        if dropped:  # features.invalid_protein: skip can drop a protein in one setting only
            log.warning("setting %s: %d %s protein(s) left out, not scored in every setting", name, dropped, split)
    return {name: arm_scores(name, part[part["protein_id"].isin(proteins)], proteins) for name, part in parts.items()}


def summarise(
    predictions: dict[str, pd.DataFrame],
    training: dict[str, dict],
    n_resamples: int,
    confidence: float,
    seed: int,
) -> list[dict]:
    """One row per setting (in the given order): features, and per split each metric with its interval, its
    per-seed values and its paired difference from the first setting.

    ``predictions`` holds each setting's validation and test rows (``siteaug.arms.protocol.train_arm`` with both splits);
    ``training`` each setting's classifier summary (``features``, per-seed ``seeds``).
    """
    if not predictions:
        raise InputError("feature ablation: no settings to summarise")
    reference = next(iter(predictions))
    rows = {name: {"setting": name, "features": int(training[name]["features"]), "seeds": len(training[name]["seeds"]),
                   "training_rows": int(training[name]["seeds"][0]["training_rows"]), "reference": reference}
            for name in predictions}
    for split in SPLITS:
        scores = _split_scores(predictions, split)
        comparison = compare_arms(scores, "pooled", n_resamples, seed)
        for name, s in scores.items():
            row = rows[name]
            row |= {f"{split}_proteins": len(np.unique(s.protein)), f"{split}_residues": len(s.labels),
                    f"{split}_positives": int(s.labels.sum())}
            for metric in ABLATION_METRICS:
                summary = comparison.summary(name, metric, confidence)
                difference = comparison.difference(name, reference, metric, confidence)
                row |= {f"{split}_{metric}": summary["value"], f"{split}_{metric}_low": summary["low"],
                        f"{split}_{metric}_high": summary["high"], f"{split}_{metric}_per_seed": summary["per_seed"],
                        f"{split}_{metric}_diff": difference["difference"], f"{split}_{metric}_diff_low": difference["low"],
                        f"{split}_{metric}_diff_high": difference["high"]}
    return list(rows.values())


def display_table(rows: list[dict], confidence: float) -> pd.DataFrame:
    """The table of the report section: each metric as 'value [low, high]', and the test AUPRC difference."""
    pct = f"{confidence * 100:g} %"
    out = []
    for row in rows:
        cells = {"setting": row["setting"], "features": row["features"]}
        for split in SPLITS:
            for metric in ABLATION_METRICS:
                cells[f"{split} {METRIC_NAMES[metric]} [{pct} CI]"] = interval_text(
                    row[f"{split}_{metric}"], row[f"{split}_{metric}_low"], row[f"{split}_{metric}_high"])
        diff = [row[f"test_auprc_diff{s}"] for s in ("", "_low", "_high")]
        cells[f"Δ test AUPRC vs {row['reference']}"] = "—" if row["setting"] == row["reference"] else interval_text(*diff, signed=True)
        out.append(cells)
    return pd.DataFrame(out)


def ablation_figure(rows: list[dict], confidence: float) -> Figure:
    """AUROC and AUPRC of every setting on validation and test, with their intervals."""
    fig = Figure(figsize=(max(7.0, 3.0 + 2.2 * len(rows)), 4.2), layout="constrained")
    axes = fig.subplots(1, 2)
    x = np.arange(len(rows))
    for ax, metric in zip(axes, ("auroc", "auprc")):
        for k, (split, colour) in enumerate(zip(SPLITS, ("tab:blue", "tab:orange"))):
            values = np.array([r[f"{split}_{metric}"] for r in rows])
            errors = np.vstack([values - [r[f"{split}_{metric}_low"] for r in rows],
                                np.array([r[f"{split}_{metric}_high"] for r in rows]) - values])
            ax.errorbar(x + (k - 0.5) * 0.2, values, yerr=errors, fmt="o", capsize=3, color=colour, label=split)
        ax.set_xticks(x, [r["setting"].replace(SEPARATOR, f"\n{SEPARATOR}") for r in rows])
        ax.set_xlim(-0.6, len(rows) - 0.4)
        ax.set(ylabel=f"{METRIC_NAMES[metric]} (pooled, mean over seeds)",
               title=f"{METRIC_NAMES[metric]} per feature setting ({confidence * 100:g} % CI)")
    axes[0].legend(fontsize="small")
    return fig


def write_outputs(rows: list[dict], protocol: dict, confidence: float, json_path, tsv_path, table_path, png_path) -> None:
    """metrics.json (every value, per-seed ones too), metrics.tsv (one row per setting), the display table, the plot."""
    write_json({"protocol": protocol, "settings": rows}, json_path)
    flat = pd.DataFrame([{k: v for k, v in row.items() if not k.endswith("_per_seed")} for row in rows])
    _write_tsv(flat, tsv_path, float_format="%.4f")
    _write_tsv(display_table(rows, confidence), table_path)
    save_png(ablation_figure(rows, confidence), png_path)


def _write_tsv(frame: pd.DataFrame, path: str | os.PathLike, **kwargs) -> None:
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, sep="\t", index=False, **kwargs)
