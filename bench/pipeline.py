"""The whole workflow timed end to end from an empty output folder: every stage's time, the total and the critical path.

    python bench/pipeline.py [--configfile A.yaml B.yaml ...] [--cores N] [--resources gpu=1] [--output DIR] [--json OUT]

Default: the DNA-573 arms comparison on a GPU machine (config/dna573.yaml config/dna573_arms.yaml, 16 cores, gpu=1).
Run it from the repository root (the configs' relative input paths are read from the working directory). The outputs
go to a fresh folder, a new temporary one unless --output names a folder that does not exist or is empty: one more
config file, written beside it, sets output.directory, so a user's results/ is never read, reused or deleted.

Stage times are Snakemake's ``benchmark:`` files under the folder's benchmarks/ (seconds, process start included;
the run passes --benchmark-extended, so each file names its job). The critical path is the chain of dependent jobs of
the job graph (``snakemake --d3dag``, printed just before the run from the same empty folder) with the largest sum of
stage times. It and the sum of stage times over the cores are lower bounds on the wall time; what the wall time
exceeds the larger by is what scheduling, waiting for resources and Snakemake itself cost. Prints the tables and writes them as JSON (default OUTPUT/pipeline_bench.json).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from workflow_stages import stage_times

from siteaug.evaluation.stage_timing import benchmark_jobs, critical_path, dag_from_d3dag, join_benchmarks, stages_longest_first
from siteaug.runtime.provenance import git_commit

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CONFIGS = ["config/dna573.yaml", "config/dna573_arms.yaml"]


def fresh_output(requested: Path | None) -> Path:
    """An absolute output folder that holds nothing yet."""
    if requested is None:
        return Path(tempfile.mkdtemp(prefix="siteaug-pipeline-")) / "results"
    folder = requested.resolve()
    if folder.exists() and any(folder.iterdir()):
        sys.exit(f"--output {requested}: the folder holds files already; the benchmark needs an empty or new one")
    return folder


def snakemake(configfiles: list[str], *args: str) -> list[str]:
    return [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--configfile", *configfiles, *args]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configfile", nargs="+", default=DEFAULT_CONFIGS)
    parser.add_argument("--cores", type=int, default=16)
    parser.add_argument("--resources", nargs="*", default=["gpu=1"], help="Snakemake --resources (default gpu=1)")
    parser.add_argument("--output", type=Path, help="output folder (must be new or empty; default a new temporary one)")
    parser.add_argument("--json", type=Path, help="where to write the JSON (default OUTPUT/pipeline_bench.json)")
    parser.add_argument("--snakemake-args", nargs="*", default=[], metavar="ARG",
                        help="more arguments for the timed run, e.g. --snakemake-args=--set-threads=tree_scores=16")
    args = parser.parse_args()

    output = fresh_output(args.output)
    output.mkdir(parents=True, exist_ok=True)
    overlay = output.parent / f"{output.name}_output_directory.yaml"
    overlay.write_text(json.dumps({"output": {"directory": str(output)}}) + "\n")  # JSON is YAML
    configfiles = [*args.configfile, str(overlay)]
    run_log = output.parent / f"{output.name}_snakemake.log"
    # The job graph of this run, planned from the same empty folder the run starts from, so its job ids are the run's;
    # join_benchmarks checks each benchmark's job id and rule against it.
    rule_of, depends_on = dag_from_d3dag(subprocess.run(snakemake(configfiles, "--d3dag"), capture_output=True, text=True,
                                                        check=True).stdout)
    command = snakemake(configfiles, "--cores", str(args.cores), "--benchmark-extended",
                        *(["--resources", *args.resources] if args.resources else []), *args.snakemake_args)
    load_before = os.getloadavg()
    print(f"running: {' '.join(command)}\n  outputs: {output}\n  Snakemake's console: {run_log}", flush=True)
    start = time.perf_counter()
    with run_log.open("w") as console:
        done = subprocess.run(command, stdout=console, stderr=subprocess.STDOUT)
    wall = time.perf_counter() - start
    load_after = os.getloadavg()
    if done.returncode:
        sys.exit(f"the workflow failed (exit {done.returncode}) after {wall:.1f} s; see {run_log}")

    times = stage_times(output).set_index("stage")
    benchmarks = benchmark_jobs(sorted((output / "benchmarks").glob("*.tsv")))
    stage_of = join_benchmarks(rule_of, benchmarks)
    # Jobs without a benchmark (the target rule all) take no time of their own but keep their place in the graph.
    untimed = {job: f"{rule} (job {job}, no benchmark)" for job, rule in rule_of.items() if job not in stage_of}
    name = {**stage_of, **untimed}
    seconds = {stage: benchmarks[stage][2] for stage in stage_of.values()}
    path, path_seconds = critical_path({**seconds, **dict.fromkeys(untimed.values(), 0.0)},
                                       {name[job]: {name[u] for u in ups} for job, ups in depends_on.items()})
    path = [stage for stage in path if stage in seconds]
    total = float(sum(seconds.values()))

    stages = [{"stage": s, "rule": benchmarks[s][1], "seconds": round(v, 2), "max_rss_mb": round(float(times.at[s, "max_rss_mb"]), 1)}
              for s, v in stages_longest_first(seconds)]
    print(f"\n{'stage':<40} {'rule':<22} {'s':>9} {'max RSS MB':>11}")
    for row in stages:
        print(f"{row['stage']:<40} {row['rule']:<22} {row['seconds']:>9.1f} {row['max_rss_mb']:>11.0f}")
    print(f"{'sum of stage times':<63} {total:>9.1f}")
    if untimed:
        print(f"jobs without a benchmark (0 s in the critical path): {', '.join(sorted(untimed.values()))}")
    print(f"\ncritical path ({len(path)} jobs, {path_seconds:.1f} s of stage time):")
    for stage in path:
        print(f"  {stage:<40} {seconds[stage]:>9.1f}")
    # Two lower bounds on the wall time: no schedule beats the critical path, and none beats the stage time spread
    # evenly over the cores (each job counted as one core, though some use more).
    per_core = total / args.cores
    print(f"\nwall time {wall:.1f} s; lower bounds: critical path {path_seconds:.1f} s, sum of stage times / {args.cores} "
          f"cores {per_core:.1f} s; the rest ({wall - max(path_seconds, per_core):.1f} s) is scheduling, waiting for "
          f"resources and Snakemake itself")
    print(f"load average (1, 5, 15 min) before {load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f}, "
          f"after {load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f}")

    result = {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"), "commit": git_commit(REPO),
        "host": platform.node(), "cpus": os.cpu_count(), "load_average_before": load_before, "load_average_after": load_after,
        "command": command, "configfiles": args.configfile, "cores": args.cores, "output_directory": str(output),
        "wall_seconds": round(wall, 2), "sum_of_stage_seconds": round(total, 2),
        "sum_of_stage_seconds_per_core": round(per_core, 2), "stages": stages,
        "critical_path": {"stages": path, "seconds": round(path_seconds, 2)}, "untimed_jobs": sorted(untimed.values()),
    }
    out = args.json or output / "pipeline_bench.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
