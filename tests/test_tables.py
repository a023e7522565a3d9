"""siteaug.runtime.tables: the feature-column rule, split selection and file reading, importable without torch."""
from __future__ import annotations

import ast
import subprocess
import sys

import pandas as pd
import pytest

from helpers import REPO
from siteaug.features import residues as features
from siteaug.runtime import tables
from siteaug.runtime.io import write_json, write_parquet
from siteaug.runtime.tables import feature_columns, read_json, read_parquet_parts, sorted_split, split_rows, train_rows

HEAVY = ("torch", "torch_geometric", "freesasa", "pydssp")


def test_importing_tables_imports_no_model_or_structure_library():
    code = f"import sys, siteaug.runtime.tables; loaded = set({HEAVY!r}) & set(sys.modules); assert not loaded, loaded"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)


def table() -> pd.DataFrame:
    return pd.DataFrame({
        "protein_id": ["b", "a", "a", "c", "b"], "position": [1, 1, 0, 0, 0], "f_x": [1.0, 2.0, 3.0, 4.0, 5.0],
        "label": [0, 1, 0, 1, 1], "split": ["train", "train", "test", "validation", "train"], "feature_note": ["n"] * 5,
    })


def test_feature_columns_are_the_f_prefixed_ones_of_a_table_or_a_name_list():
    frame = table().assign(f_a=0.0)
    assert feature_columns(frame) == ["f_x", "f_a"]  # table order; "feature_note" is not a feature
    assert feature_columns(["protein_id", "f_b", "label", "f_a"]) == ["f_b", "f_a"]
    assert features.feature_columns is tables.feature_columns  # the one rule, re-exported where it used to live


def test_split_selection():
    frame = table()
    assert train_rows(frame).index.tolist() == [0, 1, 4]  # table order, index kept
    assert split_rows(frame, "validation")["protein_id"].tolist() == ["c"]
    ordered = sorted_split(frame, "train")
    assert list(zip(ordered["protein_id"], ordered["position"])) == [("a", 1), ("b", 0), ("b", 1)]
    assert ordered.index.tolist() == [0, 1, 2]
    with pytest.raises(ValueError, match="unknown split 'training'"):
        split_rows(frame, "training")


def test_read_parquet_parts_concatenates_in_path_order(tmp_path):
    frame = table()
    paths = [tmp_path / "shard_1.parquet", tmp_path / "shard_0.parquet"]
    write_parquet(frame.iloc[3:], paths[0])
    write_parquet(frame.iloc[:3], paths[1])
    both = read_parquet_parts(paths)
    assert both["position"].tolist() == [0, 0, 1, 1, 0] and both.index.tolist() == list(range(5))
    assert read_parquet_parts(paths, columns=["f_x"]).columns.tolist() == ["f_x"]


def test_read_json_reads_what_write_json_wrote(tmp_path):
    write_json({"seeds": [{"seed": 0, "threshold": 0.5}]}, tmp_path / "summary.json")
    assert read_json(tmp_path / "summary.json") == {"seeds": [{"seed": 0, "threshold": 0.5}]}


PREFIX_RULE_ALLOWED = {"siteaug/runtime/tables.py"}


def test_the_feature_prefix_rule_is_written_only_in_tables():
    """No module or rule script re-types ``c.startswith("f_")``: it goes through siteaug.runtime.tables."""
    offenders = []
    for path in [*(REPO / "siteaug").rglob("*.py"), *(REPO / "workflow_scripts").glob("*.py")]:
        name = str(path.relative_to(REPO))
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "startswith"
                    and node.args and isinstance(node.args[0], ast.Constant) and node.args[0].value == "f_"):
                offenders.append(f"{name}:{node.lineno}")
    assert {o.split(":")[0] for o in offenders} <= PREFIX_RULE_ALLOWED, offenders
