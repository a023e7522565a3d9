"""Per-arm test metrics (TSV/JSON) and a self-contained HTML report that opens offline."""
from __future__ import annotations

import base64
import html
import io
import os
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from sklearn.metrics import precision_recall_curve, roc_curve

from .io import InputError, atomic_path, write_json, write_text
from .metrics import METRIC_KEYS, classification_metrics

PREDICTION_COLUMNS = ("protein_id", "position", "label", "score", "threshold", "split")
# Columns where a larger value is better; the report bolds the best arm in each.
_HIGHER_IS_BETTER = ("f1", "mcc", "auroc", "auprc", "precision", "recall", "specificity")

_CSS = """
body { font-family: system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem; color: #222; }
table { border-collapse: collapse; margin: 1rem 0; }
th, td { border: 1px solid #ccc; padding: 0.3rem 0.6rem; text-align: right; }
th:first-child, td:first-child { text-align: left; }
th { background: #f3f3f3; }
img { max-width: 100%; }
.note { color: #555; }
"""


def _arm_metrics(arm: str, df: pd.DataFrame) -> dict:
    where = f"predictions for arm {arm!r}"
    missing = [c for c in PREDICTION_COLUMNS if c not in df.columns]
    if missing:
        raise InputError(f"{where}: missing column(s) {', '.join(missing)}")
    if df.empty:
        raise InputError(f"{where}: no rows")
    if set(df["split"].unique()) != {"test"}:
        raise InputError(f"{where}: every row must be from the test split, found {sorted(map(str, df['split'].unique()))}")
    thresholds = df["threshold"].unique()
    # The threshold is frozen on validation; several values would mean it was tuned on test rows.
    if len(thresholds) != 1:
        raise InputError(f"{where}: expected one frozen threshold, found {len(thresholds)} distinct values")
    return {"arm": arm, **classification_metrics(df["label"].to_numpy(), df["score"].to_numpy(), thresholds[0])}


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    # No software-version metadata, so the same data gives the same bytes across matplotlib versions.
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight", metadata={"Software": None})
    return buf.getvalue()


def _roc_figure(predictions: dict[str, pd.DataFrame], metrics: pd.DataFrame) -> Figure:
    fig = Figure(figsize=(5.5, 5))
    ax = fig.subplots()
    for arm, df in predictions.items():
        fpr, tpr, _ = roc_curve(df["label"], df["score"])
        ax.plot(fpr, tpr, label=f"{arm} (AUROC {metrics.loc[arm, 'auroc']:.3f})")
    ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=1, label="chance")
    ax.set(xlabel="False positive rate", ylabel="True positive rate", title="ROC (test)", xlim=(0, 1), ylim=(0, 1.01))
    ax.legend(loc="lower right", fontsize="small")
    return fig


def _pr_figure(predictions: dict[str, pd.DataFrame], metrics: pd.DataFrame) -> Figure:
    fig = Figure(figsize=(5.5, 5))
    ax = fig.subplots()
    for arm, df in predictions.items():
        precision, recall, _ = precision_recall_curve(df["label"], df["score"])
        ax.step(recall, precision, where="post", label=f"{arm} (AUPRC {metrics.loc[arm, 'auprc']:.3f})")
    # A random ranking scores the positive rate; arms normally share one test set, hence one line.
    for rate in sorted({float(df["label"].mean()) for df in predictions.values()}):
        ax.axhline(rate, ls="--", color="grey", lw=1, label=f"positive rate {rate:.3f}")
    ax.set(xlabel="Recall", ylabel="Precision", title="Precision-recall (test)", xlim=(0, 1), ylim=(0, 1.01))
    ax.legend(loc="lower left", fontsize="small")
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


def _table(header: list[str], rows: list[list[str]], bold: set[tuple[int, int]] = frozenset()) -> str:
    """Cells are already-formatted text; they are escaped here. ``bold`` holds (row, column) indices."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(
            f"<td><b>{html.escape(c)}</b></td>" if (i, j) in bold else f"<td>{html.escape(c)}</td>"
            for j, c in enumerate(row)
        ) + "</tr>"
        for i, row in enumerate(rows)
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _metrics_table(metrics: pd.DataFrame) -> str:
    header = ["arm", *METRIC_KEYS]
    columns = [metrics.index.astype(str).tolist()] + [
        [f"{v:.4f}" for v in metrics[k]] if metrics[k].dtype.kind == "f" else [str(v) for v in metrics[k]]
        for k in METRIC_KEYS
    ]
    rows, bold = [list(r) for r in zip(*columns)], set()
    for key in _HIGHER_IS_BETTER:
        # Compare the displayed (rounded) values so arms that look equal are bolded together.
        shown = metrics[key].round(4).to_numpy()
        j = header.index(key)
        bold |= {(i, j) for i in np.flatnonzero(shown == shown.max())}
    return _table(header, rows, bold)


def _image(png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(alt)}"></figure>'


def build_report(
    predictions: dict[str, pd.DataFrame],
    out_dir: str | os.PathLike,
    quality_scores: np.ndarray | None = None,
    stage_counts: dict[str, int | float] | None = None,
    timings: dict[str, float] | None = None,
    title: str = "siteaug report",
    quality_threshold: float | None = None,
) -> pd.DataFrame:
    """Write metrics.tsv, metrics.json, report.html and its PNG figures to ``out_dir``; return the metrics.

    ``predictions`` maps arm name to its test-split residue predictions (see ``PREDICTION_COLUMNS``), each
    thresholded at the single value frozen on validation. The returned frame has one row per arm, in dict order.
    """
    if not predictions:
        raise InputError("build_report: no arms given")
    out_dir = Path(out_dir)
    rows = [_arm_metrics(str(arm), df) for arm, df in predictions.items()]
    metrics = pd.DataFrame(rows, columns=["arm", *METRIC_KEYS])
    with atomic_path(out_dir / "metrics.tsv") as tmp:
        metrics.to_csv(tmp, sep="\t", index=False, float_format="%.4f")
    write_json(rows, out_dir / "metrics.json")

    by_arm = metrics.set_index("arm")
    preds = {str(arm): df for arm, df in predictions.items()}
    figures = {"roc.png": _png(_roc_figure(preds, by_arm)), "pr.png": _png(_pr_figure(preds, by_arm))}
    if quality_scores is not None:
        scores = np.asarray(quality_scores, dtype=float).ravel()
        figures["quality_scores.png"] = _png(_quality_figure(scores, quality_threshold))
    for name, png in figures.items():
        with atomic_path(out_dir / name) as tmp:
            tmp.write_bytes(png)

    parts = [
        f"<h1>{html.escape(title)}</h1>",
        "<p>Each arm is a binding-site residue classifier trained on a different version of the training data "
        "(e.g. with or without diffusion-generated positives). All numbers are on the held-out test split. "
        "F1, MCC, precision, recall and specificity use each arm's decision threshold, chosen on the validation "
        "split and then frozen; AUROC and AUPRC do not depend on a threshold. "
        "The best value in each column is in bold.</p>",
        "<h2>Test metrics</h2>",
        _metrics_table(by_arm),
        "<h2>ROC curves</h2>",
        _image(figures["roc.png"], "ROC curves of all arms"),
        "<h2>Precision-recall curves</h2>",
        '<p class="note">The dashed line is the positive rate: the precision of a random ranking.</p>',
        _image(figures["pr.png"], "Precision-recall curves of all arms"),
    ]
    if "quality_scores.png" in figures:
        parts += [
            "<h2>Quality of generated candidates</h2>",
            _image(figures["quality_scores.png"], "Histogram of candidate quality scores"),
        ]
    if stage_counts:
        parts += [
            "<h2>Rows per stage</h2>",
            _table(["stage", "rows"], [[str(k), f"{v:,}" if isinstance(v, (int, np.integer)) else f"{v:,.4g}"]
                                       for k, v in stage_counts.items()]),
        ]
    if timings:
        parts += [
            "<h2>Time per stage</h2>",
            _table(["stage", "seconds"], [[str(k), f"{float(v):.1f}"] for k, v in timings.items()]),
        ]
    page = (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head>\n<body>\n"
        + "\n".join(parts)
        + "\n</body></html>\n"
    )
    write_text(page, out_dir / "report.html")
    return metrics


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
