"""output.directory: every output, log and benchmark under the folder the user chose (snakemake -n / --summary)."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from helpers import SNAKEMAKE, TINY, run_snakemake

pytestmark = pytest.mark.workflow

# The tiny config runs every arm (the embedding pipeline too); the ablation adds its three rules.
ABLATION = {"report": {"feature_ablation": [["sequence"], ["sequence", "structure"]]}}


def _overlay(workdir: Path, directory: str | None, extra: dict | None = None) -> Path:
    config = dict(extra or {})
    if directory is not None:
        config["output"] = {"directory": directory}
    path = workdir / "output.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _summary_files(workdir: Path, overlay: Path) -> list[str]:
    """Every output file of the DAG, as --summary lists it (paths as the rules name them)."""
    result = run_snakemake(workdir, "--summary", configfiles=(TINY, overlay), cores=1, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("output_file\t"))
    return [line.split("\t")[0] for line in lines[header + 1:] if line.strip()]


def _dry_run_paths(workdir: Path, overlay: Path) -> list[str]:
    """Every input, output, log and benchmark path a dry run prints, and the log paths in the jobs' messages."""
    result = run_snakemake(workdir, "-n", configfiles=(TINY, overlay), cores=1, timeout=300)
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-3000:]
    paths = [p for line in re.findall(r"^\s+(?:input|output|log|benchmark): (.+)$", out, flags=re.M)
             for p in line.split(", ")]
    paths += re.findall(r"progress: tail -f (\S+)", out)
    return paths


def test_every_output_log_and_benchmark_lies_under_the_chosen_folder(tmp_path):
    overlay = _overlay(tmp_path, "runs/first", ABLATION)
    files = _summary_files(tmp_path, overlay)
    rules_seen = {"ablation/metrics.tsv", "embedding/sample_quality/pca.png", "report/auprc_differences.png", "demo/labels.fa"}
    assert rules_seen <= {f.removeprefix("runs/first/") for f in files}
    assert all(f.startswith("runs/first/") for f in files), [f for f in files if not f.startswith("runs/first/")]
    paths = _dry_run_paths(tmp_path, overlay)
    assert any("/logs/" in p for p in paths) and any("/benchmarks/" in p for p in paths)
    assert all(p.startswith("runs/first/") for p in paths), [p for p in paths if not p.startswith("runs/first/")]
    assert not (tmp_path / "results").exists() and not (tmp_path / "runs").exists()  # a dry run writes nothing


def test_default_folder_is_results(tmp_path):
    files = _summary_files(tmp_path, _overlay(tmp_path, None))
    assert files and all(f.startswith("results/") for f in files)


def test_absolute_folder_and_trailing_slash(tmp_path):
    target = tmp_path / "elsewhere" / "run"
    files = _summary_files(tmp_path, _overlay(tmp_path, f"{target}/"))
    assert files and all(f.startswith(f"{target}/") for f in files)
    assert not any("//" in f for f in files)


def test_relative_folder_is_relative_to_the_directory_option(tmp_path):
    """--directory from another working directory: outputs land under the work directory's folder, nowhere else."""
    workdir, elsewhere = tmp_path / "work", tmp_path / "cwd"
    workdir.mkdir()
    elsewhere.mkdir()
    overlay = _overlay(workdir, "mine")
    command = [*SNAKEMAKE, "--directory", str(workdir), "--configfile", str(TINY), str(overlay), "--cores", "1",
               "--until", "make_demo"]
    result = subprocess.run(command, cwd=elsewhere, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (workdir / "mine/demo/labels.fa").stat().st_size > 0
    assert (workdir / "mine/logs/make_demo.log").exists() and (workdir / "mine/benchmarks/make_demo.tsv").exists()
    assert list(elsewhere.iterdir()) == [] and not (workdir / "results").exists()


@pytest.mark.parametrize("directory", ["runs/{dataset}", ""])
def test_a_bad_folder_is_refused_naming_the_key(tmp_path, directory):
    result = run_snakemake(tmp_path, "-n", configfiles=(TINY, _overlay(tmp_path, directory)), cores=1, timeout=300)
    out = result.stdout + result.stderr
    assert result.returncode != 0
    # Snakemake's schema message: the key, the rule it breaks, the value; no Python traceback
    assert "['output']['directory']" in out and "Traceback" not in out, out[-3000:]
    assert not (tmp_path / "results").exists()
