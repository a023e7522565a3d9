"""Crash and resume: SIGKILL the tiny workflow in the middle of a job of each stage in turn, resume it, and get the
same results.

The trials themselves (tests/sigkill_trials.py) run in the background once the shared lean run is done (conftest.py,
LocalRuns); the test compares what they made with that uninterrupted run: the same tables and metrics, and no
temporary file left behind.
"""
from __future__ import annotations

import pytest

from sigkill_trials import assert_parquet_files_open
from siteaug.runtime.io import atomic_path, write_text


def test_stale_temporary_file_is_removed_by_the_next_write(tmp_path):
    target = tmp_path / "out.txt"
    with pytest.raises(KeyboardInterrupt):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            left_behind = tmp_path / f".{target.name}.killed.tmp"  # what a SIGKILL (no cleanup) would leave
            left_behind.write_text("half")
            raise KeyboardInterrupt
    other = tmp_path / ".other.txt.x.tmp"
    other.write_text("another output's")
    write_text("done", target)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".other.txt.x.tmp", "out.txt"]


@pytest.mark.workflow
@pytest.mark.slow
def test_sigkill_then_rerun_incomplete_gives_the_uninterrupted_metrics(sigkill_trials_run, lean_ablation_run):
    # The uninterrupted run: the shared lean run with a feature-group ablation (conftest.py); the trials ran the same
    # config files in a work directory of their own.
    reference, _ = lean_ablation_run
    workdir, report = sigkill_trials_run
    print("\n" + "\n".join(report))
    results, uninterrupted = workdir / "results", reference / "results"
    assert (results / "report/metrics.tsv").read_text() == (uninterrupted / "report/metrics.tsv").read_text()
    assert assert_parquet_files_open(results) == assert_parquet_files_open(uninterrupted)
    tables = sorted(p.relative_to(uninterrupted) for p in uninterrupted.rglob("*.parquet"))
    assert [str(p) for p in tables if (results / p).read_bytes() != (uninterrupted / p).read_bytes()] == []
    assert sorted(results.rglob("*.tmp")) == [], "temporary files left"
