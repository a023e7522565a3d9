"""config/config.yaml is found from the Snakefile's folder, whatever the working directory."""
from __future__ import annotations

import re
import subprocess

import pytest
import yaml

from helpers import REPO, SNAKEMAKE

pytestmark = pytest.mark.workflow


def _job_counts(result: subprocess.CompletedProcess) -> dict[str, int]:
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-3000:]
    return {m[0]: int(m[1]) for m in re.findall(r"^(\w+)\s+(\d+)$", out, flags=re.M)}


@pytest.mark.parametrize("how", ["--directory", "cwd"])
def test_config_defaults_are_found_from_the_snakefile_folder(tmp_path, how):
    """A work directory without config/: config/config.yaml still applies, under the user's --configfile."""
    workdir = tmp_path / "work"
    workdir.mkdir()
    (workdir / "mine.yaml").write_text("seed: 5\n")
    defaults = yaml.safe_load((REPO / "config/config.yaml").read_text())
    args = ["-n", "--cores", "1", "--configfile", str(workdir / "mine.yaml")]
    if how == "--directory":
        command, cwd = [*SNAKEMAKE, "--directory", str(workdir), *args], tmp_path
    else:
        command, cwd = [*SNAKEMAKE, *args], workdir
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=300)
    counts = _job_counts(result)
    # The schema's default arm list has 10 arms; config/config.yaml's demo list is shorter.
    assert counts["train_classifier"] == len(defaults["classifier"]["arms"]) < 10
    assert counts["generate"] == defaults["generation"]["shards"]
    assert not (workdir / "config").exists()
