"""The tiny demo through snakemake-executor-plugin-slurm on a real one-node SLURM cluster (tests/slurm/local_cluster.py).

Checks that every job went through the scheduler (job ids in .snakemake/slurm_logs and in squeue), that GPU rules got a
GPU from SLURM and used the card SLURM gave them, that GPU jobs are not serialised by `gpu` being a global resource,
and that the outputs are byte-identical to a local run. Needs root and Debian's slurmctld, slurmd, slurm-client and
munge; `.ci/run` installs them and sets SITEAUG_REQUIRE_SLURM=1, which turns the skip into a failure.

The run is ``second_tiny_run`` of tests/conftest.py: tests/data/tiny.yaml (every arm, two seeds, and gpu.mps on, which a
cluster run must ignore) through the profile profiles/ci-slurm, started in the background when the session starts (tests/slurm/background_run.py); these tests, and
tests/test_determinism.py which compares it with the local ``tiny_run``, run last. The local run it is compared with is
``tiny_run``.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import LEAN, REPO, TINY, copy_config, snakemake_command

sys.path.insert(0, str(Path(__file__).resolve().parent / "slurm"))
from local_cluster import missing_requirements  # noqa: E402

REQUIRED = os.environ.get("SITEAUG_REQUIRE_SLURM") == "1"
MISSING = missing_requirements()


def cluster_test(test):
    marks = [pytest.mark.slurm, pytest.mark.workflow,
             pytest.mark.skipif(bool(MISSING) and not REQUIRED, reason=f"no local SLURM cluster: {MISSING}")]
    for mark in marks:
        test = mark(test)
    return test


@pytest.fixture(scope="session")  # session: set up before the session fixtures the runs need, so it fails first
def cluster(slurm_tiny_run):
    if slurm_tiny_run is None:
        pytest.fail(f"SITEAUG_REQUIRE_SLURM=1 but no local SLURM cluster: {MISSING}", pytrace=False)
    return slurm_tiny_run.cluster


@pytest.fixture(scope="module")
def runs(cluster, slurm_tiny_run, tiny_run, second_tiny_run):
    """The tiny demo through SLURM (``second_tiny_run``, the background run) and locally (``tiny_run``). The local run
    is requested first: if no test has made it yet, it runs while the SLURM run queues."""
    assert second_tiny_run == slurm_tiny_run.workdir
    return {"local": tiny_run, "slurm": second_tiny_run, "slurm_log": slurm_tiny_run.log}


def submitted_jobs(log: str) -> dict[str, tuple[str, Path]]:
    """SLURM job id -> (rule, SLURM log file), from the executor's 'has been submitted' lines."""
    jobs = {}
    for jobid, logfile in re.findall(r"has been submitted with SLURM jobid (\d+) \(log: (\S+)\)\.", log):
        rule_folder = next(part for part in Path(logfile).parts if part.startswith("rule_"))
        jobs[jobid] = (rule_folder.removeprefix("rule_"), Path(logfile))
    return jobs


def scontrol_job(cluster, jobid: str) -> str:
    return subprocess.run(["scontrol", "--details", "show", "job", jobid], env=cluster.env, capture_output=True,
                          text=True, timeout=30, check=True).stdout


@cluster_test
def test_every_job_went_through_the_scheduler(cluster, runs):
    log = runs["slurm_log"]
    jobs = submitted_jobs(log)
    planned = int(re.search(r"^total\s+(\d+)$", log, re.MULTILINE).group(1))
    # Every planned job but the target rule `all` (no output; run on the submit host) became one SLURM job.
    assert "localrule all:" in log
    assert len(jobs) == planned - 1 and len(jobs) >= 10
    logs_dir = runs["slurm"] / ".snakemake" / "slurm_logs"
    assert {path.stem for path in logs_dir.rglob("*.log")} == set(jobs)
    for rule, logfile in jobs.values():
        assert logfile.is_relative_to(logs_dir)
        # "rule X:" heads the job's block, or (for a rule with a console message) Snakemake's "(Rule: X)" closing line.
        text = logfile.read_text()
        assert re.search(rf"^rule {rule}:$", text, re.MULTILINE) or f"(Rule: {rule})" in text, f"{logfile} did not run rule {rule}"
    run_id = re.search(r"SLURM run ID: (\S+)", log).group(1)
    queue = subprocess.run(["squeue", "--states=all", "--noheader", "--format=%i|%T|%j"], env=cluster.env,
                           capture_output=True, text=True, timeout=30, check=True).stdout
    states = {jobid: (state, name) for jobid, state, name in (line.split("|") for line in queue.split())}
    assert {jobid: states.get(jobid) for jobid in jobs} == {jobid: ("COMPLETED", run_id) for jobid in jobs}



def gpu_rules() -> set[str]:
    """Names of the rules that declare ``gpu=1`` in rules/*.smk, with the ``use rule A as B`` copies of those."""
    text = "\n".join(path.read_text() for path in sorted((REPO / "rules").glob("*.smk")))
    blocks = re.split(r"^(?=rule |use rule )", text, flags=re.MULTILINE)
    names = {re.match(r"rule (\w+):", b).group(1) for b in blocks if b.startswith("rule ") and re.search(r"\bgpu=1\b", b)}
    for parent, child in re.findall(r"^use rule (\w+) as (\w+)", text, re.MULTILINE):
        if parent in names:
            names.add(child)
    return names

@cluster_test
def test_gpu_rules_get_a_slurm_gpu_and_use_that_card(cluster, runs):
    jobs = submitted_jobs(runs["slurm_log"])
    # A rule's console message replaces the block that lists its resources in the job log, so the GPU rules are read
    # from the rule files: those that declare gpu=1, and the `use rule` copies of them.
    declared = {jobid for jobid, (rule, _) in jobs.items() if rule in gpu_rules()}
    details = {jobid: scontrol_job(cluster, jobid) for jobid in jobs}
    # `gpu: 1` in a rule became --gpus=1, and only GPU rules were given a card.
    allocated = {jobid for jobid, text in details.items() if "JOB_GRES=gpu:1" in text}
    assert declared and allocated == declared
    assert all("TresPerJob=gres:gpu:1" in details[jobid] for jobid in declared)
    # Inside each GPU job, siteaug.runtime.device took the card that SLURM put in CUDA_VISIBLE_DEVICES, and logged it. The run
    # was started without that variable, so SLURM's GPU allocation is the only thing that can have set it. (A finished
    # job no longer shows its card's index in scontrol, so the card is checked against the node's cards.)
    used = {}
    for path in (runs["slurm"] / "results" / "logs").rglob("*.log"):
        for card, jobid in re.findall(r"using GPU (\S+) assigned by SLURM job (\d+)", path.read_text()):
            used[jobid] = card
    assert set(used) == declared
    assert set(used.values()) <= {str(index) for index in range(cluster.gpus)}


@cluster_test
def test_gpu_shards_are_queued_together_despite_resources_gpu_1(runs):
    log = runs["slurm_log"]
    generate = [jobid for jobid, (rule, _) in submitted_jobs(log).items() if rule == "generate"]
    assert len(generate) >= 2
    last_submission = max(log.index(f"SLURM jobid {jobid} ") for jobid in generate)
    first_finish = min(m.start() for m in re.finditer(r"Finished jobid: \d+ \(Rule: generate\)", log))
    # A global gpu=1 would hold shard 1 back until shard 0 finished.
    assert last_submission < first_finish


@cluster_test
def test_outputs_match_a_local_run(runs):
    local, slurm = runs["local"] / "results", runs["slurm"] / "results"
    tables = sorted(path.relative_to(local) for path in local.rglob("*.parquet"))
    assert tables == sorted(path.relative_to(slurm) for path in slurm.rglob("*.parquet"))
    assert len(tables) >= 10
    assert [str(path) for path in tables if (local / path).read_bytes() != (slurm / path).read_bytes()] == []
    for name in ("metrics.tsv", "metrics.json"):
        assert (local / "report" / name).read_text() == (slurm / "report" / name).read_text()


@cluster_test
def test_gpu_mps_is_left_to_local_runs(runs, slurm_tiny_run):
    """The SLURM run has gpu.mps on (tests/slurm/background_run.py): its jobs run on the nodes, each with the card SLURM
    gave it, so it starts no daemon and says so. While the Snakefile is read, Snakemake has not chosen its executor;
    rules/mps.smk decides in onstart."""
    assert "gpu.mps: ignored (the jobs run on other machines)" in runs["slurm_log"]
    assert not slurm_tiny_run.mps_calls.exists()


def test_user_profile_is_accepted_and_plans_every_rule_with_its_resources(tmp_path):
    """profiles/slurm parses with this Snakemake and plugin; a dry run needs no cluster."""
    copy_config(tmp_path)
    result = subprocess.run(snakemake_command(tmp_path, "--profile", str(REPO / "profiles" / "slurm"), "--dry-run",
                                              configfiles=(TINY, LEAN), cores=None),
                            cwd=tmp_path, capture_output=True, text=True, timeout=300)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert "Using profile" in output and "profiles/slurm" in output
    # A GPU rule without a console message (a message replaces the block that lists the resources in a dry run): the
    # profile's default resources and the rule's gpu.
    filter_shard = re.search(r"^rule filter_shard:$(.*?)^$", output, re.MULTILINE | re.DOTALL).group(1)
    assert re.search(r"resources: .*mem_mb=16000.*runtime=60.*gpu=1", filter_shard)
