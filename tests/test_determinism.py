"""Same config and seed, two separate workdirs: byte-identical Parquet tables and identical metrics on CPU."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from siteaug.io import write_parquet

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "tests" / "data" / "tiny.yaml"


def run_workflow(workdir: Path) -> Path:
    shutil.copytree(REPO / "config", workdir / "config")
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--directory", str(workdir),
         "--configfile", str(TINY), "--cores", "2", "--resources", "gpu=1"],
        cwd=workdir, capture_output=True, text=True, timeout=900,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return workdir / "results"


def test_parquet_bytes_do_not_depend_on_the_index_or_the_path(tmp_path):
    frame = pd.DataFrame({"protein_id": ["p1", "p2", "p3"], "x": [0.5, 1.5, -2.0]})
    write_parquet(frame, tmp_path / "a.parquet")
    write_parquet(frame.set_index(pd.Index([9, 4, 1])), tmp_path / "sub" / "b.parquet")
    assert (tmp_path / "a.parquet").read_bytes() == (tmp_path / "sub" / "b.parquet").read_bytes()


@pytest.mark.workflow
def test_two_runs_give_identical_tables_and_metrics(tmp_path):
    first = run_workflow(tmp_path / "first")
    second = run_workflow(tmp_path / "second")
    tables = sorted(p.relative_to(first) for p in first.rglob("*.parquet"))
    assert tables == sorted(p.relative_to(second) for p in second.rglob("*.parquet"))
    assert len(tables) >= 10
    different = [str(p) for p in tables if (first / p).read_bytes() != (second / p).read_bytes()]
    assert different == []
    for name in ("metrics.tsv", "metrics.json"):
        assert (first / "report" / name).read_text() == (second / "report" / name).read_text()
