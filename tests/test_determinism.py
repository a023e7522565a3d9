"""Same config and seed, two separate work directories: byte-identical Parquet tables and identical metrics on CPU."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from helpers import copy_config, run_snakemake
from siteaug.runtime.io import write_parquet


def run_workflow(workdir: Path) -> Path:
    result = run_snakemake(copy_config(workdir))
    assert result.returncode == 0, result.stderr[-4000:]
    return workdir / "results"


def test_parquet_bytes_do_not_depend_on_the_index_or_the_path(tmp_path):
    frame = pd.DataFrame({"protein_id": ["p1", "p2", "p3"], "x": [0.5, 1.5, -2.0]})
    write_parquet(frame, tmp_path / "a.parquet")
    write_parquet(frame.set_index(pd.Index([9, 4, 1])), tmp_path / "sub" / "b.parquet")
    assert (tmp_path / "a.parquet").read_bytes() == (tmp_path / "sub" / "b.parquet").read_bytes()


@pytest.mark.workflow
def test_two_runs_give_identical_tables_and_metrics(tiny_run, tmp_path):
    # The shared run (another work directory, so the bytes cannot depend on the path) and a fresh one.
    first = tiny_run / "results"
    second = run_workflow(tmp_path / "second")
    tables = sorted(p.relative_to(first) for p in first.rglob("*.parquet"))
    assert tables == sorted(p.relative_to(second) for p in second.rglob("*.parquet"))
    assert len(tables) >= 10
    different = [str(p) for p in tables if (first / p).read_bytes() != (second / p).read_bytes()]
    assert different == []
    for name in ("metrics.tsv", "metrics.json"):
        assert (first / "report" / name).read_text() == (second / "report" / name).read_text()
