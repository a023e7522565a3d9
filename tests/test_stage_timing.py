"""Stage order and the critical path of a run (siteaug.evaluation.stage_timing), on hand-made job graphs."""
import json

import pytest

from siteaug.evaluation.stage_timing import benchmark_jobs, critical_path, dag_from_d3dag, join_benchmarks, stages_longest_first
from siteaug.runtime.io import InputError

# A diamond with a long side job: prepare -> features -> {train_diffusion -> generate, train_critic} -> filter -> report,
# and a classifier that waits only for features. The single longest job (classifier, 50 s) is not on the critical
# path: features + train_diffusion + generate + filter (10 + 30 + 25 + 5) plus prepare and report is longer.
SECONDS = {"prepare": 2, "features": 10, "train_diffusion": 30, "generate": 25, "train_critic": 40, "filter": 5,
           "classifier": 50, "report": 3}
DEPENDS_ON = {"prepare": set(), "features": {"prepare"}, "train_diffusion": {"features"}, "generate": {"train_diffusion"},
              "train_critic": {"features"}, "filter": {"generate", "train_critic"}, "classifier": {"features"},
              "report": {"filter", "classifier"}}


def test_critical_path_is_the_longest_chain_not_the_longest_job():
    path, seconds = critical_path(SECONDS, DEPENDS_ON)
    assert path == ["prepare", "features", "train_diffusion", "generate", "filter", "report"]
    assert seconds == 2 + 10 + 30 + 25 + 5 + 3


def test_critical_path_moves_when_a_side_job_grows():
    path, seconds = critical_path({**SECONDS, "classifier": 80}, DEPENDS_ON)
    assert path == ["prepare", "features", "classifier", "report"] and seconds == 95


def test_critical_path_ties_and_order_independence():
    # Two equal chains: the alphabetically first stage wins, whatever order the dicts were built in.
    seconds = {"b": 5, "a": 5, "end": 1}
    depends = {"end": {"b", "a"}, "b": set(), "a": set()}
    assert critical_path(seconds, depends) == (["a", "end"], 6)
    assert critical_path(dict(reversed(seconds.items())), {k: depends[k] for k in reversed(depends)}) == (["a", "end"], 6)


def test_critical_path_refuses_a_cycle_and_a_stage_without_time():
    with pytest.raises(InputError, match="cycle: a -> b -> a"):
        critical_path({"a": 1, "b": 1}, {"a": {"b"}, "b": {"a"}})
    with pytest.raises(InputError, match="no time for stage generate"):
        critical_path({"filter": 1}, {"filter": {"generate"}})


def test_stages_longest_first_breaks_ties_by_name():
    assert stages_longest_first({"c": 1, "b": 3, "a": 3}) == [("a", 3.0), ("b", 3.0), ("c", 1.0)]



# What snakemake --d3dag prints for make_demo (job 3) -> prepare (2) -> generate shards (1, 4) -> all (0).
D3DAG = json.dumps({
    "nodes": [{"id": i, "value": {"jobid": i, "label": r, "rule": r}}
              for i, r in [(0, "all"), (1, "generate"), (2, "prepare"), (3, "make_demo"), (4, "generate")]],
    "edges": [{"u": 3, "v": 2}, {"u": 2, "v": 1}, {"u": 2, "v": 4}, {"u": 1, "v": 0}, {"u": 4, "v": 0}],
})
EXTENDED_HEADER = "s\th:m:s\tmax_rss\tjobid\trule_name\twildcards\n"


def write_benchmark(folder, stem, job, rule, *seconds):
    rows = "".join(f"{s}\t0:00:01\t10.0\t{job}\t{rule}\tshard=x\n" for s in seconds)
    (folder / f"{stem}.tsv").write_text(EXTENDED_HEADER + rows)
    return folder / f"{stem}.tsv"


def test_benchmarks_join_the_job_graph_by_job_id(tmp_path):
    rule_of, depends_on = dag_from_d3dag(D3DAG)
    assert depends_on == {0: {1, 4}, 1: {2}, 2: {3}, 3: set(), 4: {2}}
    paths = [write_benchmark(tmp_path, "make_demo", 3, "make_demo", 2.0),
             write_benchmark(tmp_path, "prepare", 2, "prepare", 1.0, 3.0),  # two repeats: their mean
             write_benchmark(tmp_path, "generate_shard_0", 1, "generate", 4.0),
             write_benchmark(tmp_path, "generate_shard_1", 4, "generate", 9.0)]
    benchmarks = benchmark_jobs(paths)
    assert benchmarks["prepare"] == (2, "prepare", 2.0)
    stage_of = join_benchmarks(rule_of, benchmarks)
    assert stage_of == {3: "make_demo", 2: "prepare", 1: "generate_shard_0", 4: "generate_shard_1"}  # all has none
    stages = {job: stage_of.get(job, "all") for job in rule_of}
    seconds = {**{s: b[2] for s, b in benchmarks.items()}, "all": 0.0}
    path, total = critical_path(seconds, {stages[j]: {stages[u] for u in ups} for j, ups in depends_on.items()})
    assert path == ["make_demo", "prepare", "generate_shard_1", "all"] and total == 13.0


def test_a_benchmark_whose_job_has_another_rule_in_the_graph_is_an_error(tmp_path):
    rule_of, _ = dag_from_d3dag(D3DAG)
    # job ids of another plan: job 1 is a generate job there, not prepare
    benchmarks = benchmark_jobs([write_benchmark(tmp_path, "prepare", 1, "prepare", 1.0)])
    with pytest.raises(InputError, match="job 1 of rule prepare is generate in the job graph"):
        join_benchmarks(rule_of, benchmarks)


def test_a_plain_benchmark_file_is_refused(tmp_path):
    (tmp_path / "prepare.tsv").write_text("s\th:m:s\n1.0\t0:00:01\n")
    with pytest.raises(InputError, match="--benchmark-extended"):
        benchmark_jobs([tmp_path / "prepare.tsv"])
