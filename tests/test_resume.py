"""Crash and resume: SIGKILL the tiny workflow at seeded random moments, resume it, and get the same results.

A kill takes the whole process group (Snakemake and its running jobs), as an out-of-memory kill or a lost node
would. After each kill every visible Parquet file must open (outputs are written to a temporary name and renamed);
``snakemake --unlock`` then ``--rerun-incomplete`` must finish with the metrics of an uninterrupted run and leave
no temporary file behind.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from helpers import LEAN, TINY, copy_config
from helpers import snakemake_command as tiny_snakemake_command
from siteaug.runtime.io import atomic_path, write_text

# Every stage of the tiny workflow, but with the lean overlay (three classifier arms, one seed): the test runs the
# workflow about eleven times, and the other arms and seeds only add more of the same train_classifier jobs.
CONFIGFILES = (TINY, LEAN)
KILLS = 10
MAX_ATTEMPTS = 2 * KILLS  # an attempt whose run ends before its kill moment does not count as a kill


def snakemake_command(workdir: Path, *args: str) -> list[str]:
    return tiny_snakemake_command(workdir, *args, configfiles=CONFIGFILES)


def run(workdir: Path, *args: str) -> None:
    result = subprocess.run(snakemake_command(workdir, *args), cwd=workdir, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, f"snakemake {' '.join(args)} failed:\n{result.stderr[-4000:]}"


def new_workdir(root: Path, name: str) -> Path:
    return copy_config(root / name)


def run_and_kill(workdir: Path, after_s: float) -> bool:
    """Start the workflow, SIGKILL its whole process group after ``after_s`` seconds; True if it was still running."""
    process = subprocess.Popen(snakemake_command(workdir), cwd=workdir, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        process.wait(timeout=after_s)
        return False
    except subprocess.TimeoutExpired:
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
def test_sigkill_then_rerun_incomplete_gives_the_uninterrupted_metrics(tmp_path):
    reference = new_workdir(tmp_path, "reference")
    start = time.monotonic()
    run(reference)
    duration = time.monotonic() - start
    expected = (reference / "results/report/metrics.tsv").read_text()

    # Kill moments spread over the whole run (a fraction of the uninterrupted duration), so every stage gets hit
    # on a fast or a slow machine alike.
    rng = np.random.default_rng(8)
    kills, attempts, report = 0, 0, []
    while kills < KILLS and attempts < MAX_ATTEMPTS:
        attempts += 1
        after = float(rng.uniform(0.02, 0.9)) * duration
        workdir = new_workdir(tmp_path, f"trial{attempts}")
        started = time.monotonic()
        killed = run_and_kill(workdir, after)
        if not killed:  # the machine got faster than during the reference run: aim the next kills earlier
            duration = min(duration, time.monotonic() - started)
        kills += killed
        opened = assert_parquet_files_open(workdir / "results")
        run(workdir, "--unlock")
        run(workdir, "--rerun-incomplete")
        assert (workdir / "results/report/metrics.tsv").read_text() == expected, f"trial {attempts} (kill at {after:.1f} s)"
        assert_parquet_files_open(workdir / "results")
        assert sorted((workdir / "results").rglob("*.tmp")) == [], f"trial {attempts}: temporary files left"
        report.append(f"kill at {after:5.1f} s: {'killed' if killed else 'finished first'}, {opened} parquet files")
        shutil.rmtree(workdir)
    print(f"\nuninterrupted run {duration:.1f} s; {kills} kills in {attempts} attempts\n" + "\n".join(report))
    assert kills == KILLS
