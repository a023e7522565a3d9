"""Crash and resume: SIGKILL the tiny workflow in the middle of a job of each stage in turn, resume it, and get the
same results.

A kill takes the whole process group (Snakemake and its running jobs), as an out-of-memory kill or a lost node
would. After each kill every visible Parquet file must open (outputs are written to a temporary name and renamed);
``snakemake --unlock`` then ``--rerun-incomplete`` must finish with the tables and metrics of an uninterrupted run and
leave no temporary file behind.
"""
from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from helpers import copy_config
from helpers import snakemake_command as tiny_snakemake_command
from siteaug.runtime.io import atomic_path, write_text

# Where the kills land: a job of each of these stages, KILL_DELAY_S after it has started its work (its log, which
# the rule script opens once its imports are done, was written by the attempt being killed). Each stage needs the
# outputs of the one before (make_demo, prepare, features, train_diffusion, generate, filter, balance,
# train_classifier, evaluate, report_figures, report), so the lean run reaches them in this order whatever the
# machine's speed, and one work directory is killed at each in turn, resumed each time: the trials cost about one run,
# not one run per kill. Between them they kill the feature workers' process pool, a model's training, a generation
# and a filter shard while the other shard runs beside it, the balanced table, a classifier and the report.
KILL_AT = ["logs/prepare.log", "logs/features.log", "logs/train_diffusion.log", "logs/generate/shard_0.log",
           "logs/filter/shard_1.log", "logs/balance.log", "logs/train_classifier/diffusion.log", "logs/report.log"]
KILL_DELAY_S = 0.5


def run(workdir: Path, configfiles, *args: str) -> None:
    command = tiny_snakemake_command(workdir, *args, configfiles=configfiles)
    result = subprocess.run(command, cwd=workdir, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, f"snakemake {' '.join(args)} failed:\n{result.stderr[-4000:]}"


def run_and_kill(workdir: Path, configfiles, log: str, *args: str) -> bool:
    """Start the workflow; once ``log`` is written by this run, wait KILL_DELAY_S and SIGKILL the whole process group.
    True if it was still running then; False if it ended first (a failure, or the job never started)."""
    started = time.time_ns()
    process = subprocess.Popen(tiny_snakemake_command(workdir, *args, configfiles=configfiles), cwd=workdir,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    path = workdir / "results" / log

    def written() -> bool:
        try:
            return path.stat().st_mtime_ns >= started
        except FileNotFoundError:
            return False

    deadline = time.monotonic() + 900
    while process.poll() is None and not written():
        if time.monotonic() > deadline:
            os.killpg(process.pid, signal.SIGKILL)
            raise AssertionError(f"{log}: not written after 900 s")
        time.sleep(0.05)
    time.sleep(KILL_DELAY_S)
    if process.poll() is not None:
        return False
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    return True


def assert_parquet_files_open(results: Path) -> int:
    files = sorted(results.rglob("*.parquet"))
    for path in files:
        pq.read_table(path)  # raises on a truncated or half-written file
    return len(files)


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
def test_sigkill_then_rerun_incomplete_gives_the_uninterrupted_metrics(lean_ablation_run, tmp_path):
    # The uninterrupted run: the shared lean run with a feature-group ablation (conftest.py); the trials run the same
    # config files in a work directory of their own.
    reference, configfiles = lean_ablation_run
    expected = (reference / "results/report/metrics.tsv").read_text()
    workdir = copy_config(tmp_path / "trials")
    report = []
    for trial, log in enumerate(KILL_AT, 1):
        # The first attempt starts from nothing; every later one resumes what the kills before it left.
        killed = run_and_kill(workdir, configfiles, log, *(["--rerun-incomplete"] if trial > 1 else []))
        opened = assert_parquet_files_open(workdir / "results")
        report.append(f"trial {trial}: {'killed' if killed else 'ended first'} {KILL_DELAY_S} s into {log}, {opened} parquet files")
        assert killed, "\n".join(report)
        run(workdir, configfiles, "--unlock")
    run(workdir, configfiles, "--rerun-incomplete")
    print("\n" + "\n".join(report))
    results, uninterrupted = workdir / "results", reference / "results"
    assert (results / "report/metrics.tsv").read_text() == expected
    assert assert_parquet_files_open(results) == assert_parquet_files_open(uninterrupted)
    tables = sorted(p.relative_to(uninterrupted) for p in uninterrupted.rglob("*.parquet"))
    assert [str(p) for p in tables if (results / p).read_bytes() != (uninterrupted / p).read_bytes()] == []
    assert sorted(results.rglob("*.tmp")) == [], "temporary files left"
