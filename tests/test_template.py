"""config/template.yaml: the keys a new dataset needs; once its placeholders are filled it validates and plans a run."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from helpers import REPO, run_snakemake

pytestmark = pytest.mark.workflow

TEMPLATE = REPO / "config" / "template.yaml"


def _filled(workdir: Path, external: bool) -> Path:
    """The template with its placeholders replaced by demo files made in ``workdir`` (and an external test set)."""
    from siteaug.inputs.demo import make_demo

    make_demo(workdir / "mine", n_proteins=12, min_length=30, max_length=40, seed=0)
    text = TEMPLATE.read_text()
    text = text.replace("<path/to/labels.fa>", "mine/labels.fa").replace("<path/to/pdb_folder>", "mine/pdb")
    text = text.replace("directory: results/my_data", "directory: results/mine")
    if external:
        make_demo(workdir / "theirs", n_proteins=12, min_length=30, max_length=40, seed=1)
        text = text.replace("external_test_labels: null", "external_test_labels: theirs/labels.fa")
        text = text.replace("external_test_structures: null", "external_test_structures: theirs/pdb")
    # Only comments may still hold a placeholder.
    assert not re.search(r"<[^>]*>", "\n".join(line.split("#")[0] for line in text.splitlines()))
    path = workdir / "my_data.yaml"
    path.write_text(text)
    return path


def test_template_holds_only_the_dataset_keys():
    template = yaml.safe_load(TEMPLATE.read_text())
    assert set(template) == {"input", "features", "output"}
    assert set(template["input"]) == {"source", "labels", "structures", "missing_structure", "external_test_labels",
                                      "external_test_structures"}
    assert template["input"]["source"] == "files"


def test_filled_template_validates_against_the_schema(tmp_path):
    from snakemake.utils import validate

    config = yaml.safe_load(_filled(tmp_path, external=True).read_text())
    validate(config, str(REPO / "config" / "schema.yaml"))  # raises on an unknown key or a bad value
    assert config["output"]["directory"] == "results/mine" and config["classifier"]["seeds"] == 3  # defaults filled


@pytest.mark.parametrize("external", [False, True], ids=["internal-split", "external-test-set"])
def test_filled_template_plans_a_full_run_on_the_files(tmp_path, external):
    config = _filled(tmp_path, external)
    result = run_snakemake(tmp_path, "--summary", configfiles=(config,), cores=1, timeout=300)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    files = [line.split("\t")[0] for line in result.stdout.splitlines()[1:] if "\t" in line]
    files = [f for f in files if f != "output_file"]
    assert "results/mine/report/report.html" in files and all(f.startswith("results/mine/") for f in files)
    assert not any("/demo/" in f for f in files)  # the user's files, not the demo
    plan = run_snakemake(tmp_path, "-n", configfiles=(config,), cores=1, timeout=300)
    assert plan.returncode == 0
    inputs = re.search(r"rule prepare:\n\s+input: (.+)", plan.stdout).group(1).split(", ")
    expected = {"mine/labels.fa", "mine/pdb"} | ({"theirs/labels.fa", "theirs/pdb"} if external else set())
    assert set(inputs) == expected


def test_unfilled_template_stops_with_one_line_naming_the_key(tmp_path):
    result = run_snakemake(tmp_path, "-n", configfiles=(TEMPLATE,), cores=1, timeout=300)
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert errors == ["error: config input.labels: <path/to/labels.fa>: no such file or folder"], result.stderr[-2000:]
