"""Work directories for the tests that run the Snakemake workflow: a copy of config/, a config file, the command line."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
SNAKEFILE = REPO / "Snakefile"
TINY = REPO / "tests" / "data" / "tiny.yaml"
LEAN = REPO / "tests" / "data" / "tiny_lean.yaml"
# report.feature_ablation of the shared lean run (conftest.py, lean_ablation_run): a setting without structure, then
# tiny.yaml's groups.
ABLATION_SETTINGS = [["sequence"], ["sequence", "structure"]]
SNAKEMAKE = [sys.executable, "-m", "snakemake", "-s", str(SNAKEFILE)]


def copy_config(workdir: Path) -> Path:
    """Copy the repository's config/ (schema and defaults) into ``workdir``, which is made if missing."""
    shutil.copytree(REPO / "config", workdir / "config")
    return workdir


def new_workdir(tmp_path_factory, name: str) -> Path:
    """A fresh temporary work directory named after ``name``, holding a copy of config/."""
    return copy_config(tmp_path_factory.mktemp(name))


def tiny_yaml() -> dict:
    """tests/data/tiny.yaml, read anew (so a test may change it)."""
    return yaml.safe_load(TINY.read_text())


def config_with(overrides: dict | None = None) -> dict:
    """tiny.yaml with ``overrides``: keys are dotted paths (``"balance.target_positive_ratio"``) or top-level keys."""
    config = tiny_yaml()
    for key, value in (overrides or {}).items():
        *sections, leaf = key.split(".")
        node = config
        for section in sections:
            node = node.setdefault(section, {})
        node[leaf] = value
    return config


def write_config(workdir: Path, overrides: dict | None = None, name: str = "bad.yaml") -> Path:
    """Write ``config_with(overrides)`` to ``workdir / name`` and return its path."""
    path = workdir / name
    # In tiny.yaml's key order: Snakemake compares params by their repr, so a section written with its keys sorted
    # would count as changed params and rerun the jobs that read it.
    path.write_text(yaml.safe_dump(config_with(overrides), sort_keys=False))
    return path


def snakemake_command(workdir: Path, *args: str, configfiles=(TINY,), cores: int | None = 2) -> list[str]:
    """``snakemake`` on this repository's Snakefile in ``workdir``, with ``args`` last.

    ``cores=None`` leaves ``--cores`` and ``--resources gpu=1`` out (a profile sets the cores). ``args`` follow options
    that take several values, so they must be options: a target file given there would be read as one of those values.
    """
    command = [*SNAKEMAKE, "--directory", str(workdir), "--configfile", *map(str, configfiles)]
    if cores is not None:
        command += ["--cores", str(cores), "--resources", "gpu=1"]
    return [*command, *args]


def run_snakemake(workdir: Path, *args: str, timeout: float = 900, **options) -> subprocess.CompletedProcess:
    """Run ``snakemake_command(workdir, *args, **options)`` in ``workdir``, capturing its output (no check)."""
    return subprocess.run(snakemake_command(workdir, *args, **options), cwd=workdir, capture_output=True, text=True,
                          timeout=timeout)


def write_report(predictions: dict, out_dir: Path, proteins=None, n_resamples: int = 1000, confidence: float = 0.95,
                 seed: int = 0, no_verdict=None, training=None, sweep=None, quality_scores=None, quality_threshold=None,
                 **page):
    """The three report jobs in a row, as the rules evaluate, report_figures and report run them, into ``out_dir``:
    metrics.tsv, differences.tsv, metrics.json, the figures, report.html (and provenance.json when ``page`` has a
    provenance block). ``page``: the other keyword arguments of report_page. Returns the metrics.tsv frame."""
    from siteaug.evaluation.comparison import compare, write_evaluation
    from siteaug.evaluation.figures import report_figures, save_png
    from siteaug.evaluation.report import report_page
    from siteaug.runtime.io import write_json, write_text

    out_dir = Path(out_dir)
    evaluation = compare(predictions, proteins, n_resamples, confidence, seed, no_verdict=no_verdict, training=training)
    metrics = write_evaluation(evaluation, out_dir / "metrics.tsv", out_dir / "differences.tsv", out_dir / "metrics.json")
    figures = report_figures(predictions, proteins, evaluation, sweep, quality_scores, quality_threshold)
    for name, fig in figures.items():
        save_png(fig, out_dir / name)
    if page.get("provenance"):
        write_json(page["provenance"], out_dir / "provenance.json")
    write_text(report_page(evaluation, {name: out_dir / name for name in figures}, **page), out_dir / "report.html")
    return metrics


FAKE_MPS_CONTROL = """#!/bin/sh
if [ "$1" = "-d" ]; then
  [ -n "$FAKE_MPS_FAIL" ] && { echo "cannot start the daemon: no CUDA device" >&2; exit 3; }
  echo "start $CUDA_MPS_PIPE_DIRECTORY $CUDA_MPS_LOG_DIRECTORY" >> "$FAKE_MPS_RECORD"
  printf 'NEW CLIENT 1\\nNEW CLIENT 2\\nNEW CLIENT 3\\n' > "$CUDA_MPS_LOG_DIRECTORY/control.log"
  if [ -n "$FAKE_MPS_SERVER_ERROR" ]; then
    echo "[Server 99] Server failed to recevie command with status 806, assuming client {PID: 42, Context ID: 0} exit" \\
      > "$CUDA_MPS_LOG_DIRECTORY/server.log"
    echo "[Server 99] Failed to start: $FAKE_MPS_SERVER_ERROR" >> "$CUDA_MPS_LOG_DIRECTORY/server.log"
  fi
else
  echo "$(cat) $CUDA_MPS_PIPE_DIRECTORY" >> "$FAKE_MPS_RECORD"
fi
"""


def fake_mps_driver(folder: Path, path: str | None = None) -> str:
    """A PATH with a stand-in for NVIDIA's nvidia-cuda-mps-control first (in folder/bin): it records how it is called
    in $FAKE_MPS_RECORD, fails to start with $FAKE_MPS_FAIL set, and logs $FAKE_MPS_SERVER_ERROR as the server's (after a routine line about a client
    that exited). ``path``:
    the PATH to put it in front of (this process's by default)."""
    bin_dir = folder / "bin"
    bin_dir.mkdir()
    control = bin_dir / "nvidia-cuda-mps-control"
    control.write_text(FAKE_MPS_CONTROL)
    control.chmod(0o755)
    return f"{bin_dir}{os.pathsep}{path or os.environ['PATH']}"  # the stand-in's own commands (cat): the system's
