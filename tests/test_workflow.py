"""The Snakemake workflow end to end on a tiny demo: outputs, caching, partial reruns and bad input."""
from __future__ import annotations

import hashlib
import json
import re
import subprocess
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
import torch

from helpers import REPO, SNAKEMAKE, TINY, config_with, new_workdir, run_snakemake, tiny_yaml, write_config
from siteaug.arms.registry import lookup_arm, workflow_arms

pytestmark = pytest.mark.workflow


def snakemake(workdir: Path, *args: str, configfile: Path = TINY, check: bool = True) -> subprocess.CompletedProcess:
    result = run_snakemake(workdir, *args, configfiles=(configfile,))
    if check and result.returncode != 0:
        raise AssertionError(f"snakemake failed ({result.returncode}):\n{result.stdout[-3000:]}\n{result.stderr[-6000:]}")
    return result


def test_every_output_exists_with_its_schema(tiny_run):
    results = tiny_run / "results"
    proteins = pq.read_table(results / "data/proteins.parquet").to_pandas()
    assert set(proteins["split"]) == {"train", "validation", "test"}
    assert proteins["protein_id"].is_unique
    residues = pq.read_table(results / "features/residues.parquet").to_pandas()
    features = [c for c in residues.columns if c.startswith("f_")]
    assert list(residues.columns[:5]) == ["protein_id", "position", "residue", "label", "split"] and len(features) > 40
    # No protein appears in two splits: the split is by protein.
    assert residues.groupby("protein_id")["split"].nunique().max() == 1
    train = residues[residues["split"] == "train"]
    assert train[features].mean().abs().max() < 1e-3  # standardised on the training split
    # The generator's codec found the backbone dihedrals' sine/cosine pairs from the raw values (train_diffusion reads
    # the standardisation statistics).
    circles = torch.load(results / "diffusion/model.pt", weights_only=True)["extra"]["codec"]["circles"]
    assert {tuple(features[j] for j in c["columns"]) for c in circles} == {("f_phi_sin", "f_phi_cos"), ("f_psi_sin", "f_psi_cos")}

    for shard in (0, 1):
        generated = pq.read_table(results / f"generated/shard_{shard}.parquet").to_pandas()
        assert list(generated.columns) == ["protein_id", "candidate_id", *features]
        assert set(generated["protein_id"]) <= set(train["protein_id"])
        kept = pq.read_table(results / f"filtered/shard_{shard}.parquet").to_pandas()
        assert (kept["quality_score"] >= 0.3).all() and kept["quality_score"].between(0, 1).all()
        scores = pq.read_table(results / f"filtered/scores_{shard}.parquet").to_pandas()
        assert len(scores) == len(generated)

    balanced = pq.read_table(results / "balanced/train.parquet").to_pandas()
    summary = json.loads((results / "balanced/summary.json").read_text())
    assert abs(balanced["label"].mean() - 0.5) <= 0.01
    assert abs(summary["achieved_positive_ratio"] - summary["target_positive_ratio"]) <= 0.01
    assert set(balanced["split"]) == {"train"}
    synthetic = balanced[balanced["origin"] == "synthetic"]
    assert len(synthetic) == summary["synthetic_used"] and (synthetic["label"] == 1).all()
    assert set(balanced["protein_id"]) <= set(train["protein_id"])  # nothing synthetic or real from validation/test

    test_ids = set(proteins.loc[proteins["split"] == "test", "protein_id"])
    config = tiny_yaml()["classifier"]
    arms = config["arms"] + [f"diffusion_ratio{r:g}" for r in config["ratio_sweep"]]
    for arm in arms:
        predictions = pq.read_table(results / f"classifier/{arm}/predictions.parquet").to_pandas()
        assert set(predictions["protein_id"]) == test_ids
        assert predictions["score"].between(0, 1).all()
        assert sorted(predictions["seed"].unique()) == [3, 4]  # seed 3 of tiny.yaml, two seeds
        assert (predictions.groupby("seed")["threshold"].nunique() == 1).all()
        assert len(list((results / f"classifier/{arm}/models").glob("seed_*"))) == 2
    # graph_transformer (tiny.yaml: tree_input, 2 members) read an out-of-fold tree score for every residue.
    tree = pq.read_table(results / "features/tree_scores.parquet").to_pandas()
    assert len(tree) == len(residues) and tree["f_tree_logit"].notna().all()
    tree_summary = json.loads((results / "features/tree_scores.json").read_text())
    assert tree_summary["folds"] == 2
    # gbdt's grid point comes from the tree_scores job's fits (its tuning fits), read, not fitted again.
    gbdt = json.loads((results / "classifier/gbdt/summary.json").read_text())["seeds"]
    assert [s["params"] for s in gbdt] == [tree_summary["gbdt"]["params"]] * 2
    gbdt_log = (results / "logs/train_classifier/gbdt.log").read_text()
    assert "the tree_scores job's fits" in gbdt_log and "up to" not in gbdt_log  # no grid fit in the arm's job
    for seed in json.loads((results / "classifier/graph_transformer/summary.json").read_text())["seeds"]:
        assert len(seed["member_best_epochs"]) == 2 and seed["best_epoch"] == seed["member_best_epochs"][0]
    for variant in ("diffusion_unfiltered", "smote_filtered", "diffusion_ratio0.4"):
        table = pq.read_table(results / f"balanced/{variant}/train.parquet").to_pandas()
        assert set(table["split"]) == {"train"} and set(table["protein_id"]) - {"smote"} <= set(train["protein_id"])
    smote_filtered = pq.read_table(results / "balanced/smote_filtered/train.parquet").to_pandas()
    assert (smote_filtered.loc[smote_filtered["origin"] == "synthetic", "quality_score"] >= 0.3).all()

    metrics = pd.read_csv(results / "report/metrics.tsv", sep="\t")
    assert list(metrics["arm"]) == arms * 2
    assert list(metrics["aggregation"]) == ["pooled"] * len(arms) + ["per_protein"] * len(arms)
    differences = pd.read_csv(results / "report/differences.tsv", sep="\t")
    # Every reference of the report that ran in this config (tiny.yaml has all four).
    assert set(differences["reference"]) == {"none", "smote", "gbdt", "graph_transformer"}
    assert differences["low"].le(differences["high"]).all()
    for figure in ("roc", "pr", "thresholds", "auprc_intervals", "auprc_differences", "ratio_sweep", "quality_scores"):
        assert (results / f"report/{figure}.png").stat().st_size > 0
    for column in ("f1", "auroc", "auprc", "precision", "recall"):
        assert metrics[column].between(0, 1).all()
    assert metrics["mcc"].between(-1, 1).all()
    html = (results / "report/report.html").read_text()
    assert "data:image/png;base64," in html and "diffusion" in html
    # The provenance block names every input with the checksum of its content.
    inputs = json.loads((results / "report/provenance.json").read_text())["inputs"]
    assert inputs["input.labels"]["sha256"] == hashlib.sha256((results / "demo/labels.fa").read_bytes()).hexdigest()
    assert "<h2>Provenance</h2>" in html and inputs["input.structures"]["sha256"] in html
    for log in ("prepare", "features", "train_diffusion", "balance", "evaluate", "report_figures", "report"):
        assert (results / f"logs/{log}.log").stat().st_size > 0
    assert (results / "benchmarks/train_diffusion.tsv").exists()
    # Every network fitted gets its own numbered bar: 2 members of graph_transformer's first seed in the job that fits
    # it for the embeddings (embed_residues), 2 of its second seed in the arm's job, which reads the first.
    first = (results / "logs/embedding/embed_residues.log").read_text()
    assert all(f"embed_residues: graph_transformer seed 3, model {n} of 2:" in first for n in (1, 2))
    bars = (results / "logs/train_classifier/graph_transformer.log").read_text()
    assert all(f"train_classifier graph_transformer, model {n} of 2:" in bars for n in (1, 2)) and "model 3 of" not in bars
    assert "arm graph_transformer seed 3: fitted by another job" in bars
    first_model = torch.load(results / "classifier/graph_transformer/seed_3/seed_3.model", weights_only=True)
    arm_model = torch.load(results / "classifier/graph_transformer/models/seed_3.pt", weights_only=True)
    assert all(torch.equal(a, b) for first_state, arm_state in zip(first_model["state_dicts"], arm_model["state_dicts"], strict=True)
               for a, b in zip(first_state.values(), arm_state.values(), strict=True))
    assert "<h3>Critical path</h3>" in html and "critical path, first start to last end" in html


def test_a_second_run_has_nothing_to_do(tiny_run):
    result = snakemake(tiny_run, "-n")
    assert "Nothing to be done" in result.stdout + result.stderr


def test_the_jobs_the_run_waits_for_start_first(tiny_run):
    """profiles/default's greedy scheduler starts the ready job of the highest priority first. Once features has
    ended, tree_scores (priority 10, both cores), which graph_transformer and the embedding chain wait for, is ready
    beside train_diffusion, train_critic and plan_generation (priority 5, one core each in tiny.yaml). Snakemake's
    default ILP maximises the sum of the priorities it starts, so it started two of those, and tree_scores waited for
    two free cores until 154 s into the 289 s run."""
    log = min((tiny_run / ".snakemake" / "log").glob("*.snakemake.log")).read_text()
    after_features = log.split("(Rule: features)", 1)[1]
    first = re.search(r"^(?:Job \d+: |(?:local)?rule )(.*)$", after_features, re.MULTILINE).group(1)
    assert first.startswith("Out-of-fold tree scores"), first
    # Of the arms on real feature rows, gbdt (the CPU arm: the longest, holding half the cores) starts first
    # (CPU_ARM_PRIORITY in rules/common.smk): with priority 0 like the others it started last on DNA-573 under MPS.
    real_rows = ("none", "class_weight", "random_oversampling", "smote", "borderline_smote", "gbdt", "gnn")
    started = [arm for arm in re.findall(r"^Job \d+: Training arm (\w+) ", log, re.MULTILINE) if arm in real_rows]
    assert sorted(started) == sorted(real_rows) and started[0] == "gbdt", started


def test_snakemake_report_collects_the_report_outputs(tiny_run):
    result = snakemake(tiny_run, "--report", "smk_report.html")
    assert "Report created" in result.stdout + result.stderr
    page = (tiny_run / "smk_report.html").read_text()
    # The captions of report/*.rst and the report() outputs' categories end up in the page.
    assert "Paired differences" in page and "Figures" in page
    # The workflow description (report/workflow.rst, its config values filled in) heads it.
    assert "siteaug asks whether synthetic binding-site residues" in page and "with 2 seed(s)" in page
    for category in ("Report", "Generation quality", "Generation quality in embedding space"):
        assert f'"{category}"' in page, category
    for caption in ("The evidence behind the verdicts", "first two principal components", "Diffusion training loss",
                    "Provenance of the run"):
        assert caption in page, caption
    # Every table and figure of the siteaug report and of both generation-quality stages is a report item.
    results = tiny_run / "results"
    for folder in ("report", "sample_quality", "embedding/sample_quality"):
        for path in sorted((results / folder).iterdir()):
            assert f"{folder}/{path.name}" in page, f"{folder}/{path.name} is not in the Snakemake report"


def test_forcerun_train_classifier_reruns_only_downstream(tiny_run):
    results = tiny_run / "results"
    # One arm's job, not the rule's 15: the other arms' outputs are upstream-like witnesses that nothing else reran.
    upstream = ["data/proteins.parquet", "features/residues.parquet", "diffusion/model.pt", "generated/shard_0.parquet",
                "filtered/shard_1.parquet", "balanced/train.parquet", "classifier/none/predictions.parquet"]
    downstream = ["classifier/diffusion/predictions.parquet", "classifier/diffusion/summary.json", "report/metrics.tsv"]
    before = {p: (results / p).stat().st_mtime_ns for p in upstream + downstream}
    snakemake(tiny_run, "--forcerun", "results/classifier/diffusion/predictions.parquet")
    after = {p: (results / p).stat().st_mtime_ns for p in upstream + downstream}
    assert all(after[p] == before[p] for p in upstream)
    assert all(after[p] > before[p] for p in downstream)


def planned_jobs(workdir: Path, overrides: dict) -> tuple[dict, set]:
    """What ``snakemake -n`` (default rerun triggers) plans in a finished run after a config change: {rule: jobs}
    without the target rule ``all``, and the arms whose train_classifier job it plans."""
    result = snakemake(workdir, "-n", configfile=write_config(workdir, overrides, name="changed.yaml"))
    output = result.stdout + result.stderr
    if "Nothing to be done" in output:
        return {}, set()
    table = output.split("Job stats:")[1].split("total")[0]
    jobs = {rule: int(count) for rule, count in re.findall(r"^(\w+)\s+(\d+)$", table, re.M) if rule != "all"}
    return jobs, set(re.findall(r"Training arm (\S+) \(", output))


REPORT_JOBS = {"evaluate": 1, "report_figures": 1, "report": 1}


def test_removing_an_arm_reruns_only_the_report(tiny_run):
    arms = [a for a in tiny_yaml()["classifier"]["arms"] if a != "gnn"]
    assert planned_jobs(tiny_run, {"classifier.arms": arms}) == (REPORT_JOBS, set())


def test_the_report_reads_only_the_benchmarks_of_this_runs_jobs(tiny_run):
    """Stage times come from declared benchmark files: without gnn, its benchmark file (left by the run that had it)
    is no input of the report job."""
    assert (tiny_run / "results/benchmarks/train_classifier_gnn.tsv").exists()
    arms = [a for a in tiny_yaml()["classifier"]["arms"] if a != "gnn"]
    result = snakemake(tiny_run, "-n", configfile=write_config(tiny_run, {"classifier.arms": arms}, name="changed.yaml"))
    output = result.stdout + result.stderr
    inputs = output[output.index("rule report:"):].split("\n")[1]
    assert inputs.startswith("    input: ")
    assert "results/benchmarks/train_classifier_none.tsv" in inputs and "results/benchmarks/evaluate.tsv" in inputs
    assert "train_classifier_gnn" not in inputs


def test_adding_an_arm_plans_only_its_own_jobs_and_the_report(tiny_run):
    jobs, arms = planned_jobs(tiny_run, {"classifier.ratio_sweep": [0.4, 0.3]})
    assert jobs == {"balance_variant": 1, "train_classifier": 1, **REPORT_JOBS} and arms == {"diffusion_ratio0.3"}


def test_a_classifier_hyper_parameter_reruns_only_the_arms_that_read_it(tiny_run):
    classifier = tiny_yaml()["classifier"]
    jobs, arms = planned_jobs(tiny_run, {"classifier.epochs": classifier["epochs"] + 1})
    mlp_arms = {a for a in workflow_arms(classifier["arms"], classifier["ratio_sweep"]) if "epochs" in lookup_arm(a).settings}
    assert {"none", "diffusion", "embedding_diffusion", "diffusion_ratio0.4"} <= mlp_arms and "gbdt" not in mlp_arms
    # No generation, filter (the critic has its own filter.critic keys), balance or graph_transformer (embedding) job.
    assert jobs == {"train_classifier": len(mlp_arms), **REPORT_JOBS} and arms == mlp_arms


def test_the_threshold_choice_reruns_the_arms_not_the_embedding_pipeline(tiny_run):
    # embed_residues fits graph_transformer's first seed with the keys a fit reads; the threshold is the arms' jobs'.
    classifier = tiny_yaml()["classifier"]
    jobs, arms = planned_jobs(tiny_run, {"classifier.threshold_metric": "f1"})
    assert jobs == {"train_classifier": len(workflow_arms(classifier["arms"], classifier["ratio_sweep"])), **REPORT_JOBS}
    assert "graph_transformer" in arms and "embedding_diffusion" in arms


GENERATION_RULES = {"train_diffusion", "plan_generation", "generate", "filter_shard", "balance", "sample_quality"}


@pytest.mark.parametrize(
    "arms, critic",
    [(["none", "smote", "gbdt"], False), (["none", "smote_filtered"], True)],
    ids=["no-generated-rows", "smote-filtered-only"],
)
def test_generation_stages_are_planned_only_for_arms_that_train_on_generated_rows(tmp_path_factory, arms, critic):
    """A fresh run's plan (snakemake -n) without a diffusion, diffusion_unfiltered or ratio-sweep arm: no job of the
    generation stages, and the report rule reads none of their outputs; smote_filtered still gets its critic. (tiny.yaml,
    every arm, plans and runs them all: tiny_run.)"""
    workdir = new_workdir(tmp_path_factory, "nogeneration")
    configfile = write_config(workdir, {"classifier.arms": arms, "classifier.ratio_sweep": []}, name="arms.yaml")
    output = snakemake(workdir, "-n", configfile=configfile).stdout
    jobs = dict(re.findall(r"^(\w+)\s+(\d+)$", output.split("Job stats:")[1].split("total")[0], re.M))
    assert {"prepare", "features", "train_classifier", "evaluate", "report_figures", "report"} <= set(jobs)
    assert GENERATION_RULES & set(jobs) == set()
    assert ("train_critic" in jobs) == critic and ("balance_variant" in jobs) == critic
    report_inputs = output[output.index("rule report:"):].split("\n")[1]
    assert report_inputs.startswith("    input: ") and "results/data/proteins.parquet" in report_inputs
    for folder in ("diffusion/", "generated/", "filtered/", "balanced/", "sample_quality/"):
        assert folder not in report_inputs, folder


def test_lint_is_clean():
    result = subprocess.run([*SNAKEMAKE, "--lint"], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Lints for" not in result.stdout + result.stderr


BAD_CONFIGS = [
    ({"balance.target_positive_ratio": 1.2}, "target_positive_ratio"),
    ({"filter.quality_threshold": -0.1}, "quality_threshold"),
    ({"generation.shards": 0}, "shards"),
    ({"diffusion.hiden": 64}, "hiden"),
]


@pytest.mark.parametrize("overrides, message", BAD_CONFIGS)
def test_bad_config_is_refused_by_the_schema_naming_the_key(overrides, message):
    """The Snakefile's own check, in process: snakemake.utils.validate against config/schema.yaml."""
    from snakemake.exceptions import WorkflowError
    from snakemake.utils import validate

    with pytest.raises(WorkflowError) as err:
        validate(config_with(overrides), str(REPO / "config" / "schema.yaml"))
    assert message in str(err.value)


def test_bad_config_fails_before_any_job(tmp_path_factory):
    """The wiring of that check, end to end for one case: the run stops before any job and names the key."""
    overrides, message = BAD_CONFIGS[-1]
    workdir = new_workdir(tmp_path_factory, "badconfig")
    result = snakemake(workdir, configfile=write_config(workdir, overrides), check=False)
    assert result.returncode != 0
    assert message in result.stdout + result.stderr
    assert not (workdir / "results").exists()


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda lines: lines.__setitem__(2, lines[2][:-1]), "label line has"),
        (lambda lines: lines.__setitem__(2, "2" + lines[2][1:]), "labels must be 0/1"),
        (lambda lines: lines.extend(lines[:3]), "duplicate id"),
        (lambda lines: lines.__setitem__(1, "Z" + lines[1][1:]), "unknown residue"),
        (lambda lines: lines.__setitem__(0, ">ghost_A"), "not found"),
        (lambda lines: lines.__setitem__(1, ("G" if lines[1][0] != "G" else "A") + lines[1][1:]), "differs"),
    ],
    ids=["length-mismatch", "non-binary-label", "duplicate-id", "unknown-residue", "missing-pdb", "pdb-sequence-mismatch"],
)
def test_bad_input_gives_one_line_error(tmp_path, mutate, message):
    """In process, through prepare_proteins (what the prepare rule runs); tests/test_bad_inputs.py runs one case of
    each error path end to end (one ``error:`` line, non-zero exit, no traceback, no output)."""
    from siteaug.inputs.demo import make_demo
    from siteaug.inputs.prepare import prepare_proteins
    from siteaug.runtime.io import InputError

    make_demo(tmp_path / "inputs", n_proteins=12, min_length=30, max_length=40, seed=0)
    lines = (tmp_path / "inputs/labels.fa").read_text().splitlines()
    mutate(lines)
    (tmp_path / "inputs/labels.fa").write_text("\n".join(lines) + "\n")
    split = tiny_yaml()["split"]
    with pytest.raises(InputError) as err:
        prepare_proteins(str(tmp_path / "inputs/labels.fa"), str(tmp_path / "inputs/pdb"), split["validation"], split["test"],
                         tiny_yaml()["seed"])
    error = str(err.value)
    assert "\n" not in error
    assert message in error and ("labels.fa" in error or ".pdb" in error)
    assert "demo0000_A" in error or "ghost_A" in error


DATASETS = REPO.parent / "shared" / "datasets" / "graphsite_dna"


@pytest.mark.realdata
@pytest.mark.skipif(not (DATASETS / "DNA_Train_573.fa").exists(), reason=f"real DNA-573 data not found at {DATASETS}")
def test_workflow_on_real_dna573_proteins(tmp_path_factory):
    workdir = new_workdir(tmp_path_factory, "dna")
    lines = (DATASETS / "DNA_Train_573.fa").read_text().splitlines()
    records = [lines[i : i + 3] for i in range(0, len(lines) - 2, 3)]
    # 30 proteins with structures, plus one of the four without a PDB to exercise the sequence-graph fallback.
    chosen = [r for r in records if (DATASETS / "pdb" / f"{r[0][1:]}.pdb").exists()][:30]
    chosen += [r for r in records if r[0] == ">4cgz_A"]
    (workdir / "dna.fa").write_text("\n".join(line for record in chosen for line in record) + "\n")
    # Every arm, one seed: real structures reach every code path; a second seed only repeats the tiny run's loop.
    config = write_config(
        workdir,
        {"input": {"source": "files", "labels": "dna.fa", "structures": str(DATASETS / "pdb"), "missing_structure": "sequence_graph"},
         "classifier.seeds": 1},
    )
    snakemake(workdir, configfile=config)
    metrics = pd.read_csv(workdir / "results/report/metrics.tsv", sep="\t")
    pooled = metrics[metrics["aggregation"] == "pooled"]
    classifier = tiny_yaml()["classifier"]
    assert pooled["auroc"].between(0, 1).all() and len(pooled) == len(classifier["arms"]) + len(classifier["ratio_sweep"])
    residues = pq.read_table(workdir / "results/features/residues.parquet").to_pandas()
    assert residues["protein_id"].nunique() == len(chosen)
    no_structure = residues[residues["protein_id"] == "4cgz_A"]
    assert (no_structure["f_has_structure"] != residues.loc[residues["protein_id"] != "4cgz_A", "f_has_structure"].iloc[0]).all()
