"""The SIGKILL trials of tests/test_resume.py: SIGKILL the lean tiny workflow in the middle of a job of each stage in
turn, resume it each time, and finish it. They run in the background (conftest.py, LocalRuns) once the shared lean run
is done, beside the tests that read no shared run; the test then compares what they made with that run.

A kill takes the whole process group (Snakemake and its running jobs), as an out-of-memory kill or a lost node
would. After each kill every visible Parquet file must open (outputs are written to a temporary name and renamed);
``snakemake --unlock`` then ``--rerun-incomplete`` must finish the run.
"""
from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pyarrow.parquet as pq

from helpers import snakemake_command

# Where the kills land: a job of each of these stages, KILL_DELAY_S after it has started its work (its log, which
# the rule script opens once its imports are done, was written by the attempt being killed). Each stage needs the
# outputs of the one before (make_demo, prepare, features, train_diffusion, generate, filter, balance,
# train_classifier, evaluate, report_figures, report), so the lean run reaches them in this order whatever the
# machine's speed, and one work directory is killed at each in turn, resumed each time: the trials cost about one run,
# not one run per kill. Between them they kill the feature workers' process pool, a model's training, a generation
# and a filter shard while the other shard runs beside it, the balanced table, a classifier and the report.
# A shard's log is matched by pattern, whichever shard comes first: Snakemake orders two ready jobs of the same rule and
# priority as its set of ready jobs lists them, which changes with unrelated code. A kill at generate/shard_0.log found
# shard 1 already generated and filtered, so the next trial waited for filter/shard_1.log in vain.
KILL_AT = ["logs/prepare.log", "logs/features.log", "logs/train_diffusion.log", "logs/generate/shard_*.log",
           "logs/filter/shard_*.log", "logs/balance.log", "logs/train_classifier/diffusion.log", "logs/report.log"]
KILL_DELAY_S = 0.5
TIMEOUT_S = 900

# Called with each Snakemake process the trials start (conftest.py's LocalRuns, to end it if the session stops first).
Track = Callable[[subprocess.Popen], None]


def _start(workdir: Path, configfiles, args, track: Track | None, **popen) -> subprocess.Popen:
    process = subprocess.Popen(snakemake_command(workdir, *args, configfiles=configfiles), cwd=workdir,
                               stdin=subprocess.DEVNULL, start_new_session=True, **popen)
    if track is not None:
        track(process)
    return process


def run(workdir: Path, configfiles, *args: str, track: Track | None = None) -> None:
    process = _start(workdir, configfiles, args, track, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        _, stderr = process.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        raise AssertionError(f"snakemake {' '.join(args)}: not done after {TIMEOUT_S} s") from None
    assert process.returncode == 0, f"snakemake {' '.join(args)} failed:\n{stderr[-4000:]}"


def run_and_kill(workdir: Path, configfiles, log: str, *args: str, track: Track | None = None) -> bool:
    """Start the workflow; once ``log`` (a path under results/, or a glob pattern of several) is written by this run,
    wait KILL_DELAY_S and SIGKILL the whole process group. True if it was still running then; False if it ended first
    (a failure, or the job never started)."""
    started = time.time_ns()
    process = _start(workdir, configfiles, args, track, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    results = workdir / "results"

    def written() -> bool:
        for path in results.glob(log):
            try:
                if path.stat().st_mtime_ns >= started:
                    return True
            except FileNotFoundError:
                pass
        return False

    deadline = time.monotonic() + TIMEOUT_S
    while process.poll() is None and not written():
        if time.monotonic() > deadline:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            raise AssertionError(f"{log}: not written after {TIMEOUT_S} s")
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


def sigkill_trials(workdir: Path, configfiles, track: Track | None = None) -> list[str]:
    """Kill the workflow in ``workdir`` at each of KILL_AT in turn, check that every Parquet file opens after each
    kill, then finish it with ``--rerun-incomplete``; one report line per trial. AssertionError, with the lines so far,
    if a run ended before its kill or a file does not open."""
    report = []
    for trial, log in enumerate(KILL_AT, 1):
        # The first attempt starts from nothing; every later one resumes what the kills before it left.
        killed = run_and_kill(workdir, configfiles, log, *(["--rerun-incomplete"] if trial > 1 else []), track=track)
        opened = assert_parquet_files_open(workdir / "results")
        report.append(f"trial {trial}: {'killed' if killed else 'ended first'} {KILL_DELAY_S} s into {log}, {opened} parquet files")
        assert killed, "\n".join(report)
        run(workdir, configfiles, "--unlock", track=track)
    run(workdir, configfiles, "--rerun-incomplete", track=track)
    return report
