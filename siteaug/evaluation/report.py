"""The report page (rule report): one self-contained HTML file, figures inlined, that opens offline.

It reads what the earlier report jobs wrote: the evaluation (siteaug.evaluation.comparison's metrics.json) and the
figures (siteaug.evaluation.figures), plus the run's row counts, job times and provenance. provenance.json is written
beside it.
"""
from __future__ import annotations

import base64
import html
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from siteaug.evaluation.comparison import (
    AGGREGATIONS,
    REFERENCE_NAMES,
    REFERENCES,
    metric_frame,
    ordered_test_sets,
    pooled_metrics,
)
from siteaug.evaluation.figures import CORE_FIGURES, QUALITY_FIGURE, SWEEP_FIGURE
from siteaug.evaluation.stage_timing import stages_longest_first
from siteaug.evaluation.statistics import METRICS, PRIMARY_METRIC
from siteaug.runtime.io import InputError

METRIC_NAMES = {"auprc": "AUPRC", "auroc": "AUROC", "mcc": "MCC", "f1": "F1", "precision": "precision", "recall": "recall",
            "specificity": "specificity"}

PAGE_CSS = """
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


def html_table(header: list[str], rows: list[list[str]], classes: dict[tuple[int, int], str] | None = None) -> str:
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


def interval_text(value: float, low: float, high: float, signed: bool = False) -> str:
    fmt = "{:+.3f}" if signed else "{:.3f}"
    return f"{fmt.format(value)} [{fmt.format(low)}, {fmt.format(high)}]"


def _verdict_table(verdict_rows: list[dict], metrics: pd.DataFrame) -> str:
    references = [r for r in REFERENCES if any(f"vs_{r}" in v for v in verdict_rows)]
    header = ["arm", "AUPRC [95 % CI]", *(f"Δ vs {REFERENCE_NAMES[r]} [95 % CI]" for r in references), "verdict"]
    rows, classes = [], {}
    for i, v in enumerate(verdict_rows):
        m = metrics.loc[v["arm"]]
        row = [v["arm"], interval_text(m["auprc"], m["auprc_low"], m["auprc_high"])]
        for j, reference in enumerate(references, start=2):
            d = v.get(f"vs_{reference}")
            row.append(interval_text(d["difference"], d["low"], d["high"], signed=True) if d else "—")
            if d and d["verdict"] != "no detectable difference":
                classes[(i, j)] = d["verdict"]
        row.append(v["verdict"])
        classes[(i, 2 + len(references))] = "text"
        rows.append(row)
    return html_table(header, rows, classes)


def _metrics_table(metrics: pd.DataFrame) -> str:
    header = ["arm", *(METRIC_NAMES[m] for m in METRICS), "threshold"]
    rows = [[arm, *(interval_text(r[m], r[f"{m}_low"], r[f"{m}_high"]) for m in METRICS), f"{r['threshold']:.3f}"]
            for arm, r in metrics.iterrows()]
    return html_table(header, rows)


def _seed_table(metrics: pd.DataFrame, metric: str = PRIMARY_METRIC) -> str:
    n = max(len(v) for v in metrics[f"{metric}_per_seed"])
    rows = [[arm, *(f"{v:.3f}" for v in r[f"{metric}_per_seed"]), *([""] * (n - len(r[f"{metric}_per_seed"]))),
             f"{np.std(r[f'{metric}_per_seed']):.3f}"] for arm, r in metrics.iterrows()]
    return html_table(["arm", *(f"seed {k + 1}" for k in range(n)), "sd"], rows)


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
        parts.append(html_table([str(c) for c in table.columns],
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
        against = [f"{r} {pooled.loc[r, PRIMARY_METRIC]:.3f}, paired Δ {interval_text(d['difference'], d['low'], d['high'], signed=True)}"
                   for r in REFERENCES if (d := v.get(f"vs_{r}"))]
        return (f"{where}, diffusion augmentation with the quality filter (arm diffusion, {auprc:.3f}; "
                f"{'; '.join(against)}): {v['verdict']}.")
    best = pooled[PRIMARY_METRIC].idxmax()
    verdict = f": {rows[best]['verdict']}" if best in rows else ""
    return (f"{where}, this run has no diffusion arm; the best arm is {best} "
            f"({interval_text(*pooled.loc[best, [PRIMARY_METRIC, f'{PRIMARY_METRIC}_low', f'{PRIMARY_METRIC}_high']])}){verdict}.")


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
            for k, v in stages_longest_first(timings)]
    rows.append(["total (sum of job times; jobs that ran in parallel overlap)", f"{total:.1f}", "100 %" if total else "—"])
    return html_table(["stage", "seconds", "share"], rows)


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
            html_table(["stage", "started (s after the first)", "seconds"], rows)]


def _provenance_html(provenance: dict) -> list[str]:
    """Inputs with checksums, software, machine, commit, date and the config as run."""
    parts = ["<h2>Provenance</h2>",
             '<p class="note">What these results were made from; also in provenance.json beside this page.</p>']
    facts = [[k.replace("_", " "), str(provenance[k])] for k in ("git_commit", "date", "host", "cpu", "gpu", "python")
             if k in provenance]
    if facts:
        parts.append(html_table(["", "value"], facts))
    if provenance.get("inputs"):
        rows = [[key, c["path"], c["sha256"], f"{c['files']:,}", f"{c['bytes']:,}"] for key, c in provenance["inputs"].items()]
        parts += ["<h3>Inputs</h3>", html_table(["config key", "path", "sha256", "files", "bytes"], rows)]
    if provenance.get("packages"):
        parts += ["<h3>Package versions</h3>", html_table(["package", "version"], [[k, v] for k, v in provenance["packages"].items()])]
    if provenance.get("config") is not None:
        parts += ["<h3>Config as run</h3>",
                  f"<pre>{html.escape(yaml.safe_dump(provenance['config'], sort_keys=False, default_flow_style=None))}</pre>"]
    return parts


def report_page(
    evaluation: dict,
    figures: dict[str, str | os.PathLike],
    stage_counts: dict[str, int | float] | None = None,
    timings: dict[str, float] | None = None,
    job_intervals: dict[str, tuple[float, float]] | None = None,
    extra_sections: dict[str, dict] | None = None,
    quality_metrics: dict | None = None,
    diffusion_history: list[dict] | None = None,
    provenance: dict | None = None,
    title: str = "siteaug report",
) -> str:
    """The HTML page of the report.

    ``evaluation`` is metrics.json; ``figures`` maps each figure's file name (figures.CORE_FIGURES, and the sweep and
    quality figures when drawn) to its PNG file. ``extra_sections`` maps a title to files to show (see
    ``_extra_section``), e.g. the generation-quality stage's metrics and plots. ``quality_metrics``
    (sample_quality/metrics.json) and ``diffusion_history`` (diffusion/history.json) feed the warnings; ``provenance``
    (inputs with checksums, config, machine, versions, commit, date) goes into the page, never into the metric tables.
    ``timings`` (stage → seconds, `stage_timing.read_benchmarks`) is the time table; ``job_intervals`` (stage → start and end,
    `stage_timing.benchmark_intervals`) adds the run's critical path below it.
    """
    missing = [name for name in CORE_FIGURES if name not in figures]
    if missing:
        raise InputError(f"report page: figure(s) {', '.join(missing)} not given")
    images = {}
    for name, path in figures.items():
        if not Path(path).is_file():
            raise InputError(f"{path}: report figure not found")
        images[name] = Path(path).read_bytes()
    metrics = metric_frame(evaluation)
    verdict_rows, no_verdict, training = evaluation["verdicts"], evaluation["no_verdict"], evaluation["training"]
    protocol = evaluation["protocol"]
    test_sets_in_order = ordered_test_sets(metrics)
    main = test_sets_in_order[0]
    pooled = {t: pooled_metrics(metrics, t) for t in test_sets_in_order}

    seeds = int(metrics["seeds"].max())
    parts = [f"<h1>{html.escape(title)}</h1>",
             f'<p class="answer">{html.escape(answer_sentence(verdict_rows, pooled[main], main))}</p>']
    parts += _warnings_html(evidence_warnings(metrics, quality_metrics, diffusion_history))
    for t in test_sets_in_order:
        rows = [v for v in verdict_rows if v["test_set"] == t]
        parts += [f"<h2>Verdict ({html.escape(t)} set, AUPRC pooled over residues)</h2>"]
        parts += [_verdict_table(rows, pooled[t])] if rows else ['<p class="note">No verdict: neither none nor smote is among the arms.</p>']
        parts += [f'<p class="note">No verdict for {html.escape(arm)}: {html.escape(reason)}</p>' for arm, reason in no_verdict.items()]
    parts.append(_protocol_text(protocol["bootstrap_resamples"], protocol["confidence"], seeds))
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
        '<div class="figures">', _image(images["auprc_intervals.png"], "AUPRC with intervals per arm"),
        _image(images["auprc_differences.png"], "Paired AUPRC differences against the references"), "</div>",
        "<h2>ROC curves</h2>", _image(images["roc.png"], "ROC curves of all arms"),
        "<h2>Precision-recall curves</h2>", _image(images["pr.png"], "Precision-recall curves of all arms"),
        "<h2>Threshold curves</h2>",
        '<p class="note">Test MCC and F1 of the first seed at every threshold; the dot is the threshold frozen on '
        "validation. A dot far below its curve's peak means the validation threshold did not carry over.</p>",
        _image(images["thresholds.png"], "MCC and F1 against the decision threshold"),
    ]
    if SWEEP_FIGURE in images:
        parts += ["<h2>Diffusion ratio sweep</h2>",
                  '<p class="note">Candidates are generated once, for the largest ratio; smaller ratios take the '
                  "best-scored subset of the same filtered rows.</p>",
                  _image(images[SWEEP_FIGURE], "AUPRC against the target positive ratio")]
    if training:
        rows = [[arm, f"{np.mean([s['training_rows'] for s in t['seeds']]):,.0f}",
                 f"{np.mean([s['positive_ratio'] for s in t['seeds']]):.3f}"] for arm, t in training.items()]
        parts += ["<h2>Training rows per arm</h2>", html_table(["arm", "rows (mean over seeds)", "positive ratio"], rows)]
    if QUALITY_FIGURE in images:
        parts += ["<h2>Quality of generated candidates</h2>", _image(images[QUALITY_FIGURE], "Histogram of candidate quality scores")]
    for section_title, section in (extra_sections or {}).items():
        parts += _extra_section(section_title, section)
    if stage_counts:
        parts += ["<h2>Rows per stage</h2>",
                  html_table(["stage", "rows"], [[str(k), f"{v:,}" if isinstance(v, (int, np.integer)) else f"{v:,.4g}"]
                                             for k, v in stage_counts.items()])]
    if timings:
        parts += ["<h2>Time per stage</h2>", _timing_table(timings)]
    if job_intervals:
        parts += _critical_path_html(job_intervals)
    if provenance:
        parts += _provenance_html(provenance)
    parts.append('<p class="note">Machine-readable: metrics.tsv, differences.tsv and metrics.json beside this page.</p>')
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{html.escape(title)}</title><style>{PAGE_CSS}</style></head>\n<body>\n" + "\n".join(parts) + "\n</body></html>\n"
    )
