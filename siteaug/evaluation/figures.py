"""The report's figures (rule report_figures), and :func:`save_png`, the one way every figure of the workflow is written.

The figures read the predictions (curves of the first seed) and the evaluation (siteaug.evaluation.comparison's
metrics.json: intervals, paired differences and verdicts), so they never evaluate again.
"""
from __future__ import annotations

import os

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from siteaug.evaluation.comparison import (
    REFERENCES,
    difference_frame,
    metric_frame,
    ordered_test_sets,
    pooled_metrics,
    protein_test_sets,
)
from siteaug.evaluation.statistics import PRIMARY_METRIC, threshold_curves
from siteaug.runtime.io import atomic_path

# The figures of the report folder; ratio_sweep.png only with classifier.ratio_sweep, quality_scores.png only with
# the filter's scores.
CORE_FIGURES = ("roc.png", "pr.png", "thresholds.png", "auprc_intervals.png", "auprc_differences.png")
SWEEP_FIGURE, QUALITY_FIGURE = "ratio_sweep.png", "quality_scores.png"


def save_png(fig: Figure, path: str | os.PathLike) -> None:
    """Write ``fig`` as a PNG at ``path``, atomically. Every figure goes through here, so all share one resolution."""
    with atomic_path(path) as tmp:
        # No software-version metadata, so the same data gives the same bytes across matplotlib versions.
        fig.savefig(tmp, format="png", dpi=100, bbox_inches="tight", metadata={"Software": None})


def _colours(arms: list[str]) -> dict[str, tuple]:
    from matplotlib import colormaps

    if len(arms) <= 10:
        return {arm: colormaps["tab10"](i) for i, arm in enumerate(arms)}
    # tab20 pairs a dark and a light shade of each hue: use all dark ones before any light one.
    order = [*range(0, 20, 2), *range(1, 20, 2)]
    return {arm: colormaps["tab20"](order[i % 20]) for i, arm in enumerate(arms)}


def _first_seed(df: pd.DataFrame) -> pd.DataFrame:
    return df[df["seed"] == df["seed"].min()]


def _interval_label(metrics: pd.DataFrame, arm: str, metric: str) -> str:
    row = metrics.loc[arm]
    return f"{arm} ({metric.upper()} {row[metric]:.3f} [{row[f'{metric}_low']:.3f}, {row[f'{metric}_high']:.3f}])"


def _curve_figure(predictions, metrics, kind: str) -> Figure:
    # Here, not at the top: the report job imports this module for the figure names only (scikit-learn, about 1.2 s
    # of CPU).
    from sklearn.metrics import precision_recall_curve, roc_curve

    fig = Figure(figsize=(6.5, 5.5))
    ax = fig.subplots()
    colours = _colours(list(predictions))
    for arm, df in predictions.items():
        df = _first_seed(df)
        if kind == "roc":
            x, y, _ = roc_curve(df["label"], df["score"])
            ax.plot(x, y, color=colours[arm], lw=1.2, label=_interval_label(metrics, arm, "auroc"))
        else:
            precision, recall, _ = precision_recall_curve(df["label"], df["score"])
            ax.step(recall, precision, where="post", color=colours[arm], lw=1.2, label=_interval_label(metrics, arm, "auprc"))
    if kind == "roc":
        ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=1, label="chance")
        ax.set(xlabel="False positive rate", ylabel="True positive rate", title="ROC (test, first seed)")
    else:
        rate = float(_first_seed(next(iter(predictions.values())))["label"].mean())
        ax.axhline(rate, ls="--", color="grey", lw=1, label=f"positive rate {rate:.3f} (random ranking)")
        ax.set(xlabel="Recall", ylabel="Precision", title="Precision-recall (test, first seed)")
    ax.set(xlim=(0, 1), ylim=(0, 1.01))
    ax.legend(loc="center left", bbox_to_anchor=(1.02, 0.5), fontsize="small", title="mean over seeds [95 % CI]")
    return fig


def _threshold_figure(predictions) -> Figure:
    """Test MCC and F1 against the threshold; the dot marks the threshold frozen on validation."""
    fig = Figure(figsize=(11, 4.2))
    axes = fig.subplots(1, 2)
    colours = _colours(list(predictions))
    grid = np.linspace(0.01, 0.99, 99)
    for arm, df in predictions.items():
        df = _first_seed(df)
        y, s, frozen = df["label"].to_numpy(), df["score"].to_numpy(), float(df["threshold"].iloc[0])
        curves, at_frozen = threshold_curves(y, s, grid), threshold_curves(y, s, [frozen])
        # A threshold that predicts a single class for every residue draws as 0 on the curve.
        one_class = np.isin(len(s) - np.searchsorted(np.sort(s), grid), (0, len(s)))
        for ax, metric in zip(axes, ("mcc", "f1")):
            ax.plot(grid, np.where(one_class, 0.0, curves[metric]), color=colours[arm], lw=1.1, label=arm)
            ax.plot([frozen], at_frozen[metric], "o", color=colours[arm], ms=5)
    for ax, name in zip(axes, ("MCC", "F1")):
        ax.set(xlabel="Decision threshold", ylabel=f"test {name}", title=f"{name} against threshold (first seed)", xlim=(0, 1))
    axes[1].legend(loc="center left", bbox_to_anchor=(1.02, 0.5), fontsize="small")
    return fig


def _interval_figure(metrics: pd.DataFrame, metric: str = PRIMARY_METRIC) -> Figure:
    arms = list(metrics.index)
    fig = Figure(figsize=(6.5, 0.45 * len(arms) + 1.3))
    ax = fig.subplots()
    ypos = np.arange(len(arms))[::-1]
    values = metrics[metric].to_numpy()
    errors = np.vstack([values - metrics[f"{metric}_low"].to_numpy(), metrics[f"{metric}_high"].to_numpy() - values])
    ax.errorbar(values, ypos, xerr=errors, fmt="o", color="black", capsize=3)
    for reference, style in zip(REFERENCES, ("--", ":", "-.", (0, (1, 3)))):
        if reference in metrics.index:
            ax.axvline(metrics.loc[reference, metric], ls=style, color="tab:red", lw=1, label=f"{reference}")
    ax.set_yticks(ypos, arms)
    ax.set(xlabel=f"test {metric.upper()} (pooled; mean over seeds, 95 % bootstrap CI)", title=f"{metric.upper()} per arm")
    if any(r in metrics.index for r in REFERENCES):
        ax.legend(fontsize="small", loc="lower right")
    return fig


_VERDICT_COLOURS = {"better": "tab:green", "worse": "tab:red", "no verdict": "grey"}


def _difference_figure(differences: pd.DataFrame, metric: str = PRIMARY_METRIC) -> Figure:
    """The paired differences the verdicts come from: one panel per reference that ran, a row per arm (shared by the
    panels), each compared arm's difference (arm − reference, pooled ``metric``) with its paired bootstrap interval and
    a zero line; green / red where the interval excludes 0 (better / worse), grey for no verdict. The reference's own
    row is empty in its panel. ``differences``: rows of one test set and aggregation, as in differences.tsv."""
    rows = differences[differences["metric"] == metric]
    references = [r for r in REFERENCES if r in set(rows["reference"])]
    if not references:
        fig = Figure(figsize=(6.5, 2))
        ax = fig.subplots()
        ax.text(0.5, 0.5, f"no reference arm ({', '.join(REFERENCES)}) ran: nothing to compare", ha="center",
                va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return fig
    arms = list(dict.fromkeys([*rows["arm"], *references]))
    row_of = {arm: len(arms) - 1 - i for i, arm in enumerate(arms)}
    fig = Figure(figsize=(3.2 * len(references) + 2, 0.4 * len(arms) + 1.6), layout="constrained")
    axes = fig.subplots(1, len(references), sharey=True, squeeze=False)[0]
    for ax, reference in zip(axes, references):
        compared = rows[rows["reference"] == reference]
        for row in compared.itertuples():
            ax.errorbar([row.difference], [row_of[row.arm]], xerr=[[row.difference - row.low], [row.high - row.difference]],
                        fmt="o", color=_VERDICT_COLOURS.get(row.verdict, "black"), capsize=3)
        ax.axvline(0, color="grey", lw=1, ls="--")
        ax.set(xlabel=f"Δ {metric.upper()} (arm − {reference})", title=f"against {reference}")
    axes[0].set_yticks(list(row_of.values()), list(row_of))
    axes[0].set_ylim(-0.6, len(arms) - 0.4)
    fig.suptitle(f"Paired differences in test {metric.upper()} (pooled; 95 % paired bootstrap CI)")
    return fig


def _sweep_figure(metrics: pd.DataFrame, sweep: dict[str, float], metric: str = PRIMARY_METRIC) -> Figure:
    fig = Figure(figsize=(6, 4.2))
    ax = fig.subplots()
    arms = sorted(sweep, key=sweep.get)
    ratios = np.array([sweep[a] for a in arms])
    values = metrics.loc[arms, metric].to_numpy()
    errors = np.vstack([values - metrics.loc[arms, f"{metric}_low"], metrics.loc[arms, f"{metric}_high"] - values])
    ax.errorbar(ratios, values, yerr=errors, fmt="o-", color="tab:blue", capsize=3, label="diffusion")
    for reference, colour in zip(REFERENCES, ("grey", "tab:orange", "tab:green", "tab:purple")):
        if reference in metrics.index:
            r = metrics.loc[reference]
            ax.axhspan(r[f"{metric}_low"], r[f"{metric}_high"], color=colour, alpha=0.15)
            ax.axhline(r[metric], color=colour, lw=1, label=f"{reference} (band: 95 % CI)")
    ax.set(xlabel="target positive ratio of the training table", ylabel=f"test {metric.upper()} (pooled)",
           title="Diffusion ratio sweep")
    ax.legend(fontsize="small")
    return fig


def _quality_figure(scores: np.ndarray, threshold: float | None) -> Figure:
    fig = Figure(figsize=(5.5, 4))
    ax = fig.subplots()
    if scores.size:
        ax.hist(scores, bins=min(50, max(10, scores.size // 20)), color="tab:blue", alpha=0.8)
    else:
        ax.text(0.5, 0.5, "no generated candidates", ha="center", va="center", transform=ax.transAxes)
    if threshold is not None:
        ax.axvline(threshold, color="tab:red", ls="--", label=f"quality threshold {threshold:g}")
        ax.legend(fontsize="small")
    ax.set(xlabel="Quality score", ylabel="Candidates", title=f"Generated candidates (n={scores.size})")
    return fig


def report_figures(predictions: dict[str, pd.DataFrame], proteins: pd.DataFrame | None, evaluation: dict,
                   sweep: dict[str, float] | None = None, quality_scores: np.ndarray | None = None,
                   quality_threshold: float | None = None) -> dict[str, Figure]:
    """The report's figures by file name, for the first test set of ``evaluation`` (the internal one).

    ``sweep`` maps the ratio-sweep arms (and diffusion) to their ratio; ``quality_scores`` are the filter's scores of
    every generated candidate, drawn with ``quality_threshold``.
    """
    metrics = metric_frame(evaluation)
    main = ordered_test_sets(metrics)[0]
    pooled = pooled_metrics(metrics, main)
    differences = difference_frame(evaluation)
    in_main = {p for p, t in protein_test_sets(predictions, proteins).items() if t == main}
    main_predictions = {arm: df[df["protein_id"].isin(in_main)] for arm, df in predictions.items()}
    figures = {
        "roc.png": _curve_figure(main_predictions, pooled, "roc"),
        "pr.png": _curve_figure(main_predictions, pooled, "pr"),
        "thresholds.png": _threshold_figure(main_predictions),
        "auprc_intervals.png": _interval_figure(pooled),
        "auprc_differences.png": _difference_figure(
            differences[(differences["test_set"] == main) & (differences["aggregation"] == "pooled")]),
    }
    if sweep:
        figures[SWEEP_FIGURE] = _sweep_figure(pooled, sweep)
    if quality_scores is not None:
        figures[QUALITY_FIGURE] = _quality_figure(np.asarray(quality_scores, dtype=float).ravel(), quality_threshold)
    return figures
