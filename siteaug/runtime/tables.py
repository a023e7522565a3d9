"""The contracts of the workflow's tables, with pandas and pyarrow only: column names, which columns are features,
split selection, and reading the files the rules pass between them.

No torch, torch-geometric, freesasa or pydssp here (tests/test_tables.py checks it), so any rule script or module can
use it without paying for those imports.
"""
from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from siteaug.runtime.io import read_parquet

# Every feature column is named f_<feature> (siteaug.features.residues.feature_names gives the <feature> part); nothing else
# starts with it, so the prefix alone tells features from keys, labels and bookkeeping columns.
FEATURE_PREFIX = "f_"
# One residue: residue tables are keyed and sorted by these.
RESIDUE_KEY = ("protein_id", "position")
LABEL = "label"
SPLIT = "split"
SPLITS = ("train", "validation", "test")


def is_feature_column(name: str) -> bool:
    return name.startswith(FEATURE_PREFIX)


def feature_columns(table: pd.DataFrame | Iterable[str]) -> list[str]:
    """The feature columns of a table (or of a list of column names), in table order."""
    names = table.columns if isinstance(table, pd.DataFrame) else table
    return [c for c in names if is_feature_column(c)]


def split_rows(table: pd.DataFrame, split: str) -> pd.DataFrame:
    """The rows of one split (``train``, ``validation`` or ``test``), in table order, index kept."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose from {', '.join(SPLITS)}")
    return table[table[SPLIT] == split]


def train_rows(table: pd.DataFrame) -> pd.DataFrame:
    """The training split: the only rows a model, a resampler or a balancing step ever fits on."""
    return split_rows(table, "train")


def sorted_split(residues: pd.DataFrame, split: str) -> pd.DataFrame:
    """Residues of one split ordered by (protein_id, position), index reset: the order the graph builders
    (``siteaug.features.graphs.protein_graphs``) concatenate in, so graph and row predictions line up."""
    return split_rows(residues, split).sort_values(list(RESIDUE_KEY), kind="stable").reset_index(drop=True)


def read_parquet_parts(paths: Iterable[str | os.PathLike], columns: list[str] | None = None) -> pd.DataFrame:
    """The tables at ``paths`` (e.g. one per shard) as one table, in path order, with a fresh index."""
    return pd.concat([read_parquet(path, columns=columns) for path in paths], ignore_index=True)


def read_json(path: str | os.PathLike):
    """A JSON file written by :func:`siteaug.runtime.io.write_json` (summaries, histories, metrics)."""
    return json.loads(Path(path).read_text())
