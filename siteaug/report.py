"""Test metrics with bootstrap intervals, paired verdicts against `none` and `smote`, and a self-contained HTML report.

Outputs (``out_dir``): report.html (figures inlined, opens offline), metrics.tsv (one row per test set, arm and
aggregation; each metric with its interval), differences.tsv (paired differences and verdicts), metrics.json (all of
it plus the per-seed values and the protocol), and the figures as PNG files.
"""
from __future__ import annotations

import base64
import html
import io
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from matplotlib.figure import Figure
from sklearn.metrics import precision_recall_curve, roc_curve

from .io import InputError, atomic_path, write_json, write_text
from .statistics import METRICS, PRIMARY_METRIC, ArmScores, compare_arms, threshold_curves

PREDICTION_COLUMNS = ("protein_id", "position", "label", "seed", "score", "threshold", "split")
# Every arm is compared with each of these that ran: the real-rows baseline, the classical oversampler, and the two
# strong models (the tree ensemble and the graph base model that the embedding arms build on).
REFERENCES = ("none", "smote", "gbdt", "graph_transformer")
_REFERENCE_NAMES = {"none": "none", "smote": "SMOTE", "gbdt": "gbdt", "graph_transformer": "graph_transformer"}
AGGREGATIONS = ("pooled", "per_protein")
FIGURES = ("roc.png", "pr.png", "thresholds.png", "auprc_intervals.png", "auprc_differences.png")
TEST_SET_NAMES = {"labels": "test", "external_test": "external test"}
_DISPLAY = {"auprc": "AUPRC", "auroc": "AUROC", "mcc": "MCC", "f1": "F1", "precision": "precision", "recall": "recall",
            "specificity": "specificity"}

_CSS = """
body { font-family: system-ui, sans-serif; max-width: 96rem; margin: 2rem auto; padding: 0 1rem; color: #222; }
table { border-collapse: collapse; margin: 1rem 0; font-size: 0.9rem; }
th, td { border: 1px solid #ccc; padding: 0.25rem 0.5rem; text-align: right; white-space: nowrap; }
th:first-child, td:first-child { text-align: left; }
td.text, th.text { text-align: left; white-space: normal; }
th { background: #f3f3f3; }
img { max-width: 100%; }
.figures { display: flex; flex-wrap: wrap; gap: 1rem; align-items: flex-start; }
.wide { overflow-x: auto; max-width: 100%; }
.note { color: #555; }
.better { background: #e3f4e3; } .worse { background: #f8e0e0; }
.answer { font-size: 1.15rem; } .warning { background: #fff4d6; border-left: 4px solid #e0a800; padding: 0.25rem 1rem; }
pre { background: #f7f7f7; padding: 0.5rem; overflow-x: auto; font-size: 0.8rem; }
"""


def _check_arm(arm: str, df: pd.DataFrame) -> None:
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


def evaluate(predictions: dict[str, pd.DataFrame], test_sets: dict[str, str], n_resamples: int, confidence: float, seed: int):
    """(metrics rows, difference rows) for every test set, aggregation, arm and metric."""
    metric_rows, difference_rows = [], []
    any_arm = next(iter(predictions.values()))
    for test_set in dict.fromkeys(any_arm["protein_id"].map(test_sets)):
        proteins = sorted(p for p in any_arm["protein_id"].unique() if test_sets[p] == test_set)
        scores = {arm: arm_scores(arm, df[df["protein_id"].isin(proteins)], proteins) for arm, df in predictions.items()}
        for aggregation in AGGREGATIONS:
            comparison = compare_arms(scores, aggregation, n_resamples, seed)
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
    names = _REFERENCE_NAMES
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


# ---------------------------------------------------------------- figures

def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    # No software-version metadata, so the same data gives the same bytes across matplotlib versions.
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight", metadata={"Software": None})
    return buf.getvalue()


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


# ---------------------------------------------------------------- HTML

def _table(header: list[str], rows: list[list[str]], classes: dict[tuple[int, int], str] | None = None) -> str:
    """Cells are already-formatted text; they are escaped here. ``classes`` maps (row, column) to a CSS class."""
    classes = classes or {}
    head = "".join(f'<th class="text">{html.escape(h)}</th>' if h == "verdict" else f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(
            f'<td class="{classes[(i, j)]}">{html.escape(c)}</td>' if (i, j) in classes else f"<td>{html.escape(c)}</td>"
            for j, c in enumerate(row)
        ) + "</tr>"
        for i, row in enumerate(rows)
    )
    # Wide tables (metrics with intervals) scroll inside their own box instead of running off the page.
    return f'<div class="wide"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def _ci(value: float, low: float, high: float, signed: bool = False) -> str:
    fmt = "{:+.3f}" if signed else "{:.3f}"
    return f"{fmt.format(value)} [{fmt.format(low)}, {fmt.format(high)}]"


def _verdict_table(verdict_rows: list[dict], metrics: pd.DataFrame) -> str:
    references = [r for r in REFERENCES if any(f"vs_{r}" in v for v in verdict_rows)]
    header = ["arm", "AUPRC [95 % CI]", *(f"Δ vs {_REFERENCE_NAMES[r]} [95 % CI]" for r in references), "verdict"]
    rows, classes = [], {}
    for i, v in enumerate(verdict_rows):
        m = metrics.loc[v["arm"]]
        row = [v["arm"], _ci(m["auprc"], m["auprc_low"], m["auprc_high"])]
        for j, reference in enumerate(references, start=2):
            d = v.get(f"vs_{reference}")
            row.append(_ci(d["difference"], d["low"], d["high"], signed=True) if d else "—")
            if d and d["verdict"] != "no detectable difference":
                classes[(i, j)] = d["verdict"]
        row.append(v["verdict"])
        classes[(i, 2 + len(references))] = "text"
        rows.append(row)
    return _table(header, rows, classes)


def _metrics_table(metrics: pd.DataFrame) -> str:
    header = ["arm", *(_DISPLAY[m] for m in METRICS), "threshold"]
    rows = [[arm, *(_ci(r[m], r[f"{m}_low"], r[f"{m}_high"]) for m in METRICS), f"{r['threshold']:.3f}"]
            for arm, r in metrics.iterrows()]
    return _table(header, rows)


def _seed_table(metrics: pd.DataFrame, metric: str = PRIMARY_METRIC) -> str:
    n = max(len(v) for v in metrics[f"{metric}_per_seed"])
    rows = [[arm, *(f"{v:.3f}" for v in r[f"{metric}_per_seed"]), *([""] * (n - len(r[f"{metric}_per_seed"]))),
             f"{np.std(r[f'{metric}_per_seed']):.3f}"] for arm, r in metrics.iterrows()]
    return _table(["arm", *(f"seed {k + 1}" for k in range(n)), "sd"], rows)


def _image(png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(alt)}"></figure>'


def _extra_section(title: str, section: dict) -> list[str]:
    """A section from files: ``{"tables": [json or tsv paths], "images": [png paths], "text": "..."}``."""
    parts = [f"<h2>{html.escape(title)}</h2>"]
    if section.get("text"):
        parts.append(f'<p class="note">{html.escape(section["text"])}</p>')
    for path in map(Path, section.get("tables", [])):
        if not path.is_file():
            raise InputError(f"{path}: report section {title!r}: table file not found")
        if path.suffix == ".json":
            data = json.loads(path.read_text())
            records = data if isinstance(data, list) else [{"key": k, "value": v} for k, v in _flatten(data).items()]
            table = pd.DataFrame(records)
        else:
            table = pd.read_csv(path, sep="\t" if path.suffix == ".tsv" else ",")
        parts.append(_table([str(c) for c in table.columns],
                            [[f"{v:.4g}" if isinstance(v, float) else str(v) for v in row] for row in table.itertuples(index=False)]))
    for path in map(Path, section.get("images", [])):
        if not path.is_file():
            raise InputError(f"{path}: report section {title!r}: image not found")
        parts.append(_image(path.read_bytes(), f"{title}: {path.name}"))
    return parts


def _flatten(data, prefix: str = "") -> dict:
    out = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out |= _flatten(value, f"{name}.")
        else:
            out[name] = value
    return out


def _protocol_text(n_resamples: int, confidence: float, seeds: int) -> str:
    pct = f"{confidence * 100:g} %"
    return (
        "<p>Each arm is a binding-site residue classifier trained on a different version of the training data; "
        "proteins are split into train / validation / test (never residues), and synthetic rows only ever enter "
        "training. Each arm's decision threshold is chosen on the validation split and frozen for test. "
        f"Every arm is trained with {seeds} seed(s); a value is the mean over seeds of that metric. "
        f"Intervals are {pct} percentile bootstrap intervals over test proteins ({n_resamples} resamples of whole "
        "proteins, the same resamples for every arm, so differences are paired); in each resample the metric is "
        "averaged over seeds, so an interval is the test-set uncertainty of the seed mean. "
        "A verdict is 'better' or 'worse' when the interval of the difference excludes 0, otherwise "
        "'no detectable difference'. Intervals are per comparison, not adjusted for the number of arms.</p>"
        "<p>'pooled' metrics are computed over all test residues together; 'per protein' metrics are the mean over "
        "test proteins holding both classes of each protein's own metric.</p>"
    )


MIN_TEST_PROTEINS = 20  # fewer test proteins than this: the report warns that its intervals are rough
SEPARABLE_C2ST = 0.9  # C2ST AUC above this on continuous features: the report warns that synthetic rows are separable


def answer_sentence(verdict_rows: list[dict], pooled: pd.DataFrame, test_set: str) -> str:
    """The report's first sentence: what the diffusion arm (or, without one, the best arm) did on ``test_set``."""
    rows = {v["arm"]: v for v in verdict_rows if v["test_set"] == test_set}
    n = int(pooled.iloc[0]["n_proteins"])
    where = f"On the {test_set} set ({n} proteins, AUPRC pooled over residues)"
    if "diffusion" in rows:
        v, auprc = rows["diffusion"], pooled.loc["diffusion", PRIMARY_METRIC]
        against = [f"{r} {pooled.loc[r, PRIMARY_METRIC]:.3f}, paired Δ {_ci(d['difference'], d['low'], d['high'], signed=True)}"
                   for r in REFERENCES if (d := v.get(f"vs_{r}"))]
        return (f"{where}, diffusion augmentation with the quality filter (arm diffusion, {auprc:.3f}; "
                f"{'; '.join(against)}): {v['verdict']}.")
    best = pooled[PRIMARY_METRIC].idxmax()
    verdict = f": {rows[best]['verdict']}" if best in rows else ""
    return (f"{where}, this run has no diffusion arm; the best arm is {best} "
            f"({_ci(*pooled.loc[best, [PRIMARY_METRIC, f'{PRIMARY_METRIC}_low', f'{PRIMARY_METRIC}_high']])}){verdict}.")


def evidence_warnings(metrics: pd.DataFrame, quality_metrics: dict | None = None,
                      diffusion_history: list[dict] | None = None) -> list[str]:
    """Plain-language warnings where the evidence behind the verdicts is weak."""
    out = []
    sizes = metrics.drop_duplicates("test_set").set_index("test_set")["n_proteins"]
    for test_set, n in sizes.items():
        if n < MIN_TEST_PROTEINS:
            out.append(f"The {test_set} set holds only {int(n)} proteins (fewer than {MIN_TEST_PROTEINS}): the intervals "
                       "resample so few proteins that they are rough, and a verdict may change with a handful of proteins.")
    c2st = (quality_metrics or {}).get("c2st_auc_continuous")
    if c2st is not None and c2st > SEPARABLE_C2ST:
        out.append(f"C2ST AUC on the continuous features is {c2st:.3f} (above {SEPARABLE_C2ST}; 0.5 would be "
                   "indistinguishable): synthetic rows are trivially separable from real training positives, so the "
                   "generator does not reproduce their distribution.")
    scored = [r for r in diffusion_history or [] if r.get("validation_loss") is not None]
    if len(scored) >= 2 and scored[-1]["validation_loss"] < min(r["validation_loss"] for r in scored[:-1]):
        out.append(f"The diffusion model's validation loss was still falling at its last evaluation (step "
                   f"{scored[-1]['step']}: {scored[-2]['validation_loss']:.4f} → {scored[-1]['validation_loss']:.4f}): "
                   "training ended before it converged; more diffusion.steps may give better candidates.")
    return out


def _warnings_html(warnings: list[str]) -> list[str]:
    if not warnings:
        return []
    items = "".join(f"<li>{html.escape(w)}</li>" for w in warnings)
    return [f'<div class="warning"><strong>Weak evidence</strong><ul>{items}</ul></div>']


def _timing_table(timings: dict[str, float]) -> str:
    """Stages by time, longest first, with each one's share and the total."""
    total = float(sum(timings.values()))
    rows = [[str(k), f"{float(v):.1f}", f"{100 * float(v) / total:.0f} %" if total else "—"]
            for k, v in sorted(timings.items(), key=lambda kv: (-float(kv[1]), kv[0]))]
    rows.append(["total (sum of job times; jobs that ran in parallel overlap)", f"{total:.1f}", "100 %" if total else "—"])
    return _table(["stage", "seconds", "share"], rows)


def critical_path(intervals: dict[str, tuple[float, float]], max_gap: float = 60.0, slack: float = 1.0) -> list[str]:
    """The chain of jobs the run waited on, first to last, from each job's (start, end) time in seconds.

    From the job that finished last, each job's predecessor is the job that finished last at or before its start
    (``slack`` seconds of clock and rounding error allowed): the dependency it waited for, or the job whose cores it
    took. A predecessor that ended more than ``max_gap`` seconds before the start belongs to an earlier run and ends
    the chain.
    """
    if not intervals:
        return []
    current = max(intervals, key=lambda k: (intervals[k][1], k))
    chain = [current]
    while True:
        start = intervals[current][0]
        before = [k for k, (_, end) in intervals.items() if k not in chain and end <= start + slack]
        if not before:
            break
        previous = max(before, key=lambda k: (intervals[k][1], k))
        if start - intervals[previous][1] > max_gap:
            break
        chain.append(previous)
        current = previous
    return chain[::-1]


def _critical_path_html(intervals: dict[str, tuple[float, float]]) -> list[str]:
    chain = critical_path(intervals)
    first = min(start for start, _ in (intervals[k] for k in chain))
    last = intervals[chain[-1]][1]
    rows = [[k, f"{intervals[k][0] - first:.1f}", f"{intervals[k][1] - intervals[k][0]:.1f}"] for k in chain]
    rows.append(["critical path, first start to last end", "", f"{last - first:.1f}"])
    return ["<h3>Critical path</h3>",
            '<p class="note">The chain of jobs this run waited on, from the start and end times of their benchmark '
            "files: from the job that finished last, each job is preceded by the one that finished last before it "
            "started (the job it depended on, or whose cores it took). Shortening a job off this chain does not "
            "shorten the run.</p>",
            _table(["stage", "started (s after the first)", "seconds"], rows)]


def _provenance_html(provenance: dict) -> list[str]:
    """Inputs with checksums, software, machine, commit, date and the config as run."""
    parts = ["<h2>Provenance</h2>",
             '<p class="note">What these results were made from; also in provenance.json beside this page.</p>']
    facts = [[k.replace("_", " "), str(provenance[k])] for k in ("git_commit", "date", "host", "cpu", "gpu", "python")
             if k in provenance]
    if facts:
        parts.append(_table(["", "value"], facts))
    if provenance.get("inputs"):
        rows = [[key, c["path"], c["sha256"], f"{c['files']:,}", f"{c['bytes']:,}"] for key, c in provenance["inputs"].items()]
        parts += ["<h3>Inputs</h3>", _table(["config key", "path", "sha256", "files", "bytes"], rows)]
    if provenance.get("packages"):
        parts += ["<h3>Package versions</h3>", _table(["package", "version"], [[k, v] for k, v in provenance["packages"].items()])]
    if provenance.get("config") is not None:
        parts += ["<h3>Config as run</h3>",
                  f"<pre>{html.escape(yaml.safe_dump(provenance['config'], sort_keys=False, default_flow_style=None))}</pre>"]
    return parts


def build_report(
    predictions: dict[str, pd.DataFrame],
    out_dir: str | os.PathLike,
    proteins: pd.DataFrame | None = None,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    sweep: dict[str, float] | None = None,
    quality_scores: np.ndarray | None = None,
    quality_threshold: float | None = None,
    stage_counts: dict[str, int | float] | None = None,
    training: dict[str, dict] | None = None,
    timings: dict[str, float] | None = None,
    job_intervals: dict[str, tuple[float, float]] | None = None,
    extra_sections: dict[str, dict] | None = None,
    title: str = "siteaug report",
    no_verdict: dict[str, str] | None = None,
    quality_metrics: dict | None = None,
    diffusion_history: list[dict] | None = None,
    provenance: dict | None = None,
) -> pd.DataFrame:
    """Write metrics.tsv, differences.tsv, metrics.json, report.html and the PNG figures; return the metrics frame.

    ``predictions`` maps arm to its test predictions (``PREDICTION_COLUMNS``, one block per seed). ``proteins``
    (protein_id, source) splits test proteins into the internal and an external test set, evaluated separately.
    ``sweep`` maps the ratio-sweep arms to their ratio. ``extra_sections`` maps a title to files to show (see
    ``_extra_section``), e.g. the generation-quality stage's metrics and plots. ``no_verdict`` maps an arm that is not
    what its name says (e.g. diffusion trained on zero synthetic rows) to the reason: it keeps its metrics but gets no
    verdict, and the page says why.
    ``quality_metrics`` (quality/metrics.json)
    and ``diffusion_history`` (diffusion/history.json) feed the warnings; ``provenance`` (inputs with checksums, config,
    machine, versions, commit, date) goes into the page and provenance.json, never into the metric tables.
    ``timings`` (stage → seconds) is the time table; ``job_intervals`` (stage → start and end, :func:`benchmark_intervals`)
    adds the run's critical path below it.
    """
    if not predictions:
        raise InputError("build_report: no arms given")
    for arm, df in predictions.items():
        _check_arm(arm, df)
    out_dir = Path(out_dir)
    arms = list(predictions)
    ids = next(iter(predictions.values()))["protein_id"].unique()
    if proteins is None:
        test_sets = {p: "test" for p in ids}
    else:
        source = proteins.set_index("protein_id")["source"]
        unknown = sorted(set(ids) - set(source.index))
        if unknown:
            raise InputError(f"predictions: protein {unknown[0]} is not in the protein table")
        test_sets = {p: TEST_SET_NAMES.get(source[p], str(source[p])) for p in ids}
    metric_rows, difference_rows = evaluate(predictions, test_sets, n_resamples, confidence, seed)
    metrics = pd.DataFrame(metric_rows)
    differences = pd.DataFrame(difference_rows, columns=["test_set", "aggregation", "arm", "reference", "metric", "difference", "low", "high", "verdict"])
    no_verdict = {arm: reason for arm, reason in (no_verdict or {}).items() if arm in arms}
    differences.loc[differences["arm"].isin(list(no_verdict)), "verdict"] = "no verdict"
    verdict_rows = verdicts(differences, [arm for arm in arms if arm not in no_verdict])

    flat = metrics.drop(columns=[c for c in metrics.columns if c.endswith("_per_seed")])
    with atomic_path(out_dir / "metrics.tsv") as tmp:
        flat.to_csv(tmp, sep="\t", index=False, float_format="%.4f")
    with atomic_path(out_dir / "differences.tsv") as tmp:
        differences.to_csv(tmp, sep="\t", index=False, float_format="%.4f")
    write_json({
        "protocol": {"bootstrap_resamples": n_resamples, "confidence": confidence, "bootstrap_seed": seed,
                     "unit_resampled": "test protein", "seeds": "metric averaged over seeds in every resample",
                     "primary_metric": PRIMARY_METRIC, "references": list(REFERENCES)},
        "metrics": metric_rows, "differences": difference_rows, "verdicts": verdict_rows, "no_verdict": no_verdict, "training": training or {},
    }, out_dir / "metrics.json")

    test_sets_in_order = list(dict.fromkeys(metrics["test_set"]))
    main = test_sets_in_order[0]
    pooled = {t: metrics[(metrics["test_set"] == t) & (metrics["aggregation"] == "pooled")].set_index("arm") for t in test_sets_in_order}
    main_ids = {p for p, t in test_sets.items() if t == main}
    main_predictions = {arm: df[df["protein_id"].isin(main_ids)] for arm, df in predictions.items()}
    figures = {
        "roc.png": _png(_curve_figure(main_predictions, pooled[main], "roc")),
        "pr.png": _png(_curve_figure(main_predictions, pooled[main], "pr")),
        "thresholds.png": _png(_threshold_figure(main_predictions)),
        "auprc_intervals.png": _png(_interval_figure(pooled[main])),
        "auprc_differences.png": _png(_difference_figure(
            differences[(differences["test_set"] == main) & (differences["aggregation"] == "pooled")])),
    }
    if sweep:
        figures["ratio_sweep.png"] = _png(_sweep_figure(pooled[main], sweep))
    if quality_scores is not None:
        figures["quality_scores.png"] = _png(_quality_figure(np.asarray(quality_scores, dtype=float).ravel(), quality_threshold))
    for name, png in figures.items():
        with atomic_path(out_dir / name) as tmp:
            tmp.write_bytes(png)

    seeds = int(metrics["seeds"].max())
    parts = [f"<h1>{html.escape(title)}</h1>",
             f'<p class="answer">{html.escape(answer_sentence(verdict_rows, pooled[main], main))}</p>']
    parts += _warnings_html(evidence_warnings(metrics, quality_metrics, diffusion_history))
    for t in test_sets_in_order:
        rows = [v for v in verdict_rows if v["test_set"] == t]
        parts += [f"<h2>Verdict ({html.escape(t)} set, AUPRC pooled over residues)</h2>"]
        parts += [_verdict_table(rows, pooled[t])] if rows else ['<p class="note">No verdict: neither none nor smote is among the arms.</p>']
        parts += [f'<p class="note">No verdict for {html.escape(arm)}: {html.escape(reason)}</p>' for arm, reason in no_verdict.items()]
    parts.append(_protocol_text(n_resamples, confidence, seeds))
    for t in test_sets_in_order:
        n = pooled[t].iloc[0]
        parts.append(f"<h2>Metrics ({html.escape(t)} set: {int(n['n_proteins'])} proteins, {int(n['n_residues']):,} residues, "
                     f"{int(n['n_positives']):,} positives)</h2>")
        for aggregation in AGGREGATIONS:
            part = metrics[(metrics["test_set"] == t) & (metrics["aggregation"] == aggregation)].set_index("arm")
            parts += [f"<h3>{aggregation.replace('_', ' ')}</h3>", _metrics_table(part)]
        parts += ["<h3>AUPRC per seed (pooled)</h3>", _seed_table(pooled[t])]
    parts += [
        "<h2>AUPRC intervals and paired differences</h2>",
        '<p class="note">Left: the AUPRC of each arm with its interval. Right: the evidence of the verdicts, the paired '
        "difference of each arm from every reference that ran, with the interval of the difference: better or worse where it "
        "excludes 0 (green, red). Overlapping intervals on the left can still give a clear paired difference.</p>",
        '<div class="figures">', _image(figures["auprc_intervals.png"], "AUPRC with intervals per arm"),
        _image(figures["auprc_differences.png"], "Paired AUPRC differences against the references"), "</div>",
        "<h2>ROC curves</h2>", _image(figures["roc.png"], "ROC curves of all arms"),
        "<h2>Precision-recall curves</h2>", _image(figures["pr.png"], "Precision-recall curves of all arms"),
        "<h2>Threshold curves</h2>",
        '<p class="note">Test MCC and F1 of the first seed at every threshold; the dot is the threshold frozen on '
        "validation. A dot far below its curve's peak means the validation threshold did not carry over.</p>",
        _image(figures["thresholds.png"], "MCC and F1 against the decision threshold"),
    ]
    if "ratio_sweep.png" in figures:
        parts += ["<h2>Diffusion ratio sweep</h2>",
                  '<p class="note">Candidates are generated once, for the largest ratio; smaller ratios take the '
                  "best-scored subset of the same filtered rows.</p>",
                  _image(figures["ratio_sweep.png"], "AUPRC against the target positive ratio")]
    if training:
        rows = [[arm, f"{np.mean([s['training_rows'] for s in t['seeds']]):,.0f}",
                 f"{np.mean([s['positive_ratio'] for s in t['seeds']]):.3f}"] for arm, t in training.items()]
        parts += ["<h2>Training rows per arm</h2>", _table(["arm", "rows (mean over seeds)", "positive ratio"], rows)]
    if "quality_scores.png" in figures:
        parts += ["<h2>Quality of generated candidates</h2>", _image(figures["quality_scores.png"], "Histogram of candidate quality scores")]
    for section_title, section in (extra_sections or {}).items():
        parts += _extra_section(section_title, section)
    if stage_counts:
        parts += ["<h2>Rows per stage</h2>",
                  _table(["stage", "rows"], [[str(k), f"{v:,}" if isinstance(v, (int, np.integer)) else f"{v:,.4g}"]
                                             for k, v in stage_counts.items()])]
    if timings:
        parts += ["<h2>Time per stage</h2>", _timing_table(timings)]
    if job_intervals:
        parts += _critical_path_html(job_intervals)
    if provenance:
        write_json(provenance, out_dir / "provenance.json")
        parts += _provenance_html(provenance)
    parts.append('<p class="note">Machine-readable: metrics.tsv, differences.tsv and metrics.json beside this page.</p>')
    page = (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head>\n<body>\n" + "\n".join(parts) + "\n</body></html>\n"
    )
    write_text(page, out_dir / "report.html")
    return flat


def read_benchmarks(paths) -> dict[str, float]:
    """Read Snakemake ``benchmark:`` files; return {file stem: wall-clock seconds (column ``s``)}.

    A benchmark run with ``repeat(...)`` has one row per repeat; their mean is returned.
    """
    out: dict[str, float] = {}
    for path in map(Path, paths):
        if not path.is_file():
            raise InputError(f"{path}: benchmark file not found")
        try:
            table = pd.read_csv(path, sep="\t")
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
            raise InputError(f"{path}: not a benchmark TSV ({err})") from None
        if table.columns[:1].tolist() != ["s"] or table.empty:
            raise InputError(f"{path}: expected a benchmark TSV whose first column is 's' and at least one row")
        seconds = pd.to_numeric(table["s"], errors="coerce")
        if seconds.isna().any():
            raise InputError(f"{path}: column 's' holds non-numeric values")
        if path.stem in out:
            raise InputError(f"{path}: another benchmark file has the same name {path.stem!r}")
        out[path.stem] = float(seconds.mean())
    return out


def benchmark_intervals(paths) -> dict[str, tuple[float, float]]:
    """{file stem: (start, end)} in seconds since the epoch: a job's benchmark file is written when it ends, so its
    modification time is the end, and the start is the end less its wall-clock seconds (:func:`read_benchmarks`)."""
    out = {}
    for path in map(Path, paths):
        seconds = read_benchmarks([path])[path.stem]
        end = path.stat().st_mtime
        out[path.stem] = (end - seconds, end)
    return out
