"""What a user sees on the console: the default profile's settings and which long job runs, with its log."""
from __future__ import annotations

import re
import subprocess

import pytest

from helpers import SNAKEMAKE, new_workdir, run_snakemake, snakemake_command, write_config

pytestmark = pytest.mark.workflow


def test_long_jobs_announce_themselves_with_their_log(tmp_path):
    result = subprocess.run([*SNAKEMAKE, "--directory", str(tmp_path), "-n", "--cores", "2"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=300)
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-3000:]
    assert "Using workflow specific profile" in out and "profiles/default" in out
    for line in ("Training the diffusion model (up to 600 steps; minutes on a CPU); progress: tail -f results/logs/train_diffusion.log",
                 "Generating candidates, shard 1; progress: tail -f results/logs/generate/shard_1.log",
                 "Training arm gbdt (3 seeds, 1 at a time, 2 cores); progress: tail -f results/logs/train_classifier/gbdt.log",
                 "progress: tail -f results/logs/sample_quality.log",
                 "progress: tail -f results/logs/features.log"):
        assert line in out


@pytest.mark.parametrize("cores, cap, processes", [(3, None, 3), (3, 2, 2), (2, 5, 2)])
def test_features_takes_every_core_unless_capped(tmp_path, cores, cap, processes):
    command = [*SNAKEMAKE, "--directory", str(tmp_path), "-n", "--cores", str(cores), "--until", "features"]
    if cap is not None:
        (tmp_path / "cap.yaml").write_text(f"features: {{threads: {cap}}}\n")
        command += ["--configfile", str(tmp_path / "cap.yaml")]
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-3000:]
    assert f"Features of every protein ({processes} worker processes)" in out, out[-3000:]


def test_seeds_side_by_side_on_cuda_only_gbdt_and_evaluate_on_half_and_tree_scores_on_every_core(tmp_path):
    (tmp_path / "gpu.yaml").write_text("classifier:\n  device: cuda\n  arms: [none, gbdt, graph_transformer]\n"
                                       "  graph_transformer: {tree_input: true, compile: false}\n")
    command = [*SNAKEMAKE, "--directory", str(tmp_path), "-n", "--cores", "16", "--configfile", str(tmp_path / "gpu.yaml")]
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-3000:]
    for line in ("Training arm none (3 seeds, 3 at a time, 3 cores)", "Training arm graph_transformer (3 seeds, 3 at a time, 3 cores)",
                 # gbdt's seeds share the grid point chosen on the tree_scores job's fits; its fits take half of --cores
                 "Training arm gbdt (3 seeds, 1 at a time, 8 cores)",
                 # every core, though the default grid has 2 x 2 points x 3 folds: 12 fits
                 "Out-of-fold tree scores for graph_transformer's input, and the gbdt arm's grid point (up to 16 fits at a time)",
                 "Features of every protein (16 worker processes)"):
        assert line in out, line
    assert "compile_graph_transformer" not in out  # nothing to compile
    # evaluate's bootstrap, one arm per thread, takes half of --cores, as gbdt does
    assert re.search(r"^rule evaluate:\n(?:    .*\n)*?    threads: 8$", out, re.MULTILINE), out[-3000:]
    # With an embedding arm, embed_residues fits graph_transformer's first seed: the arm's job fits two, so holds two.
    (tmp_path / "gpu.yaml").write_text("classifier:\n  device: cuda\n  arms: [graph_transformer, embedding_none]\n"
                                       "  graph_transformer: {tree_input: true, compile: true}\n")
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    out = result.stdout + result.stderr
    assert "Training arm graph_transformer (3 seeds, 2 at a time, 2 cores)" in out
    # Compiled steps: one job compiles the step first, with 2 compiler workers on the cores that
    # features and tree_scores leave free, and both jobs that fit the arm's seeds wait for it.
    for line in ("Compiling graph_transformer's training step once, ahead of its fits (2 compiler workers)",
                 "up to 14 fits at a time", "Features of every protein (14 worker processes)"):
        assert line in out, line
    dag = subprocess.run([*command[:-4], "--dag", *command[-4:]], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    nodes = dict(re.findall(r'^\s*(\d+)\[label = "([^"]*)"', dag.stdout, re.MULTILINE))
    edges = {(nodes[a], nodes[b]) for a, b in re.findall(r"^\s*(\d+) -> (\d+)$", dag.stdout, re.MULTILINE)}
    waiting = {b for a, b in edges if a == "compile_graph_transformer"}
    # (and the report, which shows its time)
    assert waiting == {"embed_residues", "train_classifier\\narm: graph_transformer", "report"}, dag.stdout[-2000:]


def test_a_failed_job_shows_its_log_on_the_console(tmp_path_factory):
    from siteaug.inputs.demo import make_demo

    workdir = new_workdir(tmp_path_factory, "failedlog")
    make_demo(workdir / "inputs", n_proteins=12, min_length=30, max_length=40, seed=0)
    labels = workdir / "inputs/labels.fa"
    lines = labels.read_text().splitlines()
    lines[2] = "2" + lines[2][1:]
    labels.write_text("\n".join(lines) + "\n")
    config = write_config(workdir, {"input": {"source": "files", "labels": "inputs/labels.fa", "structures": "inputs/pdb"}})
    result = run_snakemake(workdir, "--until", "prepare", configfiles=(config,), timeout=300)
    assert result.returncode != 0
    console = result.stdout + result.stderr
    # show-failed-logs (profiles/default): the log's own lines, not only its name, are on the console.
    assert "Logfile results/logs/prepare.log:" in console
    assert "ERROR root: " in console and "labels must be 0/1" in console


def test_a_running_job_reports_its_progress_on_the_console(tmp_path_factory):
    """The rule scripts' progress lines (siteaug.runtime.workflow.rule_logging) reach Snakemake's console, named by job."""
    import os

    from siteaug.inputs.demo import make_demo

    workdir = new_workdir(tmp_path_factory, "progress")
    make_demo(workdir / "inputs", n_proteins=12, min_length=30, max_length=40, seed=0)
    config = write_config(workdir, {"input": {"source": "files", "labels": "inputs/labels.fa", "structures": "inputs/pdb"}})
    env = {**os.environ, "SITEAUG_PROGRESS_SECONDS": "0.05"}  # every job here takes longer than that
    result = subprocess.run(snakemake_command(workdir, "--until", "features", configfiles=(config,)), cwd=workdir,
                            capture_output=True, text=True, timeout=300, env=env)
    console = result.stdout + result.stderr
    assert result.returncode == 0, console[-3000:]
    for rule in ("prepare", "features"):
        assert re.search(rf"^\[\d\d:\d\d:\d\d\] {rule}: running \d+ s", console, re.MULTILINE), console[-3000:]
    assert "] prepare: running" not in (workdir / "results/logs/prepare.log").read_text()  # the console only
