"""Which jobs of a finished run bound its wall time: stage times in order and the critical path of the job DAG.

The jobs and their dependencies come from ``snakemake --d3dag`` printed just before the run (same config, same empty
output folder, so the same job ids), each job's time from its ``benchmark:`` file written with
``--benchmark-extended``, which records the job id and rule that join the two. The critical path is the chain
of dependent jobs with the largest sum of job times: no schedule, however many cores, finishes the run sooner.
Reading Snakemake's benchmark files lives here too (seconds, start and end times), for the report page and bench/.
"""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from siteaug.runtime.io import InputError


def stages_longest_first(seconds: dict[str, float]) -> list[tuple[str, float]]:
    """(stage, seconds) longest first; stages of equal time by name, so the order is the same on every run."""
    return sorted(((str(k), float(v)) for k, v in seconds.items()), key=lambda kv: (-kv[1], kv[0]))


def dag_from_d3dag(text: str) -> tuple[dict[int, str], dict[int, set[int]]]:
    """({job id: rule}, {job id: the job ids it waits for}) from what ``snakemake --d3dag`` prints."""
    try:
        graph = json.loads(text)
        rule = {int(node["id"]): str(node["value"]["rule"]) for node in graph["nodes"]}
        if any(int(node["id"]) != int(node["value"]["jobid"]) for node in graph["nodes"]):
            raise InputError("snakemake --d3dag output: a node id is not its job id")
        depends_on: dict[int, set[int]] = {job: set() for job in rule}
        for edge in graph["edges"]:
            depends_on[int(edge["v"])].add(int(edge["u"]))  # u is an input of v
    except (json.JSONDecodeError, KeyError, TypeError) as err:
        raise InputError(f"not the output of snakemake --d3dag ({err!r})") from None
    return rule, depends_on


def read_benchmarks(paths) -> dict[str, float]:
    """Read Snakemake ``benchmark:`` files; return {file stem: wall-clock seconds (column ``s``)}.

    A benchmark run with ``repeat(...)`` has one row per repeat; their mean is returned.
    """
    out: dict[str, float] = {}
    for path in map(Path, paths):
        if not path.is_file():
            raise InputError(f"{path}: benchmark file not found")
        try:
            table = pd.read_csv(path, sep="\t")
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
            raise InputError(f"{path}: not a benchmark TSV ({err})") from None
        if table.columns[:1].tolist() != ["s"] or table.empty:
            raise InputError(f"{path}: expected a benchmark TSV whose first column is 's' and at least one row")
        seconds = pd.to_numeric(table["s"], errors="coerce")
        if seconds.isna().any():
            raise InputError(f"{path}: column 's' holds non-numeric values")
        if path.stem in out:
            raise InputError(f"{path}: another benchmark file has the same name {path.stem!r}")
        out[path.stem] = float(seconds.mean())
    return out


def benchmark_intervals(paths) -> dict[str, tuple[float, float]]:
    """{file stem: (start, end)} in seconds since the epoch: a job's benchmark file is written when it ends, so its
    modification time is the end, and the start is the end less its wall-clock seconds (:func:`read_benchmarks`)."""
    out = {}
    for path in map(Path, paths):
        seconds = read_benchmarks([path])[path.stem]
        end = path.stat().st_mtime
        out[path.stem] = (end - seconds, end)
    return out


def benchmark_jobs(paths) -> dict[str, tuple[int, str, float]]:
    """{file stem: (job id, rule, seconds)} of benchmark files written with ``snakemake --benchmark-extended``.

    Seconds are :func:`read_benchmarks`' (the mean of the ``s`` column); the job id and rule are the run's own, so they
    join the files to the job graph of ``dag_from_d3dag`` without guessing from file names.
    """
    paths = [Path(p) for p in paths]
    seconds = read_benchmarks(paths)
    out = {}
    for path in paths:
        table = pd.read_csv(path, sep="\t")
        if not {"jobid", "rule_name"} <= set(table.columns):
            raise InputError(f"{path}: not a benchmark written with --benchmark-extended (columns s, jobid, rule_name)")
        if table["jobid"].nunique() != 1 or table["rule_name"].nunique() != 1:
            raise InputError(f"{path}: rows of more than one job")
        out[path.stem] = (int(table["jobid"].iloc[0]), str(table["rule_name"].iloc[0]), seconds[path.stem])
    return out


def join_benchmarks(rule_of: dict[int, str], benchmarks: dict[str, tuple[int, str, float]]) -> dict[int, str]:
    """{job id: stage (benchmark stem)}: every benchmark file joined to its job of the DAG, checking that the job
    there has the benchmark's rule (the DAG printed before the run must be the run's). A job without a benchmark
    (e.g. the target rule ``all``) is left out."""
    stage_of = {}
    for stage, (job, rule, _) in benchmarks.items():
        if rule_of.get(job) != rule:
            raise InputError(f"benchmark {stage}: job {job} of rule {rule} is {rule_of.get(job, 'not a job')} in the "
                             "job graph; the DAG and the run differ")
        if job in stage_of:
            raise InputError(f"benchmarks {stage_of[job]} and {stage} name the same job {job}")
        stage_of[job] = stage
    return stage_of


def critical_path(seconds: dict[str, float], depends_on: dict[str, set[str]]) -> tuple[list[str], float]:
    """(stages from first to last, their summed seconds) of the chain of dependent jobs with the largest total time.

    ``depends_on`` maps every stage to the stages it waits for; each must have a time in ``seconds``. Of chains of
    equal time the one through the alphabetically first stages is returned, so the answer does not depend on dict
    order. A cycle is an error (a workflow DAG has none).
    """
    missing = sorted(set(depends_on) - set(seconds) | {d for ds in depends_on.values() for d in ds} - set(seconds))
    if missing:
        raise InputError(f"no time for stage {missing[0]} ({len(missing)} stages without a benchmark)")
    finish: dict[str, float] = {}  # the latest a stage can end if every job starts as soon as its inputs exist
    before: dict[str, str | None] = {}
    state: dict[str, str] = {}

    def visit(stage: str, trail: tuple[str, ...]) -> float:
        if state.get(stage) == "done":
            return finish[stage]
        if state.get(stage) == "open":
            raise InputError(f"the job graph has a cycle: {' -> '.join((*trail[trail.index(stage):], stage))}")
        state[stage] = "open"
        best, best_stage = 0.0, None
        for upstream in sorted(depends_on.get(stage, ())):
            end = visit(upstream, (*trail, stage))
            if end > best:
                best, best_stage = end, upstream
        finish[stage], before[stage], state[stage] = best + float(seconds[stage]), best_stage, "done"
        return finish[stage]

    for stage in sorted(seconds):
        visit(stage, ())
    if not finish:
        return [], 0.0
    last = min(finish, key=lambda s: (-finish[s], s))
    path = [last]
    while before[path[-1]] is not None:
        path.append(before[path[-1]])
    return path[::-1], finish[last]
