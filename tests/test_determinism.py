"""Same config and seed, two separate work directories: byte-identical Parquet tables and identical metrics on CPU."""
from __future__ import annotations

import pandas as pd
import pytest

from siteaug.runtime.io import write_parquet


def test_parquet_bytes_do_not_depend_on_the_index_or_the_path(tmp_path):
    frame = pd.DataFrame({"protein_id": ["p1", "p2", "p3"], "x": [0.5, 1.5, -2.0]})
    write_parquet(frame, tmp_path / "a.parquet")
    write_parquet(frame.set_index(pd.Index([9, 4, 1])), tmp_path / "sub" / "b.parquet")
    assert (tmp_path / "a.parquet").read_bytes() == (tmp_path / "sub" / "b.parquet").read_bytes()


@pytest.mark.workflow
def test_two_runs_give_identical_tables_and_metrics(tiny_run, second_tiny_run):
    # Two complete runs of tests/data/tiny.yaml in two work directories (so the bytes cannot depend on the path): the
    # shared local run and the second run of conftest.py, which went through SLURM when a local cluster could start
    # (then the executor, the jobs' processes and their thread counts differ too), else ran locally.
    first = tiny_run / "results"
    second = second_tiny_run / "results"
    tables = sorted(p.relative_to(first) for p in first.rglob("*.parquet"))
    assert tables == sorted(p.relative_to(second) for p in second.rglob("*.parquet"))
    assert len(tables) >= 10
    different = [str(p) for p in tables if (first / p).read_bytes() != (second / p).read_bytes()]
    assert different == []
    for name in ("metrics.tsv", "metrics.json"):
        assert (first / "report" / name).read_text() == (second / "report" / name).read_text()
