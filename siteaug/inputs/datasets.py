"""Several datasets in one run: the datasets sheet (config key ``datasets``) and the config each dataset runs with.

The sheet is a tab-separated file with a header. ``name`` and ``labels`` are required; ``structures``,
``precomputed`` (``group=folder`` pairs separated by ``;``), ``distance_maps``, ``external_test_labels``,
``external_test_structures`` and ``config`` (a YAML overlay for that dataset alone, e.g. other feature groups) are
optional columns, and an empty cell leaves the key as the run's config has it. Each dataset gets the run's config
with its row applied, ``input.source: files`` and ``output.directory: <output.directory>/<name>``.
"""
from __future__ import annotations

import copy
import csv
import re
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from siteaug.runtime.io import InputError

if TYPE_CHECKING:  # pandas is imported where a summary is built, not when the Snakefile parses a sheet
    import pandas as pd

REQUIRED_COLUMNS = ("name", "labels")
OPTIONAL_COLUMNS = ("structures", "precomputed", "distance_maps", "external_test_labels", "external_test_structures",
                    "config")
# name -> (config section, key) of the columns that set one key
COLUMN_KEYS = {
    "labels": ("input", "labels"),
    "structures": ("input", "structures"),
    "external_test_labels": ("input", "external_test_labels"),
    "external_test_structures": ("input", "external_test_structures"),
    "distance_maps": ("features", "distance_maps"),
}
# A dataset name becomes a folder and a prefix of rule names.
NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
SUMMARY_FOLDER = "summary"


def read_sheet(path: str | Path) -> list[dict[str, str]]:
    """The rows of the datasets sheet, as column -> cell (stripped; empty cells left out). InputError naming the file,
    line and column for a missing or unknown column, a bad or repeated name, or a row of the wrong width."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"config datasets: {path}: no such file")
    with path.open(newline="", encoding="utf-8-sig") as handle:
        rows = [row for row in csv.reader(handle, delimiter="\t") if any(cell.strip() for cell in row)]
    if not rows:
        raise InputError(f"{path}: empty datasets sheet (a header line and one line per dataset)")
    header = [cell.strip() for cell in rows[0]]
    for column in REQUIRED_COLUMNS:
        if column not in header:
            raise InputError(f"{path}: line 1: column {column!r} is missing (required: {', '.join(REQUIRED_COLUMNS)})")
    for column in header:
        if column not in REQUIRED_COLUMNS + OPTIONAL_COLUMNS:
            raise InputError(f"{path}: line 1: unknown column {column!r} (columns: "
                             f"{', '.join(REQUIRED_COLUMNS + OPTIONAL_COLUMNS)})")
    if len(set(header)) != len(header):
        raise InputError(f"{path}: line 1: a column is named twice")
    if len(rows) == 1:
        raise InputError(f"{path}: no dataset below the header")
    sheet, names = [], set()
    for line, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise InputError(f"{path}: line {line}: {len(row)} cells for {len(header)} columns (cells are tab-separated)")
        cells = {column: cell.strip() for column, cell in zip(header, row) if cell.strip()}
        name = cells.get("name", "")
        if not NAME.match(name):
            raise InputError(f"{path}: line {line}: dataset name {name!r} must start with a letter and hold only "
                             "letters, digits and _ (it names a folder and rules)")
        if name == SUMMARY_FOLDER:
            raise InputError(f"{path}: line {line}: dataset name {name!r} is taken by the cross-dataset summary folder")
        if name in names:
            raise InputError(f"{path}: line {line}: dataset {name!r} is named twice")
        if "labels" not in cells:
            raise InputError(f"{path}: line {line}: dataset {name!r} has no labels file")
        names.add(name)
        sheet.append(cells)
    return sheet


def _precomputed(cell: str, where: str) -> dict[str, str]:
    groups = {}
    for pair in filter(None, (p.strip() for p in cell.split(";"))):
        group, sep, folder = pair.partition("=")
        if not sep or not group.strip() or not folder.strip():
            raise InputError(f"{where}: precomputed {pair!r} is not group=folder (pairs separated by ;)")
        groups[group.strip()] = folder.strip()
    return groups


def _merge(base: dict, overlay: dict) -> None:
    """Nested update, key by key, as Snakemake merges config files."""
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = copy.deepcopy(value)


def dataset_configs(config: dict, sheet_path: str | Path) -> dict[str, dict]:
    """Dataset name -> the config it runs with (see the module docstring), in sheet order."""
    from siteaug.runtime.config_checks import check_config_files

    configs = {}
    for line, row in enumerate(read_sheet(sheet_path), start=2):
        where = f"{sheet_path}: line {line}"
        dataset = copy.deepcopy(config)
        dataset["datasets"] = None
        if "config" in row:
            if not Path(row["config"]).is_file():
                raise InputError(f"{where}: config {row['config']}: no such file")
            check_config_files([row["config"]])  # parses, and refuses a key given twice
            overlay = yaml.safe_load(Path(row["config"]).read_text()) or {}
            if not isinstance(overlay, dict):
                raise InputError(f"{where}: config {row['config']}: not a mapping of config keys")
            for key in ("datasets", "output"):
                if key in overlay:
                    raise InputError(f"{where}: config {row['config']}: key {key!r} is set by the sheet, not per dataset")
            _merge(dataset, overlay)
        dataset["input"]["source"] = "files"
        for column, (section, key) in COLUMN_KEYS.items():
            if column in row:
                dataset[section][key] = row[column]
        if "precomputed" in row:
            dataset["features"]["precomputed"] = _precomputed(row["precomputed"], where)
        dataset["output"] = {**dataset["output"], "directory": str(Path(config["output"]["directory"]) / row["name"])}
        configs[row["name"]] = dataset
    return configs


def summarise_datasets(metrics: dict[str, pd.DataFrame], differences: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """One row per dataset, test set and arm: pooled test AUPRC and AUROC with their intervals, the test set's size,
    and for each reference of the report the paired AUPRC difference, its interval and the verdict (empty where the
    reference did not run or is the arm itself). ``metrics`` / ``differences``: dataset -> its report's metrics.tsv
    and differences.tsv."""
    import pandas as pd

    from siteaug.evaluation.comparison import REFERENCES
    from siteaug.evaluation.statistics import PRIMARY_METRIC

    rows = []
    for dataset, table in metrics.items():
        pooled = table[table["aggregation"] == "pooled"]
        diffs = differences[dataset]
        diffs = diffs[(diffs["aggregation"] == "pooled") & (diffs["metric"] == PRIMARY_METRIC)]
        by_key = {(d.test_set, d.arm, d.reference): d for d in diffs.itertuples()}
        for m in pooled.itertuples():
            row = {"dataset": dataset, "test_set": m.test_set, "arm": m.arm, "n_proteins": m.n_proteins,
                   "n_positives": m.n_positives, "seeds": m.seeds}
            for metric in ("auprc", "auroc"):
                row |= {metric: getattr(m, metric), f"{metric}_low": getattr(m, f"{metric}_low"),
                        f"{metric}_high": getattr(m, f"{metric}_high")}
            for reference in REFERENCES:
                d = by_key.get((m.test_set, m.arm, reference))
                row |= {f"{PRIMARY_METRIC}_vs_{reference}": d.difference if d else None,
                        f"{PRIMARY_METRIC}_vs_{reference}_low": d.low if d else None,
                        f"{PRIMARY_METRIC}_vs_{reference}_high": d.high if d else None,
                        f"verdict_vs_{reference}": d.verdict if d else ""}
            rows.append(row)
    summary = pd.DataFrame(rows)
    # References no dataset ran say nothing: drop their columns.
    for reference in REFERENCES:
        if (summary[f"verdict_vs_{reference}"] == "").all():
            summary = summary.drop(columns=[c for c in summary.columns if c.endswith(f"_vs_{reference}") or
                                            c.endswith(f"_vs_{reference}_low") or c.endswith(f"_vs_{reference}_high")])
    return summary


def summary_html(summary: pd.DataFrame, sheet: str) -> str:
    """The cross-dataset page: per test set, arms × datasets of AUPRC with intervals and of the paired difference from
    each reference that ran (green / red where the verdict is better / worse), each dataset's size first."""
    import html

    from siteaug.evaluation.comparison import REFERENCE_NAMES, REFERENCES
    from siteaug.evaluation.report import PAGE_CSS, html_table, interval_text

    datasets = list(dict.fromkeys(summary["dataset"]))
    parts = ["<h1>siteaug: datasets compared</h1>",
             f'<p class="note">Datasets of {html.escape(sheet)}; each one\'s own page is '
             "<code>&lt;dataset&gt;/report/report.html</code> beside this folder. Test AUPRC pooled over residues, mean "
             "over seeds, with bootstrap intervals over that dataset's test proteins; differences are paired within a "
             "dataset (the same resamples for both arms).</p>"]
    for test_set in dict.fromkeys(summary["test_set"]):
        part = summary[summary["test_set"] == test_set]
        arms = list(dict.fromkeys(part["arm"]))
        cell = {(r.dataset, r.arm): r for r in part.itertuples()}
        sizes = [[d, f"{int(cell[(d, arms[0])].n_proteins)}" if (d, arms[0]) in cell else "—",
                  f"{int(cell[(d, arms[0])].n_positives):,}" if (d, arms[0]) in cell else "—"] for d in datasets]
        parts += [f"<h2>{html.escape(test_set)} set</h2>", html_table(["dataset", "test proteins", "test positives"], sizes)]
        rows = [[arm, *(interval_text(cell[(d, arm)].auprc, cell[(d, arm)].auprc_low, cell[(d, arm)].auprc_high)
                        if (d, arm) in cell else "—" for d in datasets)] for arm in arms]
        parts += ["<h3>AUPRC [95 % CI]</h3>", html_table(["arm", *datasets], rows)]
        for reference in REFERENCES:
            column = f"auprc_vs_{reference}"
            if column not in part or part[column].isna().all():
                continue
            rows, classes = [], {}
            for i, arm in enumerate(a for a in arms if a != reference):
                row = [arm]
                for j, d in enumerate(datasets, start=1):
                    r = cell.get((d, arm))
                    if r is None or _missing(getattr(r, column)):
                        row.append("—")
                        continue
                    verdict = getattr(r, f"verdict_vs_{reference}")
                    row.append(f"{interval_text(getattr(r, column), getattr(r, column + '_low'), getattr(r, column + '_high'), signed=True)} {verdict}")
                    if verdict in ("better", "worse"):
                        classes[(i, j)] = verdict
                rows.append(row)
            parts += [f"<h3>Δ AUPRC vs {html.escape(REFERENCE_NAMES[reference])} [95 % CI] and verdict</h3>",
                      html_table(["arm", *datasets], rows, classes)]
    parts.append('<p class="note">Machine-readable: summary.tsv beside this page.</p>')
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>siteaug: datasets compared</title>"
            f"<style>{PAGE_CSS}</style></head>\n<body>\n" + "\n".join(parts) + "\n</body></html>\n")


def _missing(value) -> bool:
    """None or NaN (a cell of a reference that did not run)."""
    import pandas as pd

    return value is None or bool(pd.isna(value))
